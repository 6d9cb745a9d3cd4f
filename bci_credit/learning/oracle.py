"""Oracle (true-gradient) learner and the no-learning control.

* :class:`OracleRule` descends the *true* gradient ``dE[R]/dw_i ~ beta_i dmu_i/dw_i`` (``rdd_model.md``
  §3.1) with the true causal effect ``beta_i`` in place of an estimate. It is the upper bound every
  local rule is compared against. The true effect comes from, in this order:

  1. ``window.true_effect`` when the simulation supplies it (the BCI session of
     :mod:`bci_credit.tasks.bci` does: the change of the window's cost caused by unit i's spikes in
     that window, from a paired counterfactual of the decoder with the same noise); it is
     informative only in windows where the unit spiked, so ``beta_`` is the running mean over those;
  2. the ``cost`` hyper-parameter (a cost of the filtered outputs, e.g. a paper cost): the
     one-spike effect ``cost(s + ds e_i) - cost(s)`` at each window's end, with ``ds`` the expected
     jump of ``s_i`` caused by one spike at a random step of the window;
  3. the ``beta`` hyper-parameter: fixed, known effects (one per neuron, or broadcastable).

* :class:`NoLearningRule` keeps the weights fixed (the no-learning control), but follows the same
  contract so it runs through the same loop and produces the same outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .base import LearningRule, WindowContext, WindowData, as_floats
from .gain import Gain

__all__ = ["OracleRule", "NoLearningRule"]


class OracleRule(LearningRule):
    """Gradient descent with the true causal effect of each neuron.

    Parameters
    ----------
    epsilon : float
        Weight learning rate (as in :class:`~bci_credit.learning.rdd.RDDRule`).
    tau_windows : float
        Time constant (windows) of the running mean of the per-window true effect.
    cost : str, dict, Cost or callable, optional
        Cost of the filtered outputs used when the windows carry no ``true_effect``
        (see :func:`bci_credit.tasks.costs.make_cost`).
    beta : array_like, optional
        Fixed known effects, used when neither ``true_effect`` nor ``cost`` is available.
    gain : {"lookup", "finite_difference", "online"} or float or Gain
        Estimator of dmu/dw (see :mod:`bci_credit.learning.gain`).
    w_min, w_max : float or None
        Weight bounds.
    record_every : int
        Record the history every this many windows.
    """

    _checked_params = {"epsilon": (0.0, True), "tau_windows": (1.0, True)}

    def __init__(self, epsilon: float = 1e5, tau_windows: float = 20.0, cost: Any = None,
                 beta: ArrayLike | None = None, gain: str | float | Gain = "lookup", w_min: float | None = 2.0,
                 w_max: float | None = 20.0, record_every: int = 1):
        self.epsilon = epsilon
        self.tau_windows = tau_windows
        self.cost = cost
        self.beta = beta
        self.gain = gain
        self.w_min = w_min
        self.w_max = w_max
        self.record_every = record_every

    def _check_params(self) -> None:
        super()._check_params()
        cls = type(self).__name__
        if self.beta is not None:
            beta = as_floats(self.beta)
            if beta is None or not np.isfinite(beta).all():
                raise ValueError(f"{cls}: beta must be finite numbers (one, or one per neuron), got {self.beta!r}")
        if self.cost is not None:
            from ..tasks.costs import make_cost

            try:
                make_cost(self.cost)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{cls}: cost: {err}") from None

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        super().initialize(w0, context)
        self.beta_ = np.zeros_like(self.weights_)
        if self.beta is not None:
            try:
                self.beta_ = np.broadcast_to(np.asarray(self.beta, dtype=float), self.weights_.shape).copy()
            except ValueError:
                raise ValueError(f"OracleRule.beta with shape {np.shape(self.beta)} does not broadcast to the "
                                 f"weights {self.weights_.shape}") from None
        self.cost_ = None
        if self.cost is not None:
            from ..tasks.costs import make_cost

            self.cost_ = make_cost(self.cost)
        n = context.window_steps
        # expected jump of s_i at the window end from one spike at a uniformly random step
        self.ds_ = context.k0 * (1.0 - context.decay**n) / (1.0 - context.decay) / n
        self.n_updates_ = np.zeros(self.weights_.shape, dtype=np.int64)
        self._start_gain(context)

    def _cost_effect(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=float)
        r0 = np.asarray(self.cost_(s), dtype=float)
        out = np.empty_like(s)
        for i in range(s.shape[-1]):
            s1 = s.copy()
            s1[..., i] += self.ds_
            out[..., i] = np.asarray(self.cost_(s1), dtype=float) - r0
        return out

    def update(self, window: WindowData) -> np.ndarray:
        self._check_window(window)
        a = 1.0 / self.tau_windows
        true = getattr(window, "true_effect", None)
        if true is not None:
            informative = np.asarray(window.spiked, dtype=bool)
            self.beta_ = np.where(informative, (1 - a) * self.beta_ + a * np.asarray(true, float), self.beta_)
            self.n_updates_ += informative
        elif self.cost_ is not None:
            self.beta_ = (1 - a) * self.beta_ + a * self._cost_effect(window.s_end)
            self.n_updates_ += 1
        elif self.beta is None:
            raise ValueError("OracleRule needs the true effect: run it in a simulation that supplies "
                             "window.true_effect (bci_credit.tasks.bci), or give cost=... or beta=...")
        return self._descend(window, self.beta_)


class NoLearningRule(LearningRule):
    """The no-learning control: weights stay at their initial values.

    Parameters
    ----------
    record_every : int
        Record ``history_`` every this many windows.
    """

    def __init__(self, record_every: int = 1):
        self.record_every = record_every

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        super().initialize(w0, context)
        self.beta_ = np.zeros_like(self.weights_)
        self.n_updates_ = np.zeros(self.weights_.shape, dtype=np.int64)

    def update(self, window: WindowData) -> np.ndarray:
        self._check_window(window)
        self._record(self.record_every)
        return self.weights_
