"""The fused per-unit RD kernel (:mod:`bci_credit.analysis._rd_fast`) equals the general engine.

The fused kernel serves the common design (sharp, no covariates, weights or clusters, vce='nn'); the
general engine (``_rd_engine._run_general``) serves everything and is itself checked against rdrobust
2.1.1 by ``test_rd_reference.py``. The two compute the same quantities with floating-point operations
in a different order, so they agree to rounding error amplified by the conditioning of the bandwidth
selector (a ratio of small differences raised to fractional powers): ``RTOL`` below, about 1e4 times
the float64 resolution and 1e4 times below the rdrobust tolerance of ``test_rd_reference.py``.
Sample counts and failure messages must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

import bci_credit.analysis._rd_engine as E
from bci_credit.analysis.rd import RD, fit_many

RTOL = 1e-8
FIELDS = ("coef", "se", "ci", "pvalues", "h", "b", "bias", "tau_cl_sides", "tau_bc_sides", "beta_p_left",
          "beta_p_right", "V_cl_left", "V_rb_right")


def _data(kind, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(-0.1, 0.5, n)
    if kind == "ties":
        x = np.round(x * 20) / 20
    elif kind == "tails":  # heavy tails: the sort's fallback path
        x = rng.standard_cauchy(n) * 0.2
        x[:3] = [1e6, -3e5, 2e7]
        x[3:50] = np.round(x[3:50], 1)
    y = 0.3 + x - 0.5 * np.clip(x, -2, 2) ** 2 + 0.4 * (x >= 0) + rng.normal(0, 0.3, n)
    if kind == "binary":
        y = (rng.uniform(size=n) < 0.3 + 0.2 * (x >= 0)).astype(float)
    return x, y


def _both(y, x, **kw):
    out = {}
    for fast in (False, True):
        E.USE_FAST = fast
        try:
            out[fast] = RD(y, x, **kw).fit()
        except ValueError as err:
            out[fast] = str(err)
        finally:
            E.USE_FAST = True
    return out[False], out[True]


def _assert_same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for f in FIELDS:
        va, vb = np.asarray(getattr(a, f), float), np.asarray(getattr(b, f), float)
        np.testing.assert_allclose(vb, va, rtol=RTOL, atol=RTOL * np.nanmax(np.abs(va)), err_msg=f)
    for f in ("n", "n_h", "n_b", "n_unique"):
        np.testing.assert_array_equal(getattr(b, f), getattr(a, f), err_msg=f)
    assert a.mass_points == b.mass_points


OPTS = [dict(), dict(kernel="uniform"), dict(kernel="epanechnikov", bwselect="msetwo"), dict(bwselect="msesum"),
        dict(bwselect="msecomb1"), dict(bwselect="cercomb2"), dict(bwselect="certwo"), dict(p=2, deriv=1),
        dict(p=0), dict(p=1, q=3), dict(h=0.4), dict(h=[0.3, 0.4], b=[0.5, 0.6]), dict(h=0.35, rho=0.7),
        dict(masspoints="off"), dict(masspoints="check"), dict(bwcheck=30), dict(nnmatch=5), dict(scaleregul=0),
        dict(bwrestrict=False, scalepar=-2.0, level=90)]


@pytest.mark.parametrize("kind", ["normal", "ties", "binary"])
def test_fused_equals_general(kind):
    x, y = _data(kind, 900, seed=len(kind))
    for kw in OPTS:
        _assert_same(*_both(y, x, **kw))


def test_heavy_tails_sorted_like_numpy():
    """Values crowded into few keys of the linear radix key take the bit-pattern radix sort; -0.0 and
    +0.0 are equal (stable order, as numpy's)."""
    x, y = _data("tails", 900, 6)
    x[10], y[11] = np.nan, np.inf
    keep = np.isfinite(x) & np.isfinite(y)
    # with the bandwidths fixed the fit is well conditioned despite the outliers (the selector is not)
    E.USE_FAST = False
    try:
        ref = RD(y[keep], x[keep], h=0.4, b=0.6).fit()
    finally:
        E.USE_FAST = True
    df = fit_many(x[:, None], y, 0.0, h=0.4, b=0.6)  # the fused kernel drops NaN rows and sorts
    np.testing.assert_allclose(df.loc[0, ["estimate", "tau_bc", "se_cl", "se_rb"]].to_numpy(float),
                               [ref.tau_cl, ref.tau_bc, ref.se_cl, ref.se_rb], rtol=RTOL)
    assert (df.n_h_left[0], df.n_h_right[0]) == tuple(ref.n_h)


def test_fused_equals_general_on_failures():
    x, y = _data("normal", 400, 3)
    cases = [(y, np.full_like(x, 0.3)), (y, np.abs(x) + 0.01), (y, np.where(x < 0, np.round(x), x)),
             (y[:2], x[:2])]
    for yy, xx in cases:
        a, b = _both(yy, xx)
        assert isinstance(a, str) and a == b
    a, b = _both(y, x, cutoff=5.0)
    assert isinstance(a, str) and a == b
    _assert_same(*_both(y[:15], x[:15]))  # fewer than 20 points: h is the range


def test_fit_many_raw_columns_equal_single_fits():
    """The fused kernel reads (observations, units) columns in place, drops NaN rows and sorts."""
    rng = np.random.default_rng(4)
    n, U = 1200, 5
    X = rng.normal(-0.2, 0.6, (n, U))
    Y = 0.2 + 0.5 * (X >= 0) + 0.3 * X + rng.normal(0, 0.5, (n, U))
    X[:40, 1] = np.nan
    Y[100:130, 2] = np.inf
    X[:, 3] = np.round(X[:, 3] * 15) / 15  # mass points
    cut = np.array([0.0, 0.0, 0.1, 0.0, -0.1])
    for Xin in (X, np.asfortranarray(X), X[:, ::-1][:, ::-1]):
        df = fit_many(Xin, Y, cut)
        for j in range(U):
            r = RD(Y[:, j], X[:, j], cut[j]).fit()
            row = df.iloc[j]
            np.testing.assert_allclose([row.estimate, row.se_rb, row.h_left, row.b_right],
                                       [r.tau_cl, r.se_rb, r.h[0], r.b[1]], rtol=1e-10)
            assert (row.n_left, row.n_right) == tuple(r.n)


def test_general_refit_of_flagged_units():
    """Units the kernel flags (an exactly singular pilot fit) are refitted by the general path."""
    x, y = _data("normal", 800, 5)
    X = np.stack([x, x[::-1]], axis=0)
    opt = RD(y, x).options
    out = E.run_fast(X, y[None, :], False, None, np.zeros(2), opt)
    ref = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in out.items()}
    out["coef"][1] = np.nan
    E._refit_general(out, np.array([1]), X, y[None, :], False, None, np.zeros(2), opt, None, None)
    np.testing.assert_allclose(out["coef"], ref["coef"], rtol=RTOL)
    np.testing.assert_array_equal(out["N_h"], ref["N_h"])
