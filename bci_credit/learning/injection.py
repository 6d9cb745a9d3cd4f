"""Spike injection: a neuron learns its causal effect from randomly injected spikes (``rdd_model.md`` §5.2).

At every step of a window each neuron receives, with probability ``m``, an injected spike of
random sign (+1: an extra spike, -1: a "negative" spike that removes one spike's worth of
output). The injections enter only the neuron's filtered output ``s`` at the window's end, where
the reward is read (they do not reset the membrane), and are drawn by the rule itself, so they are
randomised: independent of the network's noise, whatever its correlations. Per window and neuron
``xi`` is the net sign of the injections (e.g. +1 for one positive spike) and the rule runs the
least-mean-squares regression of the reward on ``xi``::

    beta_i <- beta_i + eta * xi_i * (R - Rbar - beta_i * xi_i)      (windows with xi_i != 0)

With one injection per perturbed window (``xi = +-1``) and no baseline this is the original's
``U0 <- U0 - eta (U0 - xi R)``: the running mean of ``xi R = (E[R | +] - E[R | -]) / 2``, the
effect of one spike at a uniformly random step of the window, unbiased under confounding (the
spike-perturbation truth, :func:`bci_credit.sim.truth.spike_perturbation_effects`, measures the
same quantity offline). The price is injected noise: the rule sees the reward of the perturbed
outputs, and needs many perturbed windows. The weights descend the estimate as the RDD rule does,
``w_i <- clip(w_i - epsilon * beta_i * dmu_i/dw_i)``.

The Recording of a run keeps the network's own, unperturbed reward; only the rule sees the probe.

In a BCI session (:func:`bci_credit.tasks.bci.run_session`) the reward is read from a decoder of the
control units' spikes, so the probe there is the decoder's input: the injected spikes (+1 an extra
spike, -1 one spike fewer, at their steps; :meth:`SpikeInjectionRule.draw_injections`) are added to
the spike trains the decoder reads, a perturbation an experimenter can apply in software without
stimulating any neuron. Units the decoder does not read change nothing, so their estimate is zero
in expectation. The probe runs on a copy of the session's state; the factual session, its spikes,
decoder and rewards, is that of the unperturbed network.
"""

from __future__ import annotations

import numpy as np

from ..random import seed_sequence
from .base import LearningRule, WindowContext, WindowData
from .gain import Gain

__all__ = ["SpikeInjectionRule"]


_TAG = 0x5E1EC7  # keeps the injection stream apart from the network's own streams


def _seed_ints(record) -> list[int] | None:
    """The integers of a population's seed record (an int, ``{"entropy", "spawn_key"}``, or a list of
    these per replicate); None when any part was unseeded."""
    if record is None:
        return None
    if isinstance(record, (int, np.integer)):
        return [int(record)]
    if isinstance(record, dict):
        if record.get("entropy") is None:
            return None
        return [int(record["entropy"]), *(int(k) for k in record.get("spawn_key", ()))]
    parts = [_seed_ints(r) for r in record]
    return None if any(p is None for p in parts) else [v for p in parts for v in (len(p), *p)]


def _injection_seed(record) -> np.random.SeedSequence:
    """The injection stream of a run whose population seed record is ``record``: fixed by the run's seed
    (fresh entropy for an unseeded run)."""
    ints = _seed_ints(record)
    return np.random.SeedSequence() if ints is None else np.random.SeedSequence([*ints, _TAG])


class SpikeInjectionRule(LearningRule):
    """Learn each neuron's causal effect from randomly injected +-1 spikes (REINFORCE on spikes).

    Parameters
    ----------
    m : float
        Injection probability per step and neuron, in (0, 1) (the original swept 0.0025-0.015).
    eta : float
        Step size of the regression of reward on the injected sign.
    epsilon : float
        Weight learning rate (0 = estimate beta only).
    baseline : {"running", "none"}
        Subtract a running average of the reward (time constant ``tau_baseline`` windows) before
        the regression (lower variance), or not (the original).
    tau_baseline : float
        Time constant (windows) of the running reward baseline.
    gain : {"lookup", "finite_difference", "online"} or float or Gain
        Estimator of dmu/dw (see :mod:`bci_credit.learning.gain`).
    w_min, w_max : float or None
        Weight bounds.
    beta0 : float
        Initial beta.
    warmup : int
        Perturbed windows a neuron sees before its weight starts to move.
    seed : int or None
        Seed of the injections (None: derived from the population's seed, so a seeded run is
        reproducible).
    record_every : int
        Record ``history_`` every this many windows.
    """

    _checked_params = {"m": (0.0, False), "eta": (0.0, False), "epsilon": (0.0, True),
                       "tau_baseline": (1.0, True), "beta0": (None, True)}
    _int_params = {"warmup": 0}
    _choice_params = {"baseline": ("running", "none")}
    #: run_online calls :meth:`perturb_outputs` on each window's outputs before computing its reward.
    perturbs_outputs = True

    def __init__(self, m: float = 0.005, eta: float = 0.01, epsilon: float = 1e5, baseline: str = "running",
                 tau_baseline: float = 50.0, gain: str | float | Gain = "lookup", w_min: float | None = 2.0,
                 w_max: float | None = 20.0, beta0: float = 0.0, warmup: int = 10, seed: int | None = None,
                 record_every: int = 1):
        self.m = m
        self.eta = eta
        self.epsilon = epsilon
        self.baseline = baseline
        self.tau_baseline = tau_baseline
        self.gain = gain
        self.w_min = w_min
        self.w_max = w_max
        self.beta0 = beta0
        self.warmup = warmup
        self.seed = seed
        self.record_every = record_every

    def _check_params(self) -> None:
        super()._check_params()
        if not float(self.m) < 1.0:
            raise ValueError(f"{type(self).__name__}: m (injection probability per step) must be below 1, "
                             f"got {self.m!r}")
        if self.seed is not None:
            try:
                seed_sequence(self.seed)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{type(self).__name__}: {err}") from None

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        from ..sim.truth import spike_kick

        super().initialize(w0, context)
        shape = self.weights_.shape
        self.beta_ = np.full(shape, float(self.beta0))
        self.n_updates_ = np.zeros(shape, dtype=np.int64)
        self.rbar_ = None
        self.xi_ = None
        self.rng_ = np.random.default_rng(self.seed if self.seed is not None else _injection_seed(context.seed))
        self._kick = spike_kick(np.arange(context.window_steps), context.window_steps, context.decay, context.k0)
        self._start_gain(context)

    def perturb_outputs(self, s_end: np.ndarray) -> np.ndarray:
        """Draw this window's injections and return the window-end outputs with them added.

        Parameters
        ----------
        s_end : ndarray, shape (replicates, neurons)
            Filtered outputs at the window end.

        Returns
        -------
        ndarray, shape (replicates, neurons)
            ``s_end`` plus the injected spikes' contribution; the net sign per neuron is kept as
            ``xi_`` for the following :meth:`update`.
        """
        s_end = np.asarray(s_end, dtype=float)
        return s_end + self.draw_injections(s_end.shape, caller="perturb_outputs") @ self._kick

    def draw_injections(self, shape: tuple, *, caller: str = "draw_injections") -> np.ndarray:
        """Draw this window's injected spikes step by step (a BCI session adds them to its decoder's input).

        Parameters
        ----------
        shape : tuple
            ``(replicates, neurons)``.

        Returns
        -------
        ndarray, shape (replicates, neurons, window_steps)
            -1, 0 or +1 per step; the net sign per neuron is kept as ``xi_`` for the following
            :meth:`update`.
        """
        if not hasattr(self, "weights_"):
            raise RuntimeError(f"{type(self).__name__}.{caller}() needs initialize(w0, context) first")
        shape = tuple(shape) + (self._kick.size,)
        signs = (self.rng_.random(shape) < self.m) * self.rng_.choice([-1.0, 1.0], shape)
        self.xi_ = signs.sum(axis=-1)
        return signs

    def update(self, window: WindowData) -> np.ndarray:
        self._check_window(window)
        if self.xi_ is None or self.xi_.shape != self.weights_.shape:
            raise RuntimeError(f"{type(self).__name__}.update() needs perturb_outputs() or draw_injections() on the "
                               f"same window first (run_online and run_session call them)")
        finite = np.isfinite(window.reward)  # a window with a NaN reward teaches nothing
        R = np.where(finite, window.reward, 0.0)
        xi, self.xi_ = self.xi_, None
        ok = (xi != 0) & finite[:, None]
        if self.baseline == "running":
            if self.rbar_ is None:
                self.rbar_ = R
            base = self.rbar_
            a = 1.0 / self.tau_baseline
            self.rbar_ = np.where(finite, (1 - a) * self.rbar_ + a * R, self.rbar_)
        else:
            base = 0.0
        resid = np.where(ok, (R - base)[:, None] - self.beta_ * xi, 0.0)
        self.beta_ = self.beta_ + self.eta * ok * xi * resid
        self.n_updates_ += ok
        return self._descend(window, self.beta_, self.n_updates_ >= self.warmup)
