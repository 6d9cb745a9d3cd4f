"""The main job end to end: simulate a BCI session -> NWB -> RD analysis -> report folder.

:func:`run_demo` is what ``make demo`` (``bci-credit demo``) runs. The analysis reads the NWB file
back from disk, exactly as it would read a real recording.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .outputs import save_figure, write_csv, write_run_json

__all__ = ["run_demo", "causal_table"]

log = logging.getLogger("bci_credit")


def causal_table(rec) -> pd.DataFrame:
    """Per-unit spike-discontinuity RD next to the naive observed dependence and the truth."""
    from .analysis.rd import fit_recording
    from .analysis.spiking import observed_dependence

    table = fit_recording(rec)
    thr = rec.units["threshold"].to_numpy(float)
    thr = np.where(np.isfinite(thr), thr, 1.0)
    od = observed_dependence(rec.drive - thr + 1.0, rec.windows["reward"].to_numpy(float))
    table["observed_dependence"] = od
    for col in ("is_control", "true_direct_effect", "true_marginal_effect"):
        if col in rec.units.columns:
            table[col] = rec.units[col].to_numpy()
    table["rate_hz"] = rec.rates_hz()
    return table


def _learning_figure(rec):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    if rec.weights is not None:
        ctrl = rec.units["is_control"].to_numpy(bool)
        w = rec.weights.values
        axes[0].plot(rec.weights.t_s, w[:, ~ctrl], color="0.6", lw=0.8)
        axes[0].plot(rec.weights.t_s, w[:, ctrl], color="tab:red", lw=1.5, label="control unit")
        axes[0].set_xlabel("time (s)")
        axes[0].set_ylabel("input gain w")
        axes[0].legend()
        axes[0].set_title("learning: weights")
    r = rec.windows["reward"].to_numpy(float)
    k = max(1, r.size // 100)
    rr = r[: r.size // k * k].reshape(-1, k).mean(axis=1)
    axes[1].plot(rec.windows["stop_s"].to_numpy()[k - 1::k][: rr.size], rr)
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("cost R (lower is better)")
    axes[1].set_title("learning curve")
    fig.tight_layout()
    return fig


def _effects_figure(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(table))
    ax.errorbar(x - 0.15, table["estimate"], yerr=[table["estimate"] - table["ci_rb_lo"], table["ci_rb_hi"] - table["estimate"]],
                fmt="o", label="spike-discontinuity RD (robust 95% CI)")
    ax.plot(x + 0.15, table["observed_dependence"], "s", label="observed dependence (naive)")
    if "true_marginal_effect" in table:
        ax.plot(x, table["true_marginal_effect"], "k_", ms=14, mew=2, label="truth (paired do, near threshold)")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{u}{'*' if c else ''}" for u, c in zip(table["unit"], table.get("is_control", [False] * len(x)))])
    ax.set_xlabel("unit (* = control unit)")
    ax.set_ylabel("causal effect on reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_demo(out_dir, *, seed: int = 2023, duration_s: float | None = None, quick: bool = False,
             progress: bool = False) -> str:
    """Run the default pipeline into ``out_dir``; return a short text summary (also in summary.md)."""
    from . import experiment
    from .config import load_preset
    from .io import nwb
    from .plotting.rd import rd_plot
    from .report import write_session_outputs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_preset("bci_10neuron")
    over = {"run.seed": int(seed)}
    if duration_s is not None or quick:
        over["run.duration_s"] = float(duration_s if duration_s is not None else 15.0)
    cfg = cfg.with_overrides(**over)
    log.info("simulating %s for %.0f s", cfg.name, cfg.run.duration_s)
    rec = experiment.run(cfg, progress=progress)
    files = write_session_outputs(rec, out, stem="session")
    rec_file = nwb.read(out / "session.nwb")  # analyse the file, as for a real recording
    table = causal_table(rec_file)
    files.append(write_csv(table, out / "causal_effects.csv", index=False))
    files.append(save_figure(_learning_figure(rec_file), out / "learning.png"))
    files.append(save_figure(_effects_figure(table), out / "causal_effects.png"))
    import matplotlib.pyplot as plt

    ctrl = int(np.flatnonzero(rec_file.units["is_control"].to_numpy(bool))[0]) if rec_file.units["is_control"].any() else 0
    other = 1 if ctrl != 1 else 0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, k in zip(axes, (ctrl, other)):
        thr = rec_file.units["threshold"].iloc[k]
        rd_plot(rec_file.windows["reward"].to_numpy(float), rec_file.drive[:, k] - thr, cutoff=0.0, ax=ax)
        ax.set_title(f"unit {rec_file.units.index[k]}{' (control)' if k == ctrl else ''}: reward vs drive - threshold")
    fig.tight_layout()
    files.append(save_figure(fig, out / "rd_plots.png"))
    lines = [
        f"# bci_credit demo: {cfg.name}",
        "",
        f"Simulated {cfg.population.n_neurons} LIF units for {cfg.run.duration_s:.0f} s with the "
        f"`{cfg.learning.rule}` rule (seed {seed}); control unit {cfg.population.control_unit}.",
        "",
        "Per-unit causal effect of spiking on reward (cost; negative = spiking lowers the cost):",
        "",
        table[["unit", "estimate", "ci_rb_lo", "ci_rb_hi", "observed_dependence"]
              + [c for c in ("true_marginal_effect",) if c in table]].round(5).to_string(index=False),
        "",
        "Files: " + ", ".join(sorted(f.name for f in files)) + ", run.json",
    ]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text + "\n")
    write_run_json(out, command="demo", config=cfg.to_dict(), seed=seed)
    return text
