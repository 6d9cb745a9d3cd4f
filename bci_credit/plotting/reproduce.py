"""Figures of the reproduction recipes (:mod:`bci_credit.reproduce`).

Each ``plot_<recipe>(result, data) -> Figure`` draws from the recipe's JSON result (and, where a
figure needs more than the JSON keeps, from ``data``: traces, scatter samples, trajectories).
:func:`plot_recipe` dispatches by name. matplotlib is imported lazily.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_recipe"]

_C_CMAP = "viridis"


def _figure(figsize):
    """A matplotlib Figure not managed by pyplot (no backend or global state involved)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _colors(n):
    import matplotlib

    cmap = matplotlib.colormaps[_C_CMAP]
    return [cmap(x) for x in np.linspace(0.05, 0.9, max(n, 1))]


def _a(x):
    """JSON lists (with None for NaN) -> float array."""
    return np.array(x, dtype=float) if x is not None else np.array([])


def plot_recipe(name: str, result: dict, data: dict | None = None):
    """The figure of recipe ``name`` from its result (and extra plot data)."""
    fn = globals().get(f"plot_{name}")
    if fn is None:
        return _plot_text(result)
    return fn(result, data or {})


def _plot_text(result):
    fig = _figure((6, 3))
    ax = fig.subplots()
    ax.axis("off")
    lines = [f"{result['recipe']}: {result.get('description', '')}"]
    for k, c in result.get("acceptance", {}).items():
        lines.append(f"{'PASS' if c['passed'] else 'FAIL'}  {k}")
    ax.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8)
    return fig


def _suptitle(fig, result):
    q = " (quick)" if result.get("quick") else ""
    fig.suptitle(f"{result['recipe']}{q}: {result.get('description', '')}", fontsize=10)


# ---------------------------------------------------------------------------------- estimation


def plot_fig3a(result, data):
    r = result["results"]
    p = _a(r["p_grid"])
    cv = r["c_values"]
    cols = _colors(len(cv))
    fig = _figure((14, 4.2))
    axes = fig.subplots(1, 3)
    tr = r["truth"]
    for ax, est, title in ((axes[0], "rdd_constant", "constant RDD"), (axes[1], "rdd_linear", "linear RDD")):
        m = _a(r["neuron1"][est]["mean"])
        sd = _a(r["neuron1"][est]["sd"])
        od = _a(r["neuron1"]["od"]["mean"])
        for k, c in enumerate(cv):
            ax.plot(p, m[k], "-o", ms=3, color=cols[k], label=f"c = {c}")
            ax.fill_between(p, m[k] - sd[k], m[k] + sd[k], color=cols[k], alpha=0.12)
            ax.axhline(od[k], color=cols[k], ls="-.", lw=1)
        ax.axhline(tr["near_threshold_argmax"]["mean"][0], color="k", lw=1.5, label="truth at threshold (drive peak)")
        ax.axhline(tr["all_windows"]["mean"][0], color="k", lw=1, ls=":", label="truth, all windows")
        ax.set_xscale("log")
        ax.set_ylim(2.5, 7.5)
        ax.set_xlabel("window half-width p")
        ax.set_ylabel(r"$\hat\beta_1$")
        ax.set_title(f"{title} (mean $\\pm$ sd; dash-dot: OD)")
    axes[0].legend(fontsize=7, loc="lower left")
    ax = axes[2]
    m2 = _a(r["neuron2"]["rdd_constant"]["mean"])
    od2 = _a(r["neuron2"]["od"]["mean"])
    for k, c in enumerate(cv):
        ax.plot(p, m2[k], "-o", ms=3, color=cols[k])
        ax.axhline(od2[k], color=cols[k], ls="-.", lw=1)
    ax.axhline(tr["near_threshold_argmax"]["mean"][1], color="k", lw=1.5)
    ax.axhline(tr["all_windows"]["mean"][1], color="k", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("window half-width p")
    ax.set_ylabel(r"$\hat\beta_2$")
    ax.set_title("neuron 2, constant RDD")
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def plot_figs2(result, data):
    r = result["results"]
    p = _a(r["p_grid"])
    cv = r["c_values"]
    cols = _colors(len(cv))
    fig = _figure((10, 4))
    axes = fig.subplots(1, 2)
    for ax, est, title in ((axes[0], "rdd_one_sided", "one-sided window"), (axes[1], "rdd_constant", "two-sided window")):
        m = _a(r["neuron1"][est]["mean"])
        for k, c in enumerate(cv):
            ax.plot(p, m[k], "-o", ms=3, color=cols[k], label=f"c = {c}")
        ax.axhline(r["truth"]["near_threshold_argmax"]["mean"][0], color="k", lw=1.5, label="truth at threshold")
        ax.set_xscale("log")
        ax.set_ylim(2.5, 7.5)
        ax.set_xlabel("p")
        ax.set_ylabel(r"$\hat\beta_1$")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def plot_fig3b(result, data):
    r = result["results"]
    bins = _a(r["bins"])
    fig = _figure((14, 4))
    axes = fig.subplots(1, 3)
    sp = r["per_truth"]["spike_perturbation"]
    ctr = 0.5 * (bins[1:] + bins[:-1])
    width = bins[1] - bins[0]
    axes[0].bar(ctr, sp["od"]["hist"], width=width, alpha=0.6, color="tab:red", label="observed dependence")
    axes[0].bar(ctr, sp["rdd"]["hist"], width=width, alpha=0.6, color="tab:blue", label="RDD (p = 0.03)")
    axes[0].set_xlabel(r"relative error $\|\hat\beta-\beta_{SP}\|/\|\beta_{SP}\|$")
    axes[0].set_ylabel("grid points")
    axes[0].legend(fontsize=8)
    axes[0].set_title("errors over the weight grid (>1 not shown)")
    g = _a(result["config"]["w_grid"])
    for ax, key in ((axes[1], "rdd"), (axes[2], "od")):
        im = ax.imshow(_a(r["rel_error_grid"][key]).T, origin="lower", extent=[g[0], g[-1], g[0], g[-1]], vmin=0, vmax=1,
                       cmap="magma")
        ax.set_xlabel("$w_1$")
        ax.set_ylabel("$w_2$")
        ax.set_title(f"relative error, {key.upper()}")
        fig.colorbar(im, ax=ax, shrink=0.8)
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def _landscape_ax(ax, g, log_cost, levels=20):
    cs = ax.contourf(g, g, np.asarray(log_cost, float).T, levels=levels, cmap="Greys_r")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.set_aspect("equal")
    return cs


def plot_fig3c(result, data):
    r = result["results"]
    g = _a(result["config"]["w_grid"])
    W = data.get("W")
    if W is None:
        W = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    G = g.size
    step = 2 if G > 10 else 1
    sel = np.zeros((G, G), bool)
    sel[::step, ::step] = True
    sel = sel.ravel()
    gt = _a(r["true_gradient"])

    def unit(v):
        n = np.linalg.norm(v, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return -v / n

    fig = _figure((11, 5))
    axes = fig.subplots(1, 2)
    for ax, key, col in ((axes[0], "rdd_linear", "tab:blue"), (axes[1], "od", "tab:red")):
        cs = _landscape_ax(ax, g, r["landscape"]["log10_mean_cost"])
        t = unit(gt)[sel]
        e = unit(_a(r["methods"][key]["gradient"]))[sel]
        ax.quiver(W[sel, 0], W[sel, 1], t[:, 0], t[:, 1], color="k", scale=25, width=0.004, label="true")
        ax.quiver(W[sel, 0], W[sel, 1], e[:, 0], e[:, 1], color=col, scale=25, width=0.004, label=key)
        m = r["methods"][key]
        ax.set_title(f"{key}: median angle {m['median_angle_deg']:.0f} deg")
        ax.legend(fontsize=8, loc="upper right")
    fig.colorbar(cs, ax=axes, shrink=0.8, label="log10 mean cost")
    _suptitle(fig, result)
    return fig


def plot_fig2(result, data):
    r = result["results"]
    tr = data.get("traces", {})
    fig = _figure((14, 6.5))
    kinds = list(tr)
    n = max(1, len(kinds))
    for k, kind in enumerate(kinds):
        ax = fig.add_subplot(2, n, k + 1)
        v, u = np.asarray(tr[kind]["v"]), np.asarray(tr[kind]["u"])
        t = np.arange(v.shape[0])
        for i, col in enumerate(("tab:blue", "tab:orange")):
            ax.plot(t, v[:, i], color=col, lw=1, label=f"v{i + 1}")
            ax.plot(t, u[:, i], color=col, lw=1, ls="--", label=f"u{i + 1}")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(kind.replace("_", " "), fontsize=9)
        ax.set_xlabel("step in window (ms)")
        if k == 0:
            ax.set_ylabel("v (solid), u (dashed)")
            ax.legend(fontsize=7)
    sc = data.get("scatter")
    if sc is not None:
        z, rr = np.asarray(sc["z"]), np.asarray(sc["r"])
        for i in range(2):
            ax = fig.add_subplot(2, 2, 3 + i)
            hh = z[:, i] > 1
            ax.scatter(z[~hh, i], rr[~hh], s=3, alpha=0.3, color="tab:blue", label="no spike")
            ax.scatter(z[hh, i], rr[hh], s=3, alpha=0.3, color="tab:orange", label="spiked")
            ax.axvline(1.0, color="k", lw=0.8)
            s = r["scatter"]
            ax.set_title(f"neuron {i + 1}: RDD (p=0.1) {s['rdd_constant_p0.1'][i]:.3g}, "
                         f"truth at threshold {s['truth_near_threshold_argmax'][i]:.3g}", fontsize=9)
            ax.set_xlabel(f"maximum drive $Z_{i + 1}$")
            ax.set_ylabel("reward (cost) R")
            if i == 0:
                ax.legend(fontsize=7, markerscale=3)
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def plot_fig6(result, data):
    r = result["results"]
    fig = _figure((14, 4.2))
    axes = fig.subplots(1, 3)
    th = r["delta_s_theory"]
    for ax, c in zip(axes[:2], (0.01, 0.99)):
        for q in data.get("qq", []):
            if q["c"] != c:
                continue
            q0, q1 = np.asarray(q["q0"]), np.asarray(q["q1"])
            ax.plot(q0, q1, ".", ms=3, label=f"w = {q['w']:g}")
        lim = ax.get_xlim()
        x = np.linspace(*lim, 2)
        ax.plot(x, x + th, "k--", lw=1, label=r"$y = x + \Delta s$ (theory)")
        ax.set_xlabel("quantiles of S | H = 0")
        ax.set_ylabel("quantiles of S | H = 1")
        ax.set_title(f"c = {c}")
        ax.legend(fontsize=7)
    ax = axes[2]
    rows = r["sweep"]
    th = np.array([x["theory"] for x in rows])
    for key, mk, lab in (("jump_per_spike", "o", "jump per spike"), ("jump_one_spike", "+", "windows with one spike"),
                         ("mean_difference", "x", "E[S|H=1]-E[S|H=0]"),
                         ("jump_near_threshold", "^", "near-threshold windows")):
        y = np.array([np.nan if x[key] is None else x[key] for x in rows])
        ax.loglog(th, y, mk, ms=4, label=lab)
    lo, hi = th.min() * 0.5, th.max() * 2
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.set_xlabel(r"theoretical $\Delta s$")
    ax.set_ylabel(r"observed $\Delta s$")
    ax.legend(fontsize=7)
    ax.set_title("window 10-200 ms, tau_s 0.01-0.3 s")
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- learning


def plot_fig4a(result, data):
    r = result["results"]
    t = _a(r["t_s"])
    cv = result["config"]["c_values"]
    k0 = r["ds"]
    tm = r["traces_mean"]
    ci = cv.index(0.75) if 0.75 in cv else len(cv) - 1
    fig = _figure((15, 4.2))
    axes = fig.subplots(1, 3)
    for i, ax in enumerate(axes[:2]):
        for key, col, ls, lab in (("online_repo_p0.05", "tab:blue", "-", "online 2 V0 (repo rule, p = 0.05)"),
                                  ("online_canonical_p0.05_eta3", "tab:green", "-", "online canonical beta (p = 0.05, eta 3)"),
                                  ("online_canonical_p0.05", "tab:olive", ":", "online canonical beta (p = 0.05, eta 1)"),
                                  ("ideal_rd_const_p0.05", "k", "--", "ideal RD (batch, p = 0.05)"),
                                  ("ideal_rd_lin_p0.05", "0.5", "--", "ideal linear RD (p = 0.05)"),
                                  ("ideal_od", "tab:red", "--", "ideal OD")):
            ax.plot(t, _a(tm[key])[ci, :, i] / k0, color=col, ls=ls, label=lab)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(r"$\beta$ per spike (cost / ds)")
        ax.set_title(f"neuron {i + 1}, c = {cv[ci]} (mean of runs)")
    axes[0].legend(fontsize=7)
    ax = axes[2]
    x = np.arange(len(cv))
    fin = r["final"]
    for j, (name, col) in enumerate((("repo_p0.05", "tab:blue"), ("canonical_p0.05_eta3", "tab:green"),
                                     ("canonical_p0.05", "tab:olive"), ("repo_p0.1", "tab:cyan"),
                                     ("canonical_p0.1", "tab:gray"))):
        key = "ratio_to_ideal_rd_linear" if name.startswith("canonical") else "ratio_to_ideal_rd_const"
        y = [fin[f"c={c}"][name][key][1] for c in cv]
        e = [fin[f"c={c}"][name][key + "_se"][1] for c in cv]
        ax.errorbar(x + 0.08 * (j - 2), y, yerr=e, fmt="o", color=col, label=name)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, [str(c) for c in cv])
    ax.set_xlabel("c")
    ax.set_ylabel("online / ideal batch RD (neuron 2)")
    ax.legend(fontsize=7)
    ax.set_title("final ratio (repo vs constant RD, canonical vs linear RD)")
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def plot_fig4bc(result, data):
    r = result["results"]
    t = _a(r["t_s"])
    cv = result["config"]["c_values"]
    cols = _colors(len(cv))
    methods = [("learned_repo", "-"), ("ideal_rd", "--"), ("ideal_od", ":"), ("learned_canonical", "-.")]
    fig = _figure((19, 4.2))
    axes = fig.subplots(1, 3)
    for ax, thr in ((axes[0], "1"), (axes[1], "0.5")):
        key = f"frac_below_{thr}"
        if key not in r:
            continue
        for m, ls in methods:
            for k, c in enumerate(cv):
                ax.plot(t, _a(r[key][m][f"c={c}"]), ls=ls, color=cols[k],
                        label=f"{m}, c={c}" if m == "learned_repo" or k == 0 else None)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"fraction of grid with relative error < {thr}")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"B (threshold {thr}): solid learned RD, dashed ideal RD, dotted ideal OD", fontsize=9)
    axes[0].legend(fontsize=6, ncol=2)
    ax = axes[2]
    box = data.get("box")
    if box:
        pos, vals, colors = [], [], []
        for k, c in enumerate(cv):
            for j, (m, col) in enumerate((("learned_repo", "tab:blue"), ("ideal_rd", "k"), ("ideal_od", "tab:red"))):
                v = np.asarray(box[m][k])
                vals.append(v[np.isfinite(v)])
                pos.append(k * 4 + j)
                colors.append(col)
        bp = ax.boxplot(vals, positions=pos, widths=0.8, showfliers=False, patch_artist=True)
        for patch, col in zip(bp["boxes"], colors):
            patch.set_facecolor(col)
            patch.set_alpha(0.4)
        ax.set_xticks([k * 4 + 1 for k in range(len(cv))], [str(c) for c in cv])
    else:
        q = r["final_log10_rel_error_quartiles"]
        for j, (m, col) in enumerate((("learned_repo", "tab:blue"), ("ideal_rd", "k"), ("ideal_od", "tab:red"))):
            med = [q[m][f"c={c}"][2] for c in cv]
            ax.plot(np.arange(len(cv)) + 0.1 * j, med, "o", color=col, label=m)
        ax.set_xticks(np.arange(len(cv)), [str(c) for c in cv])
    ax.set_xlabel("c")
    ax.set_ylabel("log10 relative gradient error (final)")
    ax.set_title("C: blue learned RD, black ideal RD, red ideal OD")
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def _trajectory_panels(result, data, names, title_of):
    n = len(names)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig = _figure((3.8 * ncol, 3.8 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        c = name.rsplit("_c", 1)[1]
        land = data.get("landscape", {}).get(f"c={float(c)}") or data.get("landscape", {}).get(f"c={c}")
        if land is not None:
            _landscape_ax(ax, np.asarray(land["w_grid"]), land["log_cost"], levels=15)
        traj = np.asarray(data.get("trajectories", {}).get(name, np.empty((0, 0, 2))))
        if traj.size:
            for k in range(traj.shape[1]):
                ax.plot(traj[:, k, 0], traj[:, k, 1], lw=0.5, color="tab:orange", alpha=0.6)
            ax.plot(traj[-1, :, 0], traj[-1, :, 1], ".", color="tab:red", ms=4)
        mn = result["results"]["landscape"][f"c={float(c)}"]["min_w"]
        ax.plot(*mn, "c*", ms=12)
        ax.set_xlim(2, 20)
        ax.set_ylim(2, 20)
        ax.set_title(title_of(name), fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig


def plot_fig4dg(result, data):
    r = result["results"]
    names = list(r["conditions"])

    def title(name):
        s = r["conditions"][name]
        fr = list(s["frac_within"].items())
        return f"{name}\nwithin 2 at {fr[-1][0]}: {fr[-1][1]:.2f}; spread {s['final_spread']:.2f}"

    fig = _trajectory_panels(result, data, names, title)
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def plot_learning_compare(result, data):
    r = result["results"]
    fig = _figure((16, 8))
    cv = result["config"]["c_values"]
    rules = ["rdd", "od", "rdd_canonical", "od_canonical", "np_running", "np_paired", "spike_injection"]
    cols = {"rdd": "tab:blue", "od": "tab:red", "rdd_canonical": "tab:cyan", "od_canonical": "tab:orange",
            "np_running": "tab:green", "np_paired": "tab:purple", "spike_injection": "tab:brown"}
    for k, c in enumerate(cv):
        ax = fig.add_subplot(len(cv), 3, 3 * k + 1)
        for rule in rules:
            s = r["conditions"].get(f"{rule}_c{c}")
            if s is None:
                continue
            tt = _a(s["t_s_every_5s"]) * (s.get("simulated_time_factor", 1))
            ax.plot(tt, _a(s["mean_distance_every_5s"]), color=cols[rule], label=rule)
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("mean distance to minimum")
        ax.set_title(f"c = {c}")
        ax.legend(fontsize=7)
        ax2 = fig.add_subplot(len(cv), 3, 3 * k + 2)
        for rule in rules:
            s = r["conditions"].get(f"{rule}_c{c}")
            if s is None:
                continue
            tt = _a(s["t_s_every_5s"]) * (s.get("simulated_time_factor", 1))
            ax2.plot(tt, _a(s["frac_within_every_5s"]), color=cols[rule], label=rule)
        ax2.set_xlabel("simulated time (s)")
        ax2.set_ylabel("fraction within 2 of minimum")
        ax2.set_ylim(0, 1)
        ax3 = fig.add_subplot(len(cv), 3, 3 * k + 3)
        land = data.get("landscape", {}).get(f"c={c}")
        if land is not None:
            _landscape_ax(ax3, np.asarray(land["w_grid"]), land["log_cost"], levels=15)
        for rule in rules:
            traj = data.get("trajectories", {}).get(f"{rule}_c{c}")
            if traj is not None:
                traj = np.asarray(traj)
                ax3.plot(traj[-1, :, 0], traj[-1, :, 1], ".", color=cols[rule], ms=5, label=rule)
        ax3.set_title("final weights")
        ax3.set_xlim(2, 20)
        ax3.set_ylim(2, 20)
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- scaling


def plot_fig5size(result, data):
    r = result["results"]["table"]
    cfg = result["config"]
    ns = np.asarray(cfg["n_values"], float)
    cv = cfg["c_values"]
    cols = _colors(len(cv))
    fig = _figure((15, 4.2))
    axes = fig.subplots(1, 3)
    for k, c in enumerate(cv):
        rows = [r[f"c={c}"][f"n={int(n)}"] for n in ns]
        for ax, key in ((axes[0], "mse_neuron1"), (axes[1], "mse_all")):
            ax.loglog(ns, [x["rdd"][key] for x in rows], "-o", color=cols[k], label=f"RDD, c={c}")
            ax.loglog(ns, [x["od"][key] for x in rows], "--s", color=cols[k], label=f"OD, c={c}")
        axes[2].plot(ns, [x["rdd"]["alignment_deg"] for x in rows], "-o", color=cols[k], label=f"RDD, c={c}")
        axes[2].plot(ns, [x["od"]["alignment_deg"] for x in rows], "--s", color=cols[k], label=f"OD, c={c}")
    axes[0].set_title("MSE of neuron 1 (paper)")
    axes[1].set_title("MSE over all neurons")
    for ax in axes[:2]:
        ax.set_xlabel("n neurons")
        ax.set_ylabel("MSE")
    axes[2].set_xscale("log")
    axes[2].set_xlabel("n neurons")
    axes[2].set_ylabel("alignment angle (deg)")
    axes[2].set_ylim(0, 90)
    axes[0].legend(fontsize=7)
    _suptitle(fig, result)
    fig.tight_layout()
    return fig


def plot_fig5depth(result, data):
    r = result["results"]
    p = _a(r["p_grid"])
    cv = result["config"]["c_values"]
    fig = _figure((5 * len(cv), 4))
    axes = fig.subplots(1, len(cv), squeeze=False)
    cols = _colors(10)
    for ax, c in zip(axes[0], cv):
        e = r[f"c={c}"]
        m = _a(e["rdd_mean"])
        od = _a(e["od_mean"])
        for j in range(m.shape[1]):
            ax.semilogx(p, m[:, j], "-o", ms=3, color=cols[j])
            ax.semilogx([1.0], [od[j]], "s", color=cols[j])
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("p (square: OD, p = 1)")
        ax.set_ylabel(r"$\hat\beta$ of layer-1 neurons")
        ax.set_title(f"c = {c}: median OD/RDD {e['median_od_over_rdd']:.2g}")
    _suptitle(fig, result)
    fig.tight_layout()
    return fig
