"""The naive comparisons: associations of reward with a unit's spiking, which the RD designs guard against.

Part of :mod:`bci_credit.analysis.causal` (which re-exports :class:`NaiveComparison`): observed
dependence and OLS of reward on the unit's spike count, without and with the other units' counts.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ..recording import Recording
from ._causal_data import check_design, check_reward_lag, window_data
from .causal_results import CausalResults, _add_truth, _empty_rows, _positions

__all__ = ["NaiveComparison", "MIN_WINDOWS"]

#: Windows needed with and without a spike of the unit before it gets an estimate: the HC1 sandwich SE
#: of a difference of means rests on each group's own spread, which a handful of windows cannot give.
MIN_WINDOWS = 10
#: Under obs_intervals, the share of a unit's windows, and of the outcome's variation over them, that the
#: complete cases of its adjusted fit must keep before a partly observed covariate is dropped.
COMPLETE_CASES = 0.25


def latency_hint(y: np.ndarray, H: np.ndarray, start: np.ndarray, stop: np.ndarray, max_lag: int = 3,
                 given_lag_s: float = 0.0) -> str | None:
    """A note when the outcome goes with the units' spiking more strongly some windows later than in
    the same window (a reward delivered with a latency); None otherwise.

    For lags of 0 to ``max_lag`` windows (contiguous windows only), the largest |z| over the units
    of the observed dependence (difference of the outcome's means with and without a spike, Welch
    SE; a difference without spread counts as infinite). A lag is suggested when its |z| is above 5
    and twice the same-window one; it adds to ``given_lag_s``, the lag the outcome already has (none
    is suggested after a negative, placebo lag).
    """
    n = y.size
    if n < 50 or H is None or given_lag_s < 0 or not np.allclose(start[1:], stop[:-1]):
        return None
    Hf = H.astype(float)

    def max_z(lag: int) -> float:
        yy, hh = y[lag:], Hf[: n - lag]
        ok = np.isfinite(yy)
        yy, hh = yy[ok], hh[ok]
        n1 = hh.sum(axis=0)
        n0 = hh.shape[0] - n1
        good = (n1 >= MIN_WINDOWS) & (n0 >= MIN_WINDOWS)
        if not good.any():
            return 0.0
        m1 = (hh * yy[:, None]).sum(axis=0) / np.maximum(n1, 1)
        m0 = ((1 - hh) * yy[:, None]).sum(axis=0) / np.maximum(n0, 1)
        v1 = (hh * (yy[:, None] - m1) ** 2).sum(axis=0) / np.maximum(n1 - 1, 1)
        v0 = ((1 - hh) * (yy[:, None] - m0) ** 2).sum(axis=0) / np.maximum(n0 - 1, 1)
        se = np.sqrt(v1 / np.maximum(n1, 1) + v0 / np.maximum(n0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, np.abs(m1 - m0) / se, np.where(np.abs(m1 - m0) > 0, np.inf, 0.0))
        z = np.where(good, z, 0.0)
        return float(np.nanmax(z))

    z = [max_z(lag) for lag in range(max_lag + 1)]
    best = int(np.argmax(z))
    if best == 0 or z[best] <= 5 or z[best] <= 2 * z[0]:
        return None
    width = float(np.median(stop - start))
    lag = round(given_lag_s + best * width, 9)
    return (f"latency: the outcome goes with the units' spiking most strongly {best} window(s) later (largest |z| "
            f"{z[best]:.1f}, against {z[0]:.1f} in the same window): if the reward follows the spikes with a latency, "
            f"analyse with reward_lag_s={lag:g} (--reward-lag {lag:g})")


def _observed_covariates(seen: np.ndarray, ok: np.ndarray, others: list,
                         y: np.ndarray) -> tuple[list, np.ndarray, list]:
    """Covariate units for one unit's adjusted fit under obs_intervals, its complete-case windows, and
    the units dropped: all others, unless their complete cases leave under a quarter of the unit's
    windows or under a quarter of the outcome's variation over them (sum of squared deviations);
    then the least observed are dropped one at a time until both are kept. (Dropping a unit leaves
    its confounding in, so the bar is low: it only keeps a covariate's sorting from leaving almost
    nothing to fit.)"""
    others, lost = list(others), []
    base = int(ok.sum())
    dev = (y - y[ok].mean()) ** 2 if base else np.zeros_like(y)
    total = float(dev[ok].sum()) if base else 0.0
    while others:
        rows = ok & seen[:, others].all(axis=1)
        if base == 0 or (rows.sum() >= COMPLETE_CASES * base and dev[rows].sum() >= COMPLETE_CASES * total):
            return others, rows, lost
        worst = min(others, key=lambda j: (seen[ok, j].mean(), j))
        others.remove(worst)
        lost.append(worst)
    return others, ok, lost


# ============================================================================ naive comparison
class NaiveComparison:
    """The naive comparisons the RD designs guard against, per unit.

    Three variants (``design`` column):

    * ``naive-od`` - observed dependence ``E[R | H_i = 1] - E[R | H_i = 0]`` over all windows
      (OLS of reward on the spike indicator);
    * ``naive-rate`` - slope of the OLS regression of reward on the unit's spike count in the window
      (its windowed rate in spikes per window, so the slope is per extra spike, comparable with the
      RD jump);
    * ``naive-rate-adjusted`` - the same with the other units' counts in the window as covariates.

    **Estimand.** None causal: they are associations. With correlated inputs (noise correlation c > 0)
    a unit's spiking goes with the others' spiking, so their effects leak into its estimate; the
    covariate adjustment removes the part carried by recorded units only, not by shared unrecorded
    input or by the filtered history of past windows. Inference: OLS with HC1 standard errors and
    windows treated as independent.

    Parameters
    ----------
    recording : Recording
        Spikes and an outcome (windows, series or trials).
    window_s : float, optional
        Lay contiguous windows of this length over the recording instead of using its windows table
        (see :func:`bci_credit.analysis._causal_data.window_data`).
    reward : str, optional
        Outcome: a windows column or series name (default ``windows['reward']``).
    units : sequence, optional
        Unit ids to analyse (default all).
    level : float
        Confidence level in percent.
    variants : sequence of str, optional
        Variants to fit, from :attr:`variants` (default all three).
    reward_lag_s : float
        Take each window's outcome this many seconds later (reward latency).
    """

    design = "naive"
    estimand = "association of reward with the unit's spiking (not causal under correlated input)"
    assumptions = ("no confounding of the unit's spiking and reward (fails with shared input)",
                   "windows are independent observations (variance)")
    variants = ("naive-od", "naive-rate", "naive-rate-adjusted")

    def __init__(self, recording: Recording, *, window_s: float | None = None, reward: str | None = None,
                 units: Sequence | None = None, level: float = 95.0, variants: Sequence[str] | None = None,
                 reward_lag_s: float = 0.0):
        check_design(recording, "naive", reward=reward)
        self.recording = recording
        self.window_s = window_s
        self.reward = reward
        self.reward_lag_s = check_reward_lag(reward_lag_s)
        self.units = units
        self.level = float(level)
        self.variants_used = tuple(variants) if variants else self.variants
        bad = set(self.variants_used) - set(self.variants)
        if bad:
            raise ValueError(f"unknown naive variant(s) {sorted(bad)}; choose from {self.variants}")

    def fit(self) -> CausalResults:
        """Fit every variant for every unit; units that cannot be estimated get NaN and a reason.

        Returns
        -------
        CausalResults
            One row per unit and variant.
        """
        import statsmodels.api as sm
        from scipy import stats

        rec = self.recording
        pos = _positions(rec, self.units)
        wd = window_data(rec, window_s=self.window_s, reward=self.reward, reward_lag_s=self.reward_lag_s)
        y = wd.reward
        counts = wd.counts if wd.counts is not None else wd.spiked.astype(np.int64)
        H = wd.spiked if wd.spiked is not None else counts > 0
        zcrit = stats.norm.ppf(0.5 + self.level / 200.0)
        frames = []
        finite_y = np.isfinite(y)
        seen = wd.observed  # obs_intervals: a unit's windows where it was not sorted are not its silent windows
        dropped: dict = {}
        # units whose adjusted fits have the same windows and the same units share one fit (the model is the
        # same: reward on all their counts), so a recording of N units takes one fit instead of N
        joint: dict = {}
        for variant in self.variants_used:
            df = _empty_rows(rec, pos, variant)
            for k, p in enumerate(pos):
                ok_y = finite_y if seen is None else finite_y & seen[:, p]
                col, key = 1, None
                if variant == "naive-od":
                    cols, x_of = [p], H
                elif variant == "naive-rate":
                    cols, x_of = [p], counts
                else:
                    others = [j for j in range(counts.shape[1]) if j != p]
                    if seen is not None:
                        others, ok_y, lost = _observed_covariates(seen, ok_y, others, y)
                        if lost:
                            dropped[rec.unit_ids[p]] = [rec.unit_ids[j] for j in lost]
                    cols, x_of = sorted([p] + others), counts
                    col = 1 + cols.index(p)
                    key = (tuple(cols), ok_y.tobytes())
                if ok_y.any() and np.ptp(y[ok_y]) == 0:  # nothing to explain: a fit would report rounding noise
                    df["reason"][k] = f"the reward is the same ({y[ok_y][0]:g}) in every analysed window"
                    continue
                n1 = int(H[ok_y, p].sum())
                n0 = int(ok_y.sum() - n1)
                df["n_left"][k], df["n_right"][k] = n0, n1
                if n1 < MIN_WINDOWS or n0 < MIN_WINDOWS:
                    df["reason"][k] = (f"too few windows with and without a spike ({n1} with, {n0} without; at least "
                                       f"{MIN_WINDOWS} of each needed for the robust SE)")
                    continue
                if key in joint:
                    keep, fit = joint[key]
                else:
                    X = np.column_stack([np.ones(int(ok_y.sum())), x_of[:, cols][ok_y].astype(float)])
                    keep = np.ptp(X, axis=0) > 0
                    keep[0] = True
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fit = sm.OLS(y[ok_y], X[:, keep]).fit(cov_type="HC1")
                    if key is not None:
                        joint[key] = keep, fit
                if not keep[col]:
                    df["reason"][k] = "the unit's spiking does not vary"
                    continue
                at = int(keep[:col].sum())  # the unit's coefficient among the kept columns
                b, se = float(fit.params[at]), float(fit.bse[at])
                df["estimate"][k], df["se"][k] = b, se
                df["ci_lo"][k], df["ci_hi"][k] = b - zcrit * se, b + zcrit * se
                df["pvalue"][k] = float(2 * stats.norm.sf(abs(b / se))) if se > 0 else np.nan
            frames.append(df.frame())
        df = pd.concat(frames, ignore_index=True)
        df = _add_truth(df, rec)
        order = {u: i for i, u in enumerate(rec.unit_ids[pos])}
        df = df.iloc[np.lexsort((df["design"].map(self.variants.index).to_numpy(),
                                 df["unit"].map(order).to_numpy()))].reset_index(drop=True)
        opts = {"reward": wd.reward_source, "n_windows": wd.n_windows, "level": self.level, "cov_type": "HC1"}
        notes = list(wd.notes)
        hint = latency_hint(y, H, wd.start_s, wd.stop_s, given_lag_s=self.reward_lag_s)
        if hint:
            notes.append(hint)
        if seen is not None and "naive-rate-adjusted" in self.variants_used and not seen.all():
            notes.append("obs_intervals: naive-rate-adjusted uses, for each unit, the windows where it and its covariate "
                         "units (the others) were all observed; a covariate is dropped only when keeping every one "
                         "would leave under a quarter of the unit's windows or of the outcome's variation over them "
                         "(least observed first; leaving a unit out leaves its confounding in)" + (": " + "; ".join(
                             f"unit {u} without {', '.join(map(str, v))}" for u, v in list(dropped.items())[:5])
                             + ("; ..." if len(dropped) > 5 else "") if dropped else ""))
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, notes, {}, {})

