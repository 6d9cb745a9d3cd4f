"""Exponential output filter: the spike train h -> filtered output s.

s is the causal convolution of h with a normalised exponential kernel, updated recursively as
``s <- decay * s + k0 * h``. Two conventions:

* ``paper_kernel=False`` (default): the kernel sampled on the true time grid,
  ``decay = exp(-dt/tau_s)`` and ``k0 = 1 - decay`` (the kernel sums to one), so
  ``E[s]`` = spikes per step.
* ``paper_kernel=True``: the original notebooks' kernel, sampled on ``linspace(0, 1 s, 2000)``
  (spacing 1/1999 s) but applied per 1-ms step. The effective time constant is then
  ``1.999 * tau_s`` and ``k0 = 1 / sum(kernel)`` over its 2000 samples (0.0247 for tau_s = 0.02,
  0.00252 for tau_s = 0.2). See ``rdd_model.md`` §1.3.
"""

from __future__ import annotations

import math

__all__ = ["output_filter", "delta_s_theory"]


def output_filter(tau_s: float, dt_s: float = 0.001, paper_kernel: bool = False) -> tuple[float, float]:
    """Return ``(decay, k0)`` of the recursive output filter.

    Parameters
    ----------
    tau_s : float
        Filter time constant in seconds (> 0).
    dt_s : float
        Simulation time step in seconds.
    paper_kernel : bool
        Reproduce the original code's doubled-time-constant kernel (see module docstring).

    Returns
    -------
    decay, k0 : float
        ``s <- decay * s + k0 * h`` per step.
    """
    if tau_s <= 0:
        raise ValueError(f"tau_s must be positive, got {tau_s}")
    if paper_kernel:
        spacing = 1.0 / 1999.0  # linspace(0, 1, 2000)
        decay = math.exp(-spacing / tau_s)
        total = (1.0 - decay**2000) / (1.0 - decay)
        return decay, 1.0 / total
    decay = math.exp(-dt_s / tau_s)
    return decay, 1.0 - decay


def delta_s_theory(window_steps: int, tau_s: float, dt_s: float = 0.001, paper_kernel: bool = False) -> float:
    """Expected jump of s at the end of a window caused by one spike at a uniform random step.

    The average over the window of ``k0 * decay**(window_steps - 1 - j)``.

    Parameters
    ----------
    window_steps : int
        Steps per window.
    tau_s, dt_s, paper_kernel
        As in :func:`output_filter`.

    Returns
    -------
    float
        The expected jump of s.
    """
    decay, k0 = output_filter(tau_s, dt_s, paper_kernel)
    n = int(window_steps)
    return k0 * (1.0 - decay**n) / (1.0 - decay) / n
