"""BCI metrics (bci_credit.analysis.metrics) on hand-built recordings and arrays."""

import numpy as np
import pandas as pd
import pytest

from bci_credit.analysis import metrics as M
from bci_credit.recording import Recording, TimeSeries, WeightTrace, make_units_table


def _poisson_recording(rates_before, rates_after, *, dur_s=100.0, seed=0, wrist=None, pd_rad=None):
    """Two blocks of Poisson spikes with given rates; optional wrist-tuned rates."""
    rng = np.random.default_rng(seed)
    n = len(rates_before)
    spikes = []
    for j in range(n):
        a = np.sort(rng.uniform(0, dur_s, rng.poisson(rates_before[j] * dur_s)))
        b = np.sort(rng.uniform(dur_s, 2 * dur_s, rng.poisson(rates_after[j] * dur_s)))
        spikes.append(np.concatenate([a, b]))
    starts = np.arange(0, 2 * dur_s, 0.05)
    windows = pd.DataFrame({"start_s": starts, "stop_s": starts + 0.05, "reward": 0.0,
                            "block": np.where(starts < dur_s, "baseline", "conditioning")})
    units = make_units_table(n, control={0: True}, threshold=1.0,
                             preferred_direction_rad=np.zeros(n) if pd_rad is None else pd_rad)
    trials = pd.DataFrame({"start_s": [0.0, 10.0, 100.0, 110.0, 120.0], "stop_s": [10.0, 20.0, 110.0, 112.0, 125.0],
                           "block": ["baseline", "baseline", "conditioning", "conditioning", "conditioning"],
                           "success": [False, True, True, True, False],
                           "reward_time_s": [np.nan, 20.0, 110.0, 112.0, np.nan]})
    series = {} if wrist is None else {"wrist": wrist}
    return Recording(units=units, spike_times=spikes, windows=windows, trials=trials, series=series,
                     weights=WeightTrace([0.0, 200.0], np.vstack([np.full(n, 10.0), np.r_[15.0, np.full(n - 1, 10.5)]])))


def test_rate_change_and_specificity():
    before = np.array([10.0] + [12.0] * 9)
    after = np.array([25.0] + [12.0] * 9)
    rec = _poisson_recording(before, after)
    d = M.rate_change(rec, "baseline", "conditioning")
    # Poisson rate error over 100 s: sd(r_hat) = sqrt(r / 100); propagate to the percent change
    se0 = 100 * np.sqrt(25 / 100 + 10 / 100 * (25 / 10) ** 2) / 10
    assert d[0] == pytest.approx(150.0, abs=4 * se0)
    sp = M.specificity(rec, "baseline", "conditioning")
    assert sp["index_all"] > 5 and sp["control"] == d[0]
    assert len(sp["cotuned_units"]) == 2
    # last 50 s of a block
    t0, t1 = M.period_bounds(rec, ("conditioning", 50.0))
    assert (t0, t1) == pytest.approx((150.0, 200.0))
    with pytest.raises(ValueError, match="not in this recording"):
        M.period_rates(rec, "extinction")


def test_specificity_index_formula():
    nc = np.array([1.0, 2.0, 3.0, 4.0])
    assert M.specificity_index(10.0, nc) == pytest.approx((10 - 2.5) / np.std(nc, ddof=1))
    assert M.specificity_index(10.0, nc[:2], sd_from=nc) == pytest.approx((10 - 1.5) / np.std(nc, ddof=1))
    assert np.isnan(M.specificity_index(1.0, np.array([1.0])))


def test_success_rate_and_misattribution():
    rec = _poisson_recording([10.0, 10.0, 10.0], [10.0, 10.0, 10.0])
    sr = M.success_rate(rec)
    assert sr.loc["baseline", "success_per_trial"] == 0.5 and sr.loc["conditioning", "successes"] == 2
    assert sr.loc["conditioning", "success_per_s"] == pytest.approx(2 / 100.0)
    assert sr.loc["baseline", "rewards_per_s"] == pytest.approx(1 / 100.0)
    assert sr.loc["conditioning", "median_time_to_reward_s"] == pytest.approx(6.0)
    mi = M.misattribution(rec)
    assert mi["dw_control"] == 5.0 and mi["dw_noncontrol_mean"] == 0.5 and mi["leak_ratio"] == pytest.approx(0.1)


def test_mean_ci_and_estimator_error():
    rng = np.random.default_rng(1)
    ci = M.mean_ci(rng.normal(2.0, 1.0, 400))
    assert ci["ci_lo"] < 2.0 < ci["ci_hi"] and ci["n"] == 400
    df = pd.DataFrame({"estimate": np.r_[rng.normal(0.5, 0.1, 200), rng.normal(0.0, 0.1, 200)],
                       "truth": 0.0, "c": np.repeat([0.9, 0.1], 200)})
    err = M.estimator_error(df, by=["c"])
    assert err.loc[0.9, "bias"] == pytest.approx(0.5, abs=4 * 0.1 / np.sqrt(200))
    assert abs(err.loc[0.1, "bias"]) < 4 * err.loc[0.1, "bias_se"]
    assert err.loc[0.9, "rmse"] == pytest.approx(np.sqrt(0.5**2 + 0.01), rel=0.1)
    with pytest.raises(ValueError, match="not in the table"):
        M.estimator_error(df, by=["N"])


def test_tuning_recovers_preferred_direction():
    """Rates driven by a 2-D wrist signal along known directions: OLS recovers them."""
    rng = np.random.default_rng(3)
    dur, dt = 400.0, 1 / 60
    t = np.arange(0, dur, dt)
    w = np.cumsum(rng.normal(0, 0.05, (t.size, 2)), axis=0)
    w = (w - w.mean(0)) / w.std(0) * 0.2
    pdr = np.array([0.3, 2.0, -1.5])
    spikes = []
    for p in pdr:
        rate = np.clip(15 + 40 * (np.cos(p) * w[:, 0] + np.sin(p) * w[:, 1]), 0, None)
        spikes.append(t[rng.random(t.size) < rate * dt])
    windows = pd.DataFrame({"start_s": [0.0], "stop_s": [dur], "reward": [0.0], "block": ["MC1"]})
    rec = Recording(units=make_units_table(3, control={0: True}), spike_times=spikes, windows=windows,
                    series={"wrist": TimeSeries(t, w)})
    tu = M.tuning(rec, "MC1")
    err = np.degrees(np.abs(np.angle(np.exp(1j * (tu["pd_rad"].to_numpy() - pdr)))))
    assert np.all(err < 10) and np.all(tu["r2"] > 0.05)
    tc = M.tuning_change(rec, "MC1", "MC1")
    np.testing.assert_allclose(tc["dpd_deg"], 0.0, atol=1e-9)
    r = M.count_correlation(rec, "MC1")
    assert np.isnan(r[0]) and np.all(np.isfinite(r[1:])) and np.all(np.abs(r[1:]) < 1)
