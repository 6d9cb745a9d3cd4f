"""RD plots of :class:`~bci_credit.analysis.causal.CausalResults` (matplotlib, imported lazily).

Each panel is :func:`bci_credit.plotting.rd.rd_plot` (data-driven binned means and a polynomial
fit on each side) of the points within ``span`` bandwidths of the cutoff, overlaid with the
kernel-weighted local-linear fit on each side within the bandwidth (the fit behind the estimate),
and titled with the estimate and its robust confidence interval.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..plotting import pyplot

__all__ = ["plot_unit", "plot_design"]


def _row(results, unit):
    t = results.table
    rows = t[t["unit"].astype(str) == str(unit)]
    if not len(rows):
        raise KeyError(f"unit {unit!r} is not in these results (units: {list(t['unit'][:10])})")
    return rows.iloc[0]


def _local_linear(x, y, h):
    """Triangular-kernel weighted least-squares line on the points within ``h`` of 0 (None if too few)."""
    w = np.clip(1.0 - np.abs(x) / h, 0.0, None)
    sel = w > 0
    if sel.sum() < 3 or np.ptp(x[sel]) == 0:
        return None
    return np.polyfit(x[sel], y[sel], 1, w=np.sqrt(w[sel]))


def plot_unit(results, unit, ax=None, *, span: float = 3.0, p: int = 2):
    """Draw one unit's RD plot on ``ax`` (a new figure when None); returns the axes."""
    plt = pyplot()

    from ..plotting.rd import rd_plot

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6))
    d = results.data.get(unit)
    if d is None:
        d = next((v for k, v in results.data.items() if str(k) == str(unit)), None)
    if d is None:
        raise KeyError(f"no plot data for unit {unit!r}")
    r = _row(results, unit)
    x, y = np.asarray(d["x"], float), np.asarray(d["y"], float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok] - float(d.get("cutoff", 0.0)), y[ok]
    h = float(r["bandwidth"])
    hr = float(r["bandwidth_right"]) if np.isfinite(r["bandwidth_right"]) else h
    lo, hi = (-span * h, span * hr) if np.isfinite(h) else tuple(np.quantile(x, [0.01, 0.99])) if x.size else (0, 0)
    sel = (x >= lo) & (x <= hi)
    xlabel, ylabel = d.get("xlabel", "running variable - cutoff"), d.get("ylabel", "outcome")
    if (x[sel] < 0).sum() < 3 or (x[sel] >= 0).sum() < 3:
        ax.text(0.5, 0.5, "too few points on one side to plot", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    else:
        rd_plot(y[sel], x[sel], 0.0, p=p, ax=ax, xlabel=xlabel, ylabel=ylabel)
        labelled = False
        for side, hh in ((-1, h), (1, hr)):
            if not np.isfinite(hh):
                continue
            m = x < 0 if side < 0 else x >= 0
            coef = _local_linear(x[m], y[m], hh)
            if coef is not None:
                g = side * np.linspace(0, hh, 20)
                ax.plot(g, np.polyval(coef, g), color="C3", lw=1.5, ls="--",
                        label=None if labelled else "local-linear fit within the bandwidth (the estimate)")
                labelled = True
        ax.legend(fontsize=7, loc="best", framealpha=0.7)
    _title(ax, unit, r, results.level)
    return ax


def _title(ax, unit, r, level):
    if np.isfinite(r["estimate"]):
        ax.set_title(f"unit {unit} ({r['design']}): {r['estimate']:.3g}, {level:g}% CI "
                     f"[{r['ci_lo']:.3g}, {r['ci_hi']:.3g}]", fontsize=9)
    else:
        ax.set_title(f"unit {unit} ({r['design']}): not estimated", fontsize=9)


def plot_design(results, *, max_units: int = 24) -> Iterator[tuple]:
    """Yield ``(unit, figure)`` for the first ``max_units`` units of ``results``."""
    plt = pyplot()

    for unit in list(results.data)[:max_units]:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        plot_unit(results, unit, ax=ax)
        fig.tight_layout()
        yield unit, fig
