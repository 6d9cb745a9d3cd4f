"""RD plot: binned means of the outcome with a data-driven number of bins and a polynomial fit on
each side of the cutoff (Calonico, Cattaneo & Titiunik 2015, "Optimal data-driven regression
discontinuity plots", *JASA* 110).

The number of evenly spaced bins on each side is the *mimicking-variance* choice of CCT (2015),
``J = ceil(var(y) / V * n / log(n)^2)`` with ``V = (1 / (2 range)) * sum dx_i dy_i^2`` (a spacing
estimator of the integrated conditional variance), so that the binned means are about as variable
as the raw data; ``nbins`` fixes it instead. matplotlib is imported only when drawing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import pyplot

__all__ = ["rd_bins", "rd_plot", "mimicking_variance_bins"]


def _side_arrays(y, x, cutoff):
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    good = np.isfinite(x) & np.isfinite(y)
    x, y = x[good], y[good]
    if x.size == 0:
        raise ValueError("no finite (x, y) pairs to plot")
    left = x < cutoff
    if left.all() or (~left).all():
        raise ValueError(f"all points are on one side of the cutoff {cutoff:g}; nothing to compare")
    return (x[left], y[left]), (x[~left], y[~left])


def mimicking_variance_bins(y, x, cutoff: float = 0.0) -> tuple[int, int]:
    """Mimicking-variance number of evenly spaced bins (left, right)."""
    sides = _side_arrays(y, x, cutoff)
    n = sum(s[0].size for s in sides)
    out = []
    for xs, ys in sides:
        o = np.argsort(xs, kind="stable")
        xs, ys = xs[o], ys[o]
        rng = abs(xs[-1] - cutoff) if xs[-1] >= cutoff else abs(cutoff - xs[0])
        if xs.size < 3 or rng == 0:
            out.append(1)
            continue
        V = (0.5 / rng) * np.sum(np.diff(xs) * np.diff(ys) ** 2)
        var_y = np.var(ys, ddof=1)
        if not (V > 0) or not (var_y > 0):
            out.append(1)
            continue
        out.append(int(max(1, np.ceil(var_y / V * n / np.log(n) ** 2))))
    return out[0], out[1]


def rd_bins(y, x, cutoff: float = 0.0, *, nbins: int | tuple[int, int] | None = None) -> pd.DataFrame:
    """Evenly spaced bins on each side: ``side``, ``left_edge``, ``right_edge``, ``x_mean``,
    ``y_mean``, ``y_se`` (standard error of the bin mean), ``n``."""
    (xl, yl), (xr, yr) = _side_arrays(y, x, cutoff)
    if nbins is None:
        nbins = mimicking_variance_bins(y, x, cutoff)
    jl, jr = (nbins, nbins) if np.isscalar(nbins) else nbins
    rows = []
    for side, xs, ys, J, lo, hi in (("left", xl, yl, int(jl), xl.min(), cutoff),
                                    ("right", xr, yr, int(jr), cutoff, xr.max())):
        if J < 1:
            raise ValueError(f"nbins must be >= 1, got {J}")
        edges = np.linspace(lo, hi, J + 1)
        idx = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, J - 1)
        for j in range(J):
            m = idx == j
            k = int(m.sum())
            if k == 0:
                continue
            rows.append({"side": side, "left_edge": edges[j], "right_edge": edges[j + 1], "x_mean": xs[m].mean(),
                         "y_mean": ys[m].mean(), "y_se": ys[m].std(ddof=1) / np.sqrt(k) if k > 1 else np.nan, "n": k})
    return pd.DataFrame(rows)


def rd_plot(y, x, cutoff: float = 0.0, *, p: int = 4, nbins=None, ax=None, ci: bool = False, result=None,
            xlabel: str = "running variable", ylabel: str = "outcome", title: str | None = None,
            scatter_kws: dict | None = None, line_kws: dict | None = None):
    """Draw an RD plot on ``ax`` (a new figure when None) and return the Axes.

    Parameters
    ----------
    y, x : array-like
        Outcome and running variable.
    cutoff : float
    p : int
        Order of the global polynomial fitted on each side (least squares on the raw points).
    nbins : int or (int, int), optional
        Bins per side; default mimicking variance (see module docstring).
    ci : bool
        Draw +-1.96 standard errors of each bin mean.
    result : RDResults, optional
        Also draw the local-polynomial fit of an :class:`~bci_credit.analysis.rd.RDResults`
        (within its bandwidth h) and annotate its robust estimate.
    """
    plt = pyplot()

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    bins = rd_bins(y, x, cutoff, nbins=nbins)
    (xl, yl), (xr, yr) = _side_arrays(y, x, cutoff)
    skw = {"s": 14, "color": "0.25", "zorder": 3}
    skw.update(scatter_kws or {})
    lkw = {"color": "C0", "lw": 2}
    lkw.update(line_kws or {})
    skw.setdefault("label", "binned means")
    ax.scatter(bins["x_mean"], bins["y_mean"], **skw)
    if ci:
        ax.errorbar(bins["x_mean"], bins["y_mean"], yerr=1.96 * bins["y_se"].fillna(0), fmt="none",
                    ecolor="0.6", lw=1, zorder=2)
    for side, (xs, ys) in enumerate(((xl, yl), (xr, yr))):
        deg = int(min(p, max(0, np.unique(xs).size - 1)))
        coef = np.polynomial.polynomial.polyfit(xs - cutoff, ys, deg)
        grid = np.linspace(xs.min(), xs.max(), 200)
        kw = {"label": f"polynomial fit (order {p}) per side", **lkw} if side == 0 else {**lkw, "label": None}
        ax.plot(grid, np.polynomial.polynomial.polyval(grid - cutoff, coef), **kw)
    if result is not None:
        for s, sign in ((0, -1), (1, 1)):
            beta = result.beta_p_left if s == 0 else result.beta_p_right
            g = cutoff + sign * np.linspace(0, result.h[s], 50)
            ax.plot(g, np.polynomial.polynomial.polyval(g - cutoff, beta), color="C3", lw=1.5, ls="--",
                    label="local fit within the bandwidth (the estimate)" if s == 0 else None)
        ax.set_title(title or f"RD estimate {result.tau_cl:.3g}, robust 95% CI "
                              f"[{result.ci_rb[0]:.3g}, {result.ci_rb[1]:.3g}]")
    elif title:
        ax.set_title(title)
    ax.axvline(cutoff, color="0.5", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
