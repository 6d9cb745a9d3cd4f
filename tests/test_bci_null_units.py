"""Which units the analysis lists in the demo's BCI session, where only the control unit drives reward.

The full-size numbers (200 sessions) are produced by ``analysis/bci_null_units.py`` and stored in
``analysis/results/causal/bci_null_units.json``; here the stored run is checked against the nominal
error rates, and a quick run (3 sessions) checks that the spike RD lists fewer units without an
effect than the naive comparisons that the shared input confounds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "analysis" / "results" / "causal" / "bci_null_units.json"


def test_stored_full_size_error_rates():
    """Spike RD: null z-scores with unit spread (within 10%), a false-positive rate at most 1.5 x nominal and
    Holm's family-wise rate with 5% inside its binomial interval; the unadjusted naive comparisons list
    units without an effect many times more often.

    Measured (200 sessions, seed 2023): 6.1% false positives (SE 0.4% from the spread over sessions), z
    spread 1.05, Holm 15 of 200 sessions (7.5%, interval 4.3-12.1%); naive observed dependence 29.7%.
    The slight excess over 5% is the robust RD interval's finite-sample behaviour with a sparse binary
    outcome (about 28 rewarded windows per side within the bandwidth)."""
    res = json.loads(STORED.read_text())
    assert res["setting"]["replicates"] >= 200
    v = res["variants"]
    fp = v["spike"]["false_positive_uncorrected"]
    assert fp["n"] == 19 * res["setting"]["replicates"] and v["spike"]["failed_fits"] == 0
    assert fp["rate"] < 1.5 * 0.05, fp
    assert 0.9 < v["spike"]["null_z_sd"] < 1.1
    lo, hi = v["spike"]["family_wise_error_holm"]["binomial_95ci"]
    assert lo <= 0.05, v["spike"]["family_wise_error_holm"]
    for naive in ("naive-od", "naive-rate"):
        assert v[naive]["false_positive_uncorrected"]["rate"] > 3 * fp["rate"], naive


def test_stored_error_rates_without_learning_and_with_other_variances():
    """The same 200 sessions with the weights fixed (``--rule none``): the spike RD again near its level,
    observed dependence far from it. In both files the variance refits agree with the analysis as run (the
    nearest-neighbour variance is not why the rate sits above 5%: HC3's SEs are within 1% of it).

    Measured: without learning 5.4% (206/3800), Holm 3.5%, observed dependence 51.1% (Holm 87.5% of
    sessions); HC3 SE / nn 1.002 in both; CR1 over 15-s blocks 5.3% in both (SE / nn 1.04 and 1.02)."""
    fixed = json.loads(STORED.with_name("bci_null_units_no_learning.json").read_text())
    assert fixed["setting"]["rule"] == "none" and fixed["setting"]["replicates"] >= 200
    v = fixed["variants"]
    fp = v["spike"]["false_positive_uncorrected"]
    assert fp["rate"] < 1.5 * 0.05 and v["spike"]["failed_fits"] == 0, fp
    assert v["naive-od"]["false_positive_uncorrected"]["rate"] > 3 * fp["rate"]
    for res in (fixed, json.loads(STORED.read_text())):
        checks = res["spike_variance_checks"]
        assert checks["nn"]["false_positive_uncorrected"] == res["variants"]["spike"]["false_positive_uncorrected"]
        assert abs(checks["hc3"]["null_se_ratio_to_nn"] - 1) < 0.01
        for c in checks.values():
            assert c["failed_fits"] == 0 and c["false_positive_uncorrected"]["rate"] < 1.5 * 0.05, c


def test_stored_control_unit_estimate_matches_the_rd_estimand():
    """The control unit's mean RD estimate agrees with the pooled removal truth (its spikes as they happened in
    windows just above threshold) within 3 combined SEs, and the robust CIs cover it at a rate whose binomial
    interval holds 95%. Measured: 0.0181 (SE 0.0009) against 0.0164 (SE 0.0013), coverage 194 of 200. The
    uniform-insertion truth (0.0246) is another quantity, likely because a spike at a random step has more of
    the window left to earn the reward in than one at the step where the drive reaches threshold, mostly late."""
    res = json.loads(STORED.read_text())
    cv = res["control_coverage_spike"]
    n = res["setting"]["replicates"]
    removal = cv["removal"]
    se = (cv["sd_estimate"] ** 2 / n + removal["pooled_se"] ** 2) ** 0.5
    assert abs(cv["mean_estimate"] - removal["pooled"]) < 3 * se, (cv["mean_estimate"], removal)
    lo, hi = removal["coverage_vs_pooled"]["binomial_95ci"]
    assert lo <= 0.95 <= hi, removal["coverage_vs_pooled"]


def test_quick_spike_rd_lists_fewer_null_units_than_naive(analysis_script):
    res = analysis_script("bci_null_units").run_null_units(3, seed=11)
    v = res["variants"]
    assert res["setting"]["seed"] == 11 and res["setting"]["replicates"] == 3
    spike, od = v["spike"]["false_positive_uncorrected"], v["naive-od"]["false_positive_uncorrected"]
    assert spike["n"] == od["n"] == 3 * 19
    assert v["spike"]["failed_fits"] == 0
    # the shared input (c = 0.3) makes every unit's spiking go with the control unit's reward
    assert od["k"] > 2 * spike["k"], (od, spike)
    assert v["naive-od"]["control_power_uncorrected"]["rate"] == pytest.approx(1.0)
    # the refits with other variance estimators: the first is the analysis as run, bit for bit
    checks = res["spike_variance_checks"]
    assert checks["nn"]["false_positive_uncorrected"] == v["spike"]["false_positive_uncorrected"]
    assert checks["nn"]["null_z_sd"] == v["spike"]["null_z_sd"] and checks["nn"]["null_se_ratio_to_nn"] == 1.0
    assert {c["vce"] for c in checks.values()} == {"nn", "hc3", "cr1"}
    assert all(c["failed_fits"] == 0 and c["false_positive_uncorrected"]["n"] == 3 * 19 for c in checks.values())
