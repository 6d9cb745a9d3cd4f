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

Modules
-------
The designs live in flat sibling modules; every public name is importable from here too:

* :mod:`bci_credit.analysis.causal_results`: :class:`CausalResults`, :data:`RESULT_COLUMNS` and the
  row-filling helpers the designs share;
* :mod:`bci_credit.analysis.causal_spike`: :class:`SpikeDiscontinuity` and :class:`FuzzySpikeRD`
  (with :class:`WeakFirstStage`);
* :mod:`bci_credit.analysis.causal_reward`: :class:`RewardThreshold`, :func:`reconstruct_decoder`,
  :func:`threshold_crossings`;
* :mod:`bci_credit.analysis.causal_naive`: :class:`NaiveComparison`;
* this module: :class:`CausalAnalysis`, :func:`analyze_recording`, :func:`analyze_file`,
  :func:`available_designs` and :func:`proxy_noise_curve`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..recording import Recording
from ._causal_data import (
    DESIGNS,
    DesignUnavailable,
    check_design,
    design_requirements,
    select_blocks,
    unit_thresholds,
)
from .causal_naive import NaiveComparison
from .causal_results import (RESULT_COLUMNS, CausalResults, _match_id, _positions, session_length_factor, truth_column,
                             truth_precision_columns)
from .causal_reward import RewardThreshold, reconstruct_decoder, threshold_crossings
from .causal_spike import FuzzySpikeRD, SpikeDiscontinuity, WeakFirstStage

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
    read_notes : list of str
        What the NWB reader noted about the file (values repaired, dropped or not loaded); shown
        in :meth:`summary`, so that no repair goes unreported.
    duration_s : float, optional
        The recording's duration (for the power statement of :meth:`findings`).
    """

    primary: CausalResults
    naive: CausalResults | None
    requirements: dict
    source: str
    read_notes: list = field(default_factory=list)
    duration_s: float | None = None

    @property
    def design(self) -> str:
        return self.primary.design

    def to_frame(self) -> pd.DataFrame:
        """All rows: the design's, then the naive variants' (``design`` column tells them apart)."""
        parts = [self.primary.table] + ([self.naive.table] if self.naive is not None else [])
        return pd.concat(parts, ignore_index=True, sort=False)

    def drivers(self, correction: str | None = "holm") -> pd.DataFrame:
        """Units with a detectable effect under the chosen design (see :meth:`CausalResults.drivers`:
        Holm-corrected by default, ``correction=None`` for each unit's own confidence interval)."""
        return self.primary.drivers(correction)

    def findings(self) -> list[str]:
        """What the analysis found, in words, against a simulation's ground truth: each control unit's
        estimate and true effect, the power of this session length, the Holm-corrected and uncorrected
        detections, how often the CIs cover the truth, and how many units the naive comparisons list
        although they have no effect. Lines without a truth column say less; ``[]`` for no table."""
        duration_s = self.duration_s
        if not len(self.primary.table) or self.design == "naive":  # an association has no findings to report
            return []
        t = self.primary.table.copy()
        truth = truth_column(t)
        se_col, n_col = truth_precision_columns(truth)
        if truth:
            for col in (truth, se_col, n_col, "true_total_effect"):
                if col in t:
                    t[col] = pd.to_numeric(t[col], errors="coerce")
        out = ["What the analysis found:"]
        level = self.primary.level
        lev = f"{level:g}%"
        for _, r in t[t["is_control"].astype(bool)].iterrows():
            est, lo, hi, se = (float(r[k]) for k in ("estimate", "ci_lo", "ci_hi", "se"))
            if np.isfinite(est):
                line = f"- control unit {r['unit']}: estimate {est:.4g}, {lev} CI [{lo:.4g}, {hi:.4g}]"
            else:
                line = f"- control unit {r['unit']}: no estimate ({r.get('reason') or 'see the table'})"
            true = float(r[truth]) if truth else np.nan
            truth_se = float(r.get(se_col, np.nan)) if se_col else np.nan
            if truth and np.isfinite(true):
                line += f", true effect {true:.4g}"
                if np.isfinite(truth_se):  # the truth is a Monte Carlo average over sampled counterfactual windows
                    n_mc = float(r.get(n_col, np.nan)) if n_col else np.nan
                    kind = "just-above-threshold" if truth == "true_removal_marginal" else "near-threshold"
                    where = f" over {int(n_mc)} sampled {kind} windows" if np.isfinite(n_mc) else ""
                    line += (f" (itself a Monte Carlo estimate{where}, SE {truth_se:.2g})" if truth_se > 0 else
                             f" (itself a Monte Carlo estimate{where}; its SE cannot be estimated: every sampled "
                             f"effect was the same)")
                if np.isfinite(lo) and np.isfinite(hi):
                    line += f"; the truth lies {'inside' if lo <= true <= hi else 'outside'} the CI"
            elif truth:
                line += ", true effect unknown"
            line += "."
            effect = abs(true)
            if np.isfinite(effect) and effect > 0 and np.isfinite(se):
                factor = session_length_factor(effect, se, level=level)  # the SE falls as 1/sqrt(duration)
                line += (f" Its standard error ({se:.3g}) is {se / effect:.2g}x the effect: "
                         + (f"this session has about 80% power or more to detect it at the {100 - level:g}% level"
                            if factor <= 1 else
                            f"about 80% power to detect it at the {100 - level:g}% level (two-sided, uncorrected) "
                            f"needs a session about {factor:.1f}x as long "
                            + (f"(~{factor * duration_s / 60:.0f} min; " if duration_s else "(")
                            + "normal approximation, SE ~ 1/sqrt(duration))"))
                if np.isfinite(truth_se) and truth_se > 0:
                    lo_f = session_length_factor(effect + truth_se, se, level=level)
                    hi_txt = (f"{session_length_factor(effect - truth_se, se, level=level):.1f}x" if effect > truth_se
                              else "without bound (the truth's SE is as large as the truth)")
                    line += f", {lo_f:.1f}x to {hi_txt} with the true effect one of its SEs higher or lower"
                line += "."
            out.append(line)

        def units(rows) -> str:
            return ", ".join(map(str, rows["unit"])) if len(rows) else "none"

        n = int(np.isfinite(t["pvalue"]).sum())
        chance = (1 - self.primary.level / 100) * n
        out.append(f"- units detected as having an effect after Holm's correction over {n} units: "
                   f"{units(self.drivers())}; with uncorrected {lev} CIs excluding 0: "
                   f"{units(self.drivers(correction=None))} "
                   f"(about {chance:.2g} expected by chance when no unit has an effect).")
        if truth:
            ok = np.isfinite(t["ci_lo"]) & np.isfinite(t[truth])
            cover = int(((t["ci_lo"] <= t[truth]) & (t[truth] <= t["ci_hi"]) & ok).sum())
            out.append(f"- the {lev} CIs cover the true effect ({truth}) for {cover} of {int(ok.sum())} units "
                       f"(about {self.primary.level / 100 * int(ok.sum()):.0f} expected at their nominal coverage).")
        naive = self.naive.table if self.naive is not None else None
        if naive is not None and len(naive):  # what the RD design protects against, on this very session
            listed = self.naive.drivers()
            # "without any effect": exactly zero by construction, which the total effect (over the horizon,
            # through any coupling) shows best; a Monte Carlo truth can be 0 by chance for a unit with an effect
            null_col = "true_total_effect" if "true_total_effect" in t else truth
            effect = {u: e for u, e in zip(t["unit"], t[null_col]) if np.isfinite(e)} if truth else {}
            names = {"naive-od": "observed dependence (mean reward with against without a spike)",
                     "naive-rate": "spike count",
                     "naive-rate-adjusted": "spike count adjusted for the other units' counts"}

            def nulls(units) -> tuple[int, str]:  # units with a true effect of exactly 0, and the words for it
                units = list(dict.fromkeys(units))
                known = [u for u in units if u in effect]
                k = sum(effect[u] == 0 for u in known)
                return k, f"{k} without any effect" + (f", {len(units) - len(known)} of unknown truth"
                                                       if len(known) < len(units) else "")

            parts, naive_nulls = [], 0
            for variant in dict.fromkeys(naive["design"].astype(str)):
                units_v = listed.loc[listed["design"].astype(str) == variant, "unit"]
                pv = naive.loc[naive["design"].astype(str) == variant, "pvalue"].to_numpy(float)
                part = f"{names.get(variant, variant)}: {len(units_v)} of {int(np.isfinite(pv).sum())} units"
                if truth and len(units_v):
                    k, words = nulls(units_v)
                    naive_nulls += k
                    part += f" ({words})"
                parts.append(part)
            line = ("- the naive comparisons list as associated with the reward, after Holm's correction: "
                    + "; ".join(parts))
            if truth:
                rd_units = self.drivers()["unit"]
                line += f". The {self.design} RD lists {len(set(rd_units))} unit(s) ({nulls(rd_units)[1]})"
                if naive_nulls:
                    line += (". Units without an effect are listed when correlated input makes their spikes coincide "
                             "with the control unit's; adjusting for the other units removes that here because the "
                             "shared input is the simulation's only confounder, which a recording does not guarantee")
            out.append(line + ".")
        return out

    def summary(self, findings: bool = True) -> str:
        """The chosen design's report, the naive comparison's, and which units drive the outcome; with
        ``findings`` and a simulation's truth in the table, :meth:`findings` at the end."""
        parts = [f"Source: {self.source}"]
        if self.read_notes:
            parts += ["Notes from reading the file:"] + [f"  - {n}" for n in self.read_notes]
        est = self.primary.table["estimate"].to_numpy(dtype=float)
        if self.design != "naive" and est.size and not np.isfinite(est).any():
            parts.append(f"No causal estimate: the {self.design} design gave no unit an estimate (the reasons are in "
                         "the table)." + (" The naive comparisons below are associations, not causal effects."
                                          if self.naive is not None else ""))
        parts.append(self.primary.summary())
        if self.naive is not None:
            parts += ["", self.naive.summary()]
        other = [d for d, why in self.requirements.items() if why is None and d not in (self.design, "naive")]
        if other:
            parts.append(f"\nOther designs this recording supports: {', '.join(other)}")
        if findings and truth_column(self.primary.table):
            parts += ["", *self.findings()]
        return "\n".join(parts)

    def save(self, out_dir: str | os.PathLike, *, plots: bool = True, max_plots: int = 24) -> dict[str, Path]:
        """Write ``effects.csv``, ``density.csv``, ``summary.txt`` and RD plots into ``out_dir``.

        RD plots an earlier analysis wrote into ``out_dir/plots`` (``rd_*_unit_*.png``) are removed
        first, so that the folder never mixes plots of two analyses.
        """
        from ..outputs import atomic_path, save_figure, write_csv

        out = Path(out_dir)
        for stale in (out / "plots").glob("rd_*_unit_*.png"):
            stale.unlink()
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


def _auto_design(req: Mapping[str, str | None]) -> str | None:
    """The first supported of spike, reward-threshold, fuzzy, naive (None when none is)."""
    for d in ("spike", "reward-threshold", "fuzzy", "naive"):
        if req[d] is None:
            return d
    return None


def analyze_recording(recording: Recording, design: str = "auto", *, naive: bool = True, units: Sequence | None = None,
                      control_unit: Any = None, reward: str | None = None, decoder: str | None = None,
                      threshold: float | None = None, window_s: float | None = None, density: bool = True,
                      source: str | None = None, n_jobs: int = 1, design_options: Mapping | None = None,
                      blocks: str | Sequence[str] | None = None, reward_lag_s: float = 0.0,
                      progress: bool = False, **rd_options: Any) -> CausalAnalysis:
    """Run one design (plus the naive comparison) on a Recording.

    Parameters
    ----------
    recording : Recording
        Simulated or read from NWB.
    design : {"auto", "spike", "reward-threshold", "fuzzy", "naive"}
        ``"auto"`` picks the first supported of spike, reward-threshold, fuzzy, naive.
    naive : bool
        Also run :class:`NaiveComparison` (when the recording supports it) on the same outcome:
        ``reward`` when given (for the reward-threshold design, its reward events counted per
        window), else the recording's default outcome.
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
        Window length of the fuzzy and naive designs: windows of this length are laid over the
        recording, replacing its own windows table if it has one (without one: 0.05 s by default).
    reward_lag_s : float
        Take each window's outcome this many seconds later (reward latency; spike, fuzzy, naive;
        outcomes from series or trials, see :func:`~bci_credit.analysis._causal_data.window_data`).
    density : bool
        Run density tests.
    source : str, optional
        Label for messages (default from ``recording.meta``).
    n_jobs : int
        Parallel fits.
    design_options : mapping, optional
        Extra keyword arguments of the design class (e.g. ``{"epoch_s": 0.2}``, ``{"lags": (0,)}``).
    blocks : str or sequence of str, optional
        Analyse only the windows of these task blocks (e.g. ``"conditioning"``, the rewarded one): by
        the windows table's ``block`` column, or else inside the spans of the epochs named by their
        tags or of the trials' ``block`` column, with windows of ``window_s`` laid over them when the
        recording has no windows table (:func:`~bci_credit.analysis._causal_data.select_blocks`);
        designs that read the windows only (spike, fuzzy, naive).
    progress : bool
        Show a progress bar over the fuzzy design's GLM fits (tens of minutes for hundreds of units
        and an hour of windows on one core; ``n_jobs`` divides it).
    **rd_options
        RD settings (``p``, ``kernel``, ``bwselect``, ``vce``, ``level`` ...).

    Returns
    -------
    CausalAnalysis
        The design's per-unit results (``primary``), the naive comparison (``naive``, or None), the
        designs the recording supports and the analysed duration.

    Raises
    ------
    DesignUnavailable
        The recording lacks what ``design`` needs (the message says what and which designs can run).
    """
    rec = recording
    if source is None:
        src = rec.meta.get("nwb_path") or rec.meta.get("source") or "recording"
        source = str(src)
    block_note, duration_s = None, recording.duration_s
    if blocks is not None:
        if design == "reward-threshold":
            raise ValueError("blocks: the reward-threshold design reads the decoder output and reward events, not "
                             "the windows; use it on the whole recording, or the spike, fuzzy or naive design")
        rec, block_note, laid = select_blocks(rec, blocks, window_s=window_s,
                                              reward=reward if design != "reward-threshold" else None,
                                              reward_lag_s=reward_lag_s)
        window_s = None  # the designs read the kept windows
        if laid:  # and the outcome laid with them (lag applied)
            reward, reward_lag_s = None, 0.0
        duration_s = float((rec.windows["stop_s"] - rec.windows["start_s"]).sum())
    if control_unit is not None:
        ids = control_unit if isinstance(control_unit, (list, tuple, np.ndarray)) else [control_unit]
        rec = _with_control(rec, ids)
    req = design_requirements(rec, reward=reward if design != "reward-threshold" else None, decoder=decoder,
                              threshold=threshold if design in ("reward-threshold", "auto") else None)
    label = None if source in ("simulation", "recording") else source
    named = design
    if design == "auto":
        # with blocks or a reward lag, only the designs that read the windows
        windows_only = (blocks is not None or bool(reward_lag_s)
                        or str(reward).startswith(("windows:", "relative:")))  # outcomes reward-threshold cannot read
        design = _auto_design(req if not windows_only else {**req, "reward-threshold": "reads no windows"})
        if design is None:
            if blocks is not None and req.get("reward-threshold") is None:
                raise ValueError("blocks: this recording supports only the reward-threshold design, which reads the "
                                 "decoder output and reward events, not the windows; analyse it whole")
            raise DesignUnavailable.for_all(req, label)
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose one of auto, {', '.join(DESIGNS)}")
    if reward_lag_s and design == "reward-threshold":
        raise ValueError("reward_lag_s (--reward-lag) shifts the outcome of the spike, fuzzy and naive designs; the "
                         "reward-threshold design's outcome is the units' firing after the decoder crosses threshold")
    if threshold is not None and named in ("fuzzy", "naive"):  # auto may settle on them: a note below
        raise ValueError(f"threshold (--threshold) is a cutoff of the spike and reward-threshold designs; the {design} "
                         "design does not use it: leave it out, or choose one of those designs")
    extra = dict(design_options or {})
    if design == "spike":
        check_design(rec, "spike", source=label, reward=reward)
        primary = SpikeDiscontinuity(rec, units=units, threshold=threshold, reward=reward, density=density,
                                     n_jobs=n_jobs, reward_lag_s=reward_lag_s, **extra, **rd_options).fit()
    elif design == "reward-threshold":
        check_design(rec, "reward-threshold", source=label, decoder=decoder, threshold=threshold)
        primary = RewardThreshold(rec, decoder=decoder, threshold=threshold, reward=reward, units=units,
                                  density=density, n_jobs=n_jobs, **extra, **rd_options).fit()
    elif design == "fuzzy":
        check_design(rec, "fuzzy", source=label, reward=reward)
        primary = FuzzySpikeRD(rec, window_s=window_s, reward=reward, units=units, density=density, n_jobs=n_jobs,
                               reward_lag_s=reward_lag_s, progress=progress, **extra, **rd_options).fit()
    else:
        check_design(rec, "naive", source=label, reward=reward)
        primary = NaiveComparison(rec, window_s=window_s, reward=reward, units=units,
                                  level=rd_options.get("level", 95.0), reward_lag_s=reward_lag_s).fit()
    naive_res = None
    if naive and design != "naive":
        # the naive foil reads the outcome the user named, also the reward-threshold design's reward events (a
        # lag was refused for that design above)
        if design_requirements(rec, reward=reward)["naive"] is None:
            naive_res = NaiveComparison(rec, window_s=window_s, reward=reward, units=units,
                                        level=rd_options.get("level", 95.0), reward_lag_s=reward_lag_s).fit()
    if block_note:
        for res in (primary, naive_res):
            if res is not None:
                res.notes.append(block_note)
    if threshold is not None and named == "auto" and design in ("fuzzy", "naive"):
        primary.notes.append(f"threshold {threshold:g} (--threshold) unused: the auto design settled on {design}, "
                             "which has no cutoff to set; name design spike or reward-threshold to use it")
    return CausalAnalysis(primary, naive_res, req, source, duration_s=duration_s)


def _with_control(rec: Recording, ids) -> Recording:
    import dataclasses

    matched = [_match_id(rec, u) for u in ids]
    for u in matched:
        rec.unit_position(u)  # clear KeyError for an unknown id
    units = rec.units.copy()
    units["is_control"] = units.index.isin(matched)
    return dataclasses.replace(rec, units=units)


def analyze_file(path: str | os.PathLike, design: str = "auto", *, out_dir: str | os.PathLike | None = None,
                 plots: bool = True, max_plots: int = 24, units_path: str | None = None,
                 **kwargs: Any) -> CausalAnalysis:
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

    Returns
    -------
    CausalAnalysis
        As from :func:`analyze_recording`, with the file's path as its source.

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
    res.read_notes = list(rec.meta.get("warnings") or [])
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
        The true effect per unit, or a units-table column (default: :func:`~bci_credit.analysis.causal_results.truth_column`,
        the RD estimand ``true_rd_effect`` or ``true_removal_marginal`` when present, else ``true_marginal_effect``).
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
            col = truth if isinstance(truth, str) else (truth_column(rec.units.columns) or "true_marginal_effect")
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
