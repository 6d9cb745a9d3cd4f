"""Overview figure of a Recording: raster, rates, reward vs drive, weights."""

from __future__ import annotations

import numpy as np

from ..recording import Recording
from . import pyplot

__all__ = ["plot_session", "plot_raster", "plot_reward_vs_drive"]


def plot_raster(rec: Recording, ax, *, max_units: int = 50, t_max_s: float | None = None):
    """Spike raster of up to ``max_units`` units (control units in red)."""
    t0 = rec.t_start_s
    t1 = t0 + (t_max_s if t_max_s is not None else rec.duration_s)
    ids = list(rec.units.index[:max_units])
    for k, st in enumerate(rec.spike_times[:len(ids)]):  # row k is the unit with id ids[k], as in the tables
        st = st[(st >= t0) & (st <= t1)]
        color = "tab:red" if rec.units["is_control"].iloc[k] else "k"
        ax.vlines(st, k - 0.4, k + 0.4, color=color, lw=0.6)
    if 0 < len(ids) <= 20:
        ax.set_yticks(range(len(ids)), [str(u) for u in ids])
    ax.set_ylim(-0.6, max(len(ids), 1) - 0.4)
    ax.set_xlim(t0, t1)
    ax.set_ylabel("unit")
    ax.set_xlabel("time (s)")
    shown = [] if t_max_s is None or t_max_s >= (rec.duration_s or 0) else [f"first {t1 - t0:g} s"]
    if len(ids) < rec.n_units:
        shown.append(f"first {len(ids)} of {rec.n_units} units")
    ax.set_title("spike raster" + (f" ({', '.join(shown)})" if shown else ""))
    return ax


def plot_reward_vs_drive(rec: Recording, ax, unit: int = 0, *, max_points: int = 5000):
    """Scatter of window reward against the unit's maximum drive Z (the RD picture)."""
    if rec.drive is None or rec.windows is None:
        ax.text(0.5, 0.5, "no drive recorded", ha="center", va="center", transform=ax.transAxes)
        return ax
    z = rec.drive[:, unit]
    r = rec.windows["reward"].to_numpy()
    idx = np.arange(z.size)
    if z.size > max_points:
        idx = np.linspace(0, z.size - 1, max_points).astype(int)
    h = rec.spiked[idx, unit] if rec.spiked is not None else z[idx] > 1
    ax.scatter(z[idx][~h], r[idx][~h], s=3, alpha=0.4, color="tab:blue", label="no spike")
    ax.scatter(z[idx][h], r[idx][h], s=3, alpha=0.4, color="tab:orange", label="spiked")
    thr = rec.units["threshold"].iloc[unit]
    if np.isfinite(thr):
        ax.axvline(thr, color="k", ls="--", lw=0.8)
    ax.set_xlabel(f"max drive Z of unit {rec.units.index[unit]} in the window (dashed: threshold)")
    ax.set_ylabel(f"{rec.outcome_kind} in the window" if "reward_kind" in rec.meta else "reward (or cost) R")
    ax.legend(fontsize=7, markerscale=3)
    ax.set_title("reward vs drive")
    return ax


def plot_session(rec: Recording):
    """A 2x2 overview: raster (first 10 s), firing rates, reward vs drive, weights or reward."""
    plt = pyplot()

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    plot_raster(rec, axes[0, 0], t_max_s=min(10.0, rec.duration_s or 10.0))
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    rates = rec.rates_hz()
    is_ctrl = rec.units["is_control"].to_numpy(bool)
    colors = ["tab:red" if c else "tab:gray" for c in is_ctrl]
    axes[0, 1].bar(np.arange(rec.n_units), rates, color=colors)
    ids = [str(u) for u in rec.unit_ids]  # tick labels are the unit ids (they need not be 0..N-1)
    axes[0, 1].xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(rec.n_units, 10)))
    axes[0, 1].xaxis.set_major_formatter(FuncFormatter(lambda v, _: ids[int(v)] if 0 <= int(v) < len(ids) else ""))
    axes[0, 1].set_xlabel("unit" + (" (red: control unit)" if is_ctrl.any() else ""))
    axes[0, 1].set_ylabel("rate (Hz)")
    axes[0, 1].set_title("mean firing rate over the whole recording")
    ctrl = np.flatnonzero(is_ctrl)
    plot_reward_vs_drive(rec, axes[1, 0], unit=int(ctrl[0]) if ctrl.size else 0)
    ax = axes[1, 1]
    if rec.weights is not None:
        w = np.asarray(rec.weights.values, float).reshape(rec.weights.t_s.size, -1)
        if w.shape[1] == is_ctrl.size:  # the control unit in red over the others in grey
            ax.plot(rec.weights.t_s, w[:, ~is_ctrl], color="0.6", lw=0.8)
            ax.plot(rec.weights.t_s, w[:, is_ctrl], color="tab:red", lw=1.5)
        else:
            ax.plot(rec.weights.t_s, w)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("weight w")
        ax.set_title("weights" + (" (red: control unit)" if is_ctrl.any() and w.shape[1] == is_ctrl.size else ""))
    elif rec.windows is not None:
        r = rec.windows["reward"].to_numpy()
        k = max(1, r.size // 200)
        rr = r[: r.size // k * k].reshape(-1, k).mean(axis=1)
        ax.plot(rec.windows["stop_s"].to_numpy()[k - 1::k][: rr.size], rr)
        ax.set_xlabel("time (s)")
        kind = rec.outcome_kind
        ax.set_ylabel(f"mean {kind} per window")
        ax.set_title(f"{kind} over time")
    name = str(rec.meta.get("name", rec.meta.get("source", "")))
    fig.suptitle(f"{name + ': ' if name else ''}{rec.n_units} units, {rec.duration_s or 0:g} s")
    fig.tight_layout()
    return fig
