"""Causal designs on spike data (bci_credit.analysis.causal): spike, reward-threshold, fuzzy, naive."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bci_credit.analysis import causal
from bci_credit.analysis.causal import (
    RESULT_COLUMNS,
    CausalResults,
    DesignUnavailable,
    FuzzySpikeRD,
    NaiveComparison,
    RewardThreshold,
    SpikeDiscontinuity,
    WeakFirstStage,
)
from bci_credit.analysis.proxy import glm_drive_proxy, lagged_features, noisy_drive_proxy
from bci_credit.recording import Recording, TimeSeries, make_units_table

COVERAGE_JSON = Path(__file__).resolve().parents[1] / "analysis" / "results" / "causal" / "coverage.json"


# ---------------------------------------------------------------------------- spike-discontinuity RD
def test_spike_design_table_and_truth(small_recording):
    res = SpikeDiscontinuity(small_recording, density=False).fit()
    assert isinstance(res, CausalResults)
    t = res.to_frame()
    assert list(t.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert list(t["unit"]) == [0, 1] and set(t["design"]) == {"spike"}
    assert t["estimate"].notna().all() and t["reason"].isna().all()
    assert (t["ci_lo"] < t["estimate_bc"]).all() and (t["estimate_bc"] < t["ci_hi"]).all()
    assert (t["n_left"] > 0).all() and (t["n_right"] > 0).all() and (t["bandwidth"] > 0).all()
    assert "true_marginal_effect" in t.columns
    # the population RD estimand stored by analysis/causal_coverage.py (40 000 simulated seconds)
    ref = json.loads(COVERAGE_JSON.read_text())["units"]
    for i in range(2):
        truth = ref[str(i)]["truth_realised"]
        z = (t["estimate_bc"][i] - truth) / t["se"][i]
        assert abs(z) < 4.0, (i, t["estimate_bc"][i], truth)
    text = res.summary()
    assert "Estimand" in text and "spike" in text and "assumes" in text


def test_spike_design_matches_rd_fit_many(small_recording):
    """The design is fit_many on (Z - threshold, reward): same numbers."""
    from bci_credit.analysis.rd import fit_recording

    ref = fit_recording(small_recording)
    t = SpikeDiscontinuity(small_recording, density=False).fit().table
    np.testing.assert_allclose(t["estimate"], ref["estimate"], rtol=1e-12)
    np.testing.assert_allclose(t["se"], ref["se_rb"], rtol=1e-12)
    np.testing.assert_allclose(t["ci_lo"], ref["ci_rb_lo"], rtol=1e-12)


def test_spike_design_bad_unit_gets_reason(small_recording):
    """A batch never crashes on one bad unit: NaN threshold and a never-crossing unit get reasons."""
    rec = small_recording
    n = rec.n_units
    units = make_units_table(n + 2, threshold=[1.0] * n + [np.nan, 1.0])
    drive = np.column_stack([rec.drive, rec.drive[:, 0], np.full(len(rec.windows), 0.5)])
    spiked = np.column_stack([rec.spiked, rec.spiked[:, 0], np.zeros(len(rec.windows), bool)])
    bad = dataclasses.replace(rec, units=units, spike_times=rec.spike_times + [rec.spike_times[0], np.array([])],
                              drive=drive, spiked=spiked)
    t = SpikeDiscontinuity(bad, density=False).fit().table
    assert t["estimate"][:n].notna().all()
    assert np.isnan(t["estimate"][n]) and "threshold unknown" in t["reason"][n]
    assert np.isnan(t["estimate"][n + 1]) and isinstance(t["reason"][n + 1], str) and t["reason"][n + 1]


def test_spike_design_needs_drive(small_recording):
    rec = dataclasses.replace(small_recording, drive=None, spiked=None)
    with pytest.raises(DesignUnavailable) as err:
        SpikeDiscontinuity(rec)
    msg = str(err.value)
    assert "drive Z" in msg and "fuzzy" in msg and "naive" in msg
    assert err.value.alternatives == ["fuzzy", "naive"]


def test_fuzzy_when_not_sharp(small_recording):
    """If spikes disagree with Z > threshold the unit is fitted as a fuzzy RD, with its first stage."""
    rec = small_recording
    rng = np.random.default_rng(0)
    spiked = rec.spiked.copy()
    flip = rng.random(spiked.shape) < 0.05
    spiked[flip] = ~spiked[flip]
    t = SpikeDiscontinuity(dataclasses.replace(rec, spiked=spiked), density=False).fit().table
    assert (t["design"] == "spike (fuzzy)").all()
    assert t["first_stage"].between(0.7, 1.0).all()


# ---------------------------------------------------------------------------- naive comparison
def test_naive_comparison(small_recording):
    res = NaiveComparison(small_recording).fit()
    t = res.table
    assert list(t["design"]) == ["naive-od", "naive-rate", "naive-rate-adjusted"] * 2
    assert t["estimate"].notna().all() and (t["se"] > 0).all()
    # observed dependence = difference of mean rewards with / without a spike
    r = small_recording.windows["reward"].to_numpy()
    h = small_recording.spiked[:, 0]
    np.testing.assert_allclose(t["estimate"][0], r[h].mean() - r[~h].mean(), rtol=1e-10)
    assert t["n_right"][0] == h.sum() and t["n_left"][0] == (~h).sum()
    text = res.summary()  # an association is not called an effect
    assert "Units associated with the reward after Holm's correction" in text and "with an effect" not in text


# ---------------------------------------------------------------------------- fuzzy spike RD
def test_fuzzy_glm_proxy_is_refused(small_recording):
    """With 2 units the GLM proxy barely moves spiking at its cutoff: every unit is refused, clearly."""
    res = FuzzySpikeRD(small_recording, density=False).fit()
    t = res.table
    assert t["estimate"].isna().all()
    assert all(isinstance(r, str) and ("first stage" in r) for r in t["reason"])
    assert any("refused" in n for n in res.notes) or all("cannot be estimated" in r for r in t["reason"])
    assert "proxy_deviance_explained" in res.diagnostics


def test_fuzzy_on_spike_times_only(bci_session):
    """A recording without windows or drive (as read from an extracellular NWB file): windows are laid
    over it, reward events are counted per window, the GLM proxy is fitted; the first stage is weak."""
    rec = bci_session[0]
    res = FuzzySpikeRD(rec, reward="reward", window_s=0.05, units=[2, 3], density=False).fit()
    t = res.table
    assert res.options["n_windows"] == 12000 and "events, summed per window" in res.options["reward"]
    assert t["first_stage"].notna().all() and (t["first_stage_f"] < 10).all()
    assert t["estimate"].isna().all() and all(r.startswith("weak first stage") for r in t["reason"])


def test_fuzzy_strict_raises(small_recording):
    rec = small_recording
    rng = np.random.default_rng(1)
    junk = rng.standard_normal(rec.drive.shape)  # a proxy unrelated to spiking
    with pytest.raises(WeakFirstStage, match="first-stage F"):
        FuzzySpikeRD(rec, proxy=junk, cutoff=0.0, density=False, strict=True).fit()


def test_fuzzy_exact_proxy_recovers_sharp(small_recording):
    """Proxy = true drive: first stage is 1 and the estimate is the sharp one within its SE."""
    rec = small_recording
    sharp = SpikeDiscontinuity(rec, density=False).fit().table
    pr = noisy_drive_proxy(rec.drive, 0.0)
    t = FuzzySpikeRD(rec, proxy=pr, cutoff=1.0, density=False).fit().table
    np.testing.assert_allclose(t["first_stage"], 1.0, atol=1e-9)
    assert (t["first_stage_f"] > 1e6).all()
    assert (np.abs(t["estimate"] - sharp["estimate"]) < sharp["se"]).all()


def test_proxy_noise_curve_weakens_first_stage(small_recording):
    df = causal.proxy_noise_curve([small_recording], [0.0, 0.02, 1.0], seed=3)
    assert set(df.columns) >= {"noise_sd", "unit", "estimate", "first_stage", "first_stage_f", "refused", "truth",
                               "recovered"}
    fs = df.groupby("noise_sd")["first_stage"].mean()
    assert fs[0.0] == pytest.approx(1.0) and fs[0.0] > fs[0.02] > fs[1.0]
    assert df[df["noise_sd"] == 1.0]["refused"].all()


def test_glm_proxy_cross_fitted():
    rng = np.random.default_rng(5)
    n = 3000
    drive = rng.standard_normal(n)
    c1 = rng.poisson(np.exp(-0.5 + 0.8 * drive))
    c0 = rng.poisson(np.exp(-1.0 + 0.8 * drive))
    c2 = rng.poisson(0.3, n)
    counts = np.column_stack([c0, c1, c2])
    pr = glm_drive_proxy(counts, lags=(0, 1), n_folds=4)
    assert pr.values.shape == counts.shape and pr.method == "glm"
    assert np.isnan(pr.values[0]).all() and np.isfinite(pr.values[1:]).all()  # lag 1 needs one window of history
    assert pr.deviance_explained[0] > 0.05  # unit 1 carries the shared drive
    assert abs(pr.deviance_explained[2]) < 0.02  # nothing predicts the independent unit
    lf = lagged_features(counts, (0, 2))
    np.testing.assert_array_equal(lf[2:, 3:], counts[:-2])


def test_glm_proxy_progress_bar_shows_the_units_and_changes_nothing(capsys):
    rng = np.random.default_rng(6)
    counts = rng.poisson(0.5, size=(800, 3))
    quiet = glm_drive_proxy(counts, n_folds=3)
    assert "GLM drive proxy" not in capsys.readouterr().err
    shown = glm_drive_proxy(counts, n_folds=3, progress=True)
    err = capsys.readouterr().err
    assert "GLM drive proxy" in err and "3/3" in err
    np.testing.assert_array_equal(quiet.values, shown.values)


# ---------------------------------------------------------------------------- reward-threshold RD
def _ou(rng, n, dt, tau):
    from scipy.signal import lfilter

    a = np.exp(-dt / tau)
    return lfilter([np.sqrt(1 - a * a)], [1, -a], rng.standard_normal(n))


def _poisson_train(rng, rate_hz, dt):
    return (np.flatnonzero(rng.random(rate_hz.size) < rate_hz * dt) + rng.random()) * dt


def bci_recording(seed=0, duration_s=600.0, bump_hz=20.0, bump_s=0.3, refractory_s=1.0, quantile=0.95, tau_s=0.05):
    """A synthetic threshold-BCI session with known reward responses.

    Control unit 0 fires at 10 Hz modulated by a slow latent (shared with unit 1); the decoder is
    its exponentially filtered rate at 60 Hz; reward at upward crossings of the 90th percentile
    (1-s refractory). Unit 2 fires ``bump_hz`` more for ``bump_s`` after each reward; units 1 and 3
    do not respond to reward.
    """
    rng = np.random.default_rng(seed)
    dt = 1e-3
    n = int(duration_s / dt)
    lat = _ou(rng, n, dt, 0.5)
    st0 = _poisson_train(rng, 10.0 * np.exp(0.7 * lat - 0.245), dt)
    units = make_units_table(4, control={0: True})
    base = Recording(units=units.iloc[:1], spike_times=[st0], meta={"duration_s": duration_s})
    dec = causal.reconstruct_decoder(base, 0, tau_s=tau_s, rate_hz=60.0)
    theta = float(np.quantile(dec.values, quantile))
    rewards = causal.threshold_crossings(dec, theta, refractory_s=refractory_s)
    bump = np.zeros(n)
    for r in rewards:
        bump[int(r / dt):int((r + bump_s) / dt)] = bump_hz
    st1 = _poisson_train(rng, 8.0 * np.exp(0.7 * lat - 0.245), dt)
    st2 = _poisson_train(rng, 8.0 + bump, dt)
    st3 = _poisson_train(rng, np.full(n, 8.0), dt)
    series = {"decoder_output": dec,
              "reward": TimeSeries(rewards, np.ones(rewards.size), kind="events", description="reward events")}
    meta = {"duration_s": duration_s, "decoder": {"threshold": theta, "tau_s": tau_s, "control_unit_id": 0},
            "source": "synthetic"}
    rec = Recording(units=units, spike_times=[np.sort(s) for s in (st0, st1, st2, st3)], series=series, meta=meta)
    return rec, rewards, bump


@pytest.fixture(scope="module")
def bci_session():
    return bci_recording(seed=11)


def _paired_truth(model, bump, dt=1e-3):
    """The design's estimand for the responder, from its noise-free rate excess ``bump`` (Hz, 1-ms bins).

    Per epoch, the expected outcome change caused by rewards is the mean excess over the outcome
    window minus that over the baseline window; the estimand is the fuzzy-RD jump of that paired
    outcome at the threshold (it includes rewards that follow near misses: the design's
    intent-to-treat effect). Returns (value, its robust se)."""
    from bci_credit.analysis.rd import RD

    ep = model.epoch_table()
    csum = np.concatenate([[0.0], np.cumsum(bump) * dt])

    def mean_excess(a, b):
        ia = np.clip((a / dt).round().astype(int), 0, bump.size)
        ib = np.clip((b / dt).round().astype(int), 0, bump.size)
        return (csum[ib] - csum[ia]) / (b - a)

    d = (mean_excess(ep["outcome_start_s"].to_numpy(), ep["outcome_stop_s"].to_numpy())
         - mean_excess(ep["baseline_start_s"].to_numpy(), ep["baseline_stop_s"].to_numpy()))
    ok = ep["running"].notna().to_numpy() & ep["inside"].to_numpy()
    res = RD(d[ok], ep["running"].to_numpy()[ok], 0.0, fuzzy=ep["reward"].to_numpy()[ok]).fit()
    return res.tau_bc, res.se_rb


def test_reward_threshold_detects_responder(bci_session):
    rec, rewards, bump = bci_session
    model = RewardThreshold(rec, epoch_s=0.2, horizon_s=0.3, density=False)
    res = model.fit()
    t = res.table.set_index("unit")
    assert res.diagnostics["fuzzy"]  # 1-s refractory: events disagree with x >= 0 in some epochs
    assert (t["first_stage"] > 0.5).all() and (t["first_stage_f"] > 10).all()
    truth, truth_se = _paired_truth(model, bump)
    assert truth > 5  # the responder's reward response survives the near misses' later rewards
    assert t.loc[2, "ci_lo"] > 0
    assert abs(t.loc[2, "estimate_bc"] - truth) < 4 * np.hypot(t.loc[2, "se"], truth_se)
    for u in (0, 1, 3):  # no reward response
        assert abs(t.loc[u, "estimate_bc"]) < 4 * t.loc[u, "se"]
    assert "reward" in res.summary()
    ep = model.epoch_table()
    assert set(ep.columns) >= {"start_s", "stop_s", "running", "reward", "inside"}


def test_reward_threshold_sharp_variants(bci_session):
    rec, rewards, bump = bci_session
    # leaving out the 1-s refractory period after each reward makes the design sharp
    model = RewardThreshold(rec, epoch_s=0.2, horizon_s=0.3, exclude_after_reward_s=1.0, density=False, units=[2, 3])
    res = model.fit()
    t = res.table
    assert not res.diagnostics["fuzzy"] and (t["design"] == "reward-threshold").all()
    truth, truth_se = _paired_truth(model, bump)
    assert t["ci_lo"][0] > 0 and abs(t["estimate_bc"][0] - truth) < 4 * np.hypot(t["se"][0], truth_se)
    # without reward events: sharp on x >= 0 (an intent-to-treat effect, diluted by unrewarded crossings)
    t = RewardThreshold(rec, epoch_s=0.2, horizon_s=0.3, reward="none", density=False, units=[2]).fit().table
    assert t["first_stage"].isna().all() and t["estimate"][0] > 0


def test_reward_threshold_naive_foil_reads_the_named_reward(bci_session):
    """The naive rows beside the reward-threshold design compare spiking with the reward events the user named,
    not with a windows reward column that is something else (here a task cost unrelated to the rewards)."""
    rec, rewards, _ = bci_session
    w0 = np.arange(0.0, 600.0, 0.05)
    cost = np.random.default_rng(3).normal(size=w0.size)
    rec2 = dataclasses.replace(rec, windows=pd.DataFrame({"start_s": w0, "stop_s": w0 + 0.05, "reward": cost}),
                               series={**rec.series, "juice": rec.series["reward"]})
    a = causal.analyze_recording(rec2, "reward-threshold", reward="juice", density=False,
                                 design_options={"epoch_s": 0.2, "horizon_s": 0.3})
    assert a.naive.options["reward"].startswith("series 'juice'")
    listed = a.naive.drivers()
    assert 0 in set(listed[listed["design"] == "naive-od"]["unit"])  # the control unit's spikes raise the decoder


def test_reward_threshold_needs_decoder_and_threshold(small_recording, bci_session):
    with pytest.raises(DesignUnavailable, match="decoder output") as err:
        RewardThreshold(small_recording)
    assert "spike" in err.value.alternatives
    rec = bci_session[0]
    no_thr = dataclasses.replace(rec, meta={"duration_s": 600.0})
    with pytest.raises(DesignUnavailable, match="threshold"):
        RewardThreshold(no_thr)
    RewardThreshold(no_thr, threshold=5.0)  # given explicitly: fine


# ---------------------------------------------------------------------------- whole analyses
def test_analyze_recording_side_by_side(small_recording):
    a = causal.analyze_recording(small_recording, "auto", density=False)
    assert a.design == "spike" and a.naive is not None
    df = a.to_frame()
    assert list(df["design"]) == ["spike", "spike"] + ["naive-od", "naive-rate", "naive-rate-adjusted"] * 2
    text = a.summary()
    assert "naive" in text and "spike" in text
    assert list(a.drivers()["unit"]) == [0, 1]
    assert set(causal.available_designs(small_recording)) == {"spike", "fuzzy", "naive"}


def test_analyze_recording_control_unit_and_unknown_unit(small_recording):
    a = causal.analyze_recording(small_recording, "spike", control_unit="1", naive=False, density=False)
    assert list(a.primary.table["is_control"]) == [False, True]
    with pytest.raises(KeyError, match="unit 7 is not in this recording"):
        causal.analyze_recording(small_recording, "spike", control_unit=7)


def test_no_spikes_message(small_recording):
    rec = dataclasses.replace(small_recording, spike_times=[np.array([]), np.array([])], drive=None, spiked=None)
    for design in ("fuzzy", "naive", "reward-threshold"):
        with pytest.raises(DesignUnavailable) as err:
            causal.analyze_recording(rec, design)
        assert err.value.alternatives == []
        assert "no design can run" in str(err.value)
    with pytest.raises(DesignUnavailable, match="spike times"):
        causal.analyze_recording(rec, "fuzzy")


def test_plots_draw(small_recording, tmp_path):
    a = causal.analyze_recording(small_recording, "spike", density=False)
    written = a.save(tmp_path, plots=True)
    assert (tmp_path / "effects.csv").exists() and (tmp_path / "summary.txt").exists()
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 1000 for p in pngs)
    back = pd.read_csv(tmp_path / "effects.csv")
    assert len(back) == 8 and "density_p" in back.columns
    assert written["effects"] == tmp_path / "effects.csv"


def test_drivers_are_holm_corrected_over_the_units_of_each_variant():
    # the demo listed 4 of 19 units without any effect as causal (uncorrected CIs, p 0.02-0.035)
    from bci_credit.analysis.causal_results import CausalResults

    p = np.array([0.001, 0.02, 0.03, 0.5, 0.004, 0.04])
    ci_lo = np.where(p < 0.05, 0.1, -0.1)
    table = pd.DataFrame({c: np.full(6, np.nan) for c in RESULT_COLUMNS})
    table = table.assign(unit=[0, 1, 2, 3, 0, 1], design=["spike"] * 4 + ["naive-od"] * 2, is_control=False,
                         estimate=[3.0, 2.0, 1.0, 0.1, 2.5, 1.5], ci_lo=ci_lo, ci_hi=ci_lo + 1, pvalue=p)
    res = CausalResults("spike", "jump", (), table)
    # Holm by hand: sorted p times (m - rank), running maximum, capped at 1
    np.testing.assert_allclose(res.table["pvalue_holm"], [0.004, 0.06, 0.06, 0.5, 0.008, 0.04])
    assert list(res.drivers()["estimate"]) == [3.0, 2.5, 1.5]  # spike: unit 0; naive-od: units 0 and 1
    assert list(res.drivers(correction=None)["estimate"]) == [3.0, 2.5, 2.0, 1.5, 1.0]
    text = res.summary()
    assert ("after Holm's correction for the units of each of 2 variants (spike: 4, naive-od: 2) (at most 5% chance "
            "per variant" in text) and "uncorrected; about 0.3 expected by chance" in text
    assert table["pvalue_holm"].isna().all()  # the caller's frame is left as it was
    from statsmodels.stats.multitest import multipletests

    from bci_credit.analysis.causal_results import _holm

    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 50):
        pv = rng.uniform(0, 0.2, m) ** 2
        pv[: m // 3] = pv[0]  # ties
        np.testing.assert_allclose(_holm(pv), multipletests(pv, method="holm")[1], rtol=1e-12)
    one = CausalResults("spike", "jump", (), table[table["design"] == "spike"])
    assert "after Holm's correction for 4 tests (at most 5% chance of listing" in one.summary()
    part = table[table["design"] == "spike"].copy()
    part.loc[3, "pvalue"] = np.nan  # a unit without an estimate is not among the tests, and the line says so
    assert ("after Holm's correction for 3 tests (1 row(s) without a p-value are not tested: 3; see their reason)"
            in CausalResults("spike", "jump", (), part).summary())
    with pytest.raises(ValueError, match="correction must be 'holm' or None"):
        res.drivers(correction="bonferroni")
