"""Pluggable gain dmu/dw: how a neuron's firing changes with its input weight.

The gradient link ``dE[R]/dw_i ~ beta_i dmu_i/dw_i`` (``rdd_model.md`` §3.1) needs the gain of each
neuron. Three estimators:

* :class:`LookupGain` — a table of dmu/dw on a weight grid, interpolated. The original code pasted
  a 19x19 table measured at sigma = 10; :func:`gain_table` regenerates such a table with our own
  engine, by finite differences of the simulated rate (``data/gain_table_sigma10.json`` holds one,
  with the script that made it);
* :class:`FiniteDifferenceGain` — the same table computed on first use for the population's own
  noise level (so it follows sigma, dt and the refractory period);
* :class:`OnlineGain` — a local running estimate: each neuron tracks its own spike probability
  per step ``mu`` and uses ``dmu/dw ~ 2 mu / w``, the slope of the ``mu ~ w^2`` law of the
  reflected random walk (first-passage time ~ 1/w^2). Only the neuron's own spikes and weight are
  used, so the learning rule stays local.

Gains are in spikes per step per unit weight.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from .base import WindowContext, WindowData

__all__ = ["Gain", "ConstantGain", "LookupGain", "FiniteDifferenceGain", "OnlineGain", "gain_table", "make_gain"]


class Gain:
    """Base class: ``reset(w0, context)``, ``observe(window)``, ``__call__(w) -> dmu/dw``."""

    def reset(self, w0: np.ndarray, context: WindowContext) -> None:
        """Start (or restart) estimating for a rule about to learn from weights ``w0``.

        Parameters
        ----------
        w0 : ndarray, shape (replicates, neurons)
            Initial weights.
        context : WindowContext
            The simulation the rule is attached to.
        """

    def observe(self, window: WindowData) -> None:
        """Update the estimate with one window (no-op for gains that do not learn).

        Parameters
        ----------
        window : WindowData
            The window's local signals.
        """

    def __call__(self, w: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ConstantGain(Gain):
    """The same gain for every weight.

    Parameters
    ----------
    value : float
        dmu/dw, spikes per step per unit weight.
    """

    def __init__(self, value: float = 1e-3):
        self.value = float(value)

    def __call__(self, w):
        return np.full_like(np.asarray(w, dtype=float), self.value)


def gain_table(w_grid, *, sigma: float = 10.0, duration_s: float = 2000.0, params=None, seed=0, dw: float | None = None):
    """Simulate the rate (spikes per step) of one neuron at each weight and differentiate it.

    Returns ``(w_grid, mu, dmu_dw)``; ``dmu_dw`` is a central difference of the simulated rates
    (one-sided at the ends), all weights simulated in one batched engine call.
    """
    from ..sim import LIFParams, simulate

    w_grid = np.asarray(w_grid, dtype=float)
    p = (params or LIFParams()).replace(sigma=sigma, window_s=0.05)
    block, pop = simulate(w_grid[:, None], duration_s, c=0.0, params=p, seed=seed, record_spikes=False)
    steps = block.n_windows * p.window_steps
    mu = block.counts.sum(axis=(1, 2)) / steps
    return w_grid, mu, np.gradient(mu, w_grid)


class LookupGain(Gain):
    """Interpolate dmu/dw from a table ``(w_grid, dmu_dw)`` (clamped outside the grid).

    Parameters
    ----------
    w_grid, dmu_dw : array_like, optional
        The table: weights (increasing) and the gain at each.
    path : str, optional
        JSON file with keys ``"w"`` and ``"dmu_dw"``, read on first use when ``w_grid`` is None
        (default: the package's ``data/gain_table_sigma10.json``).
    """

    def __init__(self, w_grid: ArrayLike | None = None, dmu_dw: ArrayLike | None = None, path: str | None = None):
        self.w_grid = w_grid
        self.dmu_dw = dmu_dw
        self.path = path

    def _table(self):
        if self.w_grid is None:
            path = Path(self.path) if self.path else _default_table_path()
            data = json.loads(path.read_text())
            self.w_grid, self.dmu_dw = np.asarray(data["w"]), np.asarray(data["dmu_dw"])
        return np.asarray(self.w_grid, float), np.asarray(self.dmu_dw, float)

    def __call__(self, w):
        grid, g = self._table()
        return np.interp(np.asarray(w, float), grid, g)


def _default_table_path() -> Path:
    return Path(__file__).resolve().parents[2] / "data" / "gain_table_sigma10.json"


class FiniteDifferenceGain(LookupGain):
    """A lookup table simulated on first use for the attached population's sigma.

    The table is simulated with :func:`gain_table` at each :meth:`reset`, at the mean ``sigma`` of
    the context's replicates.

    Parameters
    ----------
    w_min, w_max : float
        Range of the weight grid.
    n_grid : int
        Number of grid weights.
    duration_s : float
        Simulated time per grid weight.
    seed : int, optional
        Seed of the table simulation.
    """

    def __init__(self, w_min: float = 2.0, w_max: float = 20.0, n_grid: int = 19, duration_s: float = 1000.0,
                 seed: int | None = 0):
        super().__init__()
        self.w_min, self.w_max, self.n_grid, self.duration_s, self.seed = w_min, w_max, n_grid, duration_s, seed

    def reset(self, w0: np.ndarray, context: WindowContext) -> None:
        sigma = float(np.mean(context.sigma))
        grid = np.linspace(self.w_min, self.w_max, self.n_grid)
        _, _, g = gain_table(grid, sigma=sigma, duration_s=self.duration_s, seed=self.seed)
        self.w_grid, self.dmu_dw = grid, g


class OnlineGain(Gain):
    """Local running estimate ``dmu/dw = 2 mu / w`` from the neuron's own spike count.

    Parameters
    ----------
    tau_windows : float
        Time constant, in windows, of ``mu``: an exponential running average of spikes per step.
    mu0 : float
        Start value of ``mu`` (spikes per step).
    """

    def __init__(self, tau_windows: float = 200.0, mu0: float = 0.005):
        self.tau_windows = tau_windows
        self.mu0 = mu0

    def reset(self, w0: np.ndarray, context: WindowContext) -> None:
        self.mu_ = np.full(np.shape(w0), float(self.mu0))
        self._steps = context.window_steps

    def observe(self, window: WindowData) -> None:
        a = 1.0 / self.tau_windows
        self.mu_ = (1 - a) * self.mu_ + a * window.counts / self._steps

    def __call__(self, w):
        return 2.0 * self.mu_ / np.maximum(np.asarray(w, float), 1e-9)


def make_gain(spec: str | float | Gain) -> Gain:
    """Build the gain estimator a rule's ``gain`` setting names.

    Parameters
    ----------
    spec : {"lookup", "finite_difference", "online", "constant"} or float or Gain
        A name (default settings), a finite number (a :class:`ConstantGain`), or a Gain. A Gain is
        copied, so a rule's learning never changes the object it was given (it stays a
        hyper-parameter, and two rules given the same one do not share state).

    Returns
    -------
    Gain
        A new estimator.
    """
    if isinstance(spec, Gain):
        return copy.deepcopy(spec)
    table = {"lookup": LookupGain, "finite_difference": FiniteDifferenceGain, "online": OnlineGain, "constant": ConstantGain}
    if isinstance(spec, (int, float, np.integer, np.floating)) and not isinstance(spec, (bool, np.bool_)):
        if not np.isfinite(spec):
            raise ValueError(f"gain {spec!r} is not a valid gain; a constant gain must be a finite number")
        return ConstantGain(float(spec))
    if not isinstance(spec, str) or spec not in table:
        raise ValueError(f"gain {spec!r} is not a valid gain; choose one of {sorted(table)} or give a number")
    return table[spec]()
