"""Metrics of a single-unit BCI session (``bci_nwb.md`` §A.8 "Metrics"), on Recordings or arrays.

Everything here reads a :class:`~bci_credit.recording.Recording` (simulated or read from NWB) or
plain arrays; nothing imports the simulator.

* task performance: :func:`success_rate` (successes per second and per trial, rewards per second,
  median time to reward, per block);
* firing: :func:`period_rates`, :func:`rate_change` (percent or Hz, control vs non-control);
* credit: :func:`specificity_index` (``(drate_control - mean drate_noncontrol) / sd(drate_noncontrol)``)
  and :func:`specificity` (against all, the co-tuned and random non-control units, the dualbci design
  of ``bci_nwb.md`` §A.3 item 5), :func:`misattribution` (weight change of non-control units),
  :func:`mean_ci` (a t interval over independent sessions);
* estimators: :func:`estimator_error` (bias, variance, RMSE against the ground truth, by groups such
  as c, p, N);
* tuning and coupling: :func:`tuning` (cosine-tuning fit of binned rates on the wrist signal per
  block), :func:`tuning_change`, :func:`count_correlation` (control-unit spike-count correlation
  with the others, a functional-coupling measure).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ..recording import Recording
from ._causal_data import count_spikes

__all__ = [
    "period_bounds", "period_rates", "rate_change", "specificity_index", "specificity", "misattribution",
    "success_rate", "mean_ci", "estimator_error", "tuning", "tuning_change", "count_correlation",
    "block_names",
]


# ----------------------------------------------------------------------------- periods and rates
def block_names(rec: Recording) -> list[str]:
    """Block labels in order of appearance (from ``windows['block']`` or ``trials['block']``)."""
    for df in (rec.windows, rec.trials):
        if df is not None and "block" in df.columns and len(df):
            return list(pd.unique(df["block"].astype(str)))
    return []


def period_bounds(rec: Recording, period) -> tuple[float, float]:
    """Start and stop (s) of a period: a block name, ``(block, last_s)`` (the block's last seconds),
    ``(block, first_s, "first")`` or an explicit ``(start_s, stop_s)`` pair of numbers."""
    if isinstance(period, tuple) and len(period) == 2 and all(isinstance(v, (int, float, np.floating)) for v in period):
        return float(period[0]), float(period[1])
    name, span, which = (period, None, "last") if isinstance(period, str) else (tuple(period) + ("last",))[:3]
    df = rec.windows if rec.windows is not None and "block" in rec.windows.columns else rec.trials
    if df is None or "block" not in df.columns:
        raise ValueError("the recording has no block labels (windows['block'] or trials['block']); give (start_s, stop_s)")
    m = df["block"].astype(str).to_numpy() == str(name)
    if not m.any():
        raise ValueError(f"block {name!r} is not in this recording; blocks: {block_names(rec)}")
    t0, t1 = float(df["start_s"].to_numpy()[m].min()), float(df["stop_s"].to_numpy()[m].max())
    if span is not None:
        span = float(span)
        t0, t1 = (max(t0, t1 - span), t1) if which == "last" else (t0, min(t1, t0 + span))
    return t0, t1


def period_rates(rec: Recording, period) -> np.ndarray:
    """Firing rate (Hz) of every unit over a period (see :func:`period_bounds`)."""
    t0, t1 = period_bounds(rec, period)
    if not t1 > t0:
        raise ValueError(f"period {period!r} is empty")
    return count_spikes(rec.spike_times, np.array([t0]), np.array([t1]))[0] / (t1 - t0)


def rate_change(rec: Recording, before="baseline", after="conditioning", *, relative: bool = True) -> np.ndarray:
    """Change of every unit's rate from ``before`` to ``after`` (percent if ``relative``, else Hz)."""
    r0, r1 = period_rates(rec, before), period_rates(rec, after)
    if not relative:
        return r1 - r0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r0 > 0, 100.0 * (r1 - r0) / r0, np.nan)


# ----------------------------------------------------------------------------- specificity
def specificity_index(drate_control: float, drate_noncontrol: np.ndarray, *, sd_from: np.ndarray | None = None) -> float:
    """``(drate_control - mean(drate_noncontrol)) / sd(drate_noncontrol)`` (``bci_nwb.md`` §A.8).

    ``sd_from`` supplies the units whose spread scales the index (default: ``drate_noncontrol``
    itself); :func:`specificity` passes all non-control units, because a comparison set of two units
    (co-tuned, random) has no usable spread of its own.
    """
    nc = np.asarray(drate_noncontrol, float)
    nc = nc[np.isfinite(nc)]
    ref = nc if sd_from is None else np.asarray(sd_from, float)[np.isfinite(sd_from)]
    if nc.size < 1 or ref.size < 2:
        return float("nan")
    sd = float(np.std(ref, ddof=1))
    if not sd > 0:
        return float("nan")
    return float((float(drate_control) - nc.mean()) / sd)


def _preferred_directions(rec: Recording, block) -> np.ndarray:
    if "preferred_direction_rad" in rec.units.columns and np.isfinite(rec.units["preferred_direction_rad"]).all():
        return rec.units["preferred_direction_rad"].to_numpy(float)
    tun = tuning(rec, block)
    return tun["pd_rad"].to_numpy(float)


def specificity(rec: Recording, before="baseline", after="conditioning", *, relative: bool = True,
                n_cotuned: int = 2, n_random: int = 2, n_draws: int = 50, tuning_block=None, seed=0) -> dict:
    """Specificity of the rate change of the control unit(s) against non-control units.

    Returns ``{"drate": per-unit change, "control": change of the (first) control unit,
    "index_all", "index_cotuned", "index_random"}``: the index against all non-control units,
    against the ``n_cotuned`` most co-tuned ones (largest cosine of preferred-direction difference;
    preferred directions from ``units['preferred_direction_rad']`` or fitted in ``tuning_block``),
    and against ``n_random`` random ones (mean over ``n_draws`` draws), as in the dualbci design.
    """
    drate = rate_change(rec, before, after, relative=relative)
    ctrl = rec.units["is_control"].to_numpy(bool)
    if not ctrl.any():
        raise ValueError("the recording has no control unit (units['is_control'])")
    nc_idx = np.flatnonzero(~ctrl & np.isfinite(drate))
    c = int(np.flatnonzero(ctrl)[0])
    out = {"drate": drate, "control": float(drate[c]), "noncontrol_mean": float(np.nanmean(drate[nc_idx])),
           "index_all": specificity_index(drate[c], drate[nc_idx])}
    ref = drate[nc_idx]
    try:
        pdir = _preferred_directions(rec, tuning_block)
        cos = np.cos(pdir[nc_idx] - pdir[c])
        co = nc_idx[np.argsort(-cos)[:n_cotuned]]
        out["cotuned_units"] = rec.units.index[co].tolist()
        out["index_cotuned"] = specificity_index(drate[c], drate[co], sd_from=ref)
    except (ValueError, KeyError):
        out["index_cotuned"] = float("nan")
    rng = np.random.default_rng(seed)
    if nc_idx.size >= n_random:
        draws = [specificity_index(drate[c], drate[rng.choice(nc_idx, n_random, replace=False)], sd_from=ref)
                 for _ in range(n_draws)]
        out["index_random"] = float(np.nanmean(draws))
    else:
        out["index_random"] = float("nan")
    return out


def misattribution(rec: Recording) -> dict:
    """Weight change of control and non-control units (from the weight trace or ``w_initial``/``w_final``).

    Returns the control unit's change, the mean change and mean absolute change of non-control
    units, and their ratio to the control unit's absolute change.
    """
    if rec.weights is not None and rec.weights.values.shape[0] >= 2:
        dw = rec.weights.values[-1] - rec.weights.values[0]
    elif {"w_initial", "w_final"} <= set(rec.units.columns):
        dw = rec.units["w_final"].to_numpy(float) - rec.units["w_initial"].to_numpy(float)
    else:
        raise ValueError("the recording has no weight trace nor w_initial/w_final columns")
    ctrl = rec.units["is_control"].to_numpy(bool)
    dc = float(np.mean(dw[ctrl])) if ctrl.any() else float("nan")
    nc = dw[~ctrl]
    return {"dw_control": dc, "dw_noncontrol_mean": float(nc.mean()) if nc.size else float("nan"),
            "dw_noncontrol_abs": float(np.abs(nc).mean()) if nc.size else float("nan"),
            "leak_ratio": float(np.abs(nc).mean() / abs(dc)) if nc.size and dc else float("nan")}


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean and t confidence interval over independent sessions (NaN dropped)."""
    from scipy import stats

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return {"mean": float("nan"), "ci_lo": float("nan"), "ci_hi": float("nan"), "sd": float("nan"), "n": 0}
    m = float(v.mean())
    if n < 2:
        return {"mean": m, "ci_lo": float("nan"), "ci_hi": float("nan"), "sd": float("nan"), "n": 1}
    sd = float(v.std(ddof=1))
    h = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": m, "ci_lo": m - h, "ci_hi": m + h, "sd": sd, "n": int(n)}


# ----------------------------------------------------------------------------- task performance
def success_rate(rec: Recording, *, by_block: bool = True) -> pd.DataFrame:
    """Successes per second and per trial, rewards per second, median time to reward.

    Uses ``trials`` (``success``, ``reward_time_s``) and the reward event series when present.
    """
    tr = rec.trials
    if tr is None or "success" not in tr.columns:
        raise ValueError("the recording has no trials table with a 'success' column")
    groups = [("all", tr)] if not by_block or "block" not in tr.columns else list(tr.groupby("block", sort=False))
    rows = []
    for name, g in groups:
        if name == "all":
            t0, t1 = float(np.nanmin(tr["start_s"])), float(np.nanmax(tr["stop_s"]))
        else:
            try:
                t0, t1 = period_bounds(rec, str(name))
            except ValueError:
                t0, t1 = float(g["start_s"].min()), float(g["stop_s"].max())
        dur = max(t1 - t0, 1e-12)
        succ = g["success"].to_numpy(bool)
        rt = g["reward_time_s"].to_numpy(float) if "reward_time_s" in g.columns else np.full(len(g), np.nan)
        ttr = (rt - g["start_s"].to_numpy(float))[np.isfinite(rt)]
        rows.append({"block": str(name), "duration_s": dur, "n_trials": int(len(g)), "successes": int(succ.sum()),
                     "success_per_s": succ.sum() / dur, "success_per_trial": float(succ.mean()) if len(g) else np.nan,
                     "rewards_per_s": np.isfinite(rt).sum() / dur,
                     "median_time_to_reward_s": float(np.median(ttr)) if ttr.size else np.nan})
    return pd.DataFrame(rows).set_index("block")


# ----------------------------------------------------------------------------- estimators
def estimator_error(df: pd.DataFrame, *, estimate: str = "estimate", truth: str = "truth",
                    by: Sequence[str] = ()) -> pd.DataFrame:
    """Bias, variance and RMSE of an estimator against the ground truth, per group.

    ``df`` has one row per (session, unit, setting) with the ``estimate`` and ``truth`` columns and
    the grouping columns ``by`` (e.g. ``["c", "p", "N", "estimator"]``). ``bias_se`` is the standard
    error of the mean error.
    """
    missing = [c for c in (estimate, truth, *by) if c not in df.columns]
    if missing:
        raise ValueError(f"estimator_error: column(s) {missing} not in the table; columns are {list(df.columns)}")
    d = df.assign(_err=df[estimate] - df[truth])
    d = d[np.isfinite(d["_err"])]

    def agg(g):
        e = g["_err"].to_numpy(float)
        n = e.size
        return pd.Series({"n": n, "bias": e.mean() if n else np.nan,
                          "bias_se": e.std(ddof=1) / math.sqrt(n) if n > 1 else np.nan,
                          "variance": g[estimate].var(ddof=1) if n > 1 else np.nan,
                          "rmse": math.sqrt(np.mean(e**2)) if n else np.nan,
                          "truth_mean": g[truth].mean()})

    if not by:
        return agg(d).to_frame().T
    return d.groupby(list(by), sort=True).apply(agg, include_groups=False)


# ----------------------------------------------------------------------------- tuning and coupling
def _binned(rec: Recording, period, bin_s: float, series: str = "wrist") -> tuple[np.ndarray, np.ndarray]:
    if series not in rec.series:
        raise ValueError(f"the recording has no {series!r} series; tuning needs the wrist signal")
    t0, t1 = period_bounds(rec, period)
    edges = np.arange(t0, t1 - bin_s + 1e-9, bin_s)
    counts = count_spikes(rec.spike_times, edges, edges + bin_s) / bin_s
    ts = rec.series[series]
    v = np.asarray(ts.values, float).reshape(ts.t_s.size, -1)
    idx = np.searchsorted(ts.t_s, edges + bin_s, side="right") - 1
    lo = np.searchsorted(ts.t_s, edges, side="left")
    X = np.full((edges.size, v.shape[1]), np.nan)
    cs = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
    n = idx + 1 - lo
    ok = n > 0
    X[ok] = (cs[idx[ok] + 1] - cs[lo[ok]]) / n[ok, None]
    keep = np.all(np.isfinite(X), axis=1)
    return X[keep], counts[keep]


def tuning(rec: Recording, period, *, bin_s: float = 0.2, series: str = "wrist") -> pd.DataFrame:
    """Cosine tuning of every unit to the 2-D wrist signal in a period.

    Ordinary least squares ``rate = b0 + bx W_x + by W_y`` on ``bin_s`` bins (statsmodels); returns
    per unit the preferred direction ``pd_rad = atan2(by, bx)``, the depth ``sqrt(bx^2 + by^2)``
    (Hz per wrist unit), ``r2`` and ``n_bins``.
    """
    import statsmodels.api as sm

    X, Y = _binned(rec, period, bin_s, series)
    if X.shape[1] < 2:
        raise ValueError("tuning needs a 2-D wrist signal")
    rows = []
    A = sm.add_constant(X[:, :2], has_constant="add")
    for j, uid in enumerate(rec.units.index):
        y = Y[:, j]
        if y.std() == 0 or X.shape[0] < 5:
            rows.append({"unit": uid, "pd_rad": np.nan, "depth": np.nan, "r2": np.nan, "n_bins": X.shape[0]})
            continue
        fit = sm.OLS(y, A).fit()
        bx, by = fit.params[1], fit.params[2]
        rows.append({"unit": uid, "pd_rad": math.atan2(by, bx), "depth": math.hypot(bx, by), "r2": fit.rsquared,
                     "n_bins": X.shape[0]})
    return pd.DataFrame(rows).set_index("unit")


def tuning_change(rec: Recording, a, b, **kw) -> pd.DataFrame:
    """Change of preferred direction (degrees, wrapped to [0, 180]) and depth between periods ``a`` and ``b``."""
    ta, tb = tuning(rec, a, **kw), tuning(rec, b, **kw)
    dpd = np.degrees(np.abs(np.angle(np.exp(1j * (tb["pd_rad"] - ta["pd_rad"])))))
    with np.errstate(divide="ignore", invalid="ignore"):
        ddepth = (tb["depth"] - ta["depth"]) / ta["depth"]
    return pd.DataFrame({"dpd_deg": dpd, "depth_a": ta["depth"], "depth_b": tb["depth"], "depth_change": ddepth,
                         "is_control": rec.units["is_control"].to_numpy(bool)}, index=ta.index)


def count_correlation(rec: Recording, period, *, bin_s: float = 0.05) -> np.ndarray:
    """Spike-count correlation of the (first) control unit with every unit in a period (NaN for itself)."""
    t0, t1 = period_bounds(rec, period)
    edges = np.arange(t0, t1 - bin_s + 1e-9, bin_s)
    counts = count_spikes(rec.spike_times, edges, edges + bin_s).astype(float)
    c = int(np.flatnonzero(rec.units["is_control"].to_numpy(bool))[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(counts.T)[c]
    r[c] = np.nan
    return r
