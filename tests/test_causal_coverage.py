"""Coverage of the spike-discontinuity RD's robust CIs against known truth (quick version).

The full-size number (400 replicates) is produced by ``analysis/causal_coverage.py`` and stored in
``analysis/results/causal/coverage.json``; the module docstring of that script explains which truth
the intervals are judged against (the population RD estimand: the realised effect of a spike at
the margin, pooled over replicates). Here 60 replicates of 100 s, simulated in one batched engine
call, are checked against the stored high-precision estimand.
"""

from __future__ import annotations

import json
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "analysis" / "results" / "causal" / "coverage.json"
N_QUICK = 60


def test_stored_full_size_coverage():
    """The stored 400-replicate run: robust CIs cover the RD estimand in 92-98 %; naive CIs miss it."""
    res = json.loads(STORED.read_text())
    assert res["setting"]["replicates"] >= 400 and res["setting"]["c"] == 0.5
    for u, d in res["units"].items():
        cv = d["coverage_vs_realised_pooled"]
        assert 0.92 <= cv["coverage"] <= 0.98, (u, cv)
        assert d["naive"]["naive-od"]["miss_rate"] > 0.5
        assert d["rd_failed"] == 0


def test_quick_coverage_within_binomial_interval(analysis_script):
    stored = json.loads(STORED.read_text())["units"]
    truth = {int(u): d["truth_realised"] for u, d in stored.items()}
    res = analysis_script("causal_coverage").run_coverage(N_QUICK, truth=truth, seed=7)
    # two-sided 99% acceptance region of the number covered when the true coverage is 0.95
    lo, hi = stats.binom.ppf(0.005, N_QUICK, 0.95), stats.binom.ppf(0.995, N_QUICK, 0.95)
    for u, d in res["units"].items():
        cv = d["coverage_vs_realised_pooled"]
        assert cv["n"] == N_QUICK
        assert lo <= cv["covered"] <= hi, (u, cv, (lo, hi))
        # the naive comparisons miss the estimand in most replicates
        for variant in ("naive-od", "naive-rate", "naive-rate-adjusted"):
            assert d["naive"][variant]["miss_rate"] > 0.5, (u, variant, d["naive"][variant])
