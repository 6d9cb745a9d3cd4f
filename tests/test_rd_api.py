"""RD model/results API, batch fitting, bad input, statsmodels equivalences, diagnostics and plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bci_credit.analysis.rd import BATCH_COLUMNS, RD, fit_many, fit_recording


def _sim(n=800, seed=0, jump=0.5):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    y = 0.3 + 0.8 * x - 0.4 * x ** 2 + jump * (x >= 0) + rng.normal(0, 0.4, n)
    return x, y


# ----------------------------------------------------------------------------- results object
def test_results_api():
    x, y = _sim()
    res = RD(y, x).fit()
    assert res.tau_cl == res.coef[0] and res.tau_bc == res.coef[1] == res.coef[2]
    assert res.se_cl == res.se[0] == res.se[1] and res.se_rb == res.se[2]
    np.testing.assert_allclose(res.ci_rb, res.coef[2] + np.array([-1, 1]) * 1.959963984540054 * res.se_rb)
    df = res.to_frame()
    assert list(df.index) == ["Conventional", "Bias-corrected", "Robust"]
    assert list(df.columns) == ["coef", "se", "z", "pvalue", "ci_lower", "ci_upper"]
    d = res.to_dict()
    for k in ("tau_cl", "tau_bc", "se_cl", "se_rb", "ci_cl", "ci_rb", "pv_cl", "pv_rb", "h", "b", "n", "n_h",
              "kernel", "bwselect", "vce", "p", "q"):
        assert k in d
    text = res.summary()
    assert "Robust" in text and "Bandwidth h" in text
    assert "RDResults" in repr(res)


def test_robust_ci_covers_true_jump():
    # 40 replications: coverage of the 95% robust CI; binomial se at 40 draws is 3.4 points
    cover = []
    for s in range(40):
        x, y = _sim(n=600, seed=100 + s, jump=0.5)
        cover.append(RD(y, x).fit().ci_rb[0] <= 0.5 <= RD(y, x).fit().ci_rb[1])
    assert np.mean(cover) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 40)


# ----------------------------------------------------------------------------- statsmodels
@pytest.mark.parametrize("vce", ["hc0", "hc2", "hc3", "hc1"])
def test_local_fit_is_statsmodels_wls(vce):
    x, y = _sim(seed=1)
    res = RD(y, x, h=0.5, b=0.4, vce=vce).fit()  # b < h: the estimation sample is the h-window
    for side, beta, V in (("left", res.beta_p_left, res.V_cl_left), ("right", res.beta_p_right, res.V_cl_right)):
        wls = res.local_fit(side)
        np.testing.assert_allclose(wls.params, beta, rtol=1e-10)
        np.testing.assert_allclose(wls.cov_params(), V, rtol=1e-8)


def test_cluster_local_fit_is_statsmodels():
    rng = np.random.default_rng(2)
    g = rng.integers(0, 40, 900)
    x = rng.normal(0, 0.5, 900)
    y = x + 0.3 * (x >= 0) + rng.normal(0, 0.3, 40)[g] + rng.normal(0, 0.3, 900)
    res = RD(y, x, cluster=g, h=0.6, b=0.5).fit()
    for side, V in (("left", res.V_cl_left), ("right", res.V_cl_right)):
        np.testing.assert_allclose(res.local_fit(side).cov_params(), V, rtol=1e-8)


def test_bias_corrected_equals_local_quadratic_when_h_equals_b():
    import statsmodels.api as sm

    x, y = _sim(seed=3)
    h = 0.6
    res = RD(y, x, h=h, vce="hc2").fit()
    m = np.abs(x) <= h
    xc = x[m]
    t = (xc >= 0).astype(float)
    X = np.column_stack([np.ones_like(xc), t, xc, t * xc, xc ** 2, t * xc ** 2])
    w = (1 - np.abs(xc) / h) / h
    fit = sm.WLS(y[m], X, weights=w).fit(cov_type="HC2")
    np.testing.assert_allclose(res.tau_bc, fit.params[1], rtol=1e-9)
    np.testing.assert_allclose(res.se_rb, fit.bse[1], rtol=1e-8)


# ----------------------------------------------------------------------------- bad input
def test_nan_and_inf_rows_dropped_with_count():
    x, y = _sim(seed=4)
    clean = RD(y, x).fit()
    xb = np.r_[x, np.nan, 0.1, np.inf]
    yb = np.r_[y, 1.0, np.nan, 2.0]
    res = RD(yb, xb).fit()
    assert res.n_dropped == 3
    np.testing.assert_allclose(res.coef, clean.coef, rtol=1e-12)


@pytest.mark.parametrize("make, msg", [
    (lambda x, y: (y, np.full_like(x, 0.3)), "constant"),
    (lambda x, y: (y, np.abs(x) + 0.01), "one side"),
    (lambda x, y: (y, x, 5.0), "outside the range"),
    (lambda x, y: (y, np.where(x < 0, np.round(x), x)), "too few distinct values.*below"),
    (lambda x, y: (y, np.array(["a"] * x.size)), "numeric"),
    (lambda x, y: (y[:10], x), "same length"),
    (lambda x, y: ([], []), "empty"),
    (lambda x, y: (np.full_like(y, np.nan), x), "no usable rows"),
])
def test_bad_input_messages(make, msg):
    x, y = _sim(seed=5)
    args = make(x, y)
    with pytest.raises(ValueError, match=msg):
        RD(*args).fit()


def test_bad_options_and_columns():
    x, y = _sim(seed=6)
    df = pd.DataFrame({"x": x, "y": y, "s": ["u"] * x.size})
    with pytest.raises(ValueError, match="not in the data"):
        RD("y", "nope", data=df)
    with pytest.raises(ValueError, match="numeric"):
        RD("s", "x", data=df)
    for kw, msg in ((dict(kernel="gauss"), "kernel"), (dict(bwselect="ik"), "bwselect"), (dict(vce="hc9"), "vce"),
                    (dict(p=1, q=1), "q"), (dict(deriv=3, p=1), "deriv"), (dict(h=-1), "positive"),
                    (dict(b=0.3), "without h"), (dict(weights=-np.ones(x.size)), "non-negative")):
        with pytest.raises(ValueError, match=msg):
            RD(y, x, **kw)


# ----------------------------------------------------------------------------- batches
def _panel(n=1500, units=6, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(-0.2, 0.6, (n, units))
    y = 0.2 + 0.5 * (X[:, 0] >= 0) + 0.3 * X[:, 1] + rng.normal(0, 0.5, n)
    return X, y


@pytest.mark.parametrize("kw", [
    dict(),
    dict(vce="hc1", kernel="uniform"),
    dict(vce="hc3", bwselect="msetwo", p=2),
    dict(h=0.5, b=0.7, vce="nn"),
    dict(bwselect="cercomb2", kernel="epanechnikov"),
])
def test_fit_many_equals_rd(kw):
    X, y = _panel()
    df = fit_many(X, y, 0.0, **kw)
    assert list(df.columns) == list(BATCH_COLUMNS)
    for j in range(X.shape[1]):
        r = RD(y, X[:, j], **kw).fit()
        row = df.iloc[j]
        np.testing.assert_allclose([row.estimate, row.tau_bc, row.se_cl, row.se_rb, row.h_left, row.b_right,
                                    row.ci_rb_lo, row.pv_rb],
                                   [r.tau_cl, r.tau_bc, r.se_cl, r.se_rb, r.h[0], r.b[1], r.ci_rb[0], r.pv_rb],
                                   rtol=1e-10)
        assert row.n_h_left == r.n_h[0] and row.n_h_right == r.n_h[1]


def test_fit_many_designs_weights_clusters_fuzzy_and_cutoffs():
    X, y = _panel(seed=8)
    rng = np.random.default_rng(9)
    n, U = X.shape
    w = rng.uniform(0.5, 2, n)
    w[:20] = 0.0
    g = rng.integers(0, 50, n)
    T = (rng.uniform(size=(n, U)) < np.where(X >= 0, 0.8, 0.2)).astype(float)
    cut = np.linspace(-0.1, 0.1, U)
    yy = y[:, None] + 0.4 * T
    df = fit_many(X, yy, cut, fuzzy=T, weights=w, cluster=g, units=list("abcdef"))
    assert list(df.unit) == list("abcdef")
    for j in range(U):
        r = RD(yy[:, j], X[:, j], cut[j], fuzzy=T[:, j], weights=w, cluster=g).fit()
        np.testing.assert_allclose(df.iloc[j][["estimate", "se_rb", "h_left"]].to_numpy(float),
                                   [r.tau_cl, r.se_rb, r.h[0]], rtol=1e-9)


def test_fit_many_threads_and_covariates():
    X, y = _panel(seed=10, units=5)
    a = fit_many(X, y, n_jobs=1)
    b = fit_many(X, y, n_jobs=2, chunk_size=2)
    pd.testing.assert_frame_equal(a, b)
    z = np.random.default_rng(11).normal(size=X.shape[0])
    c = fit_many(X[:, :2], y + 0.3 * z, covs=z)
    r = RD(y + 0.3 * z, X[:, 1], covs=z).fit()
    np.testing.assert_allclose(c.iloc[1][["estimate", "se_rb"]].to_numpy(float), [r.tau_cl, r.se_rb], rtol=1e-10)


def test_fit_many_bad_units_get_reasons():
    X, y = _panel(seed=12, units=7)
    X[:, 1] = 0.25                       # constant running variable
    X[:, 2] = np.abs(X[:, 2]) + 0.01     # all points above the cutoff
    X[:, 3] = np.where(X[:, 3] < 0, -1.0, X[:, 3])  # a single distinct value below
    X[:50, 4] = np.nan                   # NaN rows: dropped, unit still fine
    cut = np.array([0, 0, 0, 0, 0, 50.0, 0])  # unit 5: cutoff outside its data
    X[:, 6] = np.where(X[:, 6] < 0, X[:, 6], np.nan)  # nothing at/above the cutoff
    df = fit_many(X, y, cut)
    reasons = df.reason.tolist()
    assert reasons[0] is None and reasons[4] is None
    assert "constant" in reasons[1]
    assert "one side" in reasons[2]
    assert "distinct" in reasons[3]
    assert "outside the range" in reasons[5]
    assert "one side" in reasons[6]
    assert df.loc[[1, 2, 3, 5, 6], "estimate"].isna().all()
    assert np.isfinite(df.loc[[0, 4], "estimate"]).all()
    assert df.loc[4, "n_left"] + df.loc[4, "n_right"] == X.shape[0] - 50


def test_fit_many_input_errors():
    X, y = _panel(units=2)
    with pytest.raises(ValueError, match="10 values but x has"):
        fit_many(X, y[:10])
    with pytest.raises(ValueError, match="numeric"):
        fit_many(X.astype(str), y)
    with pytest.raises(ValueError, match="cutoff"):
        fit_many(X, y, cutoff=[0, 0, 0])
    with pytest.raises(ValueError, match="empty"):
        fit_many(np.empty((0, 2)), np.empty(0))


def test_fit_recording():
    from bci_credit.recording import Recording, make_units_table

    X, y = _panel(n=1200, units=3, seed=13)
    units = make_units_table(3, threshold=[0.0, 0.5, np.nan])
    windows = pd.DataFrame({"start_s": np.arange(1200) * 0.1, "stop_s": np.arange(1200) * 0.1 + 0.1, "reward": y})
    rec = Recording(units=units, spike_times=[np.array([0.1])] * 3, windows=windows, drive=X)
    df = fit_recording(rec)
    assert list(df.threshold) == [0.0, 0.5, 1.0]
    r = RD(y, X[:, 1] - 0.5).fit()
    np.testing.assert_allclose(df.iloc[1].estimate, r.tau_cl, rtol=1e-10)
    bare = Recording(units=units, spike_times=[np.array([0.1])] * 3)
    with pytest.raises(ValueError, match="no windows"):
        fit_recording(bare)


# ----------------------------------------------------------------------------- diagnostics, plot
def test_placebo_and_bandwidth_sensitivity():
    from bci_credit.analysis.rd_diagnostics import bandwidth_sensitivity, placebo_cutoffs

    x, y = _sim(n=1500, seed=14)
    pl = placebo_cutoffs(y, x, [-0.5, -0.3, 0.3, 0.5, 0.0, 0.99])
    assert list(pl.side[:4]) == ["below", "below", "above", "above"]
    assert pl.reason.iloc[4] is not None      # the true cutoff is not a placebo
    assert pl.reason.iloc[5] is not None      # too close to the edge: a reason, no crash
    ok = pl.reason.isna()
    assert (pl.loc[ok, "pv_rb"] > 0.001).all()  # no jump at placebo cutoffs
    bs = bandwidth_sensitivity(y, x, factors=(0.5, 1.0, 2.0))
    assert len(bs) == 4 and bs.selected.iloc[0]
    main = RD(y, x).fit()
    np.testing.assert_allclose(bs.estimate.iloc[0], main.tau_cl)
    np.testing.assert_allclose(bs.estimate.iloc[2], bs.estimate.iloc[0], rtol=1e-10)  # factor 1 refit


def test_rd_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bci_credit.plotting.rd import mimicking_variance_bins, rd_bins, rd_plot

    x, y = _sim(n=1000, seed=15)
    jl, jr = mimicking_variance_bins(y, x)
    assert jl >= 1 and jr >= 1
    bins = rd_bins(y, x)
    assert bins.n.sum() == x.size
    fig, ax = plt.subplots()
    out = rd_plot(y, x, ax=ax, ci=True, result=RD(y, x).fit())
    assert out is ax and len(ax.lines) >= 4
    plt.close(fig)
    with pytest.raises(ValueError, match="one side"):
        rd_bins(y, np.abs(x))


def test_placebo_cutoffs_cut_per_row_options_to_each_side():
    from bci_credit.analysis.rd_diagnostics import placebo_cutoffs

    x, y = _sim(n=1500, seed=16)
    rng = np.random.default_rng(3)
    site, age = rng.integers(0, 15, x.size), rng.normal(size=x.size)
    df = pd.DataFrame({"x": x, "y": y, "site": site, "age": age, "w": np.ones(x.size)})
    cuts = [-0.5, 0.5]
    plain = placebo_cutoffs(y, x, cuts)
    by_name = placebo_cutoffs("y", "x", cuts, data=df, cluster="site", covs="age", weights="w")
    by_array = placebo_cutoffs(y, x, cuts, cluster=site, covs=age, weights=np.ones(x.size))
    assert by_name.reason.isna().all()
    pd.testing.assert_frame_equal(by_name, by_array)
    for i, c in enumerate(cuts):   # each placebo equals the fit on its side, options cut alike
        m = x < 0 if c < 0 else x >= 0
        ref = RD(y[m], x[m], c, cluster=site[m], covs=age[m], weights=np.ones(m.sum())).fit()
        np.testing.assert_allclose(by_name.estimate.iloc[i], ref.tau_cl, rtol=1e-12)
    assert not np.allclose(by_name.se_rb, plain.se_rb)


def test_bandwidth_sensitivity_scales_each_side_of_a_two_sided_selector():
    from bci_credit.analysis.rd_diagnostics import bandwidth_sensitivity

    x, y = _sim(n=1500, seed=17)
    bs = bandwidth_sensitivity(y, x, bwselect="msetwo", factors=(0.5, 1.0))
    sel, one = bs.iloc[0], bs.iloc[2]
    assert sel.h_left != sel.h_right
    np.testing.assert_allclose([one.h_left, one.h_right, one.b_left, one.b_right, one.estimate],
                               [sel.h_left, sel.h_right, sel.b_left, sel.b_right, sel.estimate], rtol=1e-10)
    np.testing.assert_allclose([bs.h_left.iloc[1], bs.h_right.iloc[1]], 0.5 * np.array([sel.h_left, sel.h_right]))


def test_pandas_inputs_with_different_indexes_are_refused():
    x, y = _sim(n=400, seed=18)
    df = pd.DataFrame({"x": x, "y": y})
    shuffled = df.sort_values("y")
    with pytest.raises(ValueError, match="different indexes"):
        RD(shuffled.y, df.x)
    np.testing.assert_allclose(RD(shuffled.y, shuffled.x).fit().tau_cl, RD(y, x).fit().tau_cl, rtol=1e-12)


def test_degenerate_inputs_name_their_cause():
    x, y = _sim(n=400, seed=19)
    with pytest.raises(ValueError, match="at least 2 clusters on each side.*found 1 below and 1"):
        RD(y, x, cluster=np.where(x < 0, "a", "b"))
    with pytest.raises(ValueError, match="covariate 'age' has no finite value"):
        RD("y", "x", data=pd.DataFrame({"x": x, "y": y, "age": np.nan}), covs="age")
    with pytest.raises(ValueError, match="deriv must be a non-negative integer"):
        RD(y, x, deriv=-1)
