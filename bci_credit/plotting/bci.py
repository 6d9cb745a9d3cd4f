"""Figures of BCI sessions and of the predictions (matplotlib only; inputs are Recordings and result tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..recording import Recording
from . import pyplot

__all__ = ["plot_bci_session", "prediction_figures", "mark_blocks"]


def mark_blocks(rec: Recording, ax) -> None:
    """Mark the task blocks of ``rec`` (its windows' ``block`` column) on ``ax``: a dotted line at each
    change and the block's name above the axes; nothing for a recording without blocks."""
    if rec.windows is None or "block" not in rec.windows.columns:
        return
    b = rec.windows["block"].astype(str).to_numpy()
    starts = rec.windows["start_s"].to_numpy()
    change = np.flatnonzero(b[1:] != b[:-1]) + 1
    for k in change:
        ax.axvline(starts[k], color="0.6", ls=":", lw=0.8)
    for k0, k1 in zip(np.r_[0, change], np.r_[change, b.size]):
        ax.text((starts[k0] + starts[k1 - 1]) / 2, 1.0, b[k0], transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=7)


def plot_bci_session(rec: Recording, *, bin_s: float = 10.0):
    """Rates over time (control units red), decoder output with threshold and rewards, weights."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    t1 = rec.duration_s
    edges = np.arange(0.0, t1 + 1e-9, bin_s)
    ctrl = rec.units["is_control"].to_numpy(bool)
    ax = axes[0]
    for j, st in enumerate(rec.spike_times):
        h = np.histogram(st, edges)[0] / bin_s
        ax.plot(edges[:-1] + bin_s / 2, h, color="tab:red" if ctrl[j] else "0.7", lw=1.6 if ctrl[j] else 0.6,
                zorder=3 if ctrl[j] else 1)
    ax.set_ylabel("rate (Hz)")
    mark_blocks(rec, ax)
    ax = axes[1]
    if "decoder_output" in rec.series:
        ts = rec.series["decoder_output"]
        v = np.asarray(ts.values, float).reshape(ts.t_s.size, -1)[:, 0]
        k = max(1, v.size // 4000)
        ax.plot(ts.t_s[::k], v[::k], lw=0.4, color="tab:blue")
        theta = (rec.meta.get("decoder") or {}).get("theta_hz")
        if theta is not None and np.isfinite(theta):
            ax.axhline(theta, color="k", ls="--", lw=0.8, label=f"reward threshold {theta:.3g} Hz")
    if "reward" in rec.series and rec.series["reward"].kind == "events":
        rt = rec.series["reward"].t_s
        ax.plot(rt, np.full(rt.size, ax.get_ylim()[1] if ax.lines else 1.0), "|", color="tab:green", ms=4, label="reward")
    theta = (rec.meta.get("decoder") or {}).get("theta_hz")
    ax.set_ylabel("decoder output (Hz)" if theta is not None else "decoder output")
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[2]
    if rec.weights is not None:
        for j in range(rec.weights.values.shape[1]):
            ax.plot(rec.weights.t_s, rec.weights.values[:, j], color="tab:red" if ctrl[j] else "0.7",
                    lw=1.6 if ctrl[j] else 0.6)
    ax.set_ylabel("weight w")
    ax.set_xlabel("time (s)")
    fig.suptitle(f"BCI session ({(rec.meta.get('decoder') or {}).get('mapping', '')}, "
                 f"rule {rec.meta.get('learning_rule')})")
    fig.tight_layout()
    return fig


def _bar_ci(ax, labels, mean, lo, hi, color="tab:blue"):
    x = np.arange(len(labels))
    mean, lo, hi = (np.asarray(v, float) for v in (mean, lo, hi))
    ax.bar(x, mean, color=color, alpha=0.8)
    ax.errorbar(x, mean, yerr=[mean - np.where(np.isfinite(lo), lo, mean), np.where(np.isfinite(hi), hi, mean) - mean],
                fmt="none", ecolor="k", capsize=3)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="k", lw=0.5)


def _lines(ax, df, x, y, group, ylabel):
    for g, d in df.groupby(group, sort=False):
        d = d.sort_values(x)
        ax.plot(d[x], d[y], "o-", label=str(g))
        if f"{y}_lo" in d:
            ax.fill_between(d[x], d[f"{y}_lo"], d[f"{y}_hi"], alpha=0.15)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def prediction_figures(result) -> dict:
    """Figures of a :class:`~bci_credit.predict.PredictionResult` (``{file stem: Figure}``)."""
    plt = pyplot()
    figs = {}
    t = result.tables
    name = result.name
    if name == "conditioning":
        s = t["summary"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        x = np.arange(len(s))
        ax[0].bar(x - 0.2, s["drate_control_pct"], 0.4, color="tab:red", label="control")
        ax[0].bar(x + 0.2, s["drate_noncontrol_pct"], 0.4, color="0.6", label="non-control (mean)")
        ax[0].set_xticks(x)
        ax[0].set_xticklabels(s["rule"], rotation=30, ha="right", fontsize=8)
        ax[0].set_ylabel("rate change (%)")
        ax[0].legend(fontsize=7)
        _bar_ci(ax[1], s["rule"], s["specificity_all"], s["specificity_all_lo"], s["specificity_all_hi"])
        ax[1].set_ylabel("specificity index")
        fig.suptitle("Prediction 1: conditioning")
        fig.tight_layout()
        figs["conditioning"] = fig
    elif name == "estimator_bias":
        e = t["error_noncontrol"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for (est, p), d in e.groupby(["estimator", "p"]):
            d = d.groupby("c").apply(lambda g: pd.Series({"bias": np.average(g["bias"], weights=g["n"]),
                                                          "se": np.sqrt(np.sum((g["bias_se"] * g["n"]) ** 2)) / g["n"].sum()}),
                                     include_groups=False).reset_index()
            ax[0].errorbar(d["c"], d["bias"], yerr=2 * d["se"], fmt="o-", capsize=3, label=f"{est} p={p:g}")
        ax[0].axhline(0, color="k", lw=0.5)
        ax[0].set_xlabel("noise correlation c")
        ax[0].set_ylabel("bias (non-control units)")
        ax[0].legend(fontsize=7)
        ec = t["error_control"]
        for (est, p), d in ec.groupby(["estimator", "p"]):
            d = d.groupby("c")[["bias", "truth_mean"]].mean().reset_index()
            ax[1].plot(d["c"], d["bias"] + d["truth_mean"], "o-", label=f"{est} p={p:g}")
        d = ec.groupby("c")["truth_mean"].mean()
        ax[1].plot(d.index, d.to_numpy(), "k--", label="truth")
        ax[1].set_xlabel("noise correlation c")
        ax[1].set_ylabel("control unit: estimate")
        ax[1].legend(fontsize=7)
        fig.suptitle("Prediction 2: estimator bias")
        fig.tight_layout()
        figs["estimator_bias"] = fig
    elif name == "credit_leak":
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        _lines(ax[0], t["summary"], "c", "leak", "rule", "leak (non-control dw / control dw)")
        _lines(ax[1], t["summary"], "c", "specificity_all", "rule", "specificity index")
        fig.suptitle("Prediction 3: credit leak vs noise correlation")
        fig.tight_layout()
        figs["credit_leak"] = fig
    elif name in ("threshold_vs_windowed", "private_variability"):
        s = t["summary"]
        key = "mapping" if name == "threshold_vs_windowed" else "private_scale"
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        labels = [f"{r}\n{k}" for r, k in zip(s["rule"], s[key])]
        _bar_ci(ax[0], labels, s["leak"], s["leak_lo"], s["leak_hi"])
        ax[0].set_ylabel("leak")
        _bar_ci(ax[1], labels, s["drate_control_pct"], s["drate_control_pct_lo"], s["drate_control_pct_hi"], color="tab:red")
        ax[1].set_ylabel("control rate change (%)")
        fig.suptitle("Prediction 4: threshold vs windowed-rate reward" if key == "mapping"
                     else "Prediction 5: private variability of the control unit")
        fig.tight_layout()
        figs[name] = fig
    elif name == "dual_tuning":
        a = t["summary"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for j, col in enumerate(("dpd_deg", "abs_depth_change")):
            for (rule, ctrl), d in a.groupby(["rule", "is_control"]):
                d = d.set_index("to").reindex(["BC", "DC", "MC2"])
                ax[j].plot(d.index, d[col], "o-" if ctrl else "s--", label=f"{rule} {'control' if ctrl else 'non-control'}")
            ax[j].set_xlabel("MC1 ->")
            ax[j].legend(fontsize=7)
        ax[0].set_ylabel("|preferred-direction change| (deg)")
        ax[1].set_ylabel("|relative depth change|")
        fig.suptitle("Prediction 6: tuning changes in dual control")
        fig.tight_layout()
        figs["dual_tuning"] = fig
    elif name == "plasticity":
        d = t["neurons"]
        rules = list(pd.unique(d["rule"]))
        fig, ax = plt.subplots(1, 3, figsize=(13, 4))
        for j, col in enumerate(("events_per_s", "dw_per_s")):
            m = d.groupby(["rule", "regime"])[col].mean().unstack()
            base = m["fluctuation"]
            ratio = (m["drift"] / base).reindex(rules)
            ax[j].bar(np.arange(len(rules)), ratio.to_numpy(), color="tab:purple")
            near = d.groupby("regime")["near_fraction"].mean()
            ax[j].axhline(near["drift"] / near["fluctuation"], color="k", ls="--", lw=1, label="near-threshold ratio")
            ax[j].axhline(1.0, color="0.5", lw=0.5)
            ax[j].set_xticks(np.arange(len(rules)))
            ax[j].set_xticklabels(rules, rotation=30, ha="right", fontsize=8)
            ax[j].set_ylabel(f"{col}: drift / fluctuation")
            ax[j].legend(fontsize=7)
        pc = t["power_curve"]
        for frac, g in pc.groupby("noise_fraction"):
            ax[2].errorbar(g["n_neurons"], g["power"], yerr=2 * g["power_se"], fmt="o-", capsize=2,
                           label=f"noise sd = {frac:g} x mean trial |dw|")
        ax[2].axhline(0.8, color="k", ls="--", lw=0.8)
        ax[2].set_xscale("log")
        ax[2].set_xlabel("neurons")
        ax[2].set_ylabel("power (alpha = 0.05)")
        ax[2].legend(fontsize=7)
        fig.suptitle("Plasticity at matched rate (A9) and power")
        fig.tight_layout()
        figs["plasticity"] = fig
    elif name == "special_neuron":
        cc = t["cost_curves"]
        cs = sorted(pd.unique(cc["c"]))
        fig, axes = plt.subplots(1, len(cs), figsize=(4 * len(cs), 3.5), squeeze=False)
        for ax, c in zip(axes[0], cs):
            for rule, d in cc[(cc.c == c) & (cc.variant == "rate")].groupby("rule"):
                ax.plot(d["t_s"], d["cost"], label=rule.upper())
            ax.set_title(f"c = {c}")
            ax.set_xlabel("time in perturbed phase (s)")
            ax.set_ylim(0.012, 0.035)
        axes[0, 0].set_ylabel("mean cost")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("A6: special-neuron task, RDD vs observed dependence")
        fig.tight_layout()
        figs["special_neuron"] = fig
    for key, rec in list(result.recordings.items())[:1]:
        if rec is not None and rec.windows is not None and "block" in rec.windows.columns:
            figs[f"session_{key}"] = plot_bci_session(rec)
    return figs
