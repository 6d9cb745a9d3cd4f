"""Reward-modulated STDP (three-factor) baseline.

The standard "three-factor" comparison for RDD learning in the single-unit BCI
(Legenstein, Pecevski & Maass 2008, PLoS Comput Biol 4(10):e1000180; Izhikevich 2007, Cereb
Cortex 17:2443): a Hebbian/STDP eligibility trace is built from pre- and post-synaptic activity,
and a global reward signal gates its conversion into a weight change::

    e_i   <- lambda e_i + stdp_i                  (eligibility trace, decay lambda = exp(-T/tau_e))
    w_i   <- clip(w_i + epsilon * d * e_i)        (d: the neuromodulatory reward signal)

How it maps onto this package's model. The plastic weight ``w_i`` is the gain of neuron i on its
whole input (``rdd_model.md`` §1.1), so the "presynaptic activity" of that synapse is the bulk input,
whose rate is constant in time. For a constant presynaptic rate the pair-based STDP window
integrates to ``(A_plus - A_minus) x rho_pre x n_i`` per window: a term proportional to the
postsynaptic spike count ``n_i``. The rule therefore uses, per window,

``stdp_i = a_plus * n_i - a_minus * nbar_i``

where ``nbar_i`` is the running mean count (with ``a_plus = a_minus`` the trace has zero mean, the
condition Legenstein et al. found necessary for R-STDP to learn the right thing). The reward
signal is the reward-prediction error of the cost this package minimises,
``d = Rbar - R`` (``baseline="running"``), or ``d = -R`` (``baseline="none"``, Izhikevich's raw
dopamine). Unlike :class:`~bci_credit.learning.perturbation.ReinforceRule` the rule (i) keeps an
eligibility trace over several windows, so a reward that arrives after the spikes that caused it
(a smoothed BCI decoder) still reaches them, (ii) needs no gain dmu/dw, and (iii) changes every
weight in every window, whatever the neuron's drive: unlike RDD, its plasticity is not locked to
near-threshold windows (``rdd_model.md`` §4.8).

Written from the publications; no code was copied.
"""

from __future__ import annotations

import math

import numpy as np

from .base import LearningRule, WindowContext, WindowData, clip_weights

__all__ = ["RewardModulatedSTDPRule"]


class RewardModulatedSTDPRule(LearningRule):
    """Reward-modulated STDP: eligibility trace of (balanced) Hebbian terms, gated by reward.

    Parameters
    ----------
    epsilon : float
        Learning rate (weight units per unit reward x spike).
    tau_eligibility_s : float
        Time constant of the eligibility trace in seconds (Izhikevich 2007: about 1 s).
    a_plus, a_minus : float
        Potentiation and depression amplitudes of the window-integrated STDP term
        ``a_plus n_i - a_minus nbar_i`` (equal amplitudes: a balanced, zero-mean trace).
    baseline : {"running", "none"}
        Reward signal ``d = Rbar - R`` with a running average ``Rbar`` of the cost, or ``d = -R``.
    tau_baseline : float
        Time constant, in windows, of the running averages of the cost and of each neuron's count.
    w_min, w_max : float or None
        Weight bounds.
    record_every : int
        Record the history every this many windows.
    """

    _checked_params = {"epsilon": (0.0, True), "tau_eligibility_s": (0.0, False), "a_plus": (None, True),
                       "a_minus": (None, True), "tau_baseline": (1.0, True)}
    _choice_params = {"baseline": ("running", "none")}

    def __init__(self, epsilon: float = 1.0, tau_eligibility_s: float = 0.5, a_plus: float = 1.0,
                 a_minus: float = 1.0, baseline: str = "running", tau_baseline: float = 50.0,
                 w_min: float | None = 2.0, w_max: float | None = 20.0, record_every: int = 1):
        self.epsilon = epsilon
        self.tau_eligibility_s = tau_eligibility_s
        self.a_plus = a_plus
        self.a_minus = a_minus
        self.baseline = baseline
        self.tau_baseline = tau_baseline
        self.w_min = w_min
        self.w_max = w_max
        self.record_every = record_every

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        super().initialize(w0, context)
        window_s = context.window_steps * context.dt_s
        self.decay_ = math.exp(-window_s / self.tau_eligibility_s)
        self.eligibility_ = np.zeros_like(self.weights_)
        self.rbar_ = None
        self.nbar_ = None
        self.beta_ = np.zeros_like(self.weights_)  # running covariance of reward signal and trace
        self.n_updates_ = np.zeros(self.weights_.shape, dtype=np.int64)

    def update(self, window: WindowData) -> np.ndarray:
        self._check_window(window)
        R = np.asarray(window.reward, dtype=float)
        n = window.counts.astype(float)
        if self.nbar_ is None:
            self.nbar_ = n.copy()
            self.rbar_ = R.copy()
        a = 1.0 / self.tau_baseline
        stdp = self.a_plus * n - self.a_minus * self.nbar_
        self.eligibility_ = self.decay_ * self.eligibility_ + stdp
        d = (self.rbar_ - R) if self.baseline == "running" else -R
        dw = self.epsilon * d[:, None] * self.eligibility_
        # beta_: a running estimate of -dE[R]/d(activity) as seen by this rule (for reporting)
        self.beta_ = (1 - a) * self.beta_ + a * (-d[:, None] * self.eligibility_)
        self.rbar_ = (1 - a) * self.rbar_ + a * R
        self.nbar_ = (1 - a) * self.nbar_ + a * n
        self.n_updates_ += 1
        self.weights_ = clip_weights(self.weights_ + dw, self.w_min, self.w_max)
        self._record(self.record_every)
        return self.weights_
