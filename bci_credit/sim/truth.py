"""Ground-truth causal effects of each neuron's spiking on the window-end reward.

Both are computed from the engine's per-window outputs and the cost, for every neuron and
replicate at once. Because the filtered output ``s`` is linear in the spike train, removing or
inserting spikes of neuron i only shifts ``s_i``:

* **paired do()** (:func:`paired_do_effects`): in each window remove neuron i's own spikes from
  ``s_i`` (``s_end - s_window``) and compare the reward with zero spikes against the reward with
  one spike inserted at a uniformly random step (or a given step). This is
  ``E[R | do(H_i=1)] - E[R | do(H_i=0)]`` window by window, with the other neurons' real outputs.
  Averaged over windows with ``|Z_i - theta| < p`` it is the RD estimand.
* **spike perturbation (SP)** (:func:`spike_perturbation_effects`), the original code's truth:
  neuron i's whole train is replaced by a random one (each window, with probability 1/2, one spike
  at a random step), the cost is recomputed with the other neurons' *real* outputs, and
  ``beta = mean(R | injected) - mean(R | not injected)``. The original code mutated a shared array
  so neuron 2's truth also saw neuron 1's randomised train (``rdd_model.md`` §7.7); here every
  neuron is perturbed alone.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..random import SeedLike, check_random_state

__all__ = ["paired_do_effects", "spike_perturbation_effects", "spike_kick"]


def _check_outputs(s_end, where: str) -> np.ndarray:
    """``s_end`` as a float array of shape (replicates, windows, neurons), or a ValueError naming ``where``."""
    s_end = np.asarray(s_end, dtype=float)
    if s_end.ndim != 3:
        raise ValueError(f"{where}: s_end must be shaped (replicates, windows, neurons), got shape {s_end.shape}; "
                         f"for one replicate pass s_end[None]")
    return s_end


def spike_kick(steps: np.ndarray, window_steps: int, decay: float, k0: float) -> np.ndarray:
    """Contribution to the window-end output of one spike at step ``steps`` (0-based in its window)."""
    return k0 * decay ** (window_steps - 1 - np.asarray(steps))


def paired_do_effects(s_end: np.ndarray, s_window: np.ndarray, cost: Callable, *, window_steps: int, decay: float,
                      k0: float, seed: SeedLike = None, steps: np.ndarray | None = None) -> np.ndarray:
    """Per-window paired do() effect of each neuron, shape (replicates, windows, neurons).

    Parameters
    ----------
    s_end, s_window : ndarray, shape (replicates, windows, neurons)
        Filtered output at each window's end and the part of it due to the window's own spikes.
    cost : callable
        ``cost(s) -> R`` over the last axis.
    window_steps, decay, k0 : int, float, float
        Window length and output-filter constants of the run.
    seed : seed-like
        Draws the inserted spike's step (uniform in the window) when ``steps`` is not given.
    steps : ndarray, optional
        The step of the inserted spike for each (replicate, window, neuron).
    """
    s_end = _check_outputs(s_end, "paired_do_effects")
    s_window = np.asarray(s_window, dtype=float)
    if s_window.shape != s_end.shape:
        raise ValueError(f"paired_do_effects: s_window must have the shape of s_end {s_end.shape}, "
                         f"got {s_window.shape}")
    R, W, N = s_end.shape
    if steps is None:
        steps = check_random_state(seed).integers(0, window_steps, size=(R, W, N))
    else:
        steps = np.asarray(steps)
        if not np.issubdtype(steps.dtype, np.integer) or ((steps < 0) | (steps >= window_steps)).any():
            raise ValueError(f"paired_do_effects: steps must be whole step numbers within the window, "
                             f"0..{window_steps - 1} (window_steps={window_steps})")
        if np.broadcast_shapes(steps.shape, s_end.shape) != s_end.shape:
            raise ValueError(f"paired_do_effects: steps must broadcast to {s_end.shape}, got {steps.shape}")
    kick = spike_kick(steps, window_steps, decay, k0)
    base = s_end - s_window  # every neuron's own in-window spikes removed
    out = np.empty((R, W, N))
    for i in range(N):
        s0 = s_end.copy()
        s0[..., i] = base[..., i]
        r0 = cost(s0)
        s0[..., i] += kick[..., i]
        out[..., i] = cost(s0) - r0
    return out


def spike_perturbation_effects(s_end: np.ndarray, cost: Callable, *, window_steps: int, decay: float, k0: float,
                               seed: SeedLike = None, p_inject: float = 0.5) -> np.ndarray:
    """The original code's spike-perturbation truth, one neuron perturbed at a time; shape (replicates, neurons)."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs seconds at process start

    s_end = _check_outputs(s_end, "spike_perturbation_effects")
    if not 0.0 < p_inject < 1.0:  # 0 or 1 leaves one group empty: every effect would be NaN
        raise ValueError(f"spike_perturbation_effects: p_inject must lie strictly between 0 and 1, got {p_inject!r}")
    R, W, N = s_end.shape
    rng = check_random_state(seed)
    out = np.empty((R, N))
    dW = decay**window_steps
    for i in range(N):
        inject = rng.random((R, W)) < p_inject
        steps = rng.integers(0, window_steps, size=(R, W))
        x = inject * spike_kick(steps, window_steps, decay, k0)
        s_rand = lfilter([1.0], [1.0, -dW], x, axis=1)  # s_i at each window end under the random train
        s_mod = s_end.copy()
        s_mod[..., i] = s_rand
        r = cost(s_mod)
        n1 = inject.sum(axis=1)
        n0 = W - n1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = (r * inject).sum(axis=1) / n1 - (r * ~inject).sum(axis=1) / n0
    return out
