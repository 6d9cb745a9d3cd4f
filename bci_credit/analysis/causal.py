"""Which units caused the reward? Regression-discontinuity designs on spike data, per unit.

Four designs, each a Model whose ``.fit()`` returns :class:`CausalResults` (one row per unit,
``.summary()``, ``.to_frame()``), after the statsmodels Model -> Results split:

=====================  =========================================================================
:class:`SpikeDiscontinuity`  **spike-discontinuity RD** (Lansdell & Kording 2023). Running variable:
                             the unit's maximum input drive Z in a window minus its threshold;
                             outcome: reward; treatment: the unit spiked in the window. Sharp when Z
                             is known (simulations, intracellular recordings).
:class:`RewardThreshold`     **reward-threshold RD** on a BCI recording. Running variable: the
                             decoder output (its maximum in an epoch) minus the reward threshold;
                             outcome: the subsequent change in each unit's firing rate. The causal
                             effect of reward on activity; works on real data.
:class:`FuzzySpikeRD`        **fuzzy spike RD** for extracellular data, where drive is not observed:
                             a drive *proxy* (cross-fitted Poisson-GLM predictor from the other units,
                             :mod:`bci_credit.analysis.proxy`) replaces Z, treatment = spiked,
                             outcome = reward. Reports its first stage and refuses when it is weak.
:class:`NaiveComparison`     the **naive** comparisons: observed dependence ``E[R|H=1] - E[R|H=0]``,
                             and the regression of reward on the unit's spike count per window,
                             without and with the other units' counts as covariates.
=====================  =========================================================================

:func:`analyze_recording` runs a design plus the naive comparison side by side on a Recording;
:func:`analyze_file` does it for one NWB file (the per-file function of ``bci-credit analyze``).

The RD fits are :func:`bci_credit.analysis.rd.fit_many` / :class:`~bci_credit.analysis.rd.RD`
(local-linear, MSE-optimal bandwidth, robust bias-corrected inference, Calonico-Cattaneo-Titiunik
2014); the naive regressions are statsmodels OLS with HC1 standard errors. Table columns are in
:data:`RESULT_COLUMNS`: for the RD designs ``estimate`` is the conventional local-linear estimate,
``se``, ``ci_lo``/``ci_hi`` and ``pvalue`` are robust bias-corrected (report these), ``estimate_bc``
is the bias-corrected point estimate at the centre of that CI. A unit that cannot be estimated gets
NaN and a ``reason``; the batch goes on. A recording that lacks what a design needs raises
:class:`DesignUnavailable`, naming what is missing and which designs can run instead.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..recording import Recording, TimeSeries
from ._causal_data import (
    DESIGNS,
    DesignUnavailable,
    WindowData,
    check_design,
    count_spikes,
    decoder_threshold,
    density_pvalues,
    design_requirements,
    event_times_from_trials,
    find_decoder,
    unit_thresholds,
    window_data,
)

__all__ = [
    "SpikeDiscontinuity",
    "RewardThreshold",
    "FuzzySpikeRD",
    "NaiveComparison",
    "CausalResults",
    "CausalAnalysis",
    "DesignUnavailable",
    "WeakFirstStage",
    "analyze_recording",
    "analyze_file",
    "available_designs",
    "reconstruct_decoder",
    "threshold_crossings",
    "proxy_noise_curve",
    "DESIGNS",
    "RESULT_COLUMNS",
]

logger = logging.getLogger("bci_credit")

#: Columns of every :class:`CausalResults` table (truth columns ``true_*`` follow for simulations).
RESULT_COLUMNS = ("unit", "is_control", "design", "estimate", "se", "ci_lo", "ci_hi", "pvalue", "estimate_bc",
                  "bandwidth", "bandwidth_right", "n_left", "n_right", "density_p", "first_stage", "first_stage_se",
                  "first_stage_f", "note", "reason")

#: Options passed through to the RD fits (see :class:`bci_credit.analysis.rd.RD`).
RD_OPTIONS = ("p", "q", "h", "b", "rho", "kernel", "bwselect", "vce", "nnmatch", "level", "masspoints", "bwcheck",
              "bwrestrict")

_TRUTH_COLUMNS = ("true_rd_effect", "true_marginal_effect", "true_direct_effect", "true_total_effect")


class WeakFirstStage(ValueError):
    """The fuzzy design's first stage (jump in spike probability at the proxy cutoff) is too weak."""


# ============================================================================ results
@dataclass
class CausalResults:
    """Per-unit causal-effect estimates of one design.

    Attributes
    ----------
    design : str
        ``"spike"``, ``"reward-threshold"``, ``"fuzzy"`` or ``"naive"``.
    estimand : str
        What ``estimate`` estimates, in words.
    assumptions : tuple of str
        What must hold for the estimate to be causal.
    table : DataFrame
        One row per unit (per unit and variant for the naive design), columns :data:`RESULT_COLUMNS`
        (+ ``true_*`` truth columns of simulations).
    options : dict
        Settings used (bandwidth rule, kernel, windows, thresholds ...).
    notes : list of str
        What was assumed or could not be done (e.g. density test unavailable).
    data : dict
        For plots: ``unit -> {"x", "y", "cutoff"}`` (running variable and outcome).
    diagnostics : dict
        Design-specific extras (proxy deviance explained, sharpness checks ...).
    """

    design: str
    estimand: str
    assumptions: tuple
    table: pd.DataFrame
    options: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    data: dict = field(default_factory=dict, repr=False)
    diagnostics: dict = field(default_factory=dict)

    @property
    def level(self) -> float:
        """Confidence level in percent."""
        return float(self.options.get("level", 95.0))

    def to_frame(self) -> pd.DataFrame:
        """The per-unit table (a copy)."""
        return self.table.copy()

    def estimates(self) -> pd.Series:
        """``estimate`` indexed by unit (first variant of the naive design)."""
        t = self.table.drop_duplicates("unit")
        return pd.Series(t["estimate"].to_numpy(), index=pd.Index(t["unit"], name="unit"), name=self.design)

    def drivers(self) -> pd.DataFrame:
        """Rows whose confidence interval excludes 0 (units with a detectable effect), largest first."""
        t = self.table
        sig = t[np.isfinite(t["ci_lo"]) & ((t["ci_lo"] > 0) | (t["ci_hi"] < 0))]
        return sig.reindex(sig["estimate"].abs().sort_values(ascending=False).index)

    def summary(self, max_rows: int = 40) -> str:
        """A readable text report: design, estimand, assumptions, the per-unit table, notes."""
        t = self.table
        lines = [f"Causal effects per unit - design: {self.design}", "=" * 100,
                 f"Estimand: {self.estimand}"]
        for a in self.assumptions:
            lines.append(f"  assumes: {a}")
        opts = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.options.items()
                         if not isinstance(v, (list, dict, tuple)))
        if opts:
            lines.append(f"Options: {opts}")
        lines.append("")
        lev = f"{self.level:g}% CI"
        head = f"{'unit':>8} {'variant':<26}{'estimate':>10}{'se':>9}{lev:>22}{'p':>10}{'h':>8}{'N-/N+':>12}{'dens.p':>8}"
        if self.design == "fuzzy":
            head += f"{'1st st.':>9}{'F':>7}"
        lines += [head, "-" * len(head)]
        for _, r in t.head(max_rows).iterrows():
            unit = str(r["unit"]) + ("*" if bool(r.get("is_control", False)) else "")
            if not np.isfinite(r["estimate"]):
                line = f"{unit:>8} {str(r['design']):<26}{'-':>10}   {r['reason']}"
                if self.design == "fuzzy" and np.isfinite(r.get("first_stage", np.nan)):
                    line = (f"{unit:>8} {str(r['design']):<26}{'-':>10}   first stage {r['first_stage']:.3g} "
                            f"(F = {r['first_stage_f']:.3g}): {r['reason']}")
                lines.append(line)
                continue
            ci = f"[{r['ci_lo']:.4g}, {r['ci_hi']:.4g}]"
            nn = f"{_fmt_int(r['n_left'])}/{_fmt_int(r['n_right'])}"
            line = (f"{unit:>8} {str(r['design']):<26}{r['estimate']:>10.4g}{r['se']:>9.3g}{ci:>22}"
                    f"{_fmt(r['pvalue'], 10)}{_fmt(r['bandwidth'], 8)}{nn:>12}{_fmt(r['density_p'], 8)}")
            if self.design == "fuzzy":
                line += f"{_fmt(r['first_stage'], 9)}{_fmt(r['first_stage_f'], 7)}"
            lines.append(line)
        if len(t) > max_rows:
            lines.append(f"... {len(t) - max_rows} more rows (see to_frame())")
        lines.append("-" * len(head))
        lines.append("* control unit.  N-/N+: effective observations left/right of the cutoff (RD) or windows "
                     "without/with a spike (naive).")
        drv = self.drivers()
        if len(drv):
            many = self.table["design"].nunique() > 1
            lines.append(f"Units with a {lev} excluding 0: " + ", ".join(
                f"{u} ({d + ': ' if many else ''}{e:+.3g})" for u, d, e in zip(drv["unit"], drv["design"], drv["estimate"])))
        else:
            lines.append(f"No unit has a {lev} excluding 0.")
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        ok = int(np.isfinite(self.table["estimate"]).sum())
        return f"<CausalResults design={self.design!r}: {len(self.table)} rows, {ok} estimated>"

    def plot(self, unit, ax=None, **kwargs):
        """RD plot of one unit: binned means of the outcome against the running variable, with the
        local-linear fits on each side (see :func:`bci_credit.analysis._causal_plot.plot_unit`)."""
        from ._causal_plot import plot_unit

        return plot_unit(self, unit, ax=ax, **kwargs)


def _fmt(v, width: int) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return f"{'-':>{width}}"
    return f"{v:>{width}.3g}" if np.isfinite(v) else f"{'-':>{width}}"


def _fmt_int(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return str(int(v)) if np.isfinite(v) else "-"


class _Rows:
    """Column arrays of a results table, filled in place; :meth:`frame` builds the DataFrame once.

    ``rows["estimate"][k] = v`` sets one cell; ``rows["design"] = "x"`` sets a whole column.
    """

    def __init__(self, rec: Recording, positions: Sequence[int], design: str):
        pos = list(positions)
        n = len(pos)
        self.cols: dict[str, np.ndarray] = {c: np.full(n, np.nan) for c in RESULT_COLUMNS}
        self.cols["unit"] = np.array(rec.unit_ids[pos].tolist() + [None], dtype=object)[:n]
        self.cols["is_control"] = rec.units["is_control"].to_numpy(bool)[pos]
        self.cols["design"] = np.full(n, design, dtype=object)
        self.cols["note"] = np.full(n, "", dtype=object)
        self.cols["reason"] = np.full(n, None, dtype=object)

    def __len__(self) -> int:
        return len(self.cols["unit"])

    def __getitem__(self, col: str) -> np.ndarray:
        return self.cols[col]

    def __setitem__(self, col: str, value) -> None:
        self.cols[col][:] = value

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: self.cols[c] for c in RESULT_COLUMNS})


def _empty_rows(rec: Recording, positions: Sequence[int], design: str) -> _Rows:
    return _Rows(rec, positions, design)


def _add_truth(df: pd.DataFrame, rec: Recording, columns: Sequence[str] = _TRUTH_COLUMNS) -> pd.DataFrame:
    """Append the simulation's ground-truth columns (matched by unit id)."""
    for col in columns:
        if col in rec.units.columns:
            df[col] = df["unit"].map(rec.units[col]).to_numpy()
    return df


def _positions(rec: Recording, units) -> list[int]:
    if units is None:
        return list(range(rec.n_units))
    if isinstance(units, (str, int, np.integer)):
        units = [units]
    return [rec.unit_position(_match_id(rec, u)) for u in units]


def _match_id(rec: Recording, uid):
    """A unit id as stored (``"3"`` from the command line matches the integer id 3)."""
    if uid in rec.units.index:
        return uid
    for cand in rec.units.index:
        if str(cand) == str(uid):
            return cand
    return uid  # unit_position raises the clear KeyError


def _rd_kwargs(options: Mapping) -> dict:
    bad = set(options) - set(RD_OPTIONS)
    if bad:
        raise TypeError(f"unknown option(s) {sorted(bad)}; RD options are {', '.join(RD_OPTIONS)}")
    return dict(options)


def _fill_from_batch(df: pd.DataFrame, rows: Sequence[int], fit: pd.DataFrame) -> None:
    """Copy a :func:`fit_many` table into result rows ``rows`` (robust inference reported)."""
    rows = list(rows)
    df["estimate"][rows] = fit["estimate"].to_numpy(float)
    df["estimate_bc"][rows] = fit["tau_bc"].to_numpy(float)
    df["se"][rows] = fit["se_rb"].to_numpy(float)
    df["ci_lo"][rows] = fit["ci_rb_lo"].to_numpy(float)
    df["ci_hi"][rows] = fit["ci_rb_hi"].to_numpy(float)
    df["pvalue"][rows] = fit["pv_rb"].to_numpy(float)
    df["bandwidth"][rows] = fit["h_left"].to_numpy(float)
    df["bandwidth_right"][rows] = fit["h_right"].to_numpy(float)
    df["n_left"][rows] = fit["n_h_left"].to_numpy(float)
    df["n_right"][rows] = fit["n_h_right"].to_numpy(float)
    reasons = fit["reason"].to_numpy(object)
    for r, why in zip(rows, reasons):
        if why is not None and not (isinstance(why, float) and np.isnan(why)):
            df["reason"][r] = str(why)


def _fill_from_rd(df: pd.DataFrame, row: int, res) -> None:
    """Copy one :class:`RDResults` into result row ``row``."""
    df["estimate"][row] = res.tau_cl
    df["estimate_bc"][row] = res.tau_bc
    df["se"][row] = res.se_rb
    df["ci_lo"][row], df["ci_hi"][row] = res.ci_rb
    df["pvalue"][row] = res.pv_rb
    df["bandwidth"][row], df["bandwidth_right"][row] = res.h
    df["n_left"][row], df["n_right"][row] = (float(v) for v in res.n_h)


def _quiet_fit_many(x, y, cutoff, *, units, **kwargs) -> pd.DataFrame:
    """:func:`fit_many` without numerical warnings; if the batch raises, unit by unit, so that one
    bad unit gets NaN and a reason instead of stopping the others."""
    from .rd import BATCH_COLUMNS, fit_many

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return fit_many(x, y, cutoff, units=units, **kwargs)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            if x.shape[1] == 1:
                row = {c: np.nan for c in BATCH_COLUMNS}
                row.update(unit=units[0], reason=f"RD fit failed ({type(err).__name__}: {err})")
                return pd.DataFrame([row], columns=list(BATCH_COLUMNS))
        y = np.asarray(y)
        parts = [_quiet_fit_many(x[:, [j]], y if y.ndim == 1 else y[:, [j]], cutoff, units=[units[j]], **kwargs)
                 for j in range(x.shape[1])]
        return pd.concat(parts, ignore_index=True)


def _fill_fuzzy_row(df, k: int, y, x, treatment, rd_options) -> None:
    """Fit a fuzzy RD at cutoff 0 into row ``k`` with its first stage, or record why it failed."""
    try:
        res = _quiet_rd(y, x, 0.0, fuzzy=treatment, **rd_options)
        _fill_from_rd(df, k, res)
        fs = res.first_stage
        df["first_stage"][k] = fs["coef"][0]
        df["first_stage_se"][k] = fs["se"][0]
        df["first_stage_f"][k] = (fs["coef"][0] / fs["se"][0]) ** 2
    except ValueError as err:
        df["reason"][k] = str(err).replace("RD cannot be estimated: ", "")


def _quiet_rd(y, x, cutoff, *, fuzzy=None, **kwargs):
    """One :class:`RD` fit on the rows where y, x (and the treatment) are finite, without warnings."""
    from .rd import RD

    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    ok = np.isfinite(y) & np.isfinite(x)
    if fuzzy is not None:
        fuzzy = np.asarray(fuzzy, dtype=float)
        ok &= np.isfinite(fuzzy)
        fuzzy = fuzzy[ok]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return RD(y[ok], x[ok], cutoff, fuzzy=fuzzy, **kwargs).fit()


def _level(options: Mapping) -> float:
    return float(options.get("level", 95.0))


# ============================================================================ spike-discontinuity RD
class SpikeDiscontinuity:
    """Spike-discontinuity RD per unit: the effect of a unit spiking on reward.

    **Estimand.** ``beta_i = E[R(H_i = 1) - R(H_i = 0) | Z_i = theta_i]``: the jump of the expected
    reward at the unit's threshold, i.e. the effect of the unit's spike *as it happens when its drive
    just reaches threshold* (spike at the crossing time, with its in-window consequences) on the
    reward at the window's end, for windows at the margin.

    **Assumptions.** (1) The expected reward without the spike, ``E[R(0) | Z_i]``, and with it are
    continuous in ``Z_i`` at threshold - other units' activity, shared inputs and the unit's history
    change smoothly with its drive, which is what makes the design robust to confounding by
    correlated inputs. (2) No manipulation: the density of ``Z_i`` is continuous at threshold
    (``density_p``). (3) Sharp assignment: the unit spikes exactly when ``Z_i > theta_i`` (checked
    against the recorded spike indicator; units that violate it in more than ``sharp_tol`` of windows
    are fitted as a fuzzy RD with the spike indicator as treatment). (4) Windows are treated as
    independent observations in the variance.

    Parameters
    ----------
    recording : Recording
        Must have ``windows`` and ``drive`` (Z); ``spiked`` (H) is used for the sharpness check.
    units : sequence, optional
        Unit ids to analyse (default all).
    threshold : float, sequence or mapping, optional
        Spike thresholds (default: the units table's ``threshold``; NaN -> that unit is skipped).
    reward : str, optional
        Outcome: a windows column or series name (default ``windows['reward']``).
    density : bool
        Run the density (manipulation) test of Z at threshold.
    sharp_tol : float
        Largest fraction of windows where ``spiked`` may disagree with ``Z > theta`` for a sharp fit.
    n_jobs : int
        Threads for the vectorised RD fits.
    **rd_options
        Passed to the RD fits (``p``, ``kernel``, ``bwselect``, ``vce``, ``h``, ``level`` ...).

    Notes
    -----
    In simulations the units column ``true_marginal_effect`` inserts the spike at a *uniformly
    random* step of the window. That is a different quantity from this estimand: a spike at the
    margin occurs when the drive reaches its maximum, mostly late in the window, where it adds most
    to the window-end output (in the paper's 2-neuron setting the realised effect is about 9 %
    larger). ``analysis/causal_coverage.py`` computes the realised effect and measures the coverage
    of the robust intervals against it (``analysis/results/causal/coverage.json``).

    Examples
    --------
    >>> res = SpikeDiscontinuity(recording).fit()            # doctest: +SKIP
    >>> print(res.summary()); res.to_frame()                   # doctest: +SKIP
    """

    design = "spike"
    estimand = ("jump of E[reward | Z_i] at the unit's threshold: the effect of the unit's spike (as it occurs "
                "when its drive just reaches threshold) on the window-end reward")
    assumptions = (
        "E[reward | Z_i] without and with the spike is continuous in the drive Z_i at threshold (no other "
        "discontinuity at theta_i)",
        "no manipulation: the density of Z_i is continuous at threshold (density test)",
        "the unit spikes exactly when Z_i > theta_i (sharp); else a fuzzy RD on the spike indicator",
        "windows are independent observations (variance)",
    )

    def __init__(self, recording: Recording, *, units=None, threshold=None, reward: str | None = None,
                 density: bool = True, sharp_tol: float = 0.01, n_jobs: int = 1, **rd_options):
        check_design(recording, "spike", reward=reward)
        self.recording = recording
        self.units = units
        self.threshold = threshold
        self.reward = reward
        self.density = bool(density)
        self.sharp_tol = float(sharp_tol)
        self.n_jobs = n_jobs
        self.rd_options = _rd_kwargs(rd_options)

    def fit(self) -> CausalResults:
        """Estimate every unit's effect; units that cannot be estimated get NaN and a reason."""
        rec = self.recording
        pos = _positions(rec, self.units)
        wd = window_data(rec, reward=self.reward)
        thr = unit_thresholds(rec, self.threshold)[pos]
        x = wd.drive[:, pos] - thr[None, :]
        y = wd.reward
        df = _empty_rows(rec, pos, self.design)
        notes = list(wd.notes)
        mismatch = np.full(len(pos), np.nan)
        if wd.spiked is not None:
            h = wd.spiked[:, pos]
            with np.errstate(invalid="ignore"):
                finite = np.isfinite(x)
                mismatch = ((h != (x > 0)) & finite).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
        no_thr = ~np.isfinite(thr)
        fuzzy = np.isfinite(mismatch) & (mismatch > self.sharp_tol) & ~no_thr
        sharp = ~no_thr & ~fuzzy
        for k in np.flatnonzero(no_thr):
            df["reason"][k] = "spike threshold unknown (units.threshold is NaN); pass threshold="
        idx = np.flatnonzero(sharp)
        if idx.size:
            fit = _quiet_fit_many(x[:, idx], y, 0.0, units=list(df["unit"][idx]), n_jobs=self.n_jobs,
                                  **self.rd_options)
            _fill_from_batch(df, idx, fit)
        for k in np.flatnonzero(fuzzy):
            df["design"][k] = "spike (fuzzy)"
            df["note"][k] = f"spiked disagrees with Z > threshold in {mismatch[k]:.1%} of windows: fuzzy RD"
            _fill_fuzzy_row(df, k, y, x[:, k], wd.spiked[:, pos[k]].astype(float), self.rd_options)
        if self.density:
            ok = ~no_thr
            p, dn = density_pvalues(x[:, ok], np.zeros(ok.sum()), list(df["unit"][ok]))
            df["density_p"][np.flatnonzero(ok)] = p
            notes += dn
        df = _add_truth(df.frame(), rec)
        data = {u: {"x": x[:, k], "y": y, "cutoff": 0.0, "xlabel": f"max drive Z - threshold (unit {u})",
                    "ylabel": "reward"}
                for k, u in enumerate(df["unit"])}
        opts = {"reward": wd.reward_source, "n_windows": wd.n_windows, "level": _level(self.rd_options),
                **{k: v for k, v in self.rd_options.items()}}
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, notes, data,
                             {"sharp_mismatch": dict(zip(df["unit"], mismatch))})


# ============================================================================ reward-threshold RD
def reconstruct_decoder(recording: Recording, unit, *, tau_s: float = 0.2, rate_hz: float = 60.0,
                        gain: float = 1.0, baseline_hz: float = 0.0) -> TimeSeries:
    """Rebuild a threshold decoder's output from the control unit's spikes.

    ``d(t) = gain * (r(t) - baseline_hz)``, where ``r`` is the unit's rate (Hz) through a causal
    exponential filter of time constant ``tau_s``, sampled at ``rate_hz`` (the update rate of a
    Fetz/Arduin-style threshold task). Use it when a file records the decoder's parameters but not
    its output.
    """
    from scipy.signal import lfilter

    st = recording.spike_times[recording.unit_position(_match_id(recording, unit))]
    t0, dur = recording.t_start_s, recording.duration_s
    dt = 1.0 / float(rate_hz)
    t = t0 + dt * np.arange(1, int(math.floor(dur / dt + 1e-9)) + 1)
    # r(t_k) = sum over spikes s <= t_k of exp(-(t_k - s) / tau) / tau, with the exact spike times:
    # each spike enters at the first sample at or after it, already decayed by its offset
    k = np.searchsorted(t, st, side="left")
    keep = k < t.size
    inc = np.bincount(k[keep], weights=np.exp(-(t[k[keep]] - st[keep]) / tau_s) / tau_s, minlength=t.size)
    r = lfilter([1.0], [1.0, -math.exp(-dt / float(tau_s))], inc)
    return TimeSeries(t, gain * (r - baseline_hz), unit="Hz" if gain == 1.0 else "a.u.",
                      description=f"exponential-filter rate of unit {unit} (tau {tau_s:g} s) at {rate_hz:g} Hz")


def threshold_crossings(series: TimeSeries, threshold: float, *, refractory_s: float = 0.0) -> np.ndarray:
    """Times at which ``series`` crosses ``threshold`` upward (at most one per ``refractory_s``)."""
    v = np.asarray(series.values, dtype=float)
    if v.ndim > 1:
        v = v[:, 0]
    up = np.flatnonzero((v[1:] >= threshold) & (v[:-1] < threshold)) + 1
    times = series.t_s[up]
    if refractory_s > 0 and times.size:
        keep = [times[0]]
        for t in times[1:]:
            if t - keep[-1] >= refractory_s:
                keep.append(t)
        times = np.asarray(keep)
    return times


class RewardThreshold:
    """Reward-threshold RD on a BCI recording: the effect of reward on each unit's firing.

    The session is cut into epochs of ``epoch_s`` seconds over the decoder output's span. Per epoch k,
    the running variable is ``x_k = max decoder output in the epoch - threshold`` (reward is earned
    when the decoder reaches threshold), and for each unit the outcome is its firing-rate change
    ``rate in [stop_k + gap_s, stop_k + gap_s + horizon_s) - rate in [start_k - baseline_s, start_k)``
    (Hz). Treatment is the reward: the reward events in the epoch (series ``reward`` or trials
    ``reward_time_s``) when the recording has them, else ``x_k >= 0``. When the events disagree with
    ``x_k >= 0`` in more than ``sharp_tol`` of epochs (refractory periods, hold times, or epochs that
    start above threshold, which an upward-crossing rule does not reward), the fit is a fuzzy RD with
    the reward events as treatment. Epochs are not selected on the decoder value at their start:
    that value is the epoch's maximum whenever the decoder only decays, so such a selection would
    itself create a discontinuity at the threshold (the density test detects it).

    **Estimand.** ``E[dRate_i(reward) - dRate_i(no reward) | decoder max = threshold]``: the causal
    effect of receiving the reward in this epoch on the unit's subsequent firing, for epochs where the
    decoder just reached (or just missed) the threshold. It is an intent-to-treat effect of reaching
    the threshold *now*: an epoch that just misses is often followed by a crossing (and a reward)
    soon after, and a reward now can postpone later ones (refractory periods), so when rewards
    fall inside the outcome window of the near misses the estimate is the reward response minus
    that displaced response. Keep ``horizon_s`` short relative to the typical time between a near
    miss and the next crossing for the estimate to be the reward response itself.

    **Assumptions.** (1) Apart from the reward, the firing change is continuous in the decoder
    output at threshold (the decoder output is itself built from spikes, so its own smooth
    relation with future firing - regression to the mean - is absorbed by the local-linear fits).
    (2) The subject cannot place the decoder output precisely on one side of the threshold
    (density test). (3) Epochs are independent observations (the variance ignores overlap of
    outcome windows of neighbouring epochs). It needs no drive, so it runs on real recordings.

    Parameters
    ----------
    recording : Recording
        With a continuous decoder-output series and spike times.
    decoder : str, optional
        Series name (default: the first of ``decoder_output``, ``decoder``, ``control_signal``, ``bci_output``).
    threshold : float, optional
        Reward threshold (default ``recording.meta['decoder']`` key ``threshold``, ``reward_threshold``,
        ``theta`` or ``theta_hz``, the key this package's BCI simulations write).
    reward : str, optional
        Reward events (series or trials column); default series ``reward`` / trials ``reward_time_s``;
        ``"none"`` ignores recorded events (sharp design on ``x >= 0``).
    epoch_s, horizon_s, baseline_s, gap_s : float
        Epoch length, outcome window after the epoch, baseline window before it, and a gap between
        epoch end and outcome window.
    exclude_after_reward_s : float, optional
        Leave out epochs that start less than this long after a recorded reward (refractory or
        lock-out periods, and baselines holding the previous reward's response); default
        ``baseline_s``. Past rewards are fixed before the epoch, so this does not bias the RD.
    units : sequence, optional
        Units to analyse.
    density : bool
        Run the density test of the running variable.
    sharp_tol : float
        Largest fraction of epochs where events and ``x >= 0`` may disagree for a sharp fit.
    n_jobs : int
        Threads for the vectorised RD fits.
    **rd_options
        Passed to the RD fits (``p``, ``kernel``, ``bwselect``, ``vce``, ``h``, ``level`` ...).
    """

    design = "reward-threshold"
    estimand = ("jump at the reward threshold of the expected change in the unit's firing rate (Hz) after an "
                "epoch: the effect of reward (reaching the threshold now) on activity")
    assumptions = (
        "apart from reward, the firing change is continuous in the decoder output at threshold",
        "no precise sorting of the decoder output around the threshold (density test)",
        "epochs are independent observations (variance)",
    )

    def __init__(self, recording: Recording, *, decoder: str | None = None, threshold: float | None = None,
                 reward: str | None = None, epoch_s: float = 0.1, horizon_s: float = 0.3, baseline_s: float = 0.5,
                 gap_s: float = 0.0, exclude_after_reward_s: float | None = None, units=None,
                 density: bool = True, sharp_tol: float = 0.01, n_jobs: int = 1, **rd_options):
        check_design(recording, "reward-threshold", decoder=decoder, threshold=threshold)
        for name, v in (("epoch_s", epoch_s), ("horizon_s", horizon_s), ("baseline_s", baseline_s)):
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        if not (np.isfinite(gap_s) and gap_s >= 0):
            raise ValueError(f"gap_s must be >= 0, got {gap_s!r}")
        self.recording = recording
        self.decoder = find_decoder(recording, decoder)
        self.threshold = decoder_threshold(recording, threshold)
        self.reward = reward
        self.epoch_s, self.horizon_s, self.baseline_s, self.gap_s = map(float, (epoch_s, horizon_s, baseline_s, gap_s))
        excl = self.baseline_s if exclude_after_reward_s is None else float(exclude_after_reward_s)
        if not (np.isfinite(excl) and excl >= 0):
            raise ValueError(f"exclude_after_reward_s must be >= 0, got {exclude_after_reward_s!r}")
        self.exclude_after_reward_s = excl
        self.units = units
        self.density = bool(density)
        self.sharp_tol = float(sharp_tol)
        self.n_jobs = n_jobs
        self.rd_options = _rd_kwargs(rd_options)

    def _epochs(self):
        ts = self.recording.series[self.decoder]
        v = np.asarray(ts.values, dtype=float)
        if v.ndim > 1:
            if v.shape[1] != 1:
                raise ValueError(f"decoder series {self.decoder!r} has {v.shape[1]} channels; the reward-threshold "
                                 "design needs a one-dimensional decoder output")
            v = v[:, 0]
        t = ts.t_s
        if t.size < 2:
            raise ValueError(f"decoder series {self.decoder!r} has {t.size} sample(s); nothing to analyse")
        n = int(math.floor((t[-1] - t[0]) / self.epoch_s + 1e-9))
        if n < 10:
            raise ValueError(f"the decoder output spans {t[-1] - t[0]:.3g} s: fewer than 10 epochs of {self.epoch_s:g} s")
        start = t[0] + self.epoch_s * np.arange(n)
        stop = start + self.epoch_s
        i0 = np.searchsorted(t, start, side="left")
        i1 = np.searchsorted(t, stop, side="left")
        # maximum of the decoder output in each epoch (NaN for an epoch without finite samples)
        vv = np.where(np.isfinite(v), v, -np.inf)
        x = np.full(n, -np.inf)
        has = i1 > i0
        x[has] = [vv[a:b].max() for a, b in zip(i0[has], i1[has])]
        x[~np.isfinite(x)] = np.nan
        return start, stop, x - self.threshold

    def _treatment(self, start, stop):
        rec = self.recording
        if self.reward is not None and str(self.reward).lower() == "none":
            return None, "x >= 0 (recorded reward events ignored)"
        name = self.reward
        events = None
        src = ""
        if name is None:
            if "reward" in rec.series and rec.series["reward"].kind == "events":
                events, src = rec.series["reward"].t_s, "series 'reward'"
            else:
                ev = event_times_from_trials(rec, "reward_time_s")
                if ev is not None and ev.size:
                    events, src = ev, "trials['reward_time_s']"
        elif name in rec.series:
            events, src = rec.series[name].t_s, f"series {name!r}"
        else:
            ev = event_times_from_trials(rec, name)
            if ev is None:
                raise ValueError(f"reward={name!r}: no such series or trials column of event times")
            events, src = ev, f"trials[{name!r}]"
        if events is None:
            return None, "x >= 0 (no reward events recorded)"
        events = np.sort(np.asarray(events, dtype=float))
        ts = TimeSeries(events, np.ones(events.size), kind="events")
        from ._causal_data import series_per_window

        self._events = events
        return (series_per_window(ts, start, stop) > 0).astype(float), f"reward events from {src}"

    def epoch_table(self) -> pd.DataFrame:
        """The epochs of the design, one row each.

        Columns: ``start_s``, ``stop_s``; ``running`` (max decoder output minus threshold; NaN for
        an epoch left out: no decoder sample, or within ``exclude_after_reward_s`` of a reward);
        ``reward`` (1/0 from the recorded events, NaN without events); ``inside`` (the baseline and
        outcome windows lie within the recording); ``outcome_start_s``/``outcome_stop_s`` and
        ``baseline_start_s``/``baseline_stop_s``.
        """
        start, stop, x = self._epochs()
        self._events = None
        T, self._t_src = self._treatment(start, stop)
        recent = np.zeros(x.size, dtype=bool)
        if self._events is not None and self._events.size and self.exclude_after_reward_s > 0:
            j = np.searchsorted(self._events, start, side="left") - 1  # last reward before the epoch
            last = np.where(j >= 0, self._events[np.maximum(j, 0)], -np.inf)
            recent = (start - last) < self.exclude_after_reward_s
        self._n_recent = int((recent & np.isfinite(x)).sum())
        rec = self.recording
        t_first, t_last = rec.t_start_s, rec.t_start_s + rec.duration_s
        a_lo, a_hi = stop + self.gap_s, stop + self.gap_s + self.horizon_s
        b_lo, b_hi = start - self.baseline_s, start
        return pd.DataFrame({
            "start_s": start, "stop_s": stop, "running": np.where(recent, np.nan, x),
            "reward": np.full(x.size, np.nan) if T is None else T,
            "inside": (b_lo >= t_first - 1e-9) & (a_hi <= t_last + 1e-9),
            "outcome_start_s": a_lo, "outcome_stop_s": a_hi, "baseline_start_s": b_lo, "baseline_stop_s": b_hi,
        })

    def fit(self) -> CausalResults:
        """Estimate every unit's reward response; NaN rows with a reason for units that cannot be fitted."""
        rec = self.recording
        pos = _positions(rec, self.units)
        ep = self.epoch_table()
        x = ep["running"].to_numpy()
        T = None if ep["reward"].isna().all() else ep["reward"].to_numpy()
        t_src, n_recent = self._t_src, self._n_recent
        spikes = [rec.spike_times[p] for p in pos]
        after = count_spikes(spikes, ep["outcome_start_s"].to_numpy(), ep["outcome_stop_s"].to_numpy()) / self.horizon_s
        before = count_spikes(spikes, ep["baseline_start_s"].to_numpy(), ep["baseline_stop_s"].to_numpy()) / self.baseline_s
        inside = ep["inside"].to_numpy()
        Y = after - before
        Y[~inside] = np.nan
        df = _empty_rows(rec, pos, self.design)
        notes = [f"{inside.sum()} of {x.size} epochs of {self.epoch_s:g} s have full baseline and outcome windows"]
        if n_recent:
            notes.append(f"{n_recent} epochs starting less than {self.exclude_after_reward_s:g} s after a reward are "
                         "left out (exclude_after_reward_s)")
        fuzzy = False
        mismatch = np.nan
        if T is not None:
            ok = np.isfinite(x) & inside
            mismatch = float(np.mean(T[ok] != (x[ok] >= 0))) if ok.any() else np.nan
            fuzzy = bool(np.isfinite(mismatch) and mismatch > self.sharp_tol)
        notes.append(f"treatment: {t_src}" + (f"; it disagrees with x >= 0 in {mismatch:.1%} of epochs: fuzzy RD"
                                              if fuzzy else ""))
        X = np.repeat(x[:, None], len(pos), axis=1)
        if not fuzzy:
            fit = _quiet_fit_many(X, Y, 0.0, units=list(df["unit"]), n_jobs=self.n_jobs, **self.rd_options)
            _fill_from_batch(df, range(len(pos)), fit)
        else:
            df["design"] = "reward-threshold (fuzzy)"
            for k in range(len(pos)):
                _fill_fuzzy_row(df, k, Y[:, k], x, T, self.rd_options)
        if self.density:
            p, dn = density_pvalues(x[inside], np.zeros(1), ["decoder"])
            df["density_p"] = p[0]
            notes += dn
        df = _add_truth(df.frame(), rec, ("true_reward_response",))
        data = {u: {"x": x, "y": Y[:, k], "cutoff": 0.0, "xlabel": "max decoder output in epoch - threshold",
                    "ylabel": f"rate change of unit {u} (Hz)"} for k, u in enumerate(df["unit"])}
        opts = {"decoder": self.decoder, "threshold": self.threshold, "epoch_s": self.epoch_s,
                "horizon_s": self.horizon_s, "baseline_s": self.baseline_s, "gap_s": self.gap_s,
                "exclude_after_reward_s": self.exclude_after_reward_s,
                "n_epochs": int(x.size), "level": _level(self.rd_options), **self.rd_options}
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, notes, data,
                             {"treatment_mismatch": mismatch, "fuzzy": fuzzy})


# ============================================================================ fuzzy spike RD
class FuzzySpikeRD:
    """Fuzzy spike RD with a drive proxy, for recordings where the drive Z is not observed.

    The unit's drive is replaced by a proxy P (default: the cross-fitted Poisson-GLM linear
    predictor of its spike count from the other units' counts at lags 0 and 1 and optional task
    covariates, :func:`bci_credit.analysis.proxy.glm_drive_proxy`). The running variable is
    ``P - c`` with cutoff ``c`` (default ``"rate_matched"``: the quantile of P at which the share of
    windows above it equals the unit's share of windows with a spike - where the threshold would be
    if P were the drive); treatment = the unit spiked in the window; outcome = reward.

    **Estimand.** The Wald ratio of the jump in expected reward to the jump in spike probability at
    the proxy cutoff: the effect of the spike for windows whose spiking is moved by crossing the
    cutoff (compliers). It equals the spike-discontinuity estimand only when spiking truly jumps at
    the cutoff.

    **Assumptions.** Those of :class:`SpikeDiscontinuity` with P in place of Z, plus (1) a
    *discontinuity* in spike probability at the cutoff (the first stage) - which a noisy proxy
    smooths away: a proxy ``Z + noise`` has none at all once the noise is comparable to the
    bandwidth; (2) the proxy affects reward only through the unit's spike (exclusion); (3)
    monotonicity. The first-stage jump, its standard error and ``F = (jump / se)^2`` are reported for
    every unit; a unit with ``F < min_first_stage_f`` (default 10, the Staiger-Stock rule of thumb)
    is **refused**: NaN with the reason, because a weak first stage makes the ratio biased and its
    confidence interval wrong. With ``strict=True`` a refusal of every unit raises
    :class:`WeakFirstStage`.

    Parameters
    ----------
    recording : Recording
        With spike times (or a windows table with ``spiked``) and a reward signal.
    proxy : "glm", DriveProxy or ndarray (n_windows, n_units)
        The drive proxy; ``"glm"`` fits it here.
    cutoff : "rate_matched", float or sequence
        Cutoff of the proxy, per unit.
    window_s : float, optional
        Window length when the recording has no windows table (default 0.05 s).
    reward : str, optional
        Outcome (see :func:`bci_credit.analysis._causal_data.resolve_reward`).
    covariates : list of str, optional
        Series names sampled per window (last sample) as task covariates of the GLM.
    lags, n_folds, alpha : GLM settings (see :func:`~bci_credit.analysis.proxy.glm_drive_proxy`).
    min_first_stage_f : float
        Refuse units whose first-stage ``F`` is below this.
    units : sequence, optional
        Units to analyse.
    density : bool
        Run the density test of the proxy at its cutoff.
    strict : bool
        Raise :class:`WeakFirstStage` when every unit is refused (default: NaN rows with the reason).
    n_jobs : int
        Processes for the GLM fits, threads for the vectorised RD fits.
    **rd_options
        Passed to the RD fits.

    Notes
    -----
    The first stage is the sharp RD of the spike indicator on the proxy, at the MSE-optimal
    bandwidth of the reduced form (reward on proxy); the fuzzy fit then reports its own first stage
    at its own bandwidth, which must pass the same test.
    """

    design = "fuzzy"
    estimand = ("ratio of the reward jump to the spike-probability jump at the proxy cutoff: the effect of the "
                "unit's spike for windows whose spiking changes at the cutoff")
    assumptions = (
        "spike probability jumps at the proxy cutoff (first stage; refused when F < min_first_stage_f)",
        "E[reward | proxy] has no other discontinuity at the cutoff; the proxy acts on reward only through the spike",
        "monotonicity: crossing the cutoff never lowers the chance of a spike",
        "windows are independent observations (variance)",
    )

    def __init__(self, recording: Recording, *, proxy: Any = "glm", cutoff: Any = "rate_matched",
                 window_s: float | None = None, reward: str | None = None, covariates: Sequence[str] | None = None,
                 lags: Sequence[int] = (0, 1), n_folds: int = 5, alpha: float = 1e-3, min_first_stage_f: float = 10.0,
                 units=None, density: bool = True, strict: bool = False, n_jobs: int = 1, **rd_options):
        if isinstance(proxy, str) and proxy != "glm":
            raise ValueError(f"proxy must be 'glm', a DriveProxy or an array (n_windows, n_units); got {proxy!r}")
        check_design(recording, "fuzzy", reward=reward)
        self.recording = recording
        self.proxy = proxy
        self.cutoff = cutoff
        self.window_s = window_s
        self.reward = reward
        self.covariates = list(covariates) if covariates else []
        self.lags, self.n_folds, self.alpha = tuple(lags), int(n_folds), float(alpha)
        self.min_first_stage_f = float(min_first_stage_f)
        self.units = units
        self.density = bool(density)
        self.strict = bool(strict)
        self.n_jobs = n_jobs
        self.rd_options = _rd_kwargs(rd_options)

    def _proxy_values(self, wd: WindowData, pos: list[int]):
        from .proxy import DriveProxy, glm_drive_proxy

        if isinstance(self.proxy, str):
            cov = None
            if self.covariates:
                from ._causal_data import series_per_window

                missing = [c for c in self.covariates if c not in self.recording.series]
                if missing:
                    raise ValueError(f"covariate series {missing} not in the recording; series: {sorted(self.recording.series)}")
                cov = np.column_stack([series_per_window(self.recording.series[c], wd.start_s, wd.stop_s)
                                       for c in self.covariates])
                cov = np.where(np.isfinite(cov), cov, np.nanmean(cov, axis=0))
            pr = glm_drive_proxy(wd.counts, covariates=cov, lags=self.lags, n_folds=self.n_folds, alpha=self.alpha,
                                 units=pos, n_jobs=self.n_jobs)
            return pr.values, pr
        if isinstance(self.proxy, DriveProxy):
            vals, pr = self.proxy.values, self.proxy
        else:
            vals, pr = np.asarray(self.proxy, dtype=float), None
        if vals.shape != (wd.n_windows, self.recording.n_units):
            raise ValueError(f"proxy must have shape (n_windows, n_units) = {(wd.n_windows, self.recording.n_units)}, "
                             f"got {vals.shape}")
        return vals, pr

    def _cutoffs(self, P: np.ndarray, H: np.ndarray) -> np.ndarray:
        n = P.shape[1]
        if isinstance(self.cutoff, str):
            if self.cutoff != "rate_matched":
                raise ValueError(f"cutoff must be 'rate_matched', a number or one per unit; got {self.cutoff!r}")
            out = np.full(n, np.nan)
            for k in range(n):
                ok = np.isfinite(P[:, k])
                if ok.sum() >= 2:
                    share = H[ok, k].mean()
                    if 0 < share < 1:
                        out[k] = np.quantile(P[ok, k], 1.0 - share)
            return out
        arr = np.asarray(self.cutoff, dtype=float)
        return np.full(n, float(arr)) if arr.ndim == 0 else arr

    def fit(self) -> CausalResults:
        """First stage for every unit, then the fuzzy RD for the units whose first stage is strong."""
        rec = self.recording
        pos = _positions(rec, self.units)
        wd = window_data(rec, window_s=self.window_s, reward=self.reward)
        if wd.spiked is None:
            raise DesignUnavailable("fuzzy", "spike times or a spike indicator per window", [])
        P_all, pr = self._proxy_values(wd, pos)
        P = P_all[:, pos]
        H = wd.spiked[:, pos].astype(float)
        y = wd.reward
        cut = self._cutoffs(P, H)
        if cut.shape != (len(pos),):
            cut = cut[pos] if cut.shape == (rec.n_units,) else cut
        X = P - cut[None, :]
        df = _empty_rows(rec, pos, self.design)
        notes = list(wd.notes)
        if pr is not None:
            notes += list(pr.notes)
        bad = ~np.isfinite(cut)
        for k in np.flatnonzero(bad):
            df["reason"][k] = ("no cutoff: the unit never or always spikes, or its proxy is undefined"
                                  if isinstance(self.cutoff, str) else "cutoff is NaN")
        idx = np.flatnonzero(~bad)
        # Reduced form: sharp RD of reward on the proxy. The first stage is judged at its MSE-optimal
        # bandwidth (a step-like first stage has no curvature from which to choose its own).
        h_rf = np.full((len(pos), 2), np.nan)
        if idx.size:
            rf = _quiet_fit_many(X[:, idx], y, 0.0, units=list(df["unit"][idx]), n_jobs=self.n_jobs,
                                 **self.rd_options)
            h_rf[idx] = rf[["h_left", "h_right"]].to_numpy(float)
        user_h = "h" in self.rd_options
        fs_opts = {k: v for k, v in self.rd_options.items() if k not in ("b", "rho", "bwselect")}
        for k in idx:
            hk = h_rf[k] if (not user_h and np.all(np.isfinite(h_rf[k]))) else None
            try:
                fsr = _quiet_rd(H[:, k], X[:, k], 0.0, **(dict(fs_opts, h=hk) if hk is not None else self.rd_options))
            except ValueError as err:
                m = np.unique(X[np.isfinite(X[:, k]), k]).size
                why = str(err).replace("RD cannot be estimated: ", "")
                df["reason"][k] = f"first stage cannot be estimated (the proxy takes {m} distinct values): {why}"
                continue
            jump, se = fsr.tau_cl, fsr.se_cl
            f = (jump / se) ** 2 if se > 0 else (np.inf if jump != 0 else np.nan)
            df["first_stage"][k], df["first_stage_se"][k], df["first_stage_f"][k] = jump, se, f
            if not (f >= self.min_first_stage_f):
                df["reason"][k] = self._weak_message(jump, f)
                continue
            res = None
            for opts in (self.rd_options, dict(fs_opts, h=hk) if hk is not None else None):
                if opts is None:
                    continue
                try:
                    res = _quiet_rd(y, X[:, k], 0.0, fuzzy=H[:, k], **opts)
                    break
                except ValueError as err:
                    df["reason"][k] = str(err).replace("RD cannot be estimated: ", "")
            if res is None:
                continue
            df["reason"][k] = None
            fs = res.first_stage
            f_in = (fs["coef"][0] / fs["se"][0]) ** 2 if fs["se"][0] > 0 else np.inf
            df["first_stage"][k], df["first_stage_se"][k], df["first_stage_f"][k] = fs["coef"][0], fs["se"][0], f_in
            if not (f_in >= self.min_first_stage_f):
                df["reason"][k] = self._weak_message(fs["coef"][0], f_in)
                continue
            _fill_from_rd(df, k, res)
        refused = np.array([str(r).startswith("weak first stage") for r in df["reason"]], dtype=bool)
        if refused.any():
            notes.append(f"{int(refused.sum())} of {len(df)} unit(s) refused: the proxy does not make spiking jump at "
                         f"its cutoff (first-stage F < {self.min_first_stage_f:g}); a noisy proxy smooths the "
                         "spike discontinuity away, so nothing is identified for them")
            if self.strict and refused.all():
                raise WeakFirstStage(notes[-1])
        if self.density:
            ok = np.isfinite(cut)
            p, dn = density_pvalues(X[:, ok], np.zeros(ok.sum()), list(df["unit"][ok]))
            df["density_p"][np.flatnonzero(ok)] = p
            notes += dn
        df = _add_truth(df.frame(), rec)
        data = {u: {"x": X[:, k], "y": y, "cutoff": 0.0, "treatment": H[:, k],
                    "xlabel": f"drive proxy - cutoff (unit {u})", "ylabel": "reward"} for k, u in enumerate(df["unit"])}
        opts = {"proxy": "glm" if isinstance(self.proxy, str) else (pr.method if pr is not None else "array"),
                "cutoff": self.cutoff if isinstance(self.cutoff, str) else "given",
                "min_first_stage_f": self.min_first_stage_f, "reward": wd.reward_source, "n_windows": wd.n_windows,
                "window_s": wd.window_s, "level": _level(self.rd_options), **self.rd_options}
        diag = {"cutoffs": dict(zip(df["unit"], cut))}
        if pr is not None:
            diag["proxy_params"] = pr.params
            diag["proxy_deviance_explained"] = dict(zip(df["unit"], pr.deviance_explained[pos]))
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, notes, data, diag)

    def _weak_message(self, jump: float, f: float) -> str:
        return (f"weak first stage: spike probability jumps by {jump:.3g} at the proxy cutoff (F = {f:.3g} < "
                f"{self.min_first_stage_f:g}); the proxy does not identify this unit's effect")


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
    """

    design = "naive"
    estimand = "association of reward with the unit's spiking (not causal under correlated input)"
    assumptions = ("no confounding of the unit's spiking and reward (fails with shared input)",
                   "windows are independent observations (variance)")
    variants = ("naive-od", "naive-rate", "naive-rate-adjusted")

    def __init__(self, recording: Recording, *, window_s: float | None = None, reward: str | None = None,
                 units=None, level: float = 95.0, variants: Sequence[str] | None = None):
        check_design(recording, "naive", reward=reward)
        self.recording = recording
        self.window_s = window_s
        self.reward = reward
        self.units = units
        self.level = float(level)
        self.variants_used = tuple(variants) if variants else self.variants
        bad = set(self.variants_used) - set(self.variants)
        if bad:
            raise ValueError(f"unknown naive variant(s) {sorted(bad)}; choose from {self.variants}")

    def fit(self) -> CausalResults:
        import statsmodels.api as sm
        from scipy import stats

        rec = self.recording
        pos = _positions(rec, self.units)
        wd = window_data(rec, window_s=self.window_s, reward=self.reward)
        y = wd.reward
        counts = wd.counts if wd.counts is not None else wd.spiked.astype(np.int64)
        H = wd.spiked if wd.spiked is not None else counts > 0
        zcrit = stats.norm.ppf(0.5 + self.level / 200.0)
        frames = []
        ok_y = np.isfinite(y)
        for variant in self.variants_used:
            df = _empty_rows(rec, pos, variant)
            for k, p in enumerate(pos):
                if variant == "naive-od":
                    X = np.column_stack([np.ones(y.size), H[:, p].astype(float)])
                elif variant == "naive-rate":
                    X = np.column_stack([np.ones(y.size), counts[:, p].astype(float)])
                else:
                    others = [j for j in range(counts.shape[1]) if j != p]
                    X = np.column_stack([np.ones(y.size), counts[:, p].astype(float), counts[:, others].astype(float)])
                n1 = int(H[ok_y, p].sum())
                n0 = int(ok_y.sum() - n1)
                df["n_left"][k], df["n_right"][k] = n0, n1
                if n1 < 2 or n0 < 2:
                    df["reason"][k] = f"too few windows with and without a spike ({n1} with, {n0} without)"
                    continue
                keep = np.ptp(X[ok_y], axis=0) > 0
                keep[0] = True
                if not keep[1]:
                    df["reason"][k] = "the unit's spiking does not vary"
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = sm.OLS(y[ok_y], X[ok_y][:, keep]).fit(cov_type="HC1")
                b, se = float(fit.params[1]), float(fit.bse[1])
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
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, list(wd.notes), {}, {})


# ============================================================================ whole analyses
@dataclass
class CausalAnalysis:
    """A design and the naive comparison, side by side, for one recording.

    Attributes
    ----------
    primary : CausalResults
        The chosen design's results.
    naive : CausalResults or None
        The naive comparisons (when run).
    requirements : dict
        Design -> None (supported) or what the recording lacks.
    source : str
        The recording's origin (file path or ``"simulation"``).
    """

    primary: CausalResults
    naive: CausalResults | None
    requirements: dict
    source: str

    @property
    def design(self) -> str:
        return self.primary.design

    def to_frame(self) -> pd.DataFrame:
        """All rows: the design's, then the naive variants' (``design`` column tells them apart)."""
        parts = [self.primary.table] + ([self.naive.table] if self.naive is not None else [])
        return pd.concat(parts, ignore_index=True, sort=False)

    def drivers(self) -> pd.DataFrame:
        """Units whose effect under the chosen design has a confidence interval excluding 0."""
        return self.primary.drivers()

    def summary(self) -> str:
        """The chosen design's report, the naive comparison's, and which units drive the outcome."""
        parts = [f"Source: {self.source}", self.primary.summary()]
        if self.naive is not None:
            parts += ["", self.naive.summary()]
        other = [d for d, why in self.requirements.items() if why is None and d not in (self.design, "naive")]
        if other:
            parts.append(f"\nOther designs this recording supports: {', '.join(other)}")
        return "\n".join(parts)

    def save(self, out_dir: str | os.PathLike, *, plots: bool = True, max_plots: int = 24) -> dict[str, Path]:
        """Write ``effects.csv``, ``density.csv``, ``summary.txt`` and RD plots into ``out_dir``."""
        from ..outputs import atomic_path, save_figure, write_csv

        out = Path(out_dir)
        written = {"effects": write_csv(self.to_frame(), out / "effects.csv", index=False)}
        dens = self.primary.table[["unit", "design", "density_p"]].copy()
        written["density"] = write_csv(dens, out / "density.csv", index=False)
        with atomic_path(out / "summary.txt") as tmp:
            tmp.write_text(self.summary() + "\n")
        written["summary"] = out / "summary.txt"
        if plots:
            from ._causal_plot import plot_design

            for unit, fig in plot_design(self.primary, max_units=max_plots):
                name = f"rd_{self.design.replace(' ', '_')}_unit_{_safe(unit)}.png"
                written[f"plot_{unit}"] = save_figure(fig, out / "plots" / name)
        return written


def _safe(v) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(v))


def available_designs(recording: Recording, **kw) -> list[str]:
    """Designs the recording supports (see :func:`~bci_credit.analysis._causal_data.design_requirements`)."""
    return [d for d, why in design_requirements(recording, **kw).items() if why is None]


def _auto_design(req: Mapping[str, str | None]) -> str:
    for d in ("spike", "reward-threshold", "fuzzy", "naive"):
        if req[d] is None:
            return d
    return "spike"


def analyze_recording(recording: Recording, design: str = "auto", *, naive: bool = True, units=None,
                      control_unit=None, reward: str | None = None, decoder: str | None = None,
                      threshold: float | None = None, window_s: float | None = None, density: bool = True,
                      source: str | None = None, n_jobs: int = 1, design_options: Mapping | None = None,
                      **rd_options) -> CausalAnalysis:
    """Run one design (plus the naive comparison) on a Recording.

    Parameters
    ----------
    recording : Recording
        Simulated or read from NWB.
    design : {"auto", "spike", "reward-threshold", "fuzzy", "naive"}
        ``"auto"`` picks the first supported of spike, reward-threshold, fuzzy, naive.
    naive : bool
        Also run :class:`NaiveComparison` (when the recording supports it).
    units : sequence, optional
        Units to analyse.
    control_unit : id or sequence, optional
        Flag these units ``is_control`` (files rarely say which unit drove the BCI).
    reward : str, optional
        Outcome / reward signal name (spike, fuzzy, naive) or reward events (reward-threshold).
    decoder, threshold : optional
        Decoder-output series and reward threshold (reward-threshold). For the spike design,
        ``threshold`` is the units' spike threshold when the file does not store it.
    window_s : float, optional
        Window length for recordings without a windows table (fuzzy, naive).
    density : bool
        Run density tests.
    source : str, optional
        Label for messages (default from ``recording.meta``).
    n_jobs : int
        Parallel fits.
    design_options : mapping, optional
        Extra keyword arguments of the design class (e.g. ``{"epoch_s": 0.2}``, ``{"lags": (0,)}``).
    **rd_options
        RD settings (``p``, ``kernel``, ``bwselect``, ``vce``, ``level`` ...).

    Raises
    ------
    DesignUnavailable
        The recording lacks what ``design`` needs (the message says what and which designs can run).
    """
    rec = recording
    if source is None:
        src = rec.meta.get("nwb_path") or rec.meta.get("source") or "recording"
        source = str(src)
    if control_unit is not None:
        ids = control_unit if isinstance(control_unit, (list, tuple, np.ndarray)) else [control_unit]
        rec = _with_control(rec, ids)
    req = design_requirements(rec, reward=reward if design != "reward-threshold" else None, decoder=decoder,
                              threshold=threshold if design == "reward-threshold" else None)
    if design == "auto":
        design = _auto_design(req)
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose one of auto, {', '.join(DESIGNS)}")
    label = None if source in ("simulation", "recording") else source
    extra = dict(design_options or {})
    if design == "spike":
        check_design(rec, "spike", source=label, reward=reward)
        primary = SpikeDiscontinuity(rec, units=units, threshold=threshold, reward=reward, density=density,
                                     n_jobs=n_jobs, **extra, **rd_options).fit()
    elif design == "reward-threshold":
        check_design(rec, "reward-threshold", source=label, decoder=decoder, threshold=threshold)
        primary = RewardThreshold(rec, decoder=decoder, threshold=threshold, reward=reward, units=units,
                                  density=density, n_jobs=n_jobs, **extra, **rd_options).fit()
    elif design == "fuzzy":
        check_design(rec, "fuzzy", source=label, reward=reward)
        primary = FuzzySpikeRD(rec, window_s=window_s, reward=reward, units=units, density=density, n_jobs=n_jobs,
                               **extra, **rd_options).fit()
    else:
        check_design(rec, "naive", source=label, reward=reward)
        primary = NaiveComparison(rec, window_s=window_s, reward=reward, units=units,
                                  level=rd_options.get("level", 95.0)).fit()
    naive_res = None
    if naive and design != "naive":
        naive_reward = reward if design != "reward-threshold" else None
        if design_requirements(rec, reward=naive_reward)["naive"] is None:
            naive_res = NaiveComparison(rec, window_s=window_s, reward=naive_reward, units=units,
                                        level=rd_options.get("level", 95.0)).fit()
    return CausalAnalysis(primary, naive_res, req, source)


def _with_control(rec: Recording, ids) -> Recording:
    import dataclasses

    matched = [_match_id(rec, u) for u in ids]
    for u in matched:
        rec.unit_position(u)  # clear KeyError for an unknown id
    units = rec.units.copy()
    units["is_control"] = units.index.isin(matched)
    return dataclasses.replace(rec, units=units)


def analyze_file(path: str | os.PathLike, design: str = "auto", *, out_dir: str | os.PathLike | None = None,
                 plots: bool = True, max_plots: int = 24, units_path: str | None = None, **kwargs) -> CausalAnalysis:
    """Read one NWB file and run :func:`analyze_recording` on it (optionally writing its outputs).

    Parameters
    ----------
    path : path-like or URL
        The NWB file, or an ``http(s)://``, ``s3://`` or ``dandi://`` address (streamed through
        :func:`bci_credit.io.remote.open_nwb_source`; only the datasets read are fetched).
    design : str
        As in :func:`analyze_recording`.
    out_dir : path-like, optional
        When given, :meth:`CausalAnalysis.save` writes the tables, summary and plots there.
    plots, max_plots : bool, int
        RD plots (up to ``max_plots`` units).
    units_path : str, optional
        Units table or binned-count series inside the file (see :func:`bci_credit.io.nwb.read`).
    **kwargs
        Passed to :func:`analyze_recording`.

    Raises
    ------
    DesignUnavailable
        The file lacks what the design needs (message names the file, what is missing and which
        designs can run on it).
    """
    from ..io import nwb
    from ..io.remote import open_nwb_source

    with open_nwb_source(path) as src:  # a local path passes through; a URL is streamed
        rec = nwb.read(src, units_path=units_path, warn=False)
    res = analyze_recording(rec, design, source=str(path), **kwargs)
    if out_dir is not None:
        res.save(out_dir, plots=plots, max_plots=max_plots)
    return res


# ============================================================================ fuzzy-design validation
def proxy_noise_curve(recordings: Sequence[Recording], noise_sds: Sequence[float], *, truth: Any = None,
                      units=None, seed=0, min_first_stage_f: float = 10.0, **rd_options) -> pd.DataFrame:
    """How much of the true effect the fuzzy design recovers as the drive proxy gets noisier.

    For every recording (simulated: it has the true drive Z) and noise level, the proxy is
    ``Z + N(0, sd^2)`` (:func:`~bci_credit.analysis.proxy.noisy_drive_proxy`, cutoff at the threshold)
    and :class:`FuzzySpikeRD` is fitted.

    Parameters
    ----------
    recordings : sequence of Recording
        Simulated replicates with ``drive``.
    noise_sds : sequence of float
        Proxy noise standard deviations (units of Z; the threshold is 1).
    truth : mapping unit -> float, or str, optional
        The true effect per unit, or a units-table column (default ``true_rd_effect`` when present,
        else ``true_marginal_effect``).
    units : sequence, optional
        Units to analyse.
    seed : seed-like
        Root seed of the proxy noise (one child per recording and level).
    min_first_stage_f : float
        Refusal threshold of the first stage.

    Returns
    -------
    DataFrame
        One row per (replicate, noise_sd, unit): ``estimate``, ``se``, ``ci_lo``, ``ci_hi``,
        ``first_stage``, ``first_stage_f``, ``refused``, ``truth``, ``recovered`` (estimate / truth),
        ``covered`` (CI contains the truth).
    """
    from ..random import spawn_seeds
    from .proxy import noisy_drive_proxy

    seeds = spawn_seeds(seed, len(recordings) * len(noise_sds))
    rows = []
    for r, rec in enumerate(recordings):
        if rec.drive is None:
            raise DesignUnavailable("fuzzy validation", "the true drive Z (a simulated recording)", [])
        pos = _positions(rec, units)
        if isinstance(truth, Mapping):
            tr = np.array([float(truth[u]) for u in rec.unit_ids[pos]])
        else:
            col = truth if isinstance(truth, str) else (
                "true_rd_effect" if "true_rd_effect" in rec.units.columns else "true_marginal_effect")
            tr = rec.units[col].to_numpy(float)[pos] if col in rec.units.columns else np.full(len(pos), np.nan)
        thr = unit_thresholds(rec)
        thr = np.where(np.isfinite(thr), thr, 1.0)
        for j, sd in enumerate(noise_sds):
            pr = noisy_drive_proxy(rec.drive, float(sd), seed=seeds[r * len(noise_sds) + j])
            res = FuzzySpikeRD(rec, proxy=pr, cutoff=thr, units=[rec.unit_ids[p] for p in pos], density=False,
                               min_first_stage_f=min_first_stage_f, **rd_options).fit()
            t = res.table
            for k in range(len(t)):
                est = float(t["estimate"].iloc[k])
                rows.append({
                    "replicate": r, "noise_sd": float(sd), "unit": t["unit"].iloc[k], "estimate": est,
                    "se": float(t["se"].iloc[k]), "ci_lo": float(t["ci_lo"].iloc[k]), "ci_hi": float(t["ci_hi"].iloc[k]),
                    "first_stage": float(t["first_stage"].iloc[k]), "first_stage_f": float(t["first_stage_f"].iloc[k]),
                    "refused": bool(str(t["reason"].iloc[k]).startswith("weak first stage")),
                    "reason": t["reason"].iloc[k], "truth": tr[k],
                    "recovered": est / tr[k] if np.isfinite(est) and tr[k] != 0 else np.nan,
                    "covered": bool(np.isfinite(est) and t["ci_lo"].iloc[k] <= tr[k] <= t["ci_hi"].iloc[k]),
                })
    return pd.DataFrame(rows)
