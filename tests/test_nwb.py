"""NWB writer and reader: exact round trip, nwbinspector-clean files, real-world edge cases."""

from __future__ import annotations

import hashlib
import io
import os
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest

from bci_credit.io import nwb
from bci_credit.io import _nwb_layout as L
from bci_credit.io._nwb_h5 import counts_to_spike_times
from bci_credit.recording import Recording, TimeSeries, WeightTrace, make_units_table

import test_nwb_builders as B


def _read_quiet(source, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nwb.NWBReadWarning)
        return nwb.read(source, **kw)


def _fingerprint(path):
    st = os.stat(path)
    return hashlib.sha256(open(path, "rb").read()).hexdigest(), st.st_mtime_ns, st.st_size


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    rec = B.sim_recording(seed=3)
    path = tmp_path_factory.mktemp("nwb") / "sim.nwb"
    nwb.write(rec, path)
    return rec, path


# ---------------------------------------------------------------------------- round trip
def test_round_trip_exact(sim_file):
    rec, path = sim_file
    with warnings.catch_warnings():
        warnings.simplefilter("error", nwb.NWBReadWarning)  # our own files read without warnings
        back = nwb.read(path)
    assert rec.differences(back) == []
    assert rec.equals(back)
    # types come back as they went in
    assert back.units["is_control"].dtype == bool
    assert back.units["depth_um"].dtype == np.int32
    assert all(isinstance(x, str) for x in back.units["area"])
    assert back.trials["success"].dtype == bool
    assert back.trials["target"].dtype == np.int16
    assert all(isinstance(x, str) for x in back.trials["block"])
    assert back.trials["reward_times"].tolist() == rec.trials["reward_times"].tolist()
    assert back.epochs["tags"].tolist() == [["baseline"], ["conditioning", "rewarded"], []]
    assert list(back.epochs.columns) == ["start_s", "stop_s", "tags", "gain"]
    assert back.spiked.dtype == bool and back.drive.dtype == np.float64
    assert list(back.units.columns) == list(rec.units.columns)
    assert list(back.trials.columns) == list(rec.trials.columns)
    assert back.units.index.name == "unit_id"
    assert {k: (v.unit, v.kind, v.description) for k, v in back.series.items()} == {
        k: (v.unit, v.kind, v.description) for k, v in rec.series.items()}
    # meta: everything we stored comes back, plus facts about the file
    for key in ("source", "seed", "dt_s", "config", "decoder", "session_start_time"):
        assert back.meta[key] == rec.meta[key], key
    assert back.meta["nwb_path"] == str(path) and back.meta["warnings"] == []
    np.testing.assert_allclose(back.rates_hz(), rec.rates_hz(), rtol=1e-12)


def test_file_layout_matches_documentation(sim_file):
    _, path = sim_file
    with h5py.File(path, "r") as f:
        assert f["units/is_control"].dtype == bool
        assert f["units/spike_times"].attrs["resolution"] == 0.001
        assert f["intervals/windows/drive"].shape == (120, 6)
        assert "reward_time" in f["intervals/trials"] and "start_time" in f["intervals/trials"]
        assert "reward" in f["processing/behavior/BehavioralEvents"]
        ts = f["processing/behavior/BehavioralTimeSeries/decoder_output"]
        assert "starting_time" in ts and ts["starting_time"].attrs["rate"] == pytest.approx(100.0)
        assert f["general/subject/species"][()] == b"Macaca mulatta"
        assert "processing/misc/bci_decoder" in f and "processing/misc/weights" in f
        assert f["session_start_time"][()].decode().endswith("+00:00")
    # other NWB software reads the file: pynwb sees the same units and trials
    from pynwb import NWBHDF5IO

    rec = sim_file[0]
    with NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        np.testing.assert_array_equal(f.units["spike_times"][3], rec.spike_times[3])
        np.testing.assert_array_equal(f.units["is_control"][:], rec.units["is_control"])
        trials = f.trials.to_dataframe()
        np.testing.assert_array_equal(trials["reward_time"], rec.trials["reward_time_s"])
        assert f.processing["behavior"]["BehavioralTimeSeries"]["cursor"].data.shape == (1200, 2)


def test_round_trip_awkward_recordings(tmp_path):
    """Non-integer unit ids, no windows/trials, 0 units, a series with more channels than samples,
    an empty event series, integer and boolean series values, naive start time."""
    rng = np.random.default_rng(1)
    units = make_units_table(3)
    units.index = pd.Index(["a1", "b2", "c3"], name="name")
    rec = Recording(
        units, [np.array([0.5]), np.zeros(0), np.array([0.1, 0.2])],
        series={"wide": TimeSeries([0.0, 1.0], rng.normal(size=(2, 5))),
                "none": TimeSeries(np.zeros(0), np.zeros(0), kind="events"),
                "lever": TimeSeries(np.array([0.1, 0.7, 0.9]), np.array([1, 0, 1], dtype=np.int8)),
                "a/b": TimeSeries(np.array([0.3, 0.4, 0.9]), np.array([True, False, True]))},
        weights=WeightTrace([0.0], rng.normal(size=(1, 3))),
        meta={"session_start_time": "2020-01-02T03:04:05"},
    )
    nwb.write(rec, tmp_path / "a.nwb")
    back = _read_quiet(tmp_path / "a.nwb")
    assert rec.differences(back) == []
    assert list(back.units.index) == ["a1", "b2", "c3"] and back.units.index.name == "name"
    assert back.series["lever"].values.dtype == np.int8 and back.series["a/b"].values.dtype == bool
    assert back.meta["session_start_time"] == "2020-01-02T03:04:05+00:00"  # naive was written as UTC

    empty = Recording(make_units_table(0), [])
    nwb.write(empty, tmp_path / "empty.nwb")
    back = _read_quiet(tmp_path / "empty.nwb")
    assert back.n_units == 0 and empty.differences(back) == []


def test_write_is_atomic_and_respects_overwrite(tmp_path, sim_file):
    rec, _ = sim_file
    path = tmp_path / "x.nwb"
    nwb.write(rec, path)
    with pytest.raises(FileExistsError):
        nwb.write(rec, path, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nwb"]  # no temp file left behind
    with pytest.raises(TypeError, match="Recording"):
        nwb.write({"units": []}, tmp_path / "y.nwb")


def test_nwbinspector_clean(sim_file, tmp_path):
    from nwbinspector import Importance, inspect_all

    _, path = sim_file
    rng = np.random.default_rng(2)
    other = Recording(make_units_table(4), [np.sort(rng.uniform(0, 5, 20)) for _ in range(4)],
                      series={"wide": TimeSeries([0.0, 1.0], rng.normal(size=(2, 5)))},
                      weights=WeightTrace([0.0, 1.0], rng.normal(size=(2, 4))),
                      meta={"dt_s": 0.5, "source": "simulation"})
    nwb.write(other, tmp_path / "other.nwb")
    for p in (path, tmp_path / "other.nwb"):
        messages = list(inspect_all(str(p), progress_bar=False))
        bad = [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in messages
               if m.importance.value >= Importance.CRITICAL.value]
        assert bad == [], bad


# ---------------------------------------------------------------------------- reading without changing
def test_read_and_inspect_do_not_modify_the_file(sim_file):
    _, path = sim_file
    before = _fingerprint(path)
    nwb.read(path)
    nwb.inspect(path)
    assert _fingerprint(path) == before


def test_open_h5py_file_and_file_like(sim_file):
    rec, path = sim_file
    with h5py.File(path, "r") as f:
        assert rec.equals(nwb.read(f))
        assert nwb.inspect(f)["n_units"] == rec.n_units
        assert f.id.valid  # left open for the caller
    buf = io.BytesIO(path.read_bytes())
    assert rec.equals(nwb.read(buf))
    assert not buf.closed
    with open(path, "rb") as fh:
        assert nwb.inspect(fh)["n_spikes"] == int(rec.n_spikes.sum())


def test_spike_times_take_two_dataset_reads(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    rec = Recording(make_units_table(40), [np.sort(rng.uniform(0, 10, rng.integers(0, 50))) for _ in range(40)])
    path = nwb.write(rec, tmp_path / "many.nwb")
    calls: dict[str, int] = {}
    original = h5py.Dataset.__getitem__

    def counting(self, args, *more, **kw):
        calls[self.name] = calls.get(self.name, 0) + 1
        return original(self, args, *more, **kw)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    back = nwb.read(path)
    assert calls["/units/spike_times"] == 1 and calls["/units/spike_times_index"] == 1
    calls.clear()
    summary = nwb.inspect(path)
    assert calls["/units/spike_times"] == 1 and calls["/units/spike_times_index"] == 1
    monkeypatch.undo()
    assert rec.equals(back) and summary["n_spikes"] == int(rec.n_spikes.sum())


# ---------------------------------------------------------------------------- edge cases of real files
@pytest.mark.parametrize("plain_table", [False, True])
def test_units_outside_units_are_read_with_warning(tmp_path, plain_table):
    spikes = [[0.1, 0.2], [0.5], []]
    path = B.units_outside_file(tmp_path / "outside.nwb", spikes, plain_table=plain_table)
    with pytest.warns(nwb.NWBReadWarning, match="processing/ecephys/sorted_units"):
        rec = nwb.read(path)
    assert rec.n_units == 3 and rec.n_spikes.tolist() == [2, 1, 0]
    assert rec.meta["units_path"] == "/processing/ecephys/sorted_units"
    s = nwb.inspect(path)
    assert s["n_units"] == 3 and any("sorted_units" in w for w in s["warnings"])
    assert nwb.read(path, units_path="processing/ecephys/sorted_units", warn=False).n_units == 3


def test_no_units_gives_zero_units_and_a_warning(tmp_path):
    path = B.no_units_file(tmp_path / "nounits.nwb")
    with pytest.warns(nwb.NWBReadWarning, match="no Units table"):
        rec = nwb.read(path)
    assert rec.n_units == 0 and len(rec.trials) == 3 and "cursor_pos" in rec.series
    s = nwb.inspect(path)
    assert (s["n_units"], s["n_spikes"], s["n_trials"], s["units_source"]) == (0, 0, 3, "none")
    assert s["duration_s"] == pytest.approx(4.9)  # cursor ends at 49 / 10 Hz


def test_unsorted_spikes_are_sorted_with_warning(tmp_path):
    path = B.unsorted_file(tmp_path / "unsorted.nwb", [[0.3, 0.1, 0.2], [0.5, 0.6], [0.9, 0.4]])
    with pytest.warns(nwb.NWBReadWarning, match=r"2 unit\(s\) were not sorted"):
        rec = nwb.read(path)
    np.testing.assert_array_equal(rec.spike_times[0], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(rec.spike_times[2], [0.4, 0.9])
    assert any("not sorted" in w for w in nwb.inspect(path)["warnings"])


def test_nan_interval_stop_is_kept_and_reported(tmp_path):
    path = B.nan_stop_file(tmp_path / "nan.nwb")
    with pytest.warns(nwb.NWBReadWarning, match="stop_time value"):
        rec = nwb.read(path)
    assert np.isnan(rec.trials["stop_s"].iloc[1]) and "reward_time_s" in rec.trials.columns
    assert rec.duration_s == pytest.approx(3.0)
    assert any("NaN" in w for w in nwb.inspect(path)["warnings"])


@pytest.mark.filterwarnings("ignore:no Units table")
def test_event_columns_relative_to_trial_start_are_reported(tmp_path):
    path = B.relative_events_file(tmp_path / "rel.nwb")
    with pytest.warns(nwb.NWBReadWarning, match="'go_cue_time' looks like a duration or a time relative to the interval start"):
        rec = nwb.read(path)
    np.testing.assert_allclose(rec.trials["go_cue_time_s"], 0.5 + 0.1 * np.arange(5))  # kept as stored


@pytest.mark.filterwarnings("ignore:no Units table")
def test_series_selection_and_size_limit(tmp_path):
    path = B.no_units_file(tmp_path / "series.nwb")  # holds a 50 x 2 cursor
    with pytest.warns(nwb.NWBReadWarning, match="did not load 1 large"):
        rec = nwb.read(path, max_series_elements=10)
    assert rec.series == {} and rec.meta["skipped_series"] == ["/processing/behavior/cursor_pos"]
    rec = nwb.read(path, series=["cursor_pos"], max_series_elements=10, warn=False)
    assert rec.series["cursor_pos"].values.shape == (50, 2)
    np.testing.assert_allclose(rec.series["cursor_pos"].t_s, np.arange(50) / 10.0)
    assert nwb.read(path, series=False, warn=False).series == {}


def test_timezone_less_and_anonymised_dates(tmp_path):
    path = B.realistic_file(tmp_path / "naive.nwb")
    B.set_session_start(path, "2019-03-04T05:06:07")
    with pytest.warns(nwb.NWBReadWarning, match="no timezone"):
        rec = nwb.read(path)
    assert rec.meta["session_start_time"] == "2019-03-04T05:06:07"
    B.set_session_start(path, "1900-01-01T00:00:00Z")
    s = nwb.inspect(path)
    assert any("anonymised" in w for w in s["warnings"]) and s["session_start_time"].startswith("1900")


def test_binned_counts_become_approximate_spike_times(tmp_path):
    rng = np.random.default_rng(5)
    counts = rng.poisson(1.5, size=(40, 3)).astype(np.int32)
    counts[:, 2] = 0
    path = B.binned_file(tmp_path / "binned.nwb", counts, rate_hz=10.0)
    with pytest.warns(nwb.NWBReadWarning, match="binned spike counts.*approximate"):
        rec = nwb.read(path)
    assert rec.n_units == 3 and rec.meta["spike_times_approximate"] is True
    assert rec.meta["bin_width_s"] == pytest.approx(0.1)
    np.testing.assert_array_equal(rec.n_spikes, counts.sum(axis=0))
    # re-binning the approximate spike times gives back the counts exactly
    edges = np.arange(41) * 0.1
    for u in range(3):
        np.testing.assert_array_equal(np.histogram(rec.spike_times[u], edges)[0], counts[:, u])
    s = nwb.inspect(path)
    assert (s["units_source"], s["n_units"], s["n_spikes"]) == ("binned", 3, int(counts.sum()))


def test_counts_to_spike_times_placement():
    trains, width = counts_to_spike_times(np.array([0.0, 1.0, 2.0]), np.array([[2], [0], [1]]), "x")
    assert width == 1.0
    np.testing.assert_allclose(trains[0], [0.25, 0.75, 2.5])
    with pytest.raises(nwb.NWBFormatError, match="not spike counts"):
        counts_to_spike_times(np.array([0.0, 1.0]), np.array([[0.5], [1.0]]), "rates")


def test_realistic_file_columns(tmp_path):
    path = B.realistic_file(tmp_path / "maze.nwb")
    with warnings.catch_warnings():
        warnings.simplefilter("error", nwb.NWBReadWarning)
        rec = nwb.read(path)
    assert rec.n_spikes.tolist() == [3, 1]
    assert rec.units["heldout"].dtype == bool and rec.units["electrode_group_name"].tolist() == ["M1", "M1"]
    assert rec.meta["resolution_s"] is None  # missing resolution is fine
    assert list(rec.trials.columns[:2]) == ["start_s", "stop_s"] and "go_cue_time_s" in rec.trials
    np.testing.assert_array_equal(rec.trials["target_pos"].iloc[2], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(rec.trials["hand_start"].iloc[1], [0.0, 1.0])
    assert rec.meta["subject"]["species"] == "Macaca mulatta"
    s = nwb.inspect(path)
    assert s["has_obs_intervals"] and s["units"][0]["n_spikes"] == 3 and s["n_trials"] == 3
    assert rec.control_units().size == 0
    assert nwb.read(path, control_units=[1]).control_units().tolist() == [1]
    with pytest.raises(KeyError, match="not in the file"):
        nwb.read(path, control_units=[7])


# ---------------------------------------------------------------------------- files that are not NWB
BAD_KINDS = ["missing", "text", "empty", "plain_hdf5", "truncated", "corrupt", "corrupt_inner", "url"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_unreadable_inputs_give_one_clear_error(tmp_path, sim_file, kind):
    path = bad_file(tmp_path, kind, sim_file[1])
    error = FileNotFoundError if kind == "missing" else nwb.NWBFormatError
    with pytest.raises(error) as info:
        nwb.read(path, warn=False)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    with pytest.raises(error):
        nwb.inspect(path)


def bad_file(tmp_path, kind, good):
    """Files (or names) that are not readable NWB: shared with the CLI tests."""
    path = tmp_path / f"{kind}.nwb"
    if kind == "text":
        path.write_text("session,unit\n1,2\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain_hdf5":
        B.plain_hdf5_file(path)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "corrupt":
        data = bytearray(good.read_bytes())
        data[8:4096] = b"\xa5" * (4096 - 8)  # keep the HDF5 signature, destroy the superblock and headers
        path.write_bytes(bytes(data))
    elif kind == "corrupt_inner":  # valid HDF5, but the spike index points past the end of the data
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "r+") as f:
            ds = f["units/spike_times_index"]
            ds[...] = np.iinfo(ds.dtype).max
    elif kind == "url":
        return "https://dandiarchive.org/some.nwb"
    return path


# ---------------------------------------------------------------------------- helpers
def test_meta_flatten_round_trip():
    obj = {"a": {"b/c": 1, "~d": [1, 2], "e": {}}, "f": None, "g": "x", "h": {"i": {"j": True}}}
    rows = L.flatten(obj)
    assert all("{" not in v or v == "{}" for _, v in rows)  # no JSON objects in table cells
    assert L.unflatten(rows) == obj


@pytest.mark.parametrize("t", [np.arange(500) * 0.001, 3.0 + np.arange(10) / 7.0, (np.arange(20) + 5) * 0.1,
                               np.arange(100) / 60.0 + 0.25])
def test_regular_clocks_are_exact(t):
    clock = L.find_clock(t, 0.001)
    assert clock is not None
    np.testing.assert_array_equal(L.clock_times(t.size, clock), t)


def test_irregular_times_have_no_clock():
    assert L.find_clock(np.array([0.0, 0.1, 0.25, 0.3])) is None
