"""Which windows an analysis of a real recording uses, and what it says about the file.

A reward series that ends early is not held at its last value; a stray spike time or a long
reward series does not stretch the windows; the reader's repairs (unsorted or NaN timestamps, NaN
samples) are reported in the analysis summary and run.json; and the errors a user meets on an
unusable file, a bad demo duration or a diverging training run are one clear line.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from bci_credit.analysis._causal_data import series_per_window, window_data
from bci_credit.analysis.causal import DesignUnavailable, analyze_recording
from bci_credit.cli import main
from bci_credit.recording import Recording, TimeSeries, make_units_table

from test_nwb_builders import _nwbfile, _save

SPAN_S = 60.0


def _spikes(seed: int = 0, n_units: int = 3, span: float = SPAN_S) -> list:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.uniform(0.0, span, size=int(rng.integers(400, 700)))) for _ in range(n_units)]


def _reward(seed: int = 1, stop: float = SPAN_S, rate_hz: float = 100.0) -> TimeSeries:
    t = np.linspace(0.0, stop, int(round(stop * rate_hz)) + 1)  # samples at 0 ... stop
    return TimeSeries(t, np.random.default_rng(seed).normal(size=t.size))


def _rec(spikes, reward: TimeSeries) -> Recording:
    return Recording(units=make_units_table(len(spikes)), spike_times=[np.asarray(s) for s in spikes],
                     series={"reward": reward})


def _naive(rec: Recording):
    return analyze_recording(rec, design="naive").primary


def test_a_continuous_series_is_not_held_past_its_last_sample():
    ts = TimeSeries(np.arange(0.0, 10.0, 0.01), np.arange(1000.0))
    start = np.arange(0.0, 20.0, 0.05)
    y = series_per_window(ts, start, start + 0.05)
    inside = start + 0.05 <= 10.0 + 1e-9
    assert np.isfinite(y[inside]).all() and np.isnan(y[~inside]).all()
    np.testing.assert_array_equal(y[inside], np.floor((start[inside] + 0.05) / 0.01 + 1e-6).clip(max=999))


def test_a_reward_series_that_ends_early_limits_the_analysis_to_its_span():
    spikes, reward = _spikes(), _reward(stop=10.0)
    short = _naive(_rec(spikes, reward))
    cut = _naive(_rec([s[s < 10.0] for s in spikes], reward))  # the same data, cut by hand
    assert short.options["n_windows"] == cut.options["n_windows"] == 200
    np.testing.assert_allclose(short.table["estimate"], cut.table["estimate"], rtol=1e-12)
    np.testing.assert_allclose(short.table["se"], cut.table["se"], rtol=1e-12)
    assert any("observed from 0 to 10 s only" in n and "left out" in n for n in short.notes)


def test_a_stray_spike_time_does_not_stretch_the_windows():
    spikes, reward = _spikes(), _reward()
    clean = _naive(_rec(spikes, reward))
    stray = [s.copy() for s in spikes]
    stray[1] = np.append(stray[1], 5000.0)
    with_stray = _naive(_rec(stray, reward))
    assert with_stray.options["n_windows"] == clean.options["n_windows"]
    np.testing.assert_allclose(with_stray.table["estimate"], clean.table["estimate"], rtol=1e-12)
    assert any("1 spike time(s) of 1 unit(s)" in n and "unit 1: 1" in n for n in with_stray.notes)
    assert not any("spike time(s)" in n for n in clean.notes)  # a clean file gets no such note


def test_a_reward_series_longer_than_the_spikes_is_cut_to_the_spikes_span():
    spikes = _spikes()
    long = _naive(_rec(spikes, _reward(stop=600.0)))
    cut = _naive(_rec(spikes, TimeSeries(*(lambda r: (r.t_s[r.t_s < SPAN_S], r.values[r.t_s < SPAN_S]))(
        _reward(stop=600.0)))))
    assert abs(long.options["n_windows"] - cut.options["n_windows"]) <= 1
    assert any("no unit spikes after" in n and "before" not in n for n in long.notes)  # only the end was cut
    wd = window_data(_rec(spikes, _reward(stop=600.0)))
    assert wd.stop_s[-1] <= max(s[-1] for s in spikes) + wd.window_s


def _events(times) -> TimeSeries:
    times = np.sort(np.asarray(times, dtype=float))
    return TimeSeries(times, np.ones(times.size), kind="events")


def test_a_stray_spike_does_not_stretch_the_windows_when_the_outcome_is_reward_events():
    spikes = _spikes()
    rewards = _events(np.random.default_rng(4).uniform(0.5, 59.5, size=80))
    clean = window_data(_rec(spikes, rewards))
    stray = [s.copy() for s in spikes]
    stray[2] = np.append(stray[2], 5000.0)
    wd = window_data(_rec(stray, rewards))
    assert wd.stop_s[-1] < 61.0 and any("lie outside" in n and "unit 2:" in n for n in wd.notes)
    # without the stray spike, a first reward at 3 s and a last at 59 s do not cut the session
    assert clean.n_windows >= int(SPAN_S / 0.05) - 1 and not any("left out" in n for n in clean.notes)
    # with a continuous behaviour series (e.g. the cursor) its span decides, not the first and last reward
    rec = Recording(units=make_units_table(3), spike_times=stray,
                    series={"reward": rewards, "cursor": TimeSeries(np.linspace(0, SPAN_S, 601), np.zeros(601))})
    wd = window_data(rec)
    assert wd.start_s[0] <= 0.05 and 59.9 <= wd.stop_s[-1] <= 60.1


def test_an_all_nan_outcome_series_is_no_outcome():
    t = np.linspace(0, SPAN_S, 601)
    rec = Recording(units=make_units_table(3), spike_times=_spikes(),
                    series={"reward": TimeSeries(t, np.full(t.size, np.nan)), "cursor": TimeSeries(t, np.zeros(t.size))})
    with pytest.raises(DesignUnavailable, match="no finite value in any window.*candidates: series:cursor"):
        analyze_recording(rec, design="naive")


def test_silent_windows_are_cut_at_the_first_spike_exactly():
    spikes = [s[s > 0.5] for s in _spikes()]
    spikes[0] = np.concatenate([[30.0], spikes[0][spikes[0] > 30.0]])
    spikes = [s[s >= 30.0] for s in spikes]  # nobody spikes before 30 s; unit 0 at exactly 30 s (a window edge)
    wd = window_data(_rec(spikes, _reward()))
    assert wd.start_s[0] == pytest.approx(30.0) and wd.counts[0].sum() >= 1
    assert any("no unit spikes before 30 s;" in n for n in wd.notes)


def test_a_proxy_for_every_laid_window_is_cut_with_the_windows():
    from bci_credit.analysis._causal_data import make_windows
    from bci_credit.analysis.causal import FuzzySpikeRD

    spikes = _spikes()
    rec = _rec(spikes, _reward(stop=30.0))
    n_laid = make_windows(rec, 0.05)[0].size
    proxy = np.random.default_rng(5).normal(size=(n_laid, 3))
    res = FuzzySpikeRD(rec, proxy=proxy, cutoff=0.0).fit()
    assert res.options["n_windows"] < n_laid
    with pytest.raises(ValueError, match="the windows analysed"):
        FuzzySpikeRD(rec, proxy=proxy[:-3], cutoff=0.0).fit()


def test_a_threshold_given_with_design_auto_counts_for_the_reward_threshold_design():
    t = np.linspace(0, SPAN_S, 6001)
    dec = TimeSeries(t, np.sin(t))
    rec = Recording(units=make_units_table(3), spike_times=_spikes(), series={"decoder_output": dec})
    with pytest.raises(DesignUnavailable, match="give it: --threshold"):
        analyze_recording(rec)
    assert analyze_recording(rec, threshold=0.5).design == "reward-threshold"


def test_output_subfolders_of_same_named_files_never_collide():
    from bci_credit.cli.analyze import _subdirs

    names = _subdirs(["x/a.nwb", "y/a.nwb", "z/a_2.nwb", "w/a.nwb"])
    assert len(set(names.values())) == 4 and names["x/a.nwb"] == "a"


def test_a_short_silent_edge_is_kept():
    spikes = [s[s > 0.2] for s in _spikes()]  # nobody spikes in the first 0.2 s: normal
    res = _naive(_rec(spikes, _reward()))
    assert res.options["n_windows"] == int(SPAN_S / 0.05) - 1 or res.options["n_windows"] == int(SPAN_S / 0.05)
    assert not any("no unit spikes" in n for n in res.notes)


@pytest.mark.parametrize("t, match", [([0.0, 2.0, 1.0], "non-decreasing"), ([0.0, np.nan, 2.0], "NaN or infinite")])
def test_time_series_times_must_be_sorted_and_finite(t, match):
    with pytest.raises(ValueError, match=match):
        TimeSeries(np.array(t), np.zeros(3))


def _bci_like_file(path: Path, spikes, reward: TimeSeries | None, decoder: TimeSeries | None = None,
                   cursor: bool = False) -> Path:
    """A file as a lab would write it: units, and behaviour series in processing/behavior."""
    from pynwb import TimeSeries as NWBTimeSeries
    from pynwb.behavior import BehavioralTimeSeries

    nwb = _nwbfile()
    for s in spikes:
        nwb.add_unit(spike_times=np.asarray(s))
    mod = nwb.create_processing_module("behavior", "behaviour")
    bts = BehavioralTimeSeries(name="BehavioralTimeSeries")
    for name, ts in (("reward", reward), ("decoder_output", decoder)):
        if ts is not None:
            bts.add_timeseries(NWBTimeSeries(name=name, data=ts.values, timestamps=ts.t_s, unit="a.u."))
    if cursor:
        bts.add_timeseries(NWBTimeSeries(name="cursor", data=np.zeros(100), rate=10.0, unit="m"))
    mod.add(bts)
    return _save(nwb, path)


def test_the_readers_repairs_are_reported_by_analyze(tmp_path, capsys):
    path = _bci_like_file(tmp_path / "lab.nwb", _spikes(), _reward())
    with h5py.File(path, "r+") as f:  # damage it as a faulty acquisition would
        g = f["processing/behavior/BehavioralTimeSeries/reward"]
        t = g["timestamps"][()]
        t[100:110] = t[100:110][::-1]  # ten samples out of order
        g["timestamps"][...] = t
        v = g["data"][()]
        v[500:520] = np.nan
        g["data"][...] = v
    before = path.read_bytes()
    assert main(["analyze", str(path), "--design", "naive", "--no-plots", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert path.read_bytes() == before  # the input file is never modified
    assert "Notes from reading the file:" in printed and "not in increasing order" in printed
    assert "20 of 6001 samples are NaN or infinite" in printed
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "not in increasing order" in summary
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    notes = meta.get("read_notes") or meta["extra"]["read_notes"]
    assert len(notes) == 2


def test_a_file_no_design_can_use_says_what_each_design_lacks(tmp_path, capsys):
    path = _bci_like_file(tmp_path / "noreward.nwb", _spikes(), None, cursor=True)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no design can run on this recording" in err
    for design in ("'spike' needs", "'reward-threshold' needs", "'fuzzy' needs", "'naive' needs"):
        assert design in err
    assert "candidates: series:cursor" in err and not (tmp_path / "out").exists()
    with pytest.raises(DesignUnavailable) as info:
        analyze_recording(Recording(units=make_units_table(2), spike_times=_spikes(n_units=2)))
    assert info.value.design == "auto" and "a reward signal" in str(info.value)


def test_a_bci_credit_file_that_lost_its_units_table_is_named_as_such(tmp_path, capsys):
    from bci_credit.io import nwb

    from test_nwb_builders import sim_recording

    path = tmp_path / "sim.nwb"
    nwb.write(sim_recording(), path)
    with h5py.File(path, "r+") as f:
        del f["units"]
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "the file has no units table (/units), but its weight trace is for 6 unit(s)" in capsys.readouterr().err


def test_analyze_into_a_used_folder_leaves_no_stale_plots(tmp_path):
    path = _bci_like_file(tmp_path / "lab.nwb", _spikes(), _reward())
    out = tmp_path / "out"
    assert main(["analyze", str(path), "--design", "fuzzy", "--out", str(out), "--max-plots", "3"]) == 0
    (out / "plots" / "rd_fuzzy_unit_99.png").write_bytes(b"an old plot")
    assert main(["analyze", str(path), "--design", "fuzzy", "--units", "0", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == ["rd_fuzzy_unit_0.png"]


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "0.1"])
def test_demo_duration_is_checked_before_anything_runs(tmp_path, capsys, value):
    assert main(["demo", f"--duration={value}", "--out", str(tmp_path / "demo")]) == 2
    assert "--duration must be a finite number of seconds, at least 1" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_a_diverging_training_run_is_a_clean_error(tmp_path, capsys):
    pytest.importorskip("torch")
    rc = main(["train", "--model", "mlp", "--method", "fa", "--dataset", "digits", "--epochs", "3", "--lr", "50",
               "--log-every", "10", "--no-progress", "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "the training loss became" in err and "lower the learning rate" in err and "Traceback" not in err


def test_inspect_warns_when_spike_times_reach_beyond_the_behaviour(tmp_path):
    from bci_credit.io import nwb

    spikes = _spikes()
    clean = _bci_like_file(tmp_path / "clean.nwb", spikes, _reward())
    stray = [s.copy() for s in spikes]
    stray[1] = np.append(stray[1], 5000.0)
    path = _bci_like_file(tmp_path / "stray.nwb", stray, _reward())
    assert not any("spike times run" in w for w in nwb.inspect(clean)["warnings"])
    warnings = [w for w in nwb.inspect(path)["warnings"] if "spike times run" in w]
    assert len(warnings) == 1 and "to 5000 s, beyond 0-60 s" in warnings[0]


def test_summary_prints_an_underflowed_p_value_as_a_bound_not_zero():
    from bci_credit.analysis.causal_results import _fmt_p

    assert _fmt_p(0.0, 10).strip() == "<1e-300" and _fmt_p(3e-12, 10).strip() == "3e-12"
    assert _fmt_p(float("nan"), 10).strip() == "-" and _fmt_p(None, 10).strip() == "-"


def test_the_adjusted_naive_fit_shared_by_units_equals_each_units_own_regression():
    """naive-rate-adjusted fits reward on all units' counts once for the units that share windows and
    covariates; each unit's row must equal its own OLS of reward on its count and the others' (HC1)."""
    import statsmodels.api as sm

    from bci_credit.analysis.causal import NaiveComparison

    spikes = _spikes(seed=3, n_units=5)
    spikes[4] = np.array([])  # a silent unit: no estimate, and no column in the others' fits
    rec = _rec(spikes, _reward(seed=4))
    t = NaiveComparison(rec, variants=("naive-rate-adjusted",)).fit().table.set_index("unit")
    wd = window_data(rec)
    y, C = wd.reward, wd.counts.astype(float)
    ok = np.isfinite(y)
    for p in range(4):
        X = np.column_stack([np.ones(y.size), C[:, p], C[:, [j for j in range(4) if j != p]]])
        own = sm.OLS(y[ok], X[ok]).fit(cov_type="HC1")
        assert abs(t.loc[p, "estimate"] - own.params[1]) < 1e-10 * (1 + abs(own.params[1]))
        assert abs(t.loc[p, "se"] - own.bse[1]) < 1e-10 * own.bse[1]
    assert np.isnan(t.loc[4, "estimate"])
