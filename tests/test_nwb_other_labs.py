"""NWB files as other labs write them with pynwb: pynwb 4 EventsTables, spike times in ms, obs_intervals.

Each case is a defect found on files made with pynwb (not bci_credit): reward stored as an EventsTable was
not read, spike times in milliseconds were read without a word, and obs_intervals were dropped.
"""

from __future__ import annotations

import re
import warnings

import h5py
import numpy as np
import pytest

from bci_credit.cli import main
from bci_credit.io import nwb
from bci_credit.recording import Recording, TimeSeries, make_units_table

import test_nwb_builders as B

MS_HINT = "spike times may be in milliseconds: divide by 1000"


def _read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nwb.NWBReadWarning)
        return nwb.read(path, **kw)


def _events_file(path, columns: dict, times, reward_series: bool = False, name: str = "reward_events"):
    """Units, trials over 0-10 s and a pynwb 4 EventsTable ``/events/<name>`` with a timestamp, a duration and
    the extra ``columns``; with ``reward_series`` also a BehavioralEvents TimeSeries named like the table."""
    event = pytest.importorskip("pynwb.event")  # pynwb >= 4
    from pynwb import TimeSeries as NWBTimeSeries
    from pynwb.behavior import BehavioralEvents

    f = B._nwbfile()
    f.add_unit(spike_times=[0.5, 1.5, 9.0])
    B._add_trials(f, [0.0, 5.0], [5.0, 10.0])
    table = event.EventsTable(name=name, description="juice deliveries")
    for col in columns:
        table.add_column(col, f"{col} of the event")
    for i, t in enumerate(times):
        table.add_row(timestamp=float(t), duration=0.05, **{c: v[i] for c, v in columns.items()})
    f.add_events_table(table)
    if reward_series:
        with warnings.catch_warnings():  # pynwb 4: "BehavioralEvents is deprecated" (other labs still write it)
            warnings.simplefilter("ignore", UserWarning)
            be = BehavioralEvents(name="BehavioralEvents")
        be.add_timeseries(NWBTimeSeries(name=name, data=np.ones(2), timestamps=[1.0, 2.0], unit="a.u."))
        f.create_processing_module("behavior", "behaviour").add(be)
    return B._save(f, path)


# ---------------------------------------------------------------------------- 1. pynwb 4 EventsTable
def test_events_table_becomes_an_event_series_with_its_amounts(tmp_path):
    path = _events_file(tmp_path / "ev.nwb", {"amount": [0.1, 0.2, 0.3, 0.4], "note": ["a", "b", "c", "d"]},
                        times=[3.0, np.nan, 1.0, 7.0])
    with pytest.warns(nwb.NWBReadWarning) as record:
        rec = nwb.read(path)
    notes = " | ".join(str(w.message) for w in record)
    assert re.search(r"read the events table /events/reward_events as series 'reward_events': 3 events .*'amount' "
                     r"column; columns not used: .*note", notes), notes
    assert "1 timestamp(s) are NaN" in notes and "sorted by time" in notes
    ts = rec.series["reward_events"]
    assert ts.kind == "events" and ts.description == "juice deliveries"
    np.testing.assert_array_equal(ts.t_s, [1.0, 3.0, 7.0])  # sorted, the NaN time dropped
    np.testing.assert_array_equal(ts.values, [0.3, 0.1, 0.4])  # the amounts follow their events


@pytest.mark.parametrize("columns, how", [({}, "no amount column"),
                                          ({"volume_ml": [1.0, 2.0], "reward_size": [3.0, 4.0]},
                                           "more than one amount column")])
def test_events_table_without_one_amount_column_gives_ones(tmp_path, columns, how):
    rec = _read(_events_file(tmp_path / "ev.nwb", columns, times=[2.0, 4.0]))
    np.testing.assert_array_equal(rec.series["reward_events"].values, [1.0, 1.0])
    assert any("values 1 per event" in w and how in w for w in rec.meta["warnings"]), rec.meta["warnings"]


def test_events_table_named_like_a_series_is_renamed_with_a_note(tmp_path):
    rec = _read(_events_file(tmp_path / "ev.nwb", {}, times=[2.0, 4.0], reward_series=True, name="reward"))
    assert rec.series["reward"].t_s.tolist() == [1.0, 2.0]  # the BehavioralEvents series keeps its name
    assert rec.series["events/reward"].t_s.tolist() == [2.0, 4.0]
    assert any("read as series 'events/reward'" in w for w in rec.meta["warnings"])


def test_events_tables_follow_the_series_argument(tmp_path):
    path = _events_file(tmp_path / "ev.nwb", {}, times=[2.0, 4.0])
    assert "reward_events" not in _read(path, series=False).series
    rec = _read(path, series=["reward_events"])
    assert list(rec.series) == ["reward_events"]
    assert not any("not found" in w for w in rec.meta["warnings"])


def test_inspect_lists_an_events_table_with_rows_and_columns(tmp_path, capsys):
    path = _events_file(tmp_path / "ev.nwb", {"amount": [0.1, 0.2, 0.3]}, times=[1.0, 2.0, 12.0])
    assert nwb.inspect(path)["t_stop_s"] == 12.0  # the events count in the span
    assert main(["inspect", str(path)]) == 0
    assert "/events/reward_events: 3 rows; columns: timestamp, amount, duration" in capsys.readouterr().out


def test_a_file_without_events_reads_as_before(tmp_path):
    """Files of pynwb 3 have no /events group: nothing is added, no note."""
    path = B.realistic_file(tmp_path / "maze.nwb")
    with h5py.File(path, "r") as f:
        assert "events" not in f or not len(f["events"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", nwb.NWBReadWarning)
        assert nwb.read(path).series == {}


# ---------------------------------------------------------------------------- 2. spike times in ms
def _spikes_file(path, spikes: list):
    """Units with the given spike times and seven 10-s trials over 0-70 s."""
    f = B._nwbfile()
    for s in spikes:
        f.add_unit(spike_times=list(s))
    B._add_trials(f, np.arange(0.0, 70.0, 10.0), np.arange(10.0, 71.0, 10.0))
    return B._save(f, path)


def test_read_warns_about_spike_times_in_ms_and_flags_them_in_meta(tmp_path):
    rng = np.random.default_rng(0)
    seconds = [np.sort(rng.uniform(0.5, 69.0, 200)) for _ in range(3)]
    path = _spikes_file(tmp_path / "ms.nwb", [s * 1000.0 for s in seconds])
    with pytest.warns(nwb.NWBReadWarning, match=MS_HINT) as record:
        rec = nwb.read(path)
    assert rec.meta["spike_time_scale_suspect"] is True
    assert rec.meta["behaviour_span_s"] == 70.0
    assert rec.meta["spike_span_s"] == pytest.approx(max(s[-1] for s in seconds) * 1000 - min(s[0] for s in seconds)
                                                     * 1000)
    # inspect warns with the very same words (one check shared by both)
    read_note = next(str(w.message) for w in record if MS_HINT in str(w.message))
    assert read_note in nwb.inspect(path)["warnings"]


def test_a_stray_spike_is_reported_by_read_but_not_as_milliseconds(tmp_path):
    path = _spikes_file(tmp_path / "stray.nwb", [[1.0, 2.0, 3.0], [4.0, 100.0]])
    with pytest.warns(nwb.NWBReadWarning, match="check for stray spike times"):
        rec = nwb.read(path)
    assert rec.meta["spike_time_scale_suspect"] is False
    assert not any(MS_HINT in w for w in rec.meta["warnings"])


def test_spikes_inside_the_behaviour_give_no_warning_and_the_facts(tmp_path):
    path = _spikes_file(tmp_path / "ok.nwb", [[1.0, 2.0, 30.0], [4.0, 65.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", nwb.NWBReadWarning)
        rec = nwb.read(path)
    assert (rec.meta["spike_span_s"], rec.meta["behaviour_span_s"], rec.meta["spike_time_scale_suspect"]) == (
        64.0, 70.0, False)
    only_units = B.unsorted_file(tmp_path / "units.nwb", [[0.1, 0.2]])  # no behaviour: span unknown
    assert _read(only_units).meta["behaviour_span_s"] is None


# ---------------------------------------------------------------------------- 3. obs_intervals
def _obs_file(path):
    """Three units over a 900 s session: unit 131 observed [0, 600] only, unit 7 in two pieces, unit 9 without
    intervals (empty entry)."""
    f = B._nwbfile()
    f.add_unit(id=131, spike_times=np.linspace(1, 599, 600), obs_intervals=[[0.0, 600.0]])
    f.add_unit(id=7, spike_times=np.linspace(1, 899, 450), obs_intervals=[[0.0, 300.0], [400.0, 900.0]])
    f.add_unit(id=9, spike_times=np.linspace(1, 899, 900), obs_intervals=np.zeros((0, 2)))
    B._add_trials(f, [0.0], [900.0])
    return B._save(f, path)


def test_obs_intervals_are_read_into_the_units_table(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", nwb.NWBReadWarning)
        rec = nwb.read(_obs_file(tmp_path / "obs.nwb"))
    iv = rec.units["obs_intervals"]
    np.testing.assert_array_equal(iv.loc[131], [[0.0, 600.0]])
    np.testing.assert_array_equal(iv.loc[7], [[0.0, 300.0], [400.0, 900.0]])
    assert iv.loc[9].shape == (0, 2) and iv.loc[131].dtype == np.float64
    # a file without the column gets none
    assert "obs_intervals" not in _read(B.unsorted_file(tmp_path / "u.nwb", [[0.1, 0.2]])).units.columns


def test_obs_intervals_round_trip(tmp_path):
    units = make_units_table(3)
    units["obs_intervals"] = [np.array([[0.0, 6.0]]), np.zeros((0, 2)), np.array([[0.0, 2.0], [3.0, 6.5]])]
    units["depth"] = [1.0, 2.0, 3.0]
    rec = Recording(units, [np.array([0.5, 1.0]), np.array([2.0]), np.array([0.1, 4.0])],
                    series={"reward": TimeSeries([1.0, 5.0], [1.0, 1.0], kind="events")},
                    meta={"session_start_time": B.START.isoformat()})
    path = nwb.write(rec, tmp_path / "obs.nwb")
    with h5py.File(path, "r") as f:  # NWB's own ragged n x 2 column, not a renamed copy
        assert f["units/obs_intervals"].shape == (3, 2) and f["units/obs_intervals_index"][()].tolist() == [1, 1, 3]
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:  # other NWB software sees the intervals
        np.testing.assert_array_equal(io.read().units.get_unit_obs_intervals(2), [[0.0, 2.0], [3.0, 6.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", nwb.NWBReadWarning)
        back = nwb.read(path)
    assert rec.differences(back) == []
    assert list(back.units.columns) == list(rec.units.columns)
    for a, b in zip(rec.units["obs_intervals"], back.units["obs_intervals"]):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_write_refuses_obs_intervals_that_are_not_pairs(tmp_path):
    units = make_units_table(2)
    units["obs_intervals"] = [np.array([[0.0, 6.0]]), np.array([0.0, 1.0, 2.0])]
    rec = Recording(units, [np.array([0.5]), np.array([2.0])])
    with pytest.raises(ValueError, match=r"units\['obs_intervals'\] of unit 1 must be \[start, stop\] pairs"):
        nwb.write(rec, tmp_path / "bad.nwb")
    assert not (tmp_path / "bad.nwb").exists()


def test_inspect_gives_rates_over_the_observed_time(tmp_path, capsys):
    path = _obs_file(tmp_path / "obs.nwb")
    s = nwb.inspect(path)
    units = {u["id"]: u for u in s["units"]}
    assert s["duration_s"] == 900.0
    assert (units[131]["observed_s"], units[131]["rate_hz"]) == (600.0, pytest.approx(1.0))  # not 600 / 900
    assert (units[7]["observed_s"], units[7]["rate_hz"]) == (800.0, pytest.approx(450 / 800))
    assert units[9]["observed_s"] is None and units[9]["rate_hz"] == pytest.approx(1.0)  # over the duration
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rate_hz*" in out and "* rate over the unit's observed time" in out


def test_overlapping_obs_intervals_count_once():
    from bci_credit.io._nwb_read import observed_seconds

    assert observed_seconds(np.array([[0.0, 10.0], [5.0, 15.0], [20.0, 21.0], [np.nan, 3.0]])) == 16.0
    assert observed_seconds(np.zeros((0, 2))) is None
