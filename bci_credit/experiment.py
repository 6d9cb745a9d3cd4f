"""The one loop: population x task x rule x duration -> :class:`~bci_credit.recording.Recording`.

:func:`run` simulates a configured experiment (weights fixed, or changed window by window by a
learning rule) and returns a Recording with per-window drive Z, spike indicator H and reward,
spike times, the weight trace and provenance. :func:`block_to_recording` turns raw engine output
into a Recording for code that drives the engine itself.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import warnings
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from .config import ConfigWarning, SimulationConfig
from .random import SeedLike, seed_repr
from .recording import Recording, TimeSeries, WeightTrace, make_units_table
from .sim.lif import LIFPopulation, WindowBlock, concat_blocks, run_windows, step_times, window_times
from .sim.truth import paired_do_effects

if TYPE_CHECKING:
    from .learning.base import LearningRule

__all__ = ["run", "block_to_recording", "EPOCH"]

log = logging.getLogger("bci_credit")

#: Session start time written for simulations (fixed, so files are reproducible).
EPOCH = _dt.datetime(2020, 1, 1, tzinfo=_dt.timezone.utc)


def _realised_threshold_effect(s_end, s_window, z, cost, threshold, near_threshold):
    """Effect of the spikes as they happened, in windows whose drive just crossed threshold.

    For windows with ``theta < Z_i < theta + near_threshold`` (the unit barely spiked), the
    reward with the unit's in-window spikes minus the reward with them removed. This is the RD
    estimand: the jump of ``E[R | Z]`` at threshold, where near-threshold spikes fall when the
    drive reaches threshold (mostly late in the window), unlike the random insertion step of
    ``true_marginal_effect``.
    """
    out = np.full(z.shape[1], np.nan)
    r1 = cost(s_end)
    for i in range(z.shape[1]):
        sel = (z[:, i] > threshold) & (z[:, i] < threshold + near_threshold)
        if sel.any():
            s0 = s_end[sel].copy()
            s0[:, i] -= s_window[sel, i]
            out[i] = float(np.mean(r1[sel] - cost(s0)))
    return out


def block_to_recording(block: WindowBlock, pop: LIFPopulation, cost: Callable, *, replicate: int = 0,
                       control_unit: int | None = None, truth_seed: SeedLike = None, weights: WeightTrace | None = None,
                       meta: dict | None = None, near_threshold: float = 0.01) -> Recording:
    """Build the Recording of one replicate of an engine run.

    The units table carries ``threshold`` and the paired do() ground truth of each unit's direct
    effect on reward: ``true_direct_effect`` (averaged over all windows) and
    ``true_marginal_effect`` (over windows with ``|Z - theta| < near_threshold``, spike inserted at a
    random step), and ``true_rd_effect``: the RD estimand, the effect of the spikes as they happened
    in windows whose drive just crossed threshold (:func:`_realised_threshold_effect`).
    ``true_total_effect`` equals the direct effect here (units do not interact).

    Parameters
    ----------
    block : WindowBlock
        The engine's outputs.
    pop : LIFPopulation
        The population that produced them (parameters, filter, seeds).
    cost : callable
        ``cost(s) -> R`` of the window-end outputs.
    replicate : int
        Which replicate of the block.
    control_unit : int, optional
        Unit flagged ``is_control``.
    truth_seed : seed-like
        Draws the step of each inserted spike of the paired do() truth.
    weights : WeightTrace, optional
        Weight trace of a run with learning (its first row is ``w_initial``).
    meta : dict, optional
        Entries added to (or replacing) the recording's ``meta``.
    near_threshold : float
        Half-width of the band ``|Z - theta|`` of the marginal and RD truths.

    Returns
    -------
    Recording
        Units, spike times, windows (``start_s``, ``stop_s``, ``reward``), drive, spike indicator,
        the reward series and provenance.
    """
    p = pop.params
    W = block.n_windows
    N = pop.n_neurons
    r = int(replicate)
    s_end = block.s_end[r:r + 1]
    reward = np.asarray(cost(s_end[0]), dtype=float)
    eff = paired_do_effects(s_end, block.s_window[r:r + 1], cost, window_steps=p.window_steps, decay=pop.decay,
                            k0=pop.k0, seed=truth_seed)[0]
    z = block.drive[r]
    near = np.abs(z - p.threshold) < near_threshold
    with np.errstate(invalid="ignore"):
        marginal = np.where(near.any(axis=0), (eff * near).sum(axis=0) / np.maximum(near.sum(axis=0), 1), np.nan)
    rd_effect = _realised_threshold_effect(s_end[0], block.s_window[r], z, cost, p.threshold, near_threshold)
    units = make_units_table(
        N,
        control={control_unit: True} if control_unit is not None else None,
        threshold=p.threshold,
        true_direct_effect=eff.mean(axis=0),
        true_total_effect=eff.mean(axis=0),
        true_marginal_effect=marginal,
        true_rd_effect=rd_effect,
        w_initial=pop.w[r] if weights is None else weights.values[0],
    )
    sel = block.spike_rep == r
    steps, neurons = block.spike_step[sel], block.spike_neuron[sel]
    spike_times = [step_times(np.sort(steps[neurons == i]), p) for i in range(N)]
    w0 = block.first_window
    starts, stops = window_times(w0, W, p)
    windows = pd.DataFrame({"start_s": starts, "stop_s": stops, "reward": reward})
    rew_t = windows["stop_s"].to_numpy()
    series = {
        "reward": TimeSeries(rew_t, reward, unit="a.u.", description="cost R at each window's end (minimised)"),
    }
    m = {
        "source": "simulation",
        "dt_s": p.dt_s,
        "duration_s": float((w0 + W) * p.window_s - w0 * p.window_s),
        "session_start_time": EPOCH.isoformat(),
        "model": dataclasses.asdict(p),
        "cost": cost.describe() if hasattr(cost, "describe") else repr(cost),
        "seed": pop.seed_record if not isinstance(pop.seed_record, list) else pop.seed_record[r],
        "replicate": r,
        "c": float(pop.c[r]),
        "filter": {"decay": pop.decay, "k0": pop.k0},
    }
    if meta:
        m.update(meta)
    return Recording(units=units, spike_times=spike_times, windows=windows, drive=z.copy(),
                     spiked=block.spiked[r].copy(), series=series, weights=weights, meta=m)


def run(config: SimulationConfig | str | os.PathLike, *, progress: bool = False,
        rule: LearningRule | None = None) -> Recording:
    """Simulate the experiment described by ``config`` and return its Recording.

    Parameters
    ----------
    config : SimulationConfig or str or path
        Population, model, task, learning rule and run settings (see :mod:`bci_credit.config`),
        or a preset name / TOML path (loaded with :func:`~bci_credit.config.load_preset`).
    progress : bool
        Show a progress bar (updated per chunk of windows).
    rule : LearningRule, optional
        A rule object overriding ``config.learning`` (see :mod:`bci_credit.learning`).

    Returns
    -------
    Recording
        The simulated session (with the weight trace when a rule learns).
    """
    from .config import load_preset
    from .outputs import versions

    if isinstance(config, (str, os.PathLike)):
        config = load_preset(os.fspath(config))
    elif not isinstance(config, SimulationConfig):
        raise TypeError(f"a simulation needs a SimulationConfig or a preset name, got {type(config).__name__}; "
                        "e.g. load_preset('paper_2neuron_banana')")

    pc, p = config.population, config.model
    cost = config.task.build()
    seed = config.run.seed
    recorded = config.to_dict()
    if rule is not None:  # the rule that runs, not the config's, goes into the provenance
        from .outputs import to_jsonable

        recorded["learning"] = {"rule": type(rule).__name__, "params": to_jsonable(
            {k: v if isinstance(v, (int, float, str, bool, list, tuple, type(None), np.ndarray)) else repr(v)
             for k, v in rule.get_params().items()}), "given_as": "rule object (config.learning not used)"}
    if rule is None and config.learning.rule != "none":
        from .learning import make_rule

        rule = make_rule(config.learning.rule, **dict(config.learning.params))
    pop = LIFPopulation(np.asarray(pc.w)[None, :], c=pc.c, x=pc.x, params=p, seed=seed,
                        sigma_pert=getattr(rule, "sigma_pert", 0.0))
    n_windows = config.n_windows
    if config.duration_note:
        warnings.warn(config.duration_note, ConfigWarning, stacklevel=2)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_windows, unit="window", desc=config.name)
    blocks: list[WindowBlock] = []
    weights = None
    if rule is None:
        blocks = run_windows(pop, n_windows, progress_bar=bar)
    else:
        from .learning.loop import run_online

        blocks, weights = run_online(pop, rule, cost, n_windows, record_every_s=config.run.record_weights_every_s,
                                     progress_bar=bar)
    if bar is not None:
        bar.close()
    block = concat_blocks(blocks) if blocks else pop.run(0)
    truth_seed = np.random.SeedSequence(seed if seed is not None else 0).spawn(2)[1] if seed is not None else None
    rec = block_to_recording(
        block, pop, cost, control_unit=pc.control_unit, truth_seed=truth_seed, weights=weights,
        meta={"config": recorded, "versions": versions(), "name": config.name,
              "learning_rule": None if rule is None else type(rule).__name__},
    )
    rec.meta["seed"] = seed_repr(seed)
    return rec
