"""Spike designs: the sharp spike-discontinuity RD and the fuzzy spike RD with a drive proxy.

Part of :mod:`bci_credit.analysis.causal` (which re-exports these names): :class:`SpikeDiscontinuity`
(running variable: the unit's drive Z minus its threshold) and :class:`FuzzySpikeRD` (a drive proxy
in place of Z, refused with :class:`WeakFirstStage` when its first stage is weak).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..recording import Recording
from ._causal_data import (
    DesignUnavailable,
    WindowData,
    check_design,
    check_reward_lag,
    density_pvalues,
    unit_thresholds,
    window_data,
)
from .causal_results import (
    CausalResults,
    _add_truth,
    _empty_rows,
    _fill_from_batch,
    _fill_from_rd,
    _fill_fuzzy_row,
    _level,
    _positions,
    _quiet_fit_many,
    _quiet_rd,
    _rd_kwargs,
)

__all__ = ["SpikeDiscontinuity", "FuzzySpikeRD", "WeakFirstStage"]


class WeakFirstStage(ValueError):
    """The fuzzy design's first stage (jump in spike probability at the proxy cutoff) is too weak."""


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
    reward_lag_s : float
        Take each window's outcome this many seconds later (reward latency; see
        :func:`bci_credit.analysis._causal_data.window_data`).
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
    larger; in the demo's BCI session, where the reward must come within the same window, it is about
    a third smaller: 0.0164 against 0.0246). The realised effect is the units column
    ``true_rd_effect`` (configured simulations) or ``true_removal_marginal`` (BCI sessions), and the
    findings judge the estimates against it. ``analysis/causal_coverage.py`` and
    ``analysis/bci_null_units.py`` measure the coverage of the robust intervals against it
    (``analysis/results/causal/``).

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

    def __init__(self, recording: Recording, *, units: Sequence | None = None,
                 threshold: float | Sequence | Mapping | None = None, reward: str | None = None,
                 density: bool = True, sharp_tol: float = 0.01, n_jobs: int = 1, reward_lag_s: float = 0.0,
                 **rd_options: Any):
        check_design(recording, "spike", reward=reward)
        self.reward_lag_s = check_reward_lag(reward_lag_s)
        self.recording = recording
        self.units = units
        self.threshold = threshold
        self.reward = reward
        self.density = bool(density)
        self.sharp_tol = float(sharp_tol)
        self.n_jobs = n_jobs
        self.rd_options = _rd_kwargs(rd_options)

    def fit(self) -> CausalResults:
        """Estimate every unit's effect; units that cannot be estimated get NaN and a reason.

        Returns
        -------
        CausalResults
            One row per unit.
        """
        rec = self.recording
        pos = _positions(rec, self.units)
        wd = window_data(rec, reward=self.reward, reward_lag_s=self.reward_lag_s)
        thr = unit_thresholds(rec, self.threshold)[pos]
        x = wd.drive[:, pos] - thr[None, :]
        if wd.observed is not None:  # obs_intervals: only the windows where the unit was observed
            x = np.where(wd.observed[:, pos], x, np.nan)
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
            df["reason"][k] = ("spike threshold unknown (units.threshold is NaN); give it: threshold= in Python, "
                               "--threshold on the command line")
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
                    "ylabel": f"{rec.outcome_kind} in the window (mean per bin)"}
                for k, u in enumerate(df["unit"])}
        opts = {"reward": wd.reward_source, "n_windows": wd.n_windows, "level": _level(self.rd_options),
                **{k: v for k, v in self.rd_options.items()}}
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, notes, data,
                             {"sharp_mismatch": dict(zip(df["unit"], mismatch))})


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
        Lay contiguous windows of this length over the recording instead of using its windows table
        (default 0.05 s when it has none).
    reward : str, optional
        Outcome (see :func:`bci_credit.analysis._causal_data.resolve_reward`).
    reward_lag_s : float
        Take each window's outcome this many seconds later (reward latency).
    covariates : list of str, optional
        Series names sampled per window (last sample) as task covariates of the GLM.
    lags, n_folds, alpha
        GLM settings (see :func:`~bci_credit.analysis.proxy.glm_drive_proxy`).
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
    progress : bool
        Show a progress bar over the GLM fits (the slow part on large recordings).
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
                 units: Sequence | None = None, density: bool = True, strict: bool = False, n_jobs: int = 1,
                 reward_lag_s: float = 0.0, progress: bool = False, **rd_options: Any):
        if isinstance(proxy, str) and proxy != "glm":
            raise ValueError(f"proxy must be 'glm', a DriveProxy or an array (n_windows, n_units); got {proxy!r}")
        check_design(recording, "fuzzy", reward=reward)
        self.reward_lag_s = check_reward_lag(reward_lag_s)
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
        self.progress = bool(progress)
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
                                 units=pos, n_jobs=self.n_jobs, unit_ids=wd.unit_ids, progress=self.progress)
            return pr.values, pr
        if isinstance(self.proxy, DriveProxy):
            vals, pr = self.proxy.values, self.proxy
        else:
            vals, pr = np.asarray(self.proxy, dtype=float), None
        if wd.laid is not None and vals.shape == (wd.n_laid, self.recording.n_units):
            vals = vals[wd.laid]  # a proxy for every laid window: keep the windows analysed
        if vals.shape != (wd.n_windows, self.recording.n_units):
            raise ValueError(f"proxy must have shape (n_windows, n_units) = {(wd.n_windows, self.recording.n_units)} "
                             f"(the windows analysed; see the notes for windows left out), got {vals.shape}")
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
        """First stage for every unit, then the fuzzy RD for the units whose first stage is strong.

        Returns
        -------
        CausalResults
            One row per unit (refused units: NaN and the reason).
        """
        rec = self.recording
        pos = _positions(rec, self.units)
        wd = window_data(rec, window_s=self.window_s, reward=self.reward, reward_lag_s=self.reward_lag_s)
        if wd.spiked is None:
            raise DesignUnavailable("fuzzy", "spike times or a spike indicator per window", [])
        P_all, pr = self._proxy_values(wd, pos)
        P = P_all[:, pos]
        if wd.observed is not None:  # obs_intervals: a unit's unobserved windows neither set its cutoff nor enter
            P = np.where(wd.observed[:, pos], P, np.nan)
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
                    "xlabel": f"drive proxy - cutoff (unit {u})",
                    "ylabel": f"{rec.outcome_kind} in the window (mean per bin)"} for k, u in enumerate(df["unit"])}
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
