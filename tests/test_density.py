"""Density (manipulation) test equals rddensity 3.0 on stored reference cases (no GPL import here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bci_credit.analysis.density import RDDensity, _G, _S

RESULTS = Path(__file__).parent / "results"
REF = json.loads((RESULTS / "rd_reference.json").read_text())
RTOL = 1e-6


def _data(name):
    return pd.read_csv(RESULTS / f"rd_data_{name}.csv")


@pytest.mark.parametrize("case", REF["density"], ids=[c["name"] for c in REF["density"]])
def test_matches_rddensity(case):
    exp = case["expected"]
    assert "error" not in exp, exp
    opts = dict(case["opts"])
    cutoff = opts.pop("cutoff", 0.0)
    res = RDDensity(_data(case["data"])[case["x"]].to_numpy(), cutoff, **opts).fit()
    np.testing.assert_allclose(res.h, exp["h"], rtol=RTOL)
    np.testing.assert_array_equal(res.n, exp["n"])
    np.testing.assert_array_equal(res.n_h, exp["n_h"])
    np.testing.assert_allclose([res.f_left, res.f_right, res.diff], exp["hat"], rtol=RTOL)
    key = "jk" if res.vce == "jackknife" else "asy"
    np.testing.assert_allclose([res.se_left, res.se_right, res.se], exp[f"sd_{key}"], rtol=RTOL)
    np.testing.assert_allclose(res.t, exp[f"t_{key}"], rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, exp[f"p_{key}"], rtol=RTOL)


def test_kernel_constants_closed_form():
    # triangular kernel on [0, 1]: S_00 = int (1-u) = 1/2, S_11 = int (1-u) u^2 = 1/12
    S = _S(2, "triangular")
    np.testing.assert_allclose([S[0, 0], S[1, 1], S[2, 2]], [1 / 2, 1 / 12, 1 / 30], rtol=1e-14)
    G = _G(1, "uniform")
    # uniform: G_00 = 2 * int_0^1 int_0^y x (1/4) dx dy = 1/12
    np.testing.assert_allclose(G[0, 0], 1 / 12, rtol=1e-14)
    np.testing.assert_allclose(G, G.T, rtol=1e-12)


def test_no_manipulation_is_not_rejected_too_often():
    # uniform density: the test should reject at 5% in roughly 5% of samples (binomial se ~ 3.4% at 40)
    rng = np.random.default_rng(3)
    rej = [RDDensity(rng.uniform(-1, 1, 800), 0.0).fit().pvalue < 0.05 for _ in range(40)]
    assert np.mean(rej) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 40)


def test_detects_a_density_jump():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-1, 0, 500), rng.uniform(0, 1, 2500)])
    res = RDDensity(x, 0.0).fit()
    assert res.pvalue < 1e-3
    assert res.diff > 0
    assert "Density" in res.summary()
    assert list(res.to_frame().index) == ["density left", "density right", "difference"]


@pytest.mark.parametrize("bad, msg", [
    (dict(x=[]), "empty"),
    (dict(x=np.r_[np.nan, np.nan, 1.0]), "at least two"),
    (dict(x=np.linspace(0, 1, 50), cutoff=2.0), "outside the range"),
    (dict(x=np.linspace(-1, 1, 50), p=9), "p must"),
    (dict(x=np.linspace(-1, 1, 50), kernel="gauss"), "kernel"),
    (dict(x=np.array(["a", "b"])), "numeric"),
])
def test_bad_input(bad, msg):
    kw = dict(bad)
    x = kw.pop("x")
    with pytest.raises(ValueError, match=msg):
        RDDensity(x, **kw).fit()


def test_nan_rows_dropped_with_count():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, 500)
    res_ok = RDDensity(x, 0.0).fit()
    res_nan = RDDensity(np.r_[x, np.nan, np.inf], 0.0).fit()
    assert res_nan.n_dropped == 2
    np.testing.assert_allclose(res_nan.diff, res_ok.diff, rtol=1e-12)
