"""Analysing recordings as other labs store them: what is taken for the outcome, where the windows lie.

Cases from a user's pass over NWB files written with pynwb (not by bci_credit): a trials column of
amounts, flags or trial-relative times is not taken for reward times; a reward channel written as
a plain series with one identical sample per delivery is read as events; laid windows sit on the
session's time grid (multiples of the window from time 0), not on the first spike; spike times in
milliseconds are refused; a unit needs enough windows with and without a spike for a naive SE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bci_credit.analysis._causal_data import (DesignUnavailable, event_times_from_trials, make_windows,
                                              reward_candidates, window_data)
from bci_credit.analysis.causal import analyze_recording
from bci_credit.analysis.causal_naive import MIN_WINDOWS
from bci_credit.recording import Recording, TimeSeries, make_units_table

BIN_S = 0.05


def _session(seed=0, T=300.0, n=5, driver=2, offset=0.0166):
    """Poisson units on 50-ms bins from time 0; a spike of ``driver`` in a bin is rewarded with probability
    0.6 (else 0.1) by an event late in the same bin. The first spike comes ``offset`` s into the session.
    True naive contrast of the driver on the session's bins: 0.5."""
    rng = np.random.default_rng(seed)
    nb = int(round(T / BIN_S))
    counts = rng.poisson(10.0 * BIN_S, size=(nb, n))
    spikes = []
    for i in range(n):
        t = np.repeat(np.arange(nb) * BIN_S, counts[:, i]) + rng.uniform(0, BIN_S, counts[:, i].sum())
        spikes.append(np.sort(t[t >= offset]))
    tb = np.arange(nb) * BIN_S
    hit = rng.random(nb) < np.where(counts[:, driver] > 0, 0.6, 0.1)
    return spikes, tb[hit] + 0.9 * BIN_S, counts


def _rec(spikes, series=None, trials=None):
    return Recording(units=make_units_table(len(spikes)), spike_times=spikes, series=series or {}, trials=trials)


def _trials(reward_t, T=300.0, width=3.0):
    starts = np.arange(0.0, T, width)
    return pd.DataFrame({"start_s": starts, "stop_s": starts + width * 0.9})


def test_laid_windows_sit_on_the_session_grid_not_on_the_first_spike():
    spikes, rt, counts = _session()
    rec = _rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")})
    start, stop = make_windows(rec, BIN_S)
    assert start[0] == 0.0 and np.allclose(np.diff(start), BIN_S)
    a = analyze_recording(rec, "naive", units=[2])
    row = a.primary.table.set_index("design").loc["naive-od"]
    h = counts[:, 2] > 0
    assert abs(row["estimate"] - 0.5) < 4 * row["se"]  # starting at the first spike (0.0166 s) gave about 0.39
    # the last window ends by the last spike (299.95 s), the first starts at 0
    assert any("laid over the recording, 0-299.95 s (on whole multiples of 0.05 s from time 0)" in n
               for n in a.primary.notes), a.primary.notes
    assert h.sum() > 0  # the driver spikes


def test_trials_columns_that_are_not_event_times_are_refused():
    spikes, rt, _ = _session()
    tr = _trials(rt)
    idx = np.clip(np.searchsorted(tr["start_s"].to_numpy(), rt, side="right") - 1, 0, len(tr) - 1)
    first = pd.Series(rt).groupby(idx).first()
    tr["reward_time_s"] = np.nan
    tr.loc[first.index, "reward_time_s"] = first.to_numpy()  # session times of the first reward of a trial
    tr["reward_ml"] = np.where(np.isfinite(tr["reward_time_s"]), 0.1, 0.0)
    tr["success"] = np.isfinite(tr["reward_time_s"])
    tr["relative_time_s"] = tr["reward_time_s"] - tr["start_s"]
    rec = _rec(spikes, trials=tr)
    ev, why = event_times_from_trials(rec, "reward_time_s")
    assert why is None and ev.size == first.size
    assert reward_candidates(rec) == ["trials:reward_time_s"]  # the relative column is not offered
    with pytest.raises(ValueError, match=r"trials\['success'\] holds True/False, not event times"):
        analyze_recording(rec, "naive", reward="success")
    with pytest.raises(ValueError, match=r"trials\['reward_ml'\] does not hold event times: only \d+ of \d+ values "
                                         r"lie inside their trial; they look like amounts"):
        analyze_recording(rec, "naive", reward="reward_ml")
    with pytest.raises(ValueError, match=r"name the outcome relative:relative_time_s \(the trials' start_s is added\)"):
        analyze_recording(rec, "naive", reward="relative_time_s")
    # ... which gives the same analysis as the session times
    rel_t = analyze_recording(rec, "naive", reward="relative:relative_time_s")
    same = analyze_recording(rec, "naive", reward="reward_time_s")
    assert rel_t.primary.options["reward"] == ("trials['relative_time_s'] + the trial's start_s (reward events counted "
                                               "per window)")
    np.testing.assert_allclose(rel_t.primary.table["estimate"], same.primary.table["estimate"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"holds session times already \(they lie inside their trials\): name it "
                                         r"without relative:, as reward_time_s"):
        analyze_recording(rec, "naive", reward="relative:reward_time_s")  # session times are not relative
    # a trial without a start gives its events no session time: they are left out and counted
    tr_ns = tr.copy()
    tr_ns.loc[int(np.flatnonzero(np.isfinite(tr["relative_time_s"]))[0]), "start_s"] = np.nan
    got = analyze_recording(_rec(spikes, trials=tr_ns), "naive", reward="relative:relative_time_s")
    assert got.primary.options["reward"].endswith("; 1 event(s) of trials without a start_s left out)")
    # the default outcome (trials' reward_time_s) is refused the same way when it is trial-relative
    rel = _rec(spikes, trials=tr.drop(columns="reward_time_s").rename(columns={"relative_time_s": "reward_time_s"}))
    with pytest.raises(DesignUnavailable, match="does not hold event times"):
        analyze_recording(rel, "naive")
    assert analyze_recording(rec, "naive", reward="reward_time_s").primary.options["n_windows"] == 5999


def test_a_plain_series_with_one_sample_per_delivery_is_read_as_events():
    spikes, rt, _ = _session()
    plain = analyze_recording(_rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size))}), "naive", units=[2])
    events = analyze_recording(_rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")}), "naive",
                               units=[2])
    pd.testing.assert_frame_equal(plain.primary.table, events.primary.table)
    assert "read as events" in plain.primary.options["reward"]
    # a signal on a regular clock stays a signal, even when it never changes: nothing to estimate
    t = np.arange(0, 300.0, 0.01)
    flat = analyze_recording(_rec(spikes, {"reward": TimeSeries(t, np.ones(t.size))}), "naive")
    assert flat.primary.table["estimate"].isna().all()
    assert (flat.primary.table["reason"] == "the reward is the same (1) in every analysed window").all()


def test_spike_times_in_milliseconds_are_refused():
    spikes, rt, _ = _session()
    rec = _rec([s * 1000.0 for s in spikes], {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")})
    with pytest.raises(ValueError, match=r"times longer: are the spike times in milliseconds\? Give them in seconds"):
        analyze_recording(rec, "naive")
    with pytest.raises(ValueError, match="milliseconds"):
        window_data(rec)


def test_a_unit_with_few_spiking_windows_gets_no_naive_estimate():
    spikes, rt, _ = _session()
    spikes[4] = spikes[4][:MIN_WINDOWS - 1]  # spikes in at most 9 windows
    a = analyze_recording(_rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")}), "naive")
    t = a.primary.table
    few = t[t["unit"] == 4]
    assert few["estimate"].isna().all() and few["reason"].str.contains(f"at least {MIN_WINDOWS} of each").all()
    assert t[t["unit"] != 4]["estimate"].notna().all()


def test_windows_outside_a_units_obs_intervals_are_left_out_of_its_estimates():
    """A unit sorted for the first half only (obs_intervals [[0, 150]]) while rewards go on: counting its
    unsorted half as silent windows dilutes its contrast (about 0.3 here); leaving them out recovers 0.5."""
    spikes, rt, _ = _session()
    spikes[2] = spikes[2][spikes[2] < 150.0]
    events = {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")}
    lost = _rec(spikes, events)
    blind = analyze_recording(lost, "naive", units=[2]).primary.table.set_index("design")
    lost.units["obs_intervals"] = [np.zeros((0, 2))] * 2 + [np.array([[0.0, 150.0]])] + [np.zeros((0, 2))] * 2
    a = analyze_recording(lost, "naive")
    t = a.primary.table.set_index(["unit", "design"])
    od = t.loc[(2, "naive-od")]
    assert abs(od["estimate"] - 0.5) < 4 * od["se"] and od["n_left"] + od["n_right"] == 3000
    assert blind.loc["naive-od", "estimate"] < od["estimate"] - 6 * od["se"]
    # the other units' adjusted fits keep unit 2 as a covariate, on the windows where it was observed (dropping
    # it would leave its confounding in: the driver's reward would load on the units that share its input)
    assert t.loc[(0, "naive-rate-adjusted"), "n_left"] + t.loc[(0, "naive-rate-adjusted"), "n_right"] == 3000
    assert t.loc[(0, "naive-od"), "n_left"] + t.loc[(0, "naive-od"), "n_right"] == a.primary.options["n_windows"]
    d = a.primary.drivers()
    assert d[d["design"] == "naive-rate-adjusted"]["unit"].tolist() == [2]  # the half-sorted driver stays a covariate
    assert any(n.startswith("obs_intervals: 1 unit(s) were not observed over all the windows (unit 2: 50%")
               for n in a.primary.notes)
    assert any(n.startswith("obs_intervals: naive-rate-adjusted uses, for each unit, the windows where it and its "
                            "covariate units") and "without" not in n for n in a.primary.notes)


def test_units_csv_writes_obs_intervals_one_line_per_unit(tmp_path):
    from bci_credit.report import write_session_outputs

    units = make_units_table(2)
    units["obs_intervals"] = [np.array([[0.0, 5.0], [6.0, 9.5]]), np.zeros((0, 2))]
    rec = Recording(units=units, spike_times=[np.array([1.0]), np.array([2.0])])
    write_session_outputs(rec, tmp_path, nwb=False, figure=False)
    assert (tmp_path / "units.csv").read_text().splitlines()[1:] == ["0,False,,0-5;6-9.5", "1,False,,"]


def test_the_one_reward_event_series_is_the_default_outcome():
    """A pynwb 4 EventsTable named e.g. 'reward_events' is read as an events series; with no 'reward' series it
    is the default outcome when it is the only events series named like a reward (two are ambiguous)."""
    spikes, rt, _ = _session()
    ev = TimeSeries(rt, np.ones(rt.size), kind="events")
    a = analyze_recording(_rec(spikes, {"reward_events": ev}), "naive", units=[2])
    assert a.primary.options["reward"].startswith("series 'reward_events' (events, summed per window) (the recording's")
    od = a.primary.table.set_index("design").loc["naive-od"]
    assert abs(od["estimate"] - 0.5) < 4 * od["se"]
    with pytest.raises(DesignUnavailable, match="no reward signal"):
        analyze_recording(_rec(spikes, {"reward_events": ev, "juice_reward": ev}), "naive")
    # a cue or an omission is not a delivery: not taken for the reward
    with pytest.raises(DesignUnavailable, match="no reward signal"):
        analyze_recording(_rec(spikes, {"reward_cue": ev, "unrewarded": ev}), "naive")


def test_reward_lag_takes_each_windows_outcome_later():
    """Reward delivered one bin (plus 40 ms) after the bin whose spike earned it: without a lag the driver's
    contrast is about 0 (its next bin's spiking is independent); with reward_lag_s = 0.05 it is 0.5."""
    spikes, rt, _ = _session()
    ev = {"reward": TimeSeries(rt + BIN_S, np.ones(rt.size), kind="events")}
    rec = _rec(spikes, ev)
    none = analyze_recording(rec, "naive", units=[2]).primary.table.set_index("design").loc["naive-od"]
    a = analyze_recording(rec, "naive", units=[2], reward_lag_s=BIN_S)
    lag = a.primary.table.set_index("design").loc["naive-od"]
    assert abs(none["estimate"]) < 4 * none["se"] and abs(lag["estimate"] - 0.5) < 4 * lag["se"]
    assert a.primary.options["reward"].endswith("lagged by 0.05 s")
    assert any(n.startswith("outcome: each window's outcome is taken 0.05 s later") for n in a.primary.notes)
    # with blocks laid over epochs the lag is applied once, when the windows are laid
    rec.epochs = pd.DataFrame({"start_s": [0.0, 150.0], "stop_s": [150.0, 300.0], "tags": [["a"], ["b"]]})
    b = analyze_recording(rec, "naive", units=[2], blocks="a", reward_lag_s=BIN_S).primary.table
    b = b.set_index("design").loc["naive-od"]
    assert abs(b["estimate"] - 0.5) < 4 * b["se"] and b["n_left"] + b["n_right"] == 3000
    with pytest.raises(ValueError, match="must be a finite number of seconds"):
        analyze_recording(rec, "naive", reward_lag_s=float("nan"))
    w = pd.DataFrame({"start_s": [0.0, 1.0], "stop_s": [1.0, 2.0], "reward": [0.0, 1.0]})
    with pytest.raises(ValueError, match="cannot be shifted by a reward lag"):
        analyze_recording(Recording(units=make_units_table(5), spike_times=spikes, windows=w, series=ev), "naive",
                          reward="windows:reward", reward_lag_s=0.05)


def test_events_prefix_reads_a_series_of_amounts_as_deliveries():
    """Reward volumes at delivery times stored as a plain series: held between samples they are a step signal;
    'events:NAME' sums them per window."""
    spikes, rt, _ = _session()
    vol = np.where(np.arange(rt.size) % 2, 0.1, 0.2)
    rec = _rec(spikes, {"pump": TimeSeries(rt, vol)})
    a = analyze_recording(rec, "naive", units=[2], reward="events:pump")
    assert a.primary.options["reward"] == "series 'pump' (read as events: amounts summed per window)"
    od = a.primary.table.set_index("design").loc["naive-od"]
    assert abs(od["estimate"] - 0.5 * vol.mean()) < 4 * od["se"]
    with pytest.raises(ValueError, match="no series 'nope'; series: pump"):
        analyze_recording(rec, "naive", reward="events:nope")


def test_block_names_match_ignoring_case_and_spaces_and_split_on_commas():
    spikes, rt, _ = _session()
    rec = _rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")})
    rec.epochs = pd.DataFrame({"start_s": [0.0, 100.0, 200.0], "stop_s": [100.0, 200.0, 300.0],
                               "tags": [["Baseline"], [" conditioning "], ["Extinction"]]})
    one = analyze_recording(rec, "naive", blocks="CONDITIONING")
    assert one.primary.options["n_windows"] == 2000
    assert "block(s)  conditioning  (from the epochs table)" in next(n for n in one.primary.notes
                                                                    if n.startswith("blocks:"))
    assert analyze_recording(rec, "naive", blocks="baseline,extinction").primary.options["n_windows"] == 4000
    rec.epochs.loc[2, "tags"] = ["baseline"]  # 'Baseline' and 'baseline': only the exact name selects
    with pytest.raises(ValueError, match="'BASELINE'; this recording's blocks are"):
        analyze_recording(rec, "naive", blocks="BASELINE")


def test_recheck_cases_span_names_nan_trials_lag_bounds_and_channels():
    spikes, rt, _ = _session()
    cond = rt[(rt >= 100) & (rt < 200)]  # rewards in the middle third only
    ev = TimeSeries(cond, np.ones(cond.size), kind="events")
    # the epochs span the session's behaviour: windows without reward around the rewarded block are kept
    bare = analyze_recording(_rec(spikes, {"reward": ev}), "naive", naive=False)
    rec = _rec(spikes, {"reward": ev})
    rec.epochs = pd.DataFrame({"start_s": [0.0, 100.0, 200.0], "stop_s": [100.0, 200.0, 300.0],
                               "tags": [["a"], ["b"], ["c"]]})
    assert bare.primary.options["n_windows"] < 2100  # only the events' own span, without anything else to go by
    assert analyze_recording(rec, "naive", naive=False).primary.options["n_windows"] == 6000

    # trials: the file's column name (reward_time) finds reward_time_s; all-NaN is said in one line
    tr = _trials(rt)
    tr["reward_time_s"] = np.nan
    with pytest.raises(ValueError, match=r"trials\['reward_time_s'\] has no event time in any of the 100 trials"):
        analyze_recording(_rec(spikes, trials=tr), "naive", reward="reward_time")
    with pytest.raises(DesignUnavailable, match="has no event time in any of the 100 trials"):
        analyze_recording(_rec(spikes, trials=tr), "naive")

    # a lag beyond the recording is refused; windows whose lagged outcome lies beyond its end are left out
    full = _rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")})
    with pytest.raises(ValueError, match="moves every window's outcome outside the recording"):
        analyze_recording(full, "naive", reward_lag_s=-1000.0)
    a = analyze_recording(full, "naive", units=[2], reward_lag_s=1.0)
    assert a.primary.options["n_windows"] == 5999 - 20
    assert any("the 20 windows whose lagged outcome falls outside the recording" in n for n in a.primary.notes)
    neg = analyze_recording(full, "naive", units=[2], reward_lag_s=-0.05)
    assert any("placebo" in n for n in neg.primary.notes)

    # a two-channel series: channel 0 by default, said; another by NAME[k]
    two = np.column_stack([np.ones(rt.size), np.full(rt.size, 0.1)])
    rec2 = _rec(spikes, {"reward": TimeSeries(rt, two, kind="events")})
    d = analyze_recording(rec2, "naive", units=[2])
    assert d.primary.options["reward"].startswith("series 'reward' channel 0 of 2 (events, summed per window; name "
                                                  "another channel as reward[k])")
    e = analyze_recording(rec2, "naive", units=[2], reward="reward[1]")
    ratio = e.primary.table["estimate"].to_numpy() / d.primary.table["estimate"].to_numpy()
    np.testing.assert_allclose(ratio, 0.1, rtol=1e-9)
    with pytest.raises(ValueError, match=r"has 2 channel\(s\); name one as reward\[0\] ... reward\[1\]"):
        analyze_recording(rec2, "naive", reward="reward[2]")


def test_staggered_obs_intervals_leave_the_adjusted_fits_windows_and_a_flat_unit_no_estimate():
    """Units each lost for a different minute: complete cases over all of them would leave no window, so the
    least observed covariates are dropped until half the unit's windows are left (and named); a unit observed only
    while no reward came has a constant outcome in its windows and gets no estimate (not 0 with SE 0)."""
    spikes, rt, _ = _session()
    rec = _rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")})
    iv = [np.array([[0.0, 60.0 * j], [60.0 * (j + 1), 300.0]]) for j in range(5)]
    rec.units["obs_intervals"] = iv
    t = analyze_recording(rec, "naive").primary
    adj = t.table[t.table["design"] == "naive-rate-adjusted"]
    assert adj["estimate"].notna().all()
    assert any("unit 0 without" in n for n in t.notes)
    late = rt[rt > 150.0]
    rec2 = _rec(spikes, {"reward": TimeSeries(late, np.ones(late.size), kind="events"),
                         "speed": TimeSeries(np.arange(0, 300.0, 0.01), np.random.default_rng(1).normal(size=30000))})
    rec2.units["obs_intervals"] = [np.array([[0.0, 150.0]])] + [np.zeros((0, 2))] * 4
    t2 = analyze_recording(rec2, "naive", units=[0, 1]).primary.table
    u0 = t2[(t2["unit"] == 0) & (t2["design"] != "naive-rate-adjusted")]
    assert u0["estimate"].isna().all() and u0["reason"].str.startswith("the reward is the same (0)").all()
    assert t2[(t2["unit"] == 1) & (t2["design"] != "naive-rate-adjusted")]["estimate"].notna().all()


def test_review_cases_auto_with_lag_threshold_channel_and_reward_threshold_prefixes():
    """auto with a reward lag keeps to the designs that read windows; a threshold refused for a named fuzzy or
    naive design, and noted as unused when auto settles on one; NAME[k] reads the series even when a windows column has that name; the reward-threshold design
    takes series:/events:/trials: prefixes."""
    from test_causal_designs import bci_recording

    rec = bci_recording(seed=11, duration_s=60.0)[0]
    nodrive = Recording(units=rec.units, spike_times=rec.spike_times, windows=rec.windows, trials=rec.trials,
                        series=rec.series, meta=rec.meta)
    a = analyze_recording(nodrive, "auto", reward_lag_s=0.02, naive=False, density=False)
    assert a.design in ("fuzzy", "naive")
    assert not any("unused" in n for n in a.primary.notes)
    a = analyze_recording(nodrive, "auto", reward_lag_s=0.02, threshold=5.0, naive=False, density=False)
    assert any(n.startswith(f"threshold 5 (--threshold) unused: the auto design settled on {a.design}")
               for n in a.primary.notes)  # said, not silently dropped
    with pytest.raises(ValueError, match="the naive design does not use it"):
        analyze_recording(nodrive, "naive", threshold=5.0)
    r = analyze_recording(rec, "reward-threshold", reward="events:reward", density=False, naive=False)
    assert r.primary.table["estimate"].notna().any()
    with pytest.raises(ValueError, match="no series 'nope'"):
        analyze_recording(rec, "reward-threshold", reward="series:nope", density=False)
    spikes, rt, _ = _session()
    w0 = np.arange(0.0, 300.0, 0.5)
    two = Recording(units=make_units_table(len(spikes)), spike_times=spikes,
                    windows=pd.DataFrame({"start_s": w0, "stop_s": w0 + 0.5, "reward": np.zeros(w0.size)}),
                    series={"reward": TimeSeries(rt, np.column_stack([np.ones(rt.size)] * 2), kind="events")})
    assert "channel 1 of 2" in analyze_recording(two, "naive", reward="reward[1]").primary.options["reward"]


def test_a_reward_latency_is_hinted_at():
    """Reward one bin after the spike that earned it: the naive comparison's notes suggest the lag; aligned, and
    once the lag is given, they do not."""
    spikes, rt, _ = _session()
    late = _rec(spikes, {"reward": TimeSeries(rt + BIN_S, np.ones(rt.size), kind="events")})
    notes = analyze_recording(late, "naive").primary.notes
    assert any(n.startswith("latency: the outcome goes with the units' spiking most strongly 1 window(s) later")
               and n.endswith("(--reward-lag 0.05)") for n in notes), notes
    for rec, lag in ((_rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")}), 0.0), (late, BIN_S)):
        assert not any(n.startswith("latency:") for n in analyze_recording(rec, "naive", reward_lag_s=lag).primary.notes)


def test_verify_cases_ttl_with_refractory_hint_after_a_lag_and_adjusted_covariates():
    spikes, rt, _ = _session()
    # a TTL channel with a 1-s refractory (gaps 1 s + exponential): deliveries, not a clock
    rng = np.random.default_rng(3)
    ttl = np.cumsum(1.0 + rng.exponential(0.3, 200))
    ttl = ttl[ttl < 300.0]
    a = analyze_recording(_rec(spikes, {"reward": TimeSeries(ttl, np.ones(ttl.size))}), "naive", units=[2])
    assert "read as events" in a.primary.options["reward"] and a.primary.table["estimate"].notna().all()
    # the hint adds to the lag already given, and says nothing after a placebo (negative) lag
    late = _rec(spikes, {"reward": TimeSeries(rt + 2 * BIN_S, np.ones(rt.size), kind="events")})
    notes = analyze_recording(late, "naive", reward_lag_s=BIN_S).primary.notes
    assert any(n.startswith("latency:") and n.endswith("(--reward-lag 0.1)") for n in notes), notes
    aligned = _rec(spikes, {"reward": TimeSeries(rt, np.ones(rt.size), kind="events")})
    assert not any(n.startswith("latency:") for n in analyze_recording(aligned, "naive", reward_lag_s=-BIN_S)
                   .primary.notes)
    # a deterministic reward one window later (no spread within the groups) is hinted at too
    _, _, counts = _session()
    sure = np.flatnonzero(counts[:, 2] > 0) * BIN_S + BIN_S + 0.9 * BIN_S
    det = _rec(spikes, {"reward": TimeSeries(sure, np.ones(sure.size), kind="events")})
    assert any(n.startswith("latency:") for n in analyze_recording(det, "naive").primary.notes)
    # a covariate sorted only while no reward came is dropped from the adjusted fit (named), not kept to leave a
    # constant outcome
    later = rt[rt > 150.0]
    rec = _rec(spikes, {"reward": TimeSeries(later, np.ones(later.size), kind="events"),
                        "speed": TimeSeries(np.arange(0, 300.0, 0.01), np.zeros(30000) + 1.0)})
    rec.units["obs_intervals"] = [np.array([[0.0, 150.0]])] + [np.zeros((0, 2))] * 4
    res = analyze_recording(rec, "naive", units=[1]).primary
    assert res.table["estimate"].notna().all()
    assert any("unit 1 without 0" in n for n in res.notes)


def test_a_hole_in_a_continuous_outcome_is_not_held_at_its_last_value():
    """A signal sampled at 100 Hz with no samples in 100-150 s: the windows in the hole have no outcome (they were
    held at the value before the hole), and a note says how many are left out; a dropped frame is no hole."""
    from bci_credit.analysis._causal_data import series_per_window

    spikes, _, _ = _session()
    t = np.arange(0.0, 300.0, 0.01)
    t = t[(t < 100.0) | (t >= 150.0)]
    sig = TimeSeries(t, np.sin(t))
    y = series_per_window(sig, np.arange(0, 300, 0.05), np.arange(0, 300, 0.05) + 0.05)
    stop = np.arange(0, 300, 0.05) + 0.05
    hole = (stop > 99.99 + 5 * 0.01 + 1e-6) & (stop < 150.0)  # the last sample before the hole is at 99.99 s
    assert np.isnan(y[hole]).all() and np.isfinite(y[~hole & (stop > 0.15)]).all()
    wd = window_data(_rec(spikes, {"reward": sig}))
    assert any("has no value in" in n and "a hole in its timestamps" in n for n in wd.notes)
    dropped = TimeSeries(np.delete(np.arange(0.0, 300.0, 0.01), 5000), np.zeros(29999))
    assert np.isfinite(series_per_window(dropped, np.array([49.9]), np.array([50.02]))).all()
