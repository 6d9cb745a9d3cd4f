"""Estimation recipes: Fig. 2, Fig. 3A/B/C, Fig. S2 and Fig. 6 of Lansdell & Kording (``rdd_model.md`` §4.2-4.6).

Each recipe ``name(out_dir, *, quick=False, seed=DEFAULT_SEED, n_jobs=1) -> dict`` simulates with
batched engine calls, writes ``<name>.json`` (numbers, seed, configuration, acceptance checks)
and ``<name>.png`` into ``out_dir``, and returns the JSON content.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.spiking import rdd_constant, rdd_linear
from ..parallel import child_seed
from ..sim.filters import delta_s_theory, output_filter
from ..sim.lif import LIFPopulation
from ..sim.truth import paired_do_effects
from ..tasks.costs import BananaCost, QuadraticCost
from .toolkit import (
    DEFAULT_SEED, angle_deg, check, collect_windows, estimation_params, finish, gradient_estimate, grid_points,
    landscape, learning_params, mean_se, n_windows_of, quantiles, rel_error, round_floats, start,
)
from ._estimate import estimation_batch

__all__ = ["fig2", "fig3a", "figs2", "fig3b", "fig3c", "fig6"]

C_VALUES = (0.01, 0.25, 0.5, 0.75, 0.99)
#: The p grid of Fig. 3A: logspace(-2, 0, 10) (0.0278, 0.0464 and 0.359 are the table's columns).
P_GRID = tuple(float(p) for p in np.logspace(-2, 0, 10))


def _ratio_mean_se(sums, counts, axis: int = 0):
    """Pooled mean ``sum(sums)/sum(counts)`` and its ratio-estimator standard error over ``axis``."""
    sums, counts = np.asarray(sums, float), np.asarray(counts, float)
    tot_n = counts.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = sums.sum(axis=axis) / tot_n
        K = sums.shape[axis]
        resid = sums - np.expand_dims(m, axis) * counts
        se = np.sqrt((resid**2).sum(axis=axis) * K / max(K - 1, 1)) / tot_n
    return m, se


def _z(a, se_a, b, se_b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(a) - np.asarray(b)) / np.hypot(se_a, se_b)


# ------------------------------------------------------------------------------------------ Fig. 3A / S2


def _fig3a_setup(quick: bool) -> dict:
    if quick:
        return dict(c_values=[0.01, 0.5, 0.99], n_runs=8, duration_s=50.0)
    return dict(c_values=list(C_VALUES), n_runs=50, duration_s=100.0)


def _fig3a_run(quick, seed, n_jobs, one_sided):
    size = _fig3a_setup(quick)
    params = estimation_params()
    cost = QuadraticCost()
    config = dict(size, w=[12.0, 9.0], p_grid=list(P_GRID), near_threshold=0.01, params=dataclasses.asdict(params),
                  cost=cost.describe(), estimators="rdd_constant / rdd_linear at each p; OD = constant with p = 1")
    cs = np.repeat(size["c_values"], size["n_runs"])
    data = estimation_batch(np.tile([12.0, 9.0], (cs.size, 1)), cs, params=params, cost=cost,
                            duration_s=size["duration_s"], seed=seed, p_grid=P_GRID, near=0.01, argmax=True,
                            one_sided=one_sided, n_jobs=n_jobs)
    C, K = len(size["c_values"]), size["n_runs"]
    per_c = {k: v.reshape((C, K) + v.shape[1:]) for k, v in data.items()}
    return config, per_c


def _summ(per_c, key):
    x = per_c[key]
    return {"mean": round_floats(np.nanmean(x, axis=1)), "sd": round_floats(np.nanstd(x, axis=1, ddof=1)),
            "se": round_floats(mean_se(x, axis=1)[1])}


def _truths(per_c) -> dict:
    C = per_c["truth_all"].shape[0]
    t_all_m, t_all_se = mean_se(per_c["truth_all"].reshape(-1, 2))
    out = {
        "note": ("paired do(): neuron i's own spikes in a window removed vs one spike inserted; 'all_windows' "
                 "averages over every window with the spike at a uniform random step; the near-threshold "
                 "versions average over windows with |Z - theta| < near_threshold, with the spike at a uniform step "
                 "or at the step where the drive u peaked (argmax, the RD estimand)"),
        "all_windows": {"mean": round_floats(t_all_m), "se": round_floats(t_all_se),
                        "per_c": round_floats(per_c["truth_all"].mean(axis=1))},
    }
    for name, key in (("near_threshold_uniform", "truth_near_uniform_sum"), ("near_threshold_argmax", "truth_near_argmax_sum")):
        m, se = _ratio_mean_se(per_c[key].reshape(-1, 2), per_c["n_near"].reshape(-1, 2))
        pc = np.array([_ratio_mean_se(per_c[key][c], per_c["n_near"][c])[0] for c in range(C)])
        out[name] = {"mean": round_floats(m), "se": round_floats(se), "per_c": round_floats(pc)}
    sp_m, sp_se = mean_se(per_c["sp"].reshape(-1, 2))
    out["spike_perturbation"] = {"mean": round_floats(sp_m), "se": round_floats(sp_se)}
    out["n_near_windows"] = int(per_c["n_near"].sum())
    hist = per_c["argmax_hist"].sum(axis=(0, 1))
    out["argmax_step_distribution_near_threshold"] = round_floats(hist / max(1, hist.sum()), 4)
    return out


def _start_fig3a(name: str, description: str, *, quick: bool, seed: int, n_jobs, one_sided: bool):
    """Run the Fig. 3A simulations (two- or one-sided estimators) and open the recipe's result with
    its configuration, p grid and c values."""
    res = start(name, description, seed=seed, quick=quick, n_jobs=n_jobs, config={})
    config, per_c = _fig3a_run(quick, seed, n_jobs, one_sided=one_sided)
    res["config"] = config
    res["results"]["p_grid"] = round_floats(np.asarray(P_GRID))
    res["results"]["c_values"] = np.asarray(config["c_values"])
    return res, config, per_c


def fig3a(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 3A: estimate of beta_1 against the window half-width p for five noise correlations c.

    w = (12, 9), sigma = 10, 20-ms windows, tau_s = 0.02 s (original kernel), cost
    ``(-30 s1 + 20 s2 + 20 s2^2 - 4)^2``; 50 runs x 100 s per c (quick: 3 c x 8 runs x 50 s).
    Checks rdd_model.md §6 A3 (i)-(v) and compares the RDD estimate with the paired do() truth
    averaged over all windows and over near-threshold windows.
    """
    res, config, per_c = _start_fig3a("fig3a", "beta_1 vs p for 5 values of c (constant/linear RDD, OD, ground truths)",
                                      quick=quick, seed=seed, n_jobs=n_jobs, one_sided=False)
    cv = np.asarray(config["c_values"])
    p = np.asarray(P_GRID)
    out = res["results"]
    for i, name in enumerate(("neuron1", "neuron2")):
        pick = {k: (v[..., i] if v.ndim >= 3 else v) for k, v in per_c.items() if k in ("rdd_constant", "rdd_linear", "od", "od_linear")}
        out[name] = {
            "rdd_constant": _summ(pick, "rdd_constant"),  # (c, p)
            "rdd_linear": _summ(pick, "rdd_linear"),
            "od": _summ(pick, "od"),
            "od_linear": _summ(pick, "od_linear"),
        }
    out["truth"] = _truths(per_c)
    out["rates_hz"] = round_floats(per_c["rate_hz"].mean(axis=(0, 1)))
    out["sharp_design_mismatches"] = int(per_c["sharp_mismatch"].sum())

    acc = res["acceptance"]
    n1, n2 = out["neuron1"], out["neuron2"]
    rc = np.asarray(n1["rdd_constant"]["mean"], float)
    rc_se = np.asarray(n1["rdd_constant"]["se"], float)
    small = p <= 0.05
    spread = rc[:, small].max(axis=0) - rc[:, small].min(axis=0)
    acc["A3_i_rdd_flat_in_c"] = check(
        bool(np.all(spread < 0.3)), {f"p={pp:.4g}": float(s) for pp, s in zip(p[small], spread)},
        "for p <= 0.05 the mean constant-RDD estimate of neuron 1 changes by < 0.3 across c",
        max_se=float(np.nanmax(rc_se[:, small])))
    od1 = np.asarray(n1["od"]["mean"], float)
    od2 = np.asarray(n2["od"]["mean"], float)
    acc["A3_ii_od_decreasing"] = check(bool(np.all(np.diff(od1) < 0)), od1.tolist(),
                                       "OD of neuron 1 decreases monotonically in c")
    ratio = float(od1[-1] / od1[0])
    acc["A3_ii_od_ratio"] = check(
        ratio <= 0.7, ratio, "OD(c=0.99) <= 0.7 * OD(c=0.01) for neuron 1",
        note=("the reference table of rdd_model.md §6 A3 itself gives 4.81 -> 3.56, a ratio of 0.74, so the 0.7 "
              "criterion contradicts its own table; compare the measured values with the table instead "
              "(A3_ii_od_matches_table)") if not quick else "quick run: c grid differs")
    if 0.01 in cv and 0.99 in cv:
        se_od = np.asarray(n1["od"]["se"], float)
        lo, hi = int(np.argmin(np.abs(cv - 0.01))), int(np.argmin(np.abs(cv - 0.99)))
        dev = [float(od1[lo] - 4.81), float(od1[hi] - 3.56)]
        acc["A3_ii_od_matches_table"] = check(
            abs(dev[0]) < 3 * se_od[lo] + 0.02 and abs(dev[1]) < 3 * se_od[hi] + 0.02,
            {"od_c0.01": float(od1[lo]), "od_c0.99": float(od1[hi]), "se": [float(se_od[lo]), float(se_od[hi])]},
            "OD of neuron 1 equals the reference table (4.81 at c=0.01, 3.56 at c=0.99) within 3 SE")
        acc["A3_ii_od2_sign"] = check(bool(od2[hi] > -0.5), float(od2[hi]), "OD of neuron 2 at c=0.99 > -0.5 (truth ~ -3.3)")
    sd = np.asarray(n1["rdd_constant"]["sd"], float).mean(axis=0)
    sd_od = float(np.mean(n1["od"]["sd"]))
    acc["A3_iii_sd_grows_as_p_shrinks"] = check(
        bool(sd[0] > sd[np.argmin(np.abs(p - 0.1))] > sd_od), {"sd_p0.01": float(sd[0]), "sd_p0.1": float(sd[np.argmin(np.abs(p - 0.1))]),
                                                               "sd_od": sd_od, "per_run_s": config["duration_s"]},
        "RDD sd per run grows as p shrinks (reference: ~0.5 at p=0.01, 0.07 at p=1, 100-s runs)")
    k36, k46 = int(np.argmin(np.abs(p - 0.359))), int(np.argmin(np.abs(p - 0.0464)))
    ref_iv = {0.01: 5.14, 0.5: 4.84, 0.99: 4.65}
    idx = [int(np.argmin(np.abs(cv - c))) for c in ref_iv if np.min(np.abs(cv - c)) < 1e-9]
    sub = rc[idx, k36]
    acc["A3_iv_constant_bias_grows_with_p"] = check(
        bool(np.all(rc[:, k36] < rc[:, k46]) and np.all(np.diff(sub) < 0)),
        {"p0.359": rc[:, k36].tolist(), "p0.0464": rc[:, k46].tolist(), "se_p0.359": rc_se[:, k36].tolist()},
        "constant RDD at p = 0.36 is below its p = 0.05 value for every c and falls from c = 0.01 to 0.5 to 0.99 "
        "(reference 5.14 / 4.84 / 4.65)",
        note="with all five c the p = 0.36 values need not be monotone between c = 0.75 and 0.99 (see measured)")
    rl = np.asarray(n1["rdd_linear"]["mean"], float)
    rl_se = np.asarray(n1["rdd_linear"]["se"], float)
    use = p >= 0.027
    ok = (rl[:, use] > 5.4 - 2 * rl_se[:, use]) & (rl[:, use] < 5.7 + 2 * rl_se[:, use])
    bad = [{"c": float(cv[i]), "p": float(p[use][j]), "value": float(rl[:, use][i, j]), "se": float(rl_se[:, use][i, j])}
           for i, j in zip(*np.nonzero(~ok))]
    acc["A3_v_linear_flat"] = check(
        bool(np.all(ok)), {"min": float(rl[:, use].min()), "max": float(rl[:, use].max()), "outside": bad},
        "linear RDD of neuron 1 within 5.4-5.7 (+-2 SE) for 0.0278 <= p <= 1 and every c",
        explanation=("where it fails it is at c = 0.99 and p >= 0.36: with nearly identical noise Z2 ~ (9/12) Z1, so "
                     "neuron 2 starts spiking when Z1 ~ 1.33; windows with Z1 in (1.33, 1 + p) carry neuron 2's "
                     "(negative) effect, bend E[R | Z1] above threshold and tilt the fitted line, whose intercept at "
                     "threshold then rises. Smaller p (or the constant estimator) does not reach the kink."))
    tr = out["truth"]
    ta, ta_se = tr["near_threshold_argmax"]["mean"][0], tr["near_threshold_argmax"]["se"][0]
    tu, tu_se = tr["near_threshold_uniform"]["mean"][0], tr["near_threshold_uniform"]["se"][0]
    t0, t0_se = tr["all_windows"]["mean"][0], tr["all_windows"]["se"][0]
    zs = {}
    for est, pp in (("rdd_constant", 0.01), ("rdd_constant", 0.0278), ("rdd_constant", 0.0464), ("rdd_linear", 0.0464),
                    ("rdd_linear", 0.1292)):
        kk = int(np.argmin(np.abs(p - pp)))
        m, se = (float(v) for v in mean_se(per_c[est][:, :, kk, 0].ravel()))
        zs[f"{est}_p{pp:g}"] = {"rdd": m, "se": se, "z_vs_near_argmax": float(_z(m, se, ta, ta_se)),
                                "z_vs_near_uniform": float(_z(m, se, tu, tu_se)),
                                "z_vs_all_windows": float(_z(m, se, t0, t0_se))}
    unbiased = [k for k in zs if k.startswith("rdd_linear") or k == "rdd_constant_p0.01"]
    acc["A3_rdd_vs_near_threshold_truth"] = check(
        all(abs(zs[k]["z_vs_near_argmax"]) < 2 for k in unbiased), zs,
        "RDD (pooled over c) within 2 SE of the near-threshold paired-do truth with the spike at the drive's peak "
        "(the RD estimand); required of the linear estimator (p = 0.046, 0.13) and the constant one at p = 0.01",
        explanation=("the all-window paired-do truth (~5.16) inserts the spike at a uniform step; a window at the "
                     "margin spikes where its drive peaks, which is late in the window (see "
                     "truth.argmax_step_distribution_near_threshold), so its spike weighs more on the window-end "
                     "output: the near-threshold truth with the spike at the peak (~5.56) is the RD estimand, with a "
                     "uniform spike it is ~5.11. The constant estimator at p = 0.03-0.05 sits about 1 % below it "
                     "(several of its small SEs): its first-order bias p * slope of E[R | Z], which the linear "
                     "estimator removes."))
    acc["A3_sharp_design"] = check(out["sharp_design_mismatches"] == 0, out["sharp_design_mismatches"],
                                   "H = 1 exactly when Z > theta in every window")
    return finish(res, out_dir)


def figs2(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. S2: the one-sided window (all super-threshold windows, p only below threshold).

    The same simulations as :func:`fig3a` (same seed gives the same runs). Checks rdd_model.md
    §6 A3b: the one-sided estimate at p = 0.05 is biased by correlation (5.11 / 4.75 / 4.00 at
    c = 0.01 / 0.5 / 0.99), unlike the two-sided one.
    """
    res, config, per_c = _start_fig3a("figs2", "one-sided RDD window vs p for 5 values of c",
                                      quick=quick, seed=seed, n_jobs=n_jobs, one_sided=True)
    cv = np.asarray(config["c_values"])
    p = np.asarray(P_GRID)
    out = res["results"]
    for i, name in enumerate(("neuron1", "neuron2")):
        pick = {k: v[..., i] for k, v in per_c.items() if k in ("rdd_one_sided", "rdd_constant", "od")}
        out[name] = {"rdd_one_sided": _summ(pick, "rdd_one_sided"), "rdd_constant": _summ(pick, "rdd_constant"),
                     "od": _summ(pick, "od")}
    out["truth"] = _truths(per_c)
    k = int(np.argmin(np.abs(p - 0.0464)))
    one = np.asarray(out["neuron1"]["rdd_one_sided"]["mean"], float)[:, k]
    one_se = np.asarray(out["neuron1"]["rdd_one_sided"]["se"], float)[:, k]
    two = np.asarray(out["neuron1"]["rdd_constant"]["mean"], float)[:, k]
    ref = {0.01: 5.11, 0.5: 4.75, 0.99: 4.00}
    drop = float(one[0] - one[-1])
    drop_se = float(np.hypot(one_se[0], one_se[-1]))
    res["acceptance"]["A3b_one_sided_biased_by_c"] = check(
        drop > 3 * drop_se and drop > 2 * abs(two[0] - two[-1]),
        {"one_sided_p0.0464": one.tolist(), "two_sided_p0.0464": two.tolist(), "drop": drop, "drop_se": drop_se},
        "one-sided estimate at p=0.05 falls with c (reference 5.11 / 4.75 / 4.00 at c = 0.01 / 0.5 / 0.99), "
        "much more than the two-sided one")
    dev = {f"c={c}": float(one[list(cv).index(c)] - v) for c, v in ref.items() if c in cv}
    res["acceptance"]["A3b_matches_table"] = check(
        all(abs(d) < 3 * float(one_se.max()) + 0.05 for d in dev.values()), {"deviation": dev, "se": one_se.tolist()},
        "one-sided estimates equal the reference table within 3 SE + 0.05")
    return finish(res, out_dir)


# ------------------------------------------------------------------------------------------ Fig. 3B


def fig3b(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 3B: histograms of the relative error of RDD and OD over a 19 x 19 grid of weights.

    c = 0.5, p = 0.03, 50-ms windows, 500 s per grid point, cost 1.4(1) with the s2^2 term for
    both the estimates and the truth (the original omitted it from the estimates, §7.8). The
    error is ``||beta_hat - beta_true|| / ||beta_true||`` against the spike-perturbation truth
    (as in the paper) and against the paired do() truths. The grid is one batched engine call
    of 361 replicates (split into memory-sized tasks).
    """
    n = 7 if quick else 19
    duration = 60.0 if quick else 500.0
    params = estimation_params(window_s=0.05)
    cost = QuadraticCost()
    grid = np.linspace(2.0, 20.0, n)
    W = grid_points(grid)
    config = dict(w_grid=grid, c=0.5, p=0.03, duration_s=duration, params=dataclasses.asdict(params), cost=cost.describe(),
                  near_threshold=0.01)
    res = start("fig3b", "relative error of RDD vs OD over the weight grid", seed=seed, quick=quick, n_jobs=n_jobs,
                config=config)
    d = estimation_batch(W, 0.5, params=params, cost=cost, duration_s=duration, seed=seed, p_grid=[0.03], near=0.01,
                         argmax=True, n_jobs=n_jobs)
    rdd, od = d["rdd_constant"][:, 0, :], d["od"]
    with np.errstate(invalid="ignore", divide="ignore"):
        near_argmax = d["truth_near_argmax_sum"] / d["n_near"]
    truths = {"spike_perturbation": d["sp"], "paired_do_all_windows": d["truth_all"], "near_threshold_argmax": near_argmax}
    out = res["results"]
    bins = np.linspace(0, 1, 21)
    out["bins"] = bins
    out["per_truth"] = {}
    for tname, t in truths.items():
        entry = {}
        for ename, est in (("rdd", rdd), ("od", od)):
            e = rel_error(est, t)
            fin = np.isfinite(e)
            entry[ename] = {
                "hist": np.histogram(np.clip(e[fin], 0, 1 - 1e-12), bins=bins)[0],
                "n_above_1": int(np.sum(e[fin] > 1)), "n_nan": int(np.sum(~fin)),
                "median": float(np.median(e[fin])) if fin.any() else None,
                "frac_below_0.25": float(np.mean(e[fin] < 0.25)) if fin.any() else None,
                "frac_below_0.5": float(np.mean(e[fin] < 0.5)) if fin.any() else None,
                "quantiles": quantiles(e),
            }
        out["per_truth"][tname] = entry
    out["rel_error_grid"] = {"rdd": round_floats(rel_error(rdd, d["sp"]).reshape(n, n), 3),
                             "od": round_floats(rel_error(od, d["sp"]).reshape(n, n), 3)}
    out["rates_hz_range"] = [float(d["rate_hz"].min()), float(d["rate_hz"].max())]
    sp_entry = out["per_truth"]["spike_perturbation"]
    res["acceptance"]["fig3b_rdd_errors_lower"] = check(
        sp_entry["rdd"]["median"] < sp_entry["od"]["median"]
        and sp_entry["rdd"]["frac_below_0.25"] > sp_entry["od"]["frac_below_0.25"],
        {"median_rdd": sp_entry["rdd"]["median"], "median_od": sp_entry["od"]["median"],
         "frac_below_0.25_rdd": sp_entry["rdd"]["frac_below_0.25"], "frac_below_0.25_od": sp_entry["od"]["frac_below_0.25"]},
        "RDD relative errors (vs the SP truth) are concentrated at low values, OD's spread out: smaller median, "
        "larger fraction below 0.25")
    return finish(res, out_dir)


# ------------------------------------------------------------------------------------------ Fig. 3C


def fig3c(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 3C: gradient arrows of RDD and OD on the banana landscape (c = 0.99, p = 0.2, linear RDD).

    The mean-cost landscape is simulated on the weight grid with common random numbers and
    differentiated numerically. The estimated gradient is ``kappa * beta_i * dE[n_i]/dw_i``
    (:func:`bci_credit.reproduce.toolkit.gradient_estimate`: the lookup gain in spikes per window
    and ``kappa = 1/(1 - decay^W)``, a spike's summed effect on later window ends), with no
    fitted factor; the recipe reports the least-squares scale between estimate and truth (1 = the
    gradient link holds exactly).
    """
    n = 7 if quick else 19
    duration = 40.0 if quick else 300.0
    c = 0.99
    params = learning_params()
    cost = BananaCost()
    grid = np.linspace(2.0, 20.0, n)
    W = grid_points(grid)
    config = dict(w_grid=grid, c=c, p=0.2, duration_s=duration, landscape_duration_s=duration,
                  params=dataclasses.asdict(params), cost=cost.describe(),
                  gradient_estimate="kappa * beta_i * window_steps * dmu/dw(w_i) (lookup gain), kappa = 1/(1-decay^W)")
    res = start("fig3c", "RDD vs OD gradient estimates on the banana landscape", seed=seed, quick=quick, n_jobs=n_jobs,
                config=config)
    land = landscape(cost, params, c, grid, duration, child_seed(seed, 90), n_jobs)
    d = estimation_batch(W, c, params=params, cost=cost, duration_s=duration, seed=seed, p_grid=[0.2], argmax=False,
                         sp=False, n_jobs=n_jobs)
    decay = output_filter(params.tau_s, params.dt_s, params.paper_kernel)[0]
    g_true = land["grad"].reshape(-1, 2)
    ests = {"rdd_linear": d["rdd_linear"][:, 0, :], "rdd_constant": d["rdd_constant"][:, 0, :], "od": d["od"],
            "paired_do_truth": d["truth_all"]}
    out = res["results"]
    norms = np.linalg.norm(g_true, axis=1)
    big = norms > np.quantile(norms, 0.1)
    out["landscape"] = {"log10_mean_cost": round_floats(np.log10(land["mean_cost"]), 3),
                        "argmin_w": land["argmin_w"], "min_w_refined": land["min_w"], "min_cost": land["min_cost"],
                        "max_cost": land["max_cost"]}
    out["true_gradient"] = round_floats(g_true, 3)
    out["methods"] = {}
    for name, beta in ests.items():
        g_hat = gradient_estimate(beta, W, window_steps=params.window_steps, decay=decay)
        ang = angle_deg(g_hat, g_true)
        err = rel_error(g_hat, g_true)
        fin = np.isfinite(ang)
        scale = float(np.nansum(g_hat * g_true) / np.nansum(g_hat * g_hat))
        out["methods"][name] = {
            "median_angle_deg": float(np.nanmedian(ang)),
            "median_angle_deg_excl_flat": float(np.nanmedian(ang[big])),
            "frac_angle_below_45": float(np.mean(ang[fin] < 45)),
            "median_rel_error": float(np.nanmedian(err)),
            "frac_rel_error_below_1": float(np.mean(err[np.isfinite(err)] < 1)),
            "least_squares_scale": scale,
        }
        if name in ("rdd_linear", "od"):  # the arrows of the figure
            out["methods"][name]["gradient"] = round_floats(g_hat, 3)
    m = out["methods"]
    res["acceptance"]["fig3c_rdd_aligned_od_not"] = check(
        m["rdd_linear"]["median_angle_deg"] < m["od"]["median_angle_deg"]
        and m["rdd_linear"]["frac_angle_below_45"] > m["od"]["frac_angle_below_45"],
        {k: {"median_angle_deg": v["median_angle_deg"], "frac_angle_below_45": v["frac_angle_below_45"]}
         for k, v in m.items()},
        "at c = 0.99 the RDD (linear, p = 0.2) arrows align with the true gradient better than OD's")
    res["acceptance"]["fig3c_gradient_link_scale"] = check(
        abs(m["paired_do_truth"]["least_squares_scale"] - 1) < 0.35,
        {k: v["least_squares_scale"] for k, v in m.items()},
        "kappa * beta * dE[n]/dw matches the landscape gradient with a least-squares scale within 1 +- 0.35 when beta is "
        "the paired-do truth (no ad hoc factor)")
    return finish(res, out_dir, {"W": W})


# ------------------------------------------------------------------------------------------ Fig. 2


def fig2(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 2: membrane potential v and counterfactual drive u traces; reward against maximum drive.

    Traces: c = 0.9, sigma = 20, w = (5, 5), 100-ms windows; one example window of each kind
    (sub-threshold, marginal sub-threshold, marginal super-threshold, super-threshold) is
    picked automatically. Scatter: 20-ms windows, tau_s = 0.2 s, cost ``(-30 s1 + 40 s2 - 4)^2``,
    with the RD estimates and paired-do truths of both neurons.
    """
    dur_tr = 10.0 if quick else 30.0
    dur_sc = 30.0 if quick else 200.0
    p_tr = estimation_params(sigma=20.0, window_s=0.1, tau_s=0.2)
    p_sc = estimation_params(sigma=20.0, window_s=0.02, tau_s=0.2)
    cost = QuadraticCost(a1=-30.0, a2=40.0, a2q=0.0, x=2.0)
    config = dict(c=0.9, w=[5.0, 5.0], traces=dict(duration_s=dur_tr, params=dataclasses.asdict(p_tr)),
                  scatter=dict(duration_s=dur_sc, params=dataclasses.asdict(p_sc), cost=cost.describe(), p_constant=0.1,
                               p_linear=0.2))
    res = start("fig2", "drive traces and reward vs maximum drive", seed=seed, quick=quick, n_jobs=n_jobs, config=config)
    # traces
    pop = LIFPopulation([5.0, 5.0], c=0.9, params=p_tr, seed=child_seed(seed, 0))
    b = pop.run(n_windows_of(dur_tr, p_tr), record_traces=True)
    z = b.drive[0, :, 0]
    kinds = {"sub_threshold": (z < 0.8), "marginal_sub": (z > 0.9) & (z < 1.0),
             "marginal_super": (z > 1.0) & (z < 1.1) & (b.counts[0, :, 0] == 1), "super_threshold": z > 1.3}
    ws = p_tr.window_steps
    examples = {}
    plot = {"traces": {}}
    for kind, mask in kinds.items():
        idx = np.flatnonzero(mask[1:]) + 1  # skip the first window (starts at rest)
        if idx.size == 0:
            continue
        k = int(idx[0])
        sl = slice(k * ws, (k + 1) * ws)
        examples[kind] = {"window": k, "Z": round_floats(b.drive[0, k], 4), "H": b.spiked[0, k]}
        plot["traces"][kind] = {"v": b.v_trace[0, sl], "u": b.u_trace[0, sl]}
    out = res["results"]
    out["example_windows"] = examples
    out["window_kind_fractions"] = {k: float(m.mean()) for k, m in kinds.items()}
    # scatter
    pop2 = LIFPopulation([5.0, 5.0], c=0.9, params=p_sc, seed=child_seed(seed, 1), record_spikes=False)
    data = collect_windows(pop2, n_windows_of(dur_sc, p_sc), argmax=True)
    zz = data["drive"]
    r = cost(data["s_end"])
    eff = paired_do_effects(data["s_end"], data["s_window"], cost, window_steps=p_sc.window_steps, decay=pop2.decay,
                            k0=pop2.k0, seed=child_seed(seed, 2))[0]
    eff_a = paired_do_effects(data["s_end"], data["s_window"], cost, window_steps=p_sc.window_steps, decay=pop2.decay,
                              k0=pop2.k0, steps=data["argmax_step"])[0]
    near = np.abs(zz[0] - 1.0) < 0.02
    out["scatter"] = {
        "rdd_constant_p0.1": round_floats(rdd_constant(zz, r, 0.1)[0], 5),
        "rdd_linear_p0.2": round_floats(rdd_linear(zz, r, 0.2)[0], 5),
        "od": round_floats(rdd_constant(zz, r, 1.0)[0], 5),
        "truth_all_windows": round_floats(eff.mean(axis=0), 5),
        "truth_near_threshold_argmax": round_floats((eff_a * near).sum(axis=0) / np.maximum(near.sum(axis=0), 1), 5),
        "n_windows": int(zz.shape[1]), "rates_hz": round_floats(data["counts"][0].sum(axis=0) / dur_sc, 4),
    }
    mism = int(np.sum(b.spiked != (b.drive > 1.0)) + np.sum(data["spiked"] != (zz > 1.0)))
    out["sharp_design_mismatches"] = mism
    res["acceptance"]["fig2_sharp_design"] = check(mism == 0, mism, "H = 1 exactly when Z > theta (traces and scatter runs)")
    res["acceptance"]["fig2_all_window_kinds_found"] = check(len(examples) == 4, sorted(examples),
                                                             "an example of each of the four window kinds")
    sub = np.linspace(0, zz.shape[1] - 1, min(zz.shape[1], 4000)).astype(int)
    plot["scatter"] = {"z": zz[0, sub], "r": r[0, sub]}
    plot["window_steps"] = ws
    return finish(res, out_dir, plot)


# ------------------------------------------------------------------------------------------ Fig. 6


def fig6(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 6: the Delta-s assumption (a spike shifts the window-end output by a constant).

    (a) QQ comparison of the window-end output S given H = 1 against H = 0 for c = 0.01 and 0.99
    at four firing rates (50-ms windows, tau_s = 0.2 s). (b) Observed against theoretical
    ``Delta_s = mean over the window of k0 decay^(W-1-j)`` (one spike at a uniform step) over
    window lengths 10-200 ms and tau_s 0.01-0.3 s. Observed versions: the mean jump per spike
    (``sum s_window / spikes``, what the formula describes), the jump of windows with exactly one
    spike, the naive ``E[S | H=1] - E[S | H=0]`` (includes history and extra spikes) and the jump
    of near-threshold windows (spike at the drive's peak, late in the window).
    """
    dur_qq = 40.0 if quick else 300.0
    dur_sw = 20.0 if quick else 100.0
    windows_ms = (20, 100) if quick else (10, 20, 50, 100, 200)
    taus = (0.02, 0.2) if quick else (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
    w_values = (6.0, 10.0, 14.0, 18.0)
    params = learning_params()
    config = dict(qq=dict(c_values=[0.01, 0.99], w_values=w_values, duration_s=dur_qq, params=dataclasses.asdict(params)),
                  sweep=dict(window_ms=windows_ms, tau_s=taus, w=[10.0, 10.0], c=0.01, replicates=4, duration_s=dur_sw))
    res = start("fig6", "Delta-s assumption: QQ of S|H and observed vs theoretical Delta_s", seed=seed, quick=quick,
                n_jobs=n_jobs, config=config)
    out = res["results"]
    # (a) QQ
    cs = np.repeat([0.01, 0.99], len(w_values))
    ww = np.tile(w_values, 2)
    pop = LIFPopulation(np.stack([ww, ww], axis=1), c=cs, params=params, seed=child_seed(seed, 0), record_spikes=False)
    data = collect_windows(pop, n_windows_of(dur_qq, params))
    theory = delta_s_theory(params.window_steps, params.tau_s, params.dt_s, params.paper_kernel)
    qs = np.linspace(0.02, 0.98, 49)
    qq = []
    plot = {"qq": []}
    for k in range(len(cs)):
        s, hh = data["s_end"][k, :, 0], data["spiked"][k, :, 0]
        q1, q0 = np.quantile(s[hh], qs), np.quantile(s[~hh], qs)
        slope, icpt = np.polyfit(q0, q1, 1)
        one = data["counts"][k, :, 0] == 1
        qq.append({"c": float(cs[k]), "w": float(ww[k]), "rate_hz": float(data["counts"][k, :, 0].sum() / dur_qq),
                   "qq_slope": float(slope), "median_shift": float(np.median(q1 - q0)),
                   "mean_difference": float(s[hh].mean() - s[~hh].mean()),
                   "jump_one_spike": float(data["s_window"][k, one, 0].mean())})
        plot["qq"].append({"q0": q0, "q1": q1, "c": float(cs[k]), "w": float(ww[k])})
    out["qq"] = qq
    out["delta_s_theory"] = theory
    # (b) sweep over window length and tau_s
    rows = []
    for wi, wms in enumerate(windows_ms):
        for ti, tau in enumerate(taus):
            pr = params.replace(window_s=wms / 1000.0, tau_s=tau)
            popk = LIFPopulation(np.full((4, 2), 10.0), c=0.01, params=pr, seed=child_seed(seed, 1, wi, ti),
                                 record_spikes=False)
            dk = collect_windows(popk, n_windows_of(dur_sw, pr))
            one = dk["counts"] == 1
            hh = dk["spiked"]
            marg = one & (dk["drive"] > 1.0) & (dk["drive"] < 1.05)
            th = delta_s_theory(pr.window_steps, tau, pr.dt_s, pr.paper_kernel)
            rows.append({"window_ms": wms, "tau_s": tau, "theory": th,
                         "jump_per_spike": float(dk["s_window"].sum() / dk["counts"].sum()),
                         "jump_per_spike_se": float(_ratio_mean_se(dk["s_window"].reshape(-1, 1),
                                                                   dk["counts"].reshape(-1, 1))[1][0]),
                         "jump_one_spike": float(dk["s_window"][one].mean()),
                         "mean_difference": float(dk["s_end"][hh].mean() - dk["s_end"][~hh].mean()),
                         "jump_near_threshold": float(dk["s_window"][marg].mean()) if marg.any() else None})
    out["sweep"] = rows
    ratio = np.array([r["jump_per_spike"] / r["theory"] for r in rows])
    zj = np.array([(r["jump_per_spike"] - r["theory"]) / r["jump_per_spike_se"] for r in rows])
    res["acceptance"]["fig6_jump_per_spike_matches_theory"] = check(
        bool(np.all(np.abs(zj) < 4)), {"min_ratio": float(ratio.min()), "max_ratio": float(ratio.max()),
                                       "max_abs_z": float(np.abs(zj).max())},
        "the mean jump of the window-end output per spike (sum of s_window / spikes) equals delta_s_theory within 4 SE "
        "for every window length and tau_s (spike times are uniform within windows in a stationary run)")
    naive = np.array([r["mean_difference"] / r["theory"] for r in rows])
    short = np.array([r["window_ms"] <= 50 for r in rows])
    one = np.array([r["jump_one_spike"] / r["theory"] for r in rows])
    res["acceptance"]["fig6_naive_shift_vs_theory"] = check(
        bool(np.all(np.abs(naive[short] - 1) < 0.2)),
        {"ratio_windows_le_50ms": [float(naive[short].min()), float(naive[short].max())],
         "ratio_windows_100_200ms": [float(naive[~short].min()), float(naive[~short].max())] if (~short).any() else None,
         "one_spike_windows_ratio": [float(one.min()), float(one.max())]},
        "the naive shift E[S | H=1] - E[S | H=0] is within 20 % of delta_s_theory for the windows the paper uses "
        "(<= 50 ms); longer windows reported",
        note=("the naive shift also carries the spikes' history (rates are autocorrelated: S | H=1 follows more recent "
              "spikes) and extra spikes in the window, so it exceeds the one-spike theory for windows long compared "
              "with the inter-spike interval (100-200 ms), and falls a little below it for 10-20-ms windows. Windows "
              "with exactly one spike are biased the other way for short tau_s: a lone spike in a long window tends to "
              "sit away from its edges"))
    slopes = np.array([q["qq_slope"] for q in qq])
    res["acceptance"]["fig6_shift_is_constant"] = check(
        bool(np.all(np.abs(slopes - 1) < 0.25)), {"qq_slopes": slopes.tolist()},
        "S | H=1 is S | H=0 shifted: QQ slope within 1 +- 0.25 for both c and all rates",
        note="the shift itself (median_shift, mean_difference) also carries history effects; compare with delta_s_theory")
    return finish(res, out_dir, plot)
