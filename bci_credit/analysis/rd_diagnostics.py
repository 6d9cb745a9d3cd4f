"""RD diagnostics: placebo-cutoff sweep and bandwidth-sensitivity table.

Both refit :class:`~bci_credit.analysis.rd.RD` with the same options and collect one row per fit;
a fit that cannot be made gets NaN and a ``reason`` instead of stopping the sweep.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .rd import RD, _check_aligned, _column, _covs_matrix, _numeric

__all__ = ["placebo_cutoffs", "bandwidth_sensitivity"]

_COLS = ["estimate", "tau_bc", "se_cl", "se_rb", "ci_rb_lo", "ci_rb_hi", "pv_rb", "h_left", "h_right",
         "b_left", "b_right", "n_h_left", "n_h_right"]


def _row(res) -> dict:
    return {"estimate": res.tau_cl, "tau_bc": res.tau_bc, "se_cl": res.se_cl, "se_rb": res.se_rb,
            "ci_rb_lo": res.ci_rb[0], "ci_rb_hi": res.ci_rb[1], "pv_rb": res.pv_rb, "h_left": res.h[0],
            "h_right": res.h[1], "b_left": res.b[0], "b_right": res.b[1], "n_h_left": int(res.n_h[0]),
            "n_h_right": int(res.n_h[1]), "reason": None}


def _failed(err: Exception) -> dict:
    out = {c: np.nan for c in _COLS}
    out["reason"] = str(err).replace("RD cannot be estimated: ", "")
    return out


def placebo_cutoffs(y: ArrayLike | str, x: ArrayLike | str, cutoffs: Sequence[float] | None = None, *,
                    true_cutoff: float = 0.0, n_placebo: int = 10, data: pd.DataFrame | None = None,
                    **rd_kwargs: Any) -> pd.DataFrame:
    """RD estimates at placebo cutoffs, each using only the data on its side of the true cutoff.

    Parameters
    ----------
    y, x : array-like or str
        Outcome and running variable, or column names of ``data``.
    cutoffs : sequence of float, optional
        Placebo cutoffs; by default ``n_placebo`` quantiles of x, half on each side of the true
        cutoff (20..80 % of the points on that side).
    true_cutoff : float
        The real cutoff: a placebo below it uses the points with ``x < true_cutoff``, one above
        uses ``x >= true_cutoff``, so the real jump never enters a placebo fit.
    n_placebo : int
        Number of default placebo cutoffs (when ``cutoffs`` is None).
    data : DataFrame, optional
        Holds the columns named by ``y``, ``x`` and the per-row options.
    **rd_kwargs
        Options of :class:`~bci_credit.analysis.rd.RD` (kernel, p, bwselect, vce, ...). The per-row
        options ``fuzzy``, ``covs``, ``cluster`` and ``weights`` (arrays or column names) are cut to
        each placebo's side with y and x.

    Returns
    -------
    DataFrame
        One row per cutoff (``cutoff``, ``side``, the estimates of
        :func:`~bci_credit.analysis.rd.fit_many` and ``reason``); under no effect about 5 % of the
        robust p-values ``pv_rb`` should fall below 0.05.
    """
    _check_aligned(x=x, y=y, **{k: rd_kwargs.get(k) for k in ("fuzzy", "covs", "cluster", "weights")})
    xa = _numeric(_column(x, "x", data), "x")
    ya = _numeric(_column(y, "y", data, xa.size), "y")
    per_row = {k: _column(rd_kwargs.pop(k), k, data, xa.size) for k in ("fuzzy", "cluster", "weights")
               if rd_kwargs.get(k) is not None}
    if rd_kwargs.get("covs") is not None:
        mat, names = _covs_matrix(rd_kwargs.pop("covs"), data, xa.size)
        per_row["covs"] = pd.DataFrame(mat, columns=names)
    good = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[good], ya[good]
    per_row = {k: v[good] if isinstance(v, np.ndarray) else v[good].reset_index(drop=True)
               for k, v in per_row.items()}
    if cutoffs is None:
        lo, hi = xa[xa < true_cutoff], xa[xa >= true_cutoff]
        k = max(1, n_placebo // 2)
        qs = np.linspace(0.2, 0.8, k)
        cutoffs = list(np.quantile(lo, qs) if lo.size else []) + list(np.quantile(hi, qs) if hi.size else [])
    rows = []
    for c in cutoffs:
        c = float(c)
        side = "below" if c < true_cutoff else "above"
        m = xa < true_cutoff if side == "below" else xa >= true_cutoff
        row = {"cutoff": c, "side": side}
        if c == true_cutoff:
            row.update(_failed(ValueError("placebo cutoff equals the true cutoff")))
        else:
            try:
                side_rows = {k: v[m] if isinstance(v, np.ndarray) else v[m].reset_index(drop=True)
                             for k, v in per_row.items()}
                row.update(_row(RD(ya[m], xa[m], c, **side_rows, **rd_kwargs).fit()))
            except ValueError as err:
                row.update(_failed(err))
        rows.append(row)
    return pd.DataFrame(rows, columns=["cutoff", "side"] + _COLS + ["reason"])


def bandwidth_sensitivity(y: ArrayLike | str, x: ArrayLike | str, cutoff: float = 0.0, *,
                          h_grid: Sequence[float] | None = None,
                          factors: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0), data: pd.DataFrame | None = None,
                          **rd_kwargs: Any) -> pd.DataFrame:
    """RD estimates over a grid of main bandwidths h (bias bandwidth b = h / rho, rho = h/b of the
    data-driven fit on each side unless ``rho`` is given).

    Parameters
    ----------
    y, x : array-like or str
        Outcome and running variable, or column names of ``data``.
    cutoff : float
        The RD cutoff.
    h_grid : sequence of float, optional
        Bandwidths to use (the same on both sides); by default ``factors`` times the data-driven
        (``bwselect``) bandwidths, each side's own (so that factor 1 is the selected fit, also for
        the two-sided selectors such as ``msetwo``).
    factors : sequence of float
        Multiples of the data-driven h used when ``h_grid`` is None.
    data : DataFrame, optional
        Holds the columns named by ``y`` and ``x``.
    **rd_kwargs
        Options of :class:`~bci_credit.analysis.rd.RD` (``rho`` fixes h/b for the whole grid).

    Returns
    -------
    DataFrame
        One row per bandwidth: ``h`` (the mean of ``h_left`` and ``h_right`` when they differ),
        ``h_factor`` (h over the data-driven h), ``selected`` (True for the data-driven fit), the
        estimates and ``reason``.
    """
    base_kw = {k: v for k, v in rd_kwargs.items() if k not in ("h", "b", "rho")}
    base = RD(y, x, cutoff, data=data, **base_kw).fit()
    h0 = np.asarray(base.h, dtype=float)
    rho = np.asarray(base.h / base.b, dtype=float) if not rd_kwargs.get("rho") else float(rd_kwargs["rho"])
    grid = [h0 * f for f in factors] if h_grid is None else [np.array([float(h)] * 2) for h in h_grid]
    rows = [{"h": float(np.mean(h0)), "h_factor": 1.0, "selected": True, **_row(base)}]
    for h in grid:
        row = {"h": float(np.mean(h)), "h_factor": float(np.mean(h / h0)), "selected": False}
        try:
            row.update(_row(RD(y, x, cutoff, data=data, h=h, b=h / rho, **base_kw).fit()))
        except ValueError as err:
            row.update(_failed(err))
        rows.append(row)
    return pd.DataFrame(rows, columns=["h", "h_factor", "selected"] + _COLS + ["reason"])
