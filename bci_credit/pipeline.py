"""The main job end to end: simulate a BCI session -> NWB -> RD analysis -> report folder.

:func:`run_demo` is what ``make demo`` (``bci-credit demo``) runs. The analysis reads the NWB file
back from disk, exactly as it would read a real recording.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis.causal_results import truth_column
from .outputs import save_figure, write_run_json
from .plotting import pyplot
from .plotting.bci import mark_blocks

__all__ = ["run_demo"]

log = logging.getLogger("bci_credit")

#: The demo samples a counterfactual truth window this often (seconds; the session default is 1 s).
DEMO_TRUTH_EVERY_S = 0.25


def _learning_figure(rec):
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    if rec.weights is not None:
        ctrl = rec.units["is_control"].to_numpy(bool)
        w = rec.weights.values
        axes[0].plot(rec.weights.t_s, w[:, ~ctrl], color="0.6", lw=0.8)
        axes[0].plot(rec.weights.t_s, w[:, ctrl], color="tab:red", lw=1.5, label="control unit")
        axes[0].set_xlabel("time (s)")
        axes[0].set_ylabel("input gain w")
        axes[0].legend()
        axes[0].set_title("learning: weights", pad=14)  # room for the block names above the axes
    r = rec.windows["reward"].to_numpy(float)
    k = max(1, r.size // 100)
    rr = r[: r.size // k * k].reshape(-1, k).mean(axis=1)
    axes[1].plot(rec.windows["stop_s"].to_numpy()[k - 1::k][: rr.size], rr)
    axes[1].set_xlabel("time (s)")
    is_cost = rec.outcome_kind == "cost"
    span = float(rec.windows["stop_s"].iloc[k - 1] - rec.windows["start_s"].iloc[0]) if len(rec.windows) >= k else 0.0
    axes[1].set_ylabel(("cost per window (lower is better)" if is_cost else "reward per window (higher is better)")
                       + (f"\nmean over {span:.3g} s" if span > 0 else ""))
    axes[1].set_title("learning curve", pad=14)
    for ax in axes:  # the blocks (baseline, conditioning, extinction) on both panels
        mark_blocks(rec, ax)
    fig.tight_layout()
    return fig


def _effects_figure(analysis, kind: str = "reward"):
    """Per-unit RD estimates with robust CIs, the naive observed dependence and the truth (``kind``: what the
    outcome is, ``"reward"`` or ``"cost"``)."""
    plt = pyplot()

    t = analysis.primary.table
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(t))
    ax.errorbar(x - 0.15, t["estimate"], yerr=[t["estimate"] - t["ci_lo"], t["ci_hi"] - t["estimate"]], fmt="o",
                label=f"{analysis.design} RD (robust 95% CI)")
    if analysis.naive is not None:
        od = analysis.naive.table.query("design == 'naive-od'")
        ax.plot(x + 0.15, od["estimate"].to_numpy(), "s", label="observed dependence (naive: an association)")
    truth = truth_column(t)
    if truth:
        ax.plot(x, t[truth], "k_", ms=14, mew=2, label=f"truth ({truth})")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{u}{'*' if c else ''}" for u, c in zip(t["unit"], t["is_control"])])
    ax.set_xlabel("unit (* = control unit)")
    ax.set_ylabel(f"change in the window's {kind}\nwith a spike of the unit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bci_outputs(rec, out: Path) -> tuple[list[Path], dict]:
    """Task metrics (success rate per block, rate changes, specificity) and the session figure.

    Returns the files written and the metrics (``success``, ``specificity``, ``misattribution``,
    ``rates``: each unit's rate per block) for :func:`_session_findings`."""
    from .analysis.metrics import block_names, misattribution, period_rates, specificity, success_rate
    from .outputs import write_csv, write_json
    from .plotting.bci import plot_bci_session

    files = [save_figure(plot_bci_session(rec), out / "bci_session.png")]
    success = success_rate(rec)
    files.append(write_csv(success, out / "success_rate.csv"))
    spec = specificity(rec)
    mis = misattribution(rec)
    rates = pd.DataFrame({"unit": rec.units.index, "is_control": rec.units["is_control"].to_numpy(bool),
                          "rate_change_pct": np.asarray(spec["drate"])})
    files.append(write_csv(rates, out / "rate_changes.csv", index=False))
    files.append(write_json({"control_rate_change_pct": spec["control"],
                             "specificity_index_all": spec["index_all"],
                             "specificity_index_cotuned": spec["index_cotuned"],
                             "specificity_index_random": spec["index_random"],
                             "misattribution": mis}, out / "bci_metrics.json"))
    block_rates = pd.DataFrame({b: period_rates(rec, b) for b in block_names(rec)}, index=rec.units.index)
    return files, {"success": success, "specificity": spec, "misattribution": mis, "rates": block_rates}


def _session_findings(rec, metrics: dict, blocks) -> list[str]:
    """What the simulated session did, in words: the control unit's rate per block against the others',
    threshold crossings per block, the weight changes, and what the model does not do (forget)."""
    from .analysis.metrics import period_bounds

    rates, spec, mis, success = metrics["rates"], metrics["specificity"], metrics["misattribution"], metrics["success"]
    ctrl = rec.units["is_control"].to_numpy(bool)
    c = int(np.flatnonzero(ctrl)[0])
    others = rates.iloc[~ctrl]
    names = list(rates.columns)
    lines = [
        f"- the control unit ({rec.units.index[c]}) fired " + ", ".join(
            f"{rates.iloc[c][b]:.1f} Hz in {b}" for b in names)
        + "; the other units' median " + ", ".join(f"{others[b].median():.1f}" for b in names) + " Hz. "
        f"From baseline to conditioning its rate changed by {spec['control']:+.0f}%, the others' by "
        f"{spec['noncontrol_mean']:+.0f}% on average (specificity index {spec['index_all']:.2f}: the control unit's "
        "change in standard deviations of the others' changes above their mean).",
    ]
    dec = rec.meta.get("decoder") if isinstance(rec.meta.get("decoder"), dict) else {}
    if "success_per_s" in success.columns:
        rewarded = {b.name for b in blocks if b.reward}
        per_s = ", ".join(f"{b} {success.loc[b, 'success_per_s']:.2f}{' (rewarded)' if b in rewarded else ''}"
                          for b in success.index)
        line = f"- threshold crossings (successes) per second: {per_s}."
        first = success.iloc[0]
        if dec.get("refractory_s") and dec.get("trial_timeout_s") and first["success_per_trial"] >= 0.9:
            line += (f" The task is easy from the start: the threshold ({dec.get('theta_percentile', 85):g}th "
                     f"percentile of the baseline rate) is crossed within a {dec['trial_timeout_s']:g}-s trial "
                     f"{100 * first['success_per_trial']:.0f}% of the time already in {success.index[0]}, and after "
                     f"each crossing the task waits {dec['refractory_s']:g} s, so successes per second, not per "
                     f"trial, measure learning, and they cannot exceed {1 / dec['refractory_s']:g} per second.")
        lines.append(line)
    frozen = rec.weights is not None and bool(np.all(rec.weights.values == rec.weights.values[0]))
    if frozen:
        lines.append("- learning: none; the weights stayed where they started.")
    elif np.isfinite(mis["dw_control"]):
        line = (f"- learning: the control unit's weight changed by {mis['dw_control']:+.2f}, the other units' "
                f"by {mis['dw_noncontrol_mean']:+.2f} on average ({mis['dw_noncontrol_abs']:.2f} in absolute value, "
                f"{mis['leak_ratio']:.2f} of the control unit's change).")
        w, last = rec.weights, blocks[-1]
        if w is not None and not last.reward and len(blocks) > 1:
            t = np.asarray(w.t_s, float)
            k0 = int(np.searchsorted(t, period_bounds(rec, last.name)[0] - 1e-9))
            if 0 < k0 < t.size - 1:
                line += (f" In {last.name}, without reward, the control unit's weight went from {w.values[k0, c]:.2f} "
                         f"to {w.values[-1, c]:.2f}.")
                r_first, r_last = rates.iloc[c][names[0]], rates.iloc[c].get(last.name, np.nan)
                if r_last > 1.1 * r_first:
                    line += (f" The rule learns from reward alone: without reward its estimate of the unit's effect "
                             f"fades towards zero, and nothing else in the model (no decay, no homeostasis) pulls the "
                             f"weights back, so the unit's rate stays up ({r_last:.1f} Hz against "
                             f"{r_first:.1f} in {names[0]}) where an animal's falls back in extinction.")
        lines.append(line)
    return lines


#: A source checkout's measurements of how often the demo session's analysis lists units without an effect
#: (``analysis/bci_null_units.py``): with the demo's RDD learning, and with the weights fixed
#: (``--rule none``); absent from an installed package.
NULL_UNITS_JSON = Path(__file__).resolve().parents[1] / "analysis" / "results" / "causal" / "bci_null_units.json"
NULL_UNITS_JSONS = (NULL_UNITS_JSON, NULL_UNITS_JSON.with_name("bci_null_units_no_learning.json"))


def _null_units_line(cfg, path: Path | None = None, *, control_se: float = float("nan"),
                     duration_s: float = float("nan")) -> list[str]:
    """One finding: the measured false-discovery rates of the spike RD and the naive observed dependence in
    sessions of this configuration, and the control unit's pooled true effect, when a stored measurement
    (``path``, else the first of :data:`NULL_UNITS_JSONS` that fits) is there and was made on it; with this
    session's ``control_se`` and ``duration_s``, the session length that 80% power to detect that effect
    needs (5% level, two-sided)."""
    if path is None:
        for candidate in NULL_UNITS_JSONS:
            line = _null_units_line(cfg, candidate, control_se=control_se, duration_s=duration_s)
            if line:
                return line
        return []
    try:
        res = json.loads(Path(path).read_text())
        setting, v = res["setting"], res["variants"]
        # the demo's configuration, or it with another learning rule (at that rule's defaults)
        same = (setting["blocks"] == [[b.name, b.duration_s, b.reward] for b in cfg.blocks]
                and setting["n_units"] == cfg.n_units and setting["c"] == cfg.noise.c and setting["rule"] == cfg.rule
                and list(setting["control_units"]) == list(cfg.control_units)
                and set(setting.get("changes") or {}) <= {"rule"})
        fp, fw = v["spike"]["false_positive_uncorrected"], v["spike"]["family_wise_error_holm"]
        od = v["naive-od"]["family_wise_error_holm"]
        ctl = res["control_coverage_spike"]
        removal = ctl["removal"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not same:
        return []
    return [f"- measured over {setting['replicates']} simulated sessions of this configuration, in which only the "
            f"control unit affects reward (analysis/bci_null_units.py): the spike RD's uncorrected 95% CIs exclude 0 "
            f"for {100 * fp['rate']:.1f}% of the other units (nominal 5%), and Holm's correction lists one of them in "
            f"{100 * fw['rate']:.1f}% of sessions (nominal at most 5%); observed dependence lists one in "
            f"{100 * od['rate']:.0f}% of sessions. The control unit's RD estimates average {ctl['mean_estimate']:.3g} "
            f"against its true effect pooled over the sessions, {removal['pooled']:.3g} (SE {removal['pooled_se']:.1g}), "
            f"and their CIs cover it in {100 * removal['coverage_vs_pooled']['rate']:.0f}% of sessions"
            + _power_clause(removal["pooled"], control_se, duration_s) + "."]


def _power_clause(effect: float, se: float, duration_s: float) -> str:
    """``"; at that effect, ..."``: how much longer than this session 80% power needs (5% level, two-sided);
    empty without a usable effect or SE."""
    from .analysis.causal_results import session_length_factor

    factor = session_length_factor(effect, se)
    if not np.isfinite(factor):
        return ""
    if factor <= 1:
        return "; at that effect this session has about 80% power or more to detect it"
    minutes = f" (~{factor * duration_s / 60:.0f} min)" if np.isfinite(duration_s) else ""
    return f"; at that effect, 80% power to detect it needs a session about {factor:.1f}x as long as this one{minutes}"


#: Shortest demo session (s): its baseline block, a sixth of it, calibrates the reward threshold.
MIN_DEMO_DURATION_S = 1.0


def check_demo_duration(duration_s: float | None, name: str = "duration_s") -> None:
    """Raise ValueError (naming the option ``name``) unless ``duration_s`` is None or a finite number
    of at least 1 s."""
    if duration_s is None:
        return
    try:
        d = float(duration_s)
    except (TypeError, ValueError):
        d = float("nan")
    if not (math.isfinite(d) and d >= MIN_DEMO_DURATION_S):
        raise ValueError(f"{name} must be a finite number of seconds, at least {MIN_DEMO_DURATION_S:g} (the "
                         "baseline block, a sixth of the session, calibrates the reward threshold), "
                         f"got {duration_s!r}")


def run_demo(out_dir: str | os.PathLike, *, seed: int = 2023, duration_s: float | None = None, quick: bool = False,
             rule: str = "rdd", progress: bool = False) -> str:
    """Run the default pipeline into ``out_dir``: simulate a BCI session, write it as NWB, analyse the file.

    Parameters
    ----------
    out_dir : str or path
        Output folder (created if needed).
    seed : int
        Seed of the session.
    duration_s : float, optional
        Session length (at least :data:`MIN_DEMO_DURATION_S`; a sixth baseline, two thirds
        conditioning, a sixth extinction). Default: the default session's blocks.
    quick : bool
        A 40 s session (when ``duration_s`` is not given).
    rule : str
        Learning rule of the session (a name of :data:`bci_credit.tasks.protocols.RULE_NAMES`), with
        its default parameters for the threshold task.
    progress : bool
        Show a progress bar while simulating.

    Returns
    -------
    str
        A short text summary (also written to ``summary.md``).
    """
    from .analysis.causal import analyze_recording
    from .io import nwb
    from .report import write_session_outputs
    from .tasks.bci import Block, default_session_config, run_session

    check_demo_duration(duration_s)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = default_session_config(seed=int(seed), rule=rule)
    # the truth is a Monte Carlo average over sampled counterfactual windows: sample four per second (not
    # one), so that it is precise enough to judge the CIs by (SE 0.005 against 0.011 at the default seed)
    cfg = cfg.replace(truth=dataclasses.replace(cfg.truth, every_s=DEMO_TRUTH_EVERY_S))
    if quick or duration_s is not None:
        total = float(duration_s) if duration_s is not None else 40.0
        cfg = cfg.replace(blocks=(Block("baseline", total / 6, reward=False), Block("conditioning", total * 2 / 3),
                                  Block("extinction", total / 6, reward=False)), calibration_s=min(cfg.calibration_s, total))
    log.info("simulating the default BCI session (%s)", ", ".join(f"{b.name} {b.duration_s:.0f} s" for b in cfg.blocks))
    rec = run_session(cfg, progress=progress).recordings[0]
    files = write_session_outputs(rec, out, stem="session")
    rec_file = nwb.read(out / "session.nwb")  # analyse the file, as for a real recording
    analysis = analyze_recording(rec_file, design="spike")
    files += list(analysis.save(out / "analysis").values())
    files.append(save_figure(_learning_figure(rec_file), out / "learning.png"))
    files.append(save_figure(_effects_figure(analysis, rec_file.outcome_kind), out / "causal_effects.png"))
    bci_files, metrics = _bci_outputs(rec_file, out)
    files += bci_files
    table = analysis.primary.table
    lines = [
        "# bci_credit demo: a simulated single-unit BCI session",
        "",
        f"Simulated {cfg.n_units} LIF units (shared-input fraction c = {cfg.noise.c}: the correlation of the units' "
        f"input noise) in a {cfg.mapping['name']} task: "
        + ", ".join(f"{b.name} {b.duration_s:.0f} s" for b in cfg.blocks)
        + f"; {'no learning' if cfg.rule in (None, 'none') else f'`{cfg.rule}` learning'}, seed {seed}; control unit "
        f"{', '.join(map(str, cfg.control_units))}.",
        "",
        "What the session did (success_rate.csv, rate_changes.csv, bci_metrics.json, bci_session.png):",
        "",
        *_session_findings(rec_file, metrics, cfg.blocks),
        "",
        "Per-unit causal effect of a spike on the window's reward (spike-discontinuity RD, robust 95% CI), "
        "with the simulation's true effect:",
        "",
        "```text",
        table[["unit", "is_control", "estimate", "ci_lo", "ci_hi"]
              + [c for c in (truth_column(table),) if c]].round(5).to_string(index=False),
        "```",
        "",
        *analysis.findings(),
        *_null_units_line(cfg, control_se=float(table.loc[table["is_control"].astype(bool), "se"].iloc[0]),
                          duration_s=float(sum(b.duration_s for b in cfg.blocks))),
        *([f"- the analysis pools every block, including {' and '.join(b.name for b in cfg.blocks if not b.reward)}, "
           f"where no reward is delivered (the truth averages over the same windows); `bci-credit analyze "
           f"{shlex.quote(str(out / 'session.nwb'))} --blocks "
           f"{shlex.quote(','.join(b.name for b in cfg.blocks if b.reward))} --out DIR` "
           f"analyses the rewarded block(s) alone."] if any(not b.reward for b in cfg.blocks) else []),
        "",
        "Terms: the control unit is the unit the BCI decoder reads (its firing earns the reward). Z is a unit's "
        "largest input drive in a window; the unit spikes when Z crosses its threshold. The spike RD compares the "
        "reward in windows where Z just crossed the threshold with windows where it just missed: they differ by the "
        "spike and hardly in anything else, shared input included. Holm's correction keeps the chance of listing any "
        "unit without an effect at 5% or below when the units' CIs hold their nominal level.",
        "",
        "The full analysis (also in analysis/summary.txt; every row in analysis/effects.csv):",
        "",
        "```text",
        analysis.summary(findings=False),
        "```",
        "",
        "Files: " + ", ".join(sorted(str(Path(f).relative_to(out)) for f in files)) + ", run.json",
    ]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text + "\n")
    write_run_json(out, command="demo", config=cfg.to_dict(), seed=seed)
    return text
