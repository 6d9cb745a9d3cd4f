"""RD estimates equal rdrobust 2.1.1 on stored reference cases (no GPL import here).

Reference values and data come from ``tests/results/make_rd_reference.py``. Tolerance: rtol 1e-6 on
estimates, standard errors, confidence intervals, p-values and bandwidths (the values are equal up to
floating-point rounding; 1e-6 is far below any statistical resolution), exact equality of the sample
counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bci_credit.analysis.rd import RD

RESULTS = Path(__file__).parent / "results"
REF = json.loads((RESULTS / "rd_reference.json").read_text())
DATA = {name: pd.read_csv(RESULTS / f"rd_data_{name}.csv") for name in ("linear", "curved", "binary", "clustered")}
RTOL = 1e-6


def _fit(case):
    df = DATA[case["data"]]
    opts = dict(case["opts"])
    cutoff = opts.pop("cutoff", 0.0)
    return RD(case["y"], case["x"], cutoff, data=df, **opts).fit()


@pytest.mark.parametrize("case", REF["cases"], ids=[c["name"] for c in REF["cases"]])
def test_matches_rdrobust(case):
    exp = case["expected"]
    res = _fit(case)
    np.testing.assert_allclose(res.h, exp["h"], rtol=RTOL, err_msg="h")
    np.testing.assert_allclose(res.b, exp["b"], rtol=RTOL, err_msg="b")
    np.testing.assert_array_equal(res.n, exp["N"])
    np.testing.assert_array_equal(res.n_h, exp["N_h"])
    np.testing.assert_array_equal(res.n_b, exp["N_b"])
    np.testing.assert_array_equal(res.n_unique, exp["M"])
    np.testing.assert_allclose(res.coef, exp["coef"], rtol=RTOL, err_msg="coef")
    np.testing.assert_allclose(res.se, exp["se"], rtol=RTOL, err_msg="se")
    np.testing.assert_allclose(res.ci, exp["ci"], rtol=RTOL, err_msg="ci")
    np.testing.assert_allclose(res.z, exp["z"], rtol=RTOL, err_msg="z")
    np.testing.assert_allclose(res.pvalues, exp["pv"], rtol=RTOL, atol=1e-300, err_msg="pv")
    np.testing.assert_allclose(res.bias, exp["bias"], rtol=RTOL, atol=1e-12, err_msg="bias")
    np.testing.assert_allclose(res.tau_cl_sides, exp["tau_cl_sides"], rtol=RTOL, err_msg="tau_cl sides")
    np.testing.assert_allclose(res.tau_bc_sides, exp["tau_bc_sides"], rtol=RTOL, err_msg="tau_bc sides")
    np.testing.assert_allclose(res.beta_p_left, exp["beta_p_l"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(res.beta_p_right, exp["beta_p_r"], rtol=RTOL, atol=1e-12)
    if "coef_covs" in exp:
        np.testing.assert_allclose(res.coef_covs, exp["coef_covs"], rtol=RTOL, err_msg="coef_covs")
    if "coef_T" in exp:
        np.testing.assert_allclose(res.first_stage["coef"], exp["coef_T"], rtol=RTOL, err_msg="first stage")
        np.testing.assert_allclose(res.first_stage["se"], exp["se_T"], rtol=RTOL, err_msg="first stage se")
    if "n_clusters" in exp:
        np.testing.assert_array_equal(res.n_clusters, exp["n_clusters"])


def test_reference_covers_every_option():
    names = {c["name"] for c in REF["cases"]}
    opts = [c["opts"] for c in REF["cases"]]
    for bw in ("mserd", "msetwo", "msesum", "msecomb1", "msecomb2", "cerrd", "certwo", "cersum", "cercomb1", "cercomb2"):
        assert any(o.get("bwselect") == bw for o in opts), bw
    for v in ("nn", "hc0", "hc1", "hc2", "hc3"):
        assert any(o.get("vce") == v for o in opts), v
    for k in ("fuzzy", "covs", "cluster", "weights", "deriv", "h", "b", "rho", "masspoints", "kernel"):
        assert any(k in o for o in opts), k
    assert {"linear", "curved", "binary", "clustered"} <= {c["data"] for c in REF["cases"]}
    assert len(names) == len(REF["cases"])
