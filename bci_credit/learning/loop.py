"""The online learning loop: simulate a window, compute its reward, let the rule update the weights."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..recording import WeightTrace
from ..sim.lif import LIFPopulation, WindowBlock
from .base import LearningRule, WindowContext, WindowData

__all__ = ["run_online", "context_of"]


def context_of(pop: LIFPopulation) -> WindowContext:
    """The :class:`WindowContext` of a population."""
    p = pop.params
    return WindowContext(threshold=p.threshold, window_steps=p.window_steps, dt_s=p.dt_s, decay=pop.decay,
                         k0=pop.k0, sigma=pop.sigma, seed=pop.seed_record)


def _reward(cost: Callable, s_end: np.ndarray) -> np.ndarray:
    """The cost of each replicate's window-end outputs; refuses a cost that does not give one number per replicate."""
    reward = np.asarray(cost(s_end), dtype=float)
    if reward.shape != s_end.shape[:1]:
        raise ValueError(f"the cost {cost!r} returned shape {reward.shape} for outputs of shape {s_end.shape}; "
                         f"a cost must return one reward per replicate, shape {s_end.shape[:1]}")
    return reward


def run_online(pop: LIFPopulation, rule: LearningRule, cost: Callable, n_windows: int, *,
               record_every_s: float = 1.0, progress_bar=None,
               keep_blocks: bool = True) -> tuple[list[WindowBlock], WeightTrace]:
    """Run ``n_windows`` windows of online learning on every replicate of ``pop``.

    Each window is simulated with the rule's current weights; the cost of the filtered outputs
    at the window's end is the reward; the rule then updates the weights. Returns the per-window
    blocks (when ``keep_blocks``) and the weight trace of replicate 0: the start, every
    ``record_every_s`` seconds, and the end of the run (also when ``n_windows`` is not a whole
    number of sampling intervals, so ``trace.values[-1]`` is always the final weights). A rule
    with ``sigma_pert > 0`` needs a population built with the same ``sigma_pert``.
    """
    from ..checks import check_number

    n_windows = check_number(n_windows, "n_windows", integer=True)  # 2.9 ran 2 windows, -3 none, silently
    if n_windows < 0:
        raise ValueError(f"n_windows must be >= 0, got {n_windows}")
    if getattr(rule, "sigma_pert", 0.0) and pop.sigma_pert != rule.sigma_pert:
        raise ValueError(f"{type(rule).__name__} needs a population with sigma_pert={rule.sigma_pert} "
                         f"(got {pop.sigma_pert})")
    rule.initialize(pop.w.copy(), context_of(pop))
    p = pop.params
    every = max(1, int(round(record_every_s / p.window_s)))
    t_trace, w_trace, blocks = [pop.t_s], [rule.weights_[0].copy()], []
    paired = bool(getattr(rule, "needs_unperturbed", False))
    probes = bool(getattr(rule, "perturbs_outputs", False))  # e.g. spike injection: the rule sees its probe
    for k in range(n_windows):
        r_unpert = None
        if paired:
            snap = pop.snapshot()
            sigma_pert = pop.sigma_pert
            pop.sigma_pert = 0.0
            ref = pop.run(1, w=rule.weights_)
            r_unpert = _reward(cost, ref.s_end[:, 0, :])
            pop.restore(snap)
            pop.sigma_pert = sigma_pert
        b = pop.run(1, w=rule.weights_)
        s_end = b.s_end[:, 0, :]
        reward = _reward(cost, rule.perturb_outputs(s_end) if probes else s_end)
        win = WindowData(drive=b.drive[:, 0, :], spiked=b.spiked[:, 0, :], counts=b.counts[:, 0, :], reward=reward,
                         s_end=s_end, index=b.first_window,
                         eligibility=None if b.eligibility is None else b.eligibility[:, 0, :],
                         reward_unperturbed=r_unpert)
        rule.update(win)
        if keep_blocks:
            blocks.append(b)
        if (k + 1) % every == 0:
            t_trace.append(pop.t_s)
            w_trace.append(rule.weights_[0].copy())
        if progress_bar is not None and (k + 1) % 100 == 0:
            progress_bar.update(100)
    if n_windows % every:  # the last window was not sampled: end the trace with the final weights
        t_trace.append(pop.t_s)
        w_trace.append(rule.weights_[0].copy())
    pop.w = rule.weights_.copy()
    return blocks, WeightTrace(np.asarray(t_trace), np.asarray(w_trace))
