"""REINFORCE-type baselines: node perturbation and spike-based REINFORCE.

* :class:`NodePerturbationRule` (``rdd_model.md`` §5.1; Fiete & Seung 2006): a private
  perturbation current ``psi_i = sigma_pert N(0,1)/sqrt(tau)`` is added to each neuron's voltage
  equation (not multiplied by w). The eligibility of a window is
  ``e_i = sum_t (x + xi_c + xi_i) psi_i``, the presynaptic input times the perturbation, and
  ``w_i <- clip(w_i - epsilon (R - b) e_i)``. The baseline ``b`` is

  - ``"running"`` (default): an exponential running average of R (REINFORCE with a baseline);
  - ``"paired"``: the reward of an unperturbed re-run of the same window with the same network
    noise (the original code's baseline mode, without its frozen-noise quirk, §7.11);
  - ``"none"``: ``b = 0``.

  The reward is the window-end cost (the original used the window's mean per-step cost).
  Because the perturbation is randomised, the gradient estimate is unbiased under correlated
  noise, at the price of injected noise.
* :class:`ReinforceRule`: REINFORCE with the neuron's own spiking as the exploration
  (``e_i = n_i - <n_i>``, spikes minus their running mean, times dmu/dw) and a running reward
  baseline. It uses no injected noise, so with correlated inputs credit leaks to units correlated
  with the ones that matter — the naive correlational learner of the BCI predictions.
"""

from __future__ import annotations

import numpy as np

from .base import LearningRule, WindowContext, WindowData, clip_weights
from .gain import Gain

__all__ = ["NodePerturbationRule", "ReinforceRule"]


class NodePerturbationRule(LearningRule):
    """Node perturbation (REINFORCE with Gaussian perturbation currents).

    Parameters
    ----------
    sigma_pert : float
        Perturbation scale (the original: 20).
    epsilon : float
        Learning rate (the original: 0.1).
    baseline : {"running", "paired", "none"}
        Reward baseline (see module docstring).
    tau_baseline : float
        Time constant (windows) of the running baseline.
    w_min, w_max : float or None
        Weight bounds.
    record_every : int
        Record ``history_`` every this many windows.
    """

    _checked_params = {"sigma_pert": (0.0, False), "epsilon": (0.0, True), "tau_baseline": (1.0, True)}
    _choice_params = {"baseline": ("running", "paired", "none")}

    def __init__(self, sigma_pert: float = 20.0, epsilon: float = 0.1, baseline: str = "running",
                 tau_baseline: float = 20.0, w_min: float | None = 2.0, w_max: float | None = 20.0,
                 record_every: int = 1):
        self.sigma_pert = sigma_pert
        self.epsilon = epsilon
        self.baseline = baseline
        self.tau_baseline = tau_baseline
        self.w_min = w_min
        self.w_max = w_max
        self.record_every = record_every

    @property
    def needs_unperturbed(self) -> bool:  # type: ignore[override]
        """True with ``baseline="paired"``: each window must carry ``reward_unperturbed``."""
        return self.baseline == "paired"

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        super().initialize(w0, context)
        self.rbar_ = None
        self.beta_ = np.zeros_like(self.weights_)  # last gradient estimate (R - b) e
        self.n_updates_ = np.zeros(self.weights_.shape, dtype=np.int64)

    def update(self, window: WindowData) -> np.ndarray:
        self._check_window(window)
        if window.eligibility is None:
            raise ValueError("NodePerturbationRule needs a population with sigma_pert > 0 (eligibility missing)")
        R = window.reward
        if self.baseline == "paired":
            if window.reward_unperturbed is None:
                raise ValueError("baseline='paired' needs the unperturbed reward of each window")
            b = window.reward_unperturbed
        elif self.baseline == "running":
            b = R if self.rbar_ is None else self.rbar_
            a = 1.0 / self.tau_baseline
            self.rbar_ = R.copy() if self.rbar_ is None else (1 - a) * self.rbar_ + a * R
        else:
            b = 0.0
        grad = (R - b)[:, None] * window.eligibility
        self.beta_ = grad
        self.n_updates_ += 1
        self.weights_ = clip_weights(self.weights_ - self.epsilon * grad, self.w_min, self.w_max)
        self._record(self.record_every)
        return self.weights_


class ReinforceRule(LearningRule):
    """Spike-based REINFORCE: ``w_i -= epsilon (R - Rbar)(n_i - <n_i>) dmu/dw`` per window.

    Parameters
    ----------
    epsilon : float
        Learning rate.
    tau_baseline : float
        Time constant (windows) of the running reward baseline and of each neuron's mean count.
    gain : {"lookup", "finite_difference", "online"} or float or Gain
        Estimator of dmu/dw (see :mod:`bci_credit.learning.gain`).
    w_min, w_max : float or None
        Weight bounds.
    record_every : int
        Record ``history_`` every this many windows.
    """

    _checked_params = {"epsilon": (0.0, True), "tau_baseline": (1.0, True)}

    def __init__(self, epsilon: float = 1e5, tau_baseline: float = 50.0, gain: str | float | Gain = "lookup",
                 w_min: float | None = 2.0, w_max: float | None = 20.0, record_every: int = 1):
        self.epsilon = epsilon
        self.tau_baseline = tau_baseline
        self.gain = gain
        self.w_min = w_min
        self.w_max = w_max
        self.record_every = record_every

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        super().initialize(w0, context)
        self.rbar_ = None
        self.nbar_ = None
        self.beta_ = np.zeros_like(self.weights_)
        self.n_updates_ = np.zeros(self.weights_.shape, dtype=np.int64)
        self._start_gain(context)

    def update(self, window: WindowData) -> np.ndarray:
        self._check_window(window)
        R = window.reward
        n = window.counts.astype(float)
        if self.rbar_ is None:
            self.rbar_, self.nbar_ = R.copy(), n.copy()
        a = 1.0 / self.tau_baseline
        # correlation of reward with spiking relative to their running means (a covariance rule)
        grad = (R - self.rbar_)[:, None] * (n - self.nbar_)
        self.beta_ = (1 - a) * self.beta_ + a * grad
        self.rbar_ = (1 - a) * self.rbar_ + a * R
        self.nbar_ = (1 - a) * self.nbar_ + a * n
        self.n_updates_ += 1
        return self._descend(window, grad)
