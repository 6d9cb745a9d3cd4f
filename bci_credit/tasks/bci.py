"""Single-unit BCI experiment simulator (``bci_nwb.md`` §A.8).

A population of N leaky integrate-and-fire units (the batched engine of :mod:`bci_credit.sim.lif`)
with correlated noise, optional cosine tuning to a 2-D "wrist" signal and optional sparse coupling,
one (or a few) **control units** read by a decoder, a pluggable **mapping** from the decoder to
reward, a schedule of **blocks**, any learning rule of :mod:`bci_credit.learning`, and ground-truth
causal effects by paired counterfactual re-simulation. :func:`run_session` returns one
:class:`~bci_credit.recording.Recording` per replicate, which :func:`bci_credit.io.nwb.write` turns
into an NWB file that the analysis layer reads exactly like a real recording.

Population and inputs
---------------------
Unit i receives ``w_i (x_i(t) + xi_c + xi_i)`` as in the engine, where ``x_i(t)`` (the engine's
``x_t``) is the sum of

* **shared latent OU processes** (``NoiseConfig(kind="ou")``): ``K`` unit-variance
  Ornstein-Uhlenbeck processes with time constant ``tau_latent_s``, loaded by a matrix ``L``
  (``"shared"``: every unit loads equally on every latent; ``"clustered"``: unit i loads only on
  latent ``i mod K``; ``"random"``: non-negative random loadings, rows of equal norm). The loading
  norm is set so that the fraction of the **window-summed** input-noise variance that is shared is
  ``c``: two units with parallel loadings then have pairwise correlation ``c`` of their
  window-summed inputs (``cos(angle) * c`` otherwise). With ``kind="white"`` (default) the shared
  part is the engine's shared Gaussian, whose per-step correlation is exactly ``c``;
* optional **extra private noise** when the control unit's private variability is scaled
  (``NoiseConfig.control_private_scale``; prediction 5): then all private noise is generated here
  and the engine carries only the shared part;
* **cosine tuning** to the wrist, ``depth (cos phi_i W_x + sin phi_i W_y) / wrist_sd`` with a
  random preferred direction ``phi_i``. The wrist is a 2-D Ornstein-Uhlenbeck process that, in
  manual and dual blocks, is also pulled toward the target on the axes it controls (the subject's
  arm). It is held at 0 in blocks with ``wrist=False``. Its path for a window is computed at the
  window's start (a 50-ms motor delay);
* optional sparse **coupling**: a fraction ``p_exc`` of pairs excitatory (+strength) and ``p_inh``
  inhibitory (-strength), acting with a one-window delay (the input of unit j in window k is
  ``sum_i J_ji n_i(k-1)``; the engine has no within-window synapses).

Baseline rates (5-20 Hz by default) are set by choosing each unit's gain ``w_i`` from a simulated
rate-vs-gain curve of a single unit with the same input statistics (:func:`calibrate_rates`).

Mappings (``SessionConfig.mapping = {"name": ..., **params}``)
--------------------------------------------------------------
The decoder smooths the control unit's spike train (exponential or boxcar filter) and is read at
``update_hz`` = 60 Hz ticks.

* ``threshold`` (Fetz; Arduin et al. 2013): a reward when the smoothed rate is at or above
  ``theta_hz`` for ``hold_s`` while the task is armed; after a reward the task is disarmed for
  ``refractory_s`` and, with ``rearm_below=True``, re-arms only once the rate has fallen below theta
  (so a reward needs an upward crossing). ``theta_hz=None`` sets theta at the ``theta_percentile``
  of the decoded rate in the unrewarded blocks before the first rewarded block, as experimenters
  do; those blocks' trials are then evaluated by replaying the logged decoder output. A trial runs
  from arming to reward (success) or ``trial_timeout_s`` (failure);
* ``windowed_rate``: reward when the spike count in non-overlapping bins of ``bin_s`` reaches a
  criterion (a boxcar decoder evaluated at bin ends): the "windowed-rate" task of prediction 4;
* ``cursor1d``: cursor velocity ``gain (rate - baseline_hz)``; targets, success radius, hold,
  timeout and inter-trial interval as in the dualbci task (``bci_nwb.md`` §A.2);
* ``dual``: a 2-D cursor; in ``manual`` blocks the wrist drives both axes (position control), in
  ``brain`` blocks the control unit drives axis 1 (axis 0 stays at 0), in ``dual`` blocks the wrist
  drives axis 0 and the unit axis 1;
* ``target_rate``: the paper's cost ``||s - target||`` (``rdd_model.md`` §1.4 item 4) with the
  "brain control" (``|s_c|``) and "dual control" (``||s - target|| + |s_c|``) variants selected by
  the block's ``control`` (``manual`` -> ``rate``, ``brain`` -> ``brain``, ``dual`` -> ``dual``).

Every learning rule minimises a per-window **cost**: ``-reward_value x rewards`` in the window
(plus ``shaping x distance to target`` for the cursor tasks when ``shaping > 0``), or the paper's
cost. The Recording's ``windows["reward"]`` holds the rewards delivered in each window (the cost
itself for ``target_rate``, as :func:`bci_credit.experiment.block_to_recording` does), and
``windows["cost"]`` the cost.

Ground truth
------------
At windows sampled every ``TruthConfig.every_s`` the whole world (population, decoder and task
state, wrist, coupling) is copied, and for each unit i two counterfactuals are re-simulated with the
same noise: unit i silent for the window, and unit i firing exactly one spike at a random step of
it (forced through the engine's ``x_t``). Both are continued for ``horizon_s`` with the factual
weights. The differences give, per unit (units table, in the units of ``windows["reward"]``):

* ``true_direct_effect``: effect of unit i's spiking on the same window's reward, with the other
  units' spikes held at their factual values (the estimand of a per-window RD); zero by
  construction for every unit the decoder does not read;
* ``true_direct_effect_horizon``: the same, summed over the horizon (the decoder has memory);
* ``true_total_effect``: summed over the horizon with propagation through the coupling allowed;
* ``true_marginal_effect``: ``true_direct_effect`` over sampled windows with ``|Z_i - theta| < near_p``;
* ``true_removal_effect``: factual reward minus the reward with unit i silenced, over sampled windows
  in which it spiked (the effect of its actual spikes), and ``true_removal_marginal`` over those just
  above threshold (``theta < Z_i < theta + near_p``): the estimand of the spike-discontinuity RD;
* ``*_se``: standard errors over sampled windows.

Units that interact only through the decoder have exactly zero direct effect when the decoder does
not read them: the counterfactual changes nothing else. With coupling, ``true_total_effect`` of a
unit that excites the control unit is positive. The rate calibration ignores the coupling input.

Weights are frozen inside a counterfactual only in the sense that both arms use the factual
weight sequence; the effect of a spike on later learning is not part of the truth.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping as TMapping

import numpy as np
import pandas as pd
from numba import njit
from scipy.signal import lfilter

from ..learning.base import LearningRule, WindowData
from ..learning.loop import context_of
from ..random import seed_repr, seed_sequence
from ..recording import Recording, TimeSeries, WeightTrace, make_units_table
from ..sim.lif import LIFParams, LIFPopulation
from .costs import TargetRateCost

__all__ = [
    "NoiseConfig", "WristConfig", "TuningConfig", "CouplingConfig", "TruthConfig", "Block", "SessionConfig",
    "SessionWindowData", "PopulationSpec", "build_population", "calibrate_rates", "make_mapping", "MAPPINGS",
    "ThresholdMapping", "CursorMapping", "CostMapping", "resolve_rule", "run_session", "SessionResult",
    "default_session_config", "run_default_session", "BCI_MODEL",
]

log = logging.getLogger("bci_credit")

#: Engine parameters of the BCI simulations: the paper's LIF with 50-ms windows, tau_s = 0.2 s and
#: the paper's output kernel (``rdd_model.md`` §4.7).
BCI_MODEL = LIFParams(sigma=10.0, window_s=0.05, tau_s=0.2, paper_kernel=True)


# ============================================================================ configuration
@dataclass(frozen=True)
class NoiseConfig:
    """Correlated input noise.

    Attributes
    ----------
    c : float
        Pairwise correlation in [0, 1) (see the module docstring for its exact meaning per kind).
    kind : {"white", "ou"}
        Shared part from the engine's shared Gaussian, or from ``n_latents`` latent OU processes.
    n_latents : int
        Number of latent OU processes (``kind="ou"``).
    tau_latent_s : float
        Time constant of the latent OU processes (s).
    loadings : {"shared", "clustered", "random"}
        How units load on the latents.
    control_private_scale : float
        Multiplier of the control units' private noise standard deviation (1 = like every unit;
        0 = no private variability). Only with ``kind="white"``.
    """

    c: float = 0.3
    kind: str = "white"
    n_latents: int = 1
    tau_latent_s: float = 0.1
    loadings: str = "shared"
    control_private_scale: float = 1.0

    def __post_init__(self):
        if not 0.0 <= float(self.c) < 1.0:
            raise ValueError(f"NoiseConfig.c must lie in [0, 1), got {self.c}")
        if self.kind not in ("white", "ou"):
            raise ValueError(f"NoiseConfig.kind must be 'white' or 'ou', got {self.kind!r}")
        if self.loadings not in ("shared", "clustered", "random"):
            raise ValueError(f"NoiseConfig.loadings must be 'shared', 'clustered' or 'random', got {self.loadings!r}")
        if int(self.n_latents) < 1 or not self.tau_latent_s > 0:
            raise ValueError("NoiseConfig.n_latents must be >= 1 and tau_latent_s > 0")
        if self.control_private_scale < 0:
            raise ValueError("NoiseConfig.control_private_scale must be >= 0")
        if self.control_private_scale != 1.0 and self.kind != "white":
            raise ValueError("NoiseConfig.control_private_scale needs kind='white'")


@dataclass(frozen=True)
class WristConfig:
    """The 2-D wrist (torque) signal: an OU process pulled toward the target when it drives the cursor.

    ``tau_s`` and ``sd`` set the free movement (stationary sd per axis, workspace units); on an axis
    that drives the cursor the wrist relaxes to the goal at ``track_gain_hz`` with a stationary
    jitter ``track_sd``; ``cursor_gain`` maps wrist to cursor position.
    """

    tau_s: float = 0.3
    sd: float = 0.2
    track_gain_hz: float = 4.0
    track_sd: float = 0.03
    cursor_gain: float = 1.0


@dataclass(frozen=True)
class TuningConfig:
    """Cosine tuning to the wrist: ``depth`` in input units per wrist sd (0 = untuned)."""

    depth: float = 0.0


@dataclass(frozen=True)
class CouplingConfig:
    """Sparse coupling acting with a one-window delay (``strength`` in input units per spike).

    The coupling input of a unit is clipped so that one step's increment ``dt w x`` stays below half
    the threshold (strength 1 already adds about 10 Hz per presynaptic spike per window at w = 10).
    """

    p_exc: float = 0.0
    p_inh: float = 0.0
    strength: float = 1.0
    matrix: Any = None  # explicit J (neurons, neurons), J[j, i] = effect of unit i on unit j; overrides p_exc/p_inh

    @property
    def enabled(self) -> bool:
        if self.matrix is not None:
            return bool(np.any(np.asarray(self.matrix, float) != 0))
        return (self.p_exc > 0 or self.p_inh > 0) and self.strength != 0


@dataclass(frozen=True)
class TruthConfig:
    """Paired counterfactual ground truth.

    ``every_s``: one sampled window every this many seconds (0 = off); ``horizon_s``: how long each
    counterfactual is continued; ``units``: ``"all"``, ``"decoder"`` or an int k (the decoder units
    plus k random others); ``near_p``: band for the marginal effect.
    """

    every_s: float = 1.0
    horizon_s: float = 0.5
    units: Any = "all"
    near_p: float = 0.2


@dataclass(frozen=True)
class Block:
    """One block of the session.

    Attributes
    ----------
    name : str
        Block label (``baseline``, ``conditioning``, ``MC1`` ...), written to trials and windows.
    duration_s : float
        Length (rounded down to whole windows).
    reward : bool
        Whether rewards are delivered (False: baseline / extinction).
    learn : bool
        Whether the learning rule updates the weights.
    wrist : bool
        Whether the wrist moves (and tuned units feel it).
    control : {"brain", "manual", "dual"}
        What drives the cursor (cursor mappings) or which cost variant applies (``target_rate``).
    """

    name: str
    duration_s: float
    reward: bool = True
    learn: bool = True
    wrist: bool = False
    control: str = "brain"

    def __post_init__(self):
        if not self.duration_s > 0:
            raise ValueError(f"block {self.name!r}: duration_s must be positive, got {self.duration_s}")
        if self.control not in ("brain", "manual", "dual"):
            raise ValueError(f"block {self.name!r}: control must be 'brain', 'manual' or 'dual', got {self.control!r}")


def _default_blocks() -> tuple:
    return (Block("baseline", 60.0, reward=False), Block("conditioning", 240.0), Block("extinction", 60.0, reward=False))


@dataclass(frozen=True)
class SessionConfig:
    """A simulated single-unit BCI session.

    Attributes
    ----------
    n_units : int
        Population size (10-200 in the spec).
    control_units : tuple of int
        Units read by the decoder.
    rate_range_hz : (float, float)
        Baseline rates of the units are drawn uniformly from this range.
    control_rate_hz : float or None
        Baseline rate of the control units (None: drawn like the others).
    noise, wrist, tuning, coupling, truth : sub-configurations
    model : LIFParams
        Engine parameters.
    mapping : dict
        ``{"name": "threshold" | "windowed_rate" | "cursor1d" | "dual" | "target_rate", **params}``.
    blocks : tuple of Block
        The block schedule.
    rule : str or None
        Learning rule name (see :func:`resolve_rule`); None or ``"none"``: no learning.
    rule_params : dict
        Hyper-parameters of the rule.
    n_replicates : int
        Independent sessions simulated together (each with its own population draw and noise).
    seed : int
        Root seed.
    w0 : array_like, optional
        Initial gains (neurons) or (replicates, neurons); skips the rate calibration.
    calibration_s : float
        Simulated seconds per gain value in the rate calibration.
    record_weights_every_s : float
        Sampling period of the weight trace.
    """

    n_units: int = 20
    control_units: tuple = (0,)
    rate_range_hz: tuple = (5.0, 20.0)
    control_rate_hz: float | None = 8.0
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    wrist: WristConfig = field(default_factory=WristConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    coupling: CouplingConfig = field(default_factory=CouplingConfig)
    truth: TruthConfig = field(default_factory=TruthConfig)
    model: LIFParams = BCI_MODEL
    mapping: dict = field(default_factory=lambda: {"name": "threshold"})
    blocks: tuple = field(default_factory=_default_blocks)
    rule: str | None = "rdd"
    rule_params: dict = field(default_factory=dict)
    n_replicates: int = 1
    seed: int = 0
    w0: Any = None
    calibration_s: float = 100.0
    record_weights_every_s: float = 1.0

    def __post_init__(self):
        for name, typ in _SUBCONFIGS.items():
            val = getattr(self, name)
            if isinstance(val, TMapping):
                object.__setattr__(self, name, typ(**val))
            elif not isinstance(val, typ):
                raise TypeError(f"SessionConfig.{name} must be a {typ.__name__} or a dict of its fields")
        object.__setattr__(self, "blocks", tuple(Block(**b) if isinstance(b, TMapping) else b for b in self.blocks))
        n = int(self.n_units)
        if n < 1:
            raise ValueError(f"SessionConfig.n_units must be >= 1, got {self.n_units}")
        ctrl = tuple(int(c) for c in np.ravel(self.control_units))
        if not ctrl or any(not 0 <= c < n for c in ctrl) or len(set(ctrl)) != len(ctrl):
            raise ValueError(f"SessionConfig.control_units={self.control_units} must be distinct unit indices in 0..{n - 1}")
        object.__setattr__(self, "control_units", ctrl)
        lo, hi = (float(v) for v in self.rate_range_hz)
        if not 0 < lo <= hi:
            raise ValueError(f"SessionConfig.rate_range_hz must be 0 < low <= high, got {self.rate_range_hz}")
        if not self.blocks:
            raise ValueError("SessionConfig.blocks is empty; give at least one Block")
        if int(self.n_replicates) < 1:
            raise ValueError("SessionConfig.n_replicates must be >= 1")
        if not isinstance(self.mapping, TMapping) or "name" not in self.mapping:
            raise ValueError(f"SessionConfig.mapping must be a dict with a 'name', got {self.mapping!r}")
        if self.mapping["name"] not in MAPPINGS:
            raise ValueError(f"unknown mapping {self.mapping['name']!r}; choose one of {sorted(MAPPINGS)}")

    def replace(self, **changes) -> "SessionConfig":
        """A copy with ``changes`` applied (a sub-config given as a dict updates only those fields)."""
        for k in _SUBCONFIGS:
            if k in changes and isinstance(changes[k], TMapping):
                changes[k] = dataclasses.replace(getattr(self, k), **changes[k])
        return dataclasses.replace(self, **changes)

    @property
    def duration_s(self) -> float:
        return float(sum(b.duration_s for b in self.blocks))

    def to_dict(self) -> dict:
        """JSON-friendly description."""
        from ..outputs import to_jsonable

        d = dataclasses.asdict(self)
        d["blocks"] = [dataclasses.asdict(b) for b in self.blocks]
        return to_jsonable(d)


_SUBCONFIGS = {"noise": NoiseConfig, "wrist": WristConfig, "tuning": TuningConfig, "coupling": CouplingConfig,
               "truth": TruthConfig, "model": LIFParams}


@dataclass
class SessionWindowData(WindowData):
    """:class:`~bci_credit.learning.base.WindowData` plus what the BCI session knows.

    ``true_effect`` (replicates, neurons): change of this window's cost caused by each unit's spikes
    in the window (paired counterfactual with the same noise), used by the oracle rule; ``block``:
    the block name.
    """

    true_effect: np.ndarray | None = None
    block: str = ""


# ============================================================================ population
@dataclass
class PopulationSpec:
    """A drawn population (arrays over replicates)."""

    w0: np.ndarray  # (R, N)
    baseline_rate_hz: np.ndarray  # (R, N) target baseline rates
    pd_rad: np.ndarray  # (R, N)
    tuning: np.ndarray | None  # (R, 2, N) input per unit wrist
    loadings: np.ndarray | None  # (R, N, K) latent loadings (already scaled)
    cluster: np.ndarray  # (R, N)
    coupling: np.ndarray | None  # (R, N, N): J[r, j, i] effect of i on j
    private_sd: np.ndarray | None  # (N,) per-step sd of private noise generated outside the engine
    engine_c: float
    engine_sigma: float
    calibration: dict


def _ou_window_var(a: float, n: int) -> float:
    """Variance of the sum of n consecutive samples of a unit-variance AR(1) with coefficient a."""
    k = np.arange(1, n)
    return float(n + 2.0 * np.sum((n - k) * a**k))


def _noise_layout(cfg: SessionConfig) -> tuple[float, float, float, np.ndarray | None]:
    """(engine_c, engine_sigma, latent_scale, private_sd per unit or None)."""
    nz, p = cfg.noise, cfg.model
    step_sd = p.noise_scale  # per-step sd of the engine noise for sigma = p.sigma
    if nz.kind == "ou":
        if nz.c == 0:
            return 0.0, p.sigma, 0.0, None
        a = math.exp(-p.dt_s / nz.tau_latent_s)
        n = p.window_steps
        lam2 = nz.c / (1.0 - nz.c) * n * step_sd**2 / _ou_window_var(a, n)
        return 0.0, p.sigma, math.sqrt(lam2), None
    if nz.control_private_scale == 1.0:
        return nz.c, p.sigma, 0.0, None
    # the engine carries only the shared part; private noise is generated per unit
    priv = np.full(cfg.n_units, math.sqrt(1.0 - nz.c) * step_sd)
    priv[list(cfg.control_units)] *= nz.control_private_scale
    return 1.0, p.sigma * math.sqrt(nz.c), 0.0, priv


def _loadings(cfg: SessionConfig, rng: np.random.Generator, scale: float) -> tuple[np.ndarray | None, np.ndarray]:
    n, K = cfg.n_units, int(cfg.noise.n_latents)
    cluster = np.arange(n) % K
    if cfg.noise.kind != "ou" or scale == 0:
        return None, cluster
    if cfg.noise.loadings == "shared":
        L = np.full((n, K), 1.0 / math.sqrt(K))
    elif cfg.noise.loadings == "clustered":
        L = np.zeros((n, K))
        L[np.arange(n), cluster] = 1.0
    else:
        L = np.abs(rng.standard_normal((n, K)))
        L /= np.linalg.norm(L, axis=1, keepdims=True)
        cluster = np.argmax(L, axis=1)
    return L * scale, cluster


def calibrate_rates(cfg: SessionConfig, *, private_sd: float | None = None, seed=None,
                    w_grid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Simulated rate (Hz) of one unit against its gain, with the session's input statistics.

    Each gain of ``w_grid`` is one replicate of a single unit receiving the same marginal input as a
    unit of the session's first block (engine noise, latent OU input, wrist tuning). Returns
    ``(w_grid, rate_hz)`` with the rates made non-decreasing.
    """
    p = cfg.model
    grid = np.linspace(2.0, 20.0, 19) if w_grid is None else np.asarray(w_grid, float)
    G = grid.size
    eng_c, eng_sigma, lam, priv = _noise_layout(cfg)
    ss = seed_sequence(seed)
    s_eng, s_x = ss.spawn(2)
    # marginal engine noise of one unit: shared + private parts of the engine are independent here
    sig_unit = eng_sigma
    n_windows = max(1, int(cfg.calibration_s / p.window_s))
    steps = n_windows * p.window_steps
    rng = np.random.default_rng(s_x)
    x = np.zeros((steps, G, 1))
    have_x = False
    if priv is not None:
        others = np.setdiff1d(np.arange(cfg.n_units), cfg.control_units)
        sd = float((priv[others[0]] if others.size else priv[0]) if private_sd is None else private_sd)
        x[:, :, 0] += sd * rng.standard_normal((steps, G))
        have_x = True
    if lam > 0:
        a = math.exp(-p.dt_s / cfg.noise.tau_latent_s)
        e = rng.standard_normal((steps, G))
        lat = lfilter([math.sqrt(1 - a * a)], [1.0, -a], e, axis=0, zi=(a * rng.standard_normal(G))[None, :])[0]
        x[:, :, 0] += lam * lat
        have_x = True
    if cfg.tuning.depth > 0 and cfg.blocks[0].wrist:
        wr = cfg.wrist
        a = math.exp(-p.dt_s / wr.tau_s)
        e = rng.standard_normal((steps, G))
        wx = lfilter([math.sqrt(1 - a * a)], [1.0, -a], e, axis=0, zi=(a * rng.standard_normal(G))[None, :])[0]
        x[:, :, 0] += cfg.tuning.depth * wx  # unit-sd wrist along the preferred direction
        have_x = True
    pop = LIFPopulation(grid[:, None], c=0.0, params=p, seed=s_eng, sigma=sig_unit, record_spikes=False)
    block = pop.run(n_windows, x_t=x if have_x else None)
    rate = block.counts.sum(axis=(1, 2)) / (steps * p.dt_s)
    return grid, np.maximum.accumulate(rate)


def _w_for_rate(grid: np.ndarray, rate: np.ndarray, target: np.ndarray) -> np.ndarray:
    target = np.asarray(target, float)
    if np.any(target > rate[-1]) or np.any(target < rate[0]):
        log.warning("requested baseline rates outside the calibrated range %.1f-%.1f Hz are clipped", rate[0], rate[-1])
    # strictly increasing for interpolation
    r = rate + np.arange(rate.size) * 1e-9
    return np.interp(target, r, grid)


def build_population(cfg: SessionConfig, seed=None) -> PopulationSpec:
    """Draw the population of every replicate: baseline rates and gains, tuning, loadings, coupling."""
    R, N = int(cfg.n_replicates), int(cfg.n_units)
    ss = seed_sequence(cfg.seed if seed is None else seed)
    s_draw, s_cal = ss.spawn(2)
    rngs = [np.random.default_rng(s) for s in s_draw.spawn(R)]
    eng_c, eng_sigma, lam, priv = _noise_layout(cfg)
    lo, hi = (float(v) for v in cfg.rate_range_hz)
    rates = np.empty((R, N))
    pd_rad = np.empty((R, N))
    loads, clusters, Js = [], [], []
    for r, rng in enumerate(rngs):
        rates[r] = rng.uniform(lo, hi, N)
        if cfg.control_rate_hz is not None:
            rates[r, list(cfg.control_units)] = float(cfg.control_rate_hz)
        pd_rad[r] = rng.uniform(-np.pi, np.pi, N)
        L, cl = _loadings(cfg, rng, lam)
        loads.append(L)
        clusters.append(cl)
        if cfg.coupling.enabled and cfg.coupling.matrix is not None:
            J = np.asarray(cfg.coupling.matrix, float)
            if J.shape != (N, N):
                raise ValueError(f"CouplingConfig.matrix must be (n_units, n_units) = {(N, N)}, got {J.shape}")
            Js.append(J.copy())
        elif cfg.coupling.enabled:
            u = rng.random((N, N))
            J = np.where(u < cfg.coupling.p_exc, cfg.coupling.strength, 0.0)
            J = np.where((u >= cfg.coupling.p_exc) & (u < cfg.coupling.p_exc + cfg.coupling.p_inh),
                         -cfg.coupling.strength, J)
            np.fill_diagonal(J, 0.0)
            Js.append(J)
    calibration: dict = {}
    if cfg.w0 is not None:
        w0 = np.broadcast_to(np.asarray(cfg.w0, float), (R, N)).copy()
    else:
        grid, rate = calibrate_rates(cfg, seed=s_cal)
        calibration = {"w_grid": grid.tolist(), "rate_hz": rate.tolist()}
        w0 = _w_for_rate(grid, rate, rates)
        if priv is not None and cfg.noise.control_private_scale != 1.0:
            g2, r2 = calibrate_rates(cfg, seed=s_cal, private_sd=float(priv[cfg.control_units[0]]))
            calibration["control_rate_hz"] = r2.tolist()
            for c in cfg.control_units:
                w0[:, c] = _w_for_rate(g2, r2, rates[:, c])
    tuning = None
    if cfg.tuning.depth > 0:
        tuning = cfg.tuning.depth / cfg.wrist.sd * np.stack([np.cos(pd_rad), np.sin(pd_rad)], axis=1)
    return PopulationSpec(
        w0=w0, baseline_rate_hz=rates, pd_rad=pd_rad, tuning=tuning,
        loadings=None if loads[0] is None else np.stack(loads), cluster=np.stack(clusters),
        coupling=np.stack(Js) if Js else None, private_sd=priv, engine_c=eng_c, engine_sigma=eng_sigma,
        calibration=calibration,
    )


# ============================================================================ exogenous input
class _Exogenous:
    """Per-replicate exogenous noise (latent OU input, private noise, wrist noise), generated in chunks.

    Windows are kept for ``keep`` windows after use so counterfactuals can replay them.
    """

    def __init__(self, cfg: SessionConfig, spec: PopulationSpec, seeds, keep: int, chunk: int = 40):
        p = cfg.model
        self.ws = p.window_steps
        self.R, self.N = spec.w0.shape
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.spec = spec
        self.chunk = int(chunk)
        self.keep = int(keep) + 2
        self.need_wrist = any(b.wrist for b in cfg.blocks)
        self.has_latent = spec.loadings is not None
        self.has_private = spec.private_sd is not None
        self.a_lat = math.exp(-p.dt_s / cfg.noise.tau_latent_s)
        K = spec.loadings.shape[2] if self.has_latent else 0
        self.lat_state = np.array([rng.standard_normal(K) for rng in self.rngs]) if self.has_latent else None
        self.store: dict[int, tuple] = {}
        self.next = 0

    @property
    def active(self) -> bool:
        return self.has_latent or self.has_private or self.need_wrist

    def _generate(self) -> None:
        ws, R, N, C = self.ws, self.R, self.N, self.chunk
        steps = C * ws
        inp = np.zeros((steps, R, N)) if (self.has_latent or self.has_private) else None
        wn = np.zeros((steps, R, 2)) if self.need_wrist else None
        for r, rng in enumerate(self.rngs):
            if self.has_latent:
                L = self.spec.loadings[r]
                K = L.shape[1]
                a = self.a_lat
                e = rng.standard_normal((steps, K))
                lat, zf = lfilter([math.sqrt(1 - a * a)], [1.0, -a], e, axis=0, zi=(a * self.lat_state[r])[None, :])
                self.lat_state[r] = lat[-1]
                inp[:, r, :] += lat @ L.T
            if self.has_private:
                inp[:, r, :] += rng.standard_normal((steps, N)) * self.spec.private_sd
            if wn is not None:
                wn[:, r, :] = rng.standard_normal((steps, 2))
        for j in range(C):
            sl = slice(j * ws, (j + 1) * ws)
            self.store[self.next + j] = (None if inp is None else inp[sl], None if wn is None else wn[sl])
        self.next += C

    def window(self, k: int) -> tuple:
        while k >= self.next:
            self._generate()
        for old in [i for i in self.store if i < k - self.keep]:
            del self.store[old]
        return self.store[k]


# ============================================================================ decoder and mappings
class _Decoder:
    """Smoothed rate (Hz) of the decoder units, per step; state is (R, D[, B])."""

    def __init__(self, kind: str, tau_s: float, dt_s: float):
        if kind not in ("exponential", "boxcar"):
            raise ValueError(f"decoder filter must be 'exponential' or 'boxcar', got {kind!r}")
        if not tau_s > 0:
            raise ValueError(f"decoder tau_s must be positive, got {tau_s}")
        self.kind, self.tau_s, self.dt = kind, float(tau_s), float(dt_s)
        self.a = math.exp(-dt_s / tau_s)
        self.B = max(1, int(round(tau_s / dt_s)))

    def init(self, R: int, D: int, rate0: np.ndarray | None = None) -> np.ndarray:
        if self.kind == "exponential":
            return np.zeros((R, D)) if rate0 is None else np.broadcast_to(rate0, (R, D)).astype(float).copy()
        return np.zeros((R, D, self.B))

    def advance(self, state: np.ndarray, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rates at every step of the window (R, D, ws) and the new state."""
        if self.kind == "exponential":
            b = (1.0 - self.a) / self.dt
            y, zf = lfilter([b], [1.0, -self.a], spikes, axis=-1, zi=(self.a * state)[..., None])
            return y, y[..., -1].copy()
        full = np.concatenate([state, spikes], axis=-1)
        cs = np.concatenate([np.zeros(full.shape[:-1] + (1,)), np.cumsum(full, axis=-1)], axis=-1)
        B, ws = self.B, spikes.shape[-1]
        idx = B + np.arange(ws)
        sums = cs[..., idx + 1] - cs[..., idx + 1 - B]
        return sums / (B * self.dt), full[..., -B:].copy()

    def describe(self) -> dict:
        return {"filter": self.kind, "tau_s": self.tau_s}


class _Log:
    """What the factual world records for the Recording (per window, all replicates)."""

    def __init__(self, R: int):
        self.R = R
        self.tick_t: list = []
        self.tick_dec: list = []
        self.tick_cursor: list = []
        self.tick_wrist: list = []
        self.reward_events: list = [[] for _ in range(R)]
        self.trials: list = [[] for _ in range(R)]


class Mapping:
    """Base class of the control-unit mappings (state is a dict of arrays with a replicate axis)."""

    name = "mapping"
    uses_decoder = True
    reward_is_cost = False

    def setup(self, cfg: SessionConfig, spec: PopulationSpec, seeds) -> None:
        self.cfg = cfg
        self.spec = spec
        self.dt = cfg.model.dt_s
        self.decoder_units = tuple(cfg.control_units)

    def init_state(self, R: int) -> dict:
        return {}

    def start_block(self, state: dict, block: Block, t_s: float, log: _Log | None) -> None:
        pass

    def end_block(self, state: dict, block: Block, t_s: float, log: _Log | None) -> None:
        pass

    def wrist_goal(self, state: dict, block: Block) -> tuple[np.ndarray | None, np.ndarray]:
        """Goal of the wrist (R, 2) and which axes track it (2,) bool."""
        return None, np.zeros(2, bool)

    def step(self, state, spikes, block, t0_step, *, s_end=None, s_window=None, wrist=None,
             log: _Log | None = None) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        """Advance one window; return (reward, cost) per replicate."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"mapping": self.name}


def _tick_steps(t0: int, ws: int, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Global tick indices and local step indices of the ticks falling in steps [t0, t0 + ws)."""
    k0 = math.ceil(t0 / period - 1e-9)
    k1 = math.ceil((t0 + ws) / period - 1e-9)
    ks = np.arange(k0, k1)
    steps = np.ceil(ks * period - 1e-9).astype(int) - t0
    ok = (steps >= 0) & (steps < ws)
    return ks[ok], steps[ok]


class _DecodedMapping(Mapping):
    """Shared machinery of the mappings that read a smoothed rate at ``update_hz`` ticks."""

    def __init__(self, filter: str = "exponential", tau_s: float = 0.2, update_hz: float = 60.0, reward_value: float = 1.0):
        self.filter = filter
        self.tau_s = tau_s
        self.update_hz = update_hz
        self.reward_value = reward_value

    def setup(self, cfg, spec, seeds):
        super().setup(cfg, spec, seeds)
        self.decoder = _Decoder(self.filter, self.tau_s, self.dt)
        self.period = 1.0 / (self.update_hz * self.dt)
        self.tick_dt = 1.0 / self.update_hz

    def _decode(self, state, spikes, t0_step):
        rates, state["dec"] = self.decoder.advance(state["dec"], spikes)
        ks, steps = _tick_steps(t0_step, spikes.shape[-1], self.period)
        return ks, steps, rates[..., steps]  # (R, D, n_ticks)

    def describe(self):
        return {"mapping": self.name, "control_units": list(self.decoder_units), **self.decoder.describe(),
                "update_hz": self.update_hz, "reward_value": self.reward_value}


class ThresholdMapping(_DecodedMapping):
    """Reward when the smoothed control-unit rate reaches ``theta_hz`` (Fetz / Arduin et al. 2013).

    Parameters
    ----------
    theta_hz : float or None
        Threshold (None: ``theta_percentile`` of the decoded rate in the unrewarded blocks before the
        first rewarded one).
    theta_percentile : float
        Percentile for the automatic threshold (80-90 in the spec).
    hold_s : float
        Time the rate must stay at or above theta.
    refractory_s : float
        Disarmed time after each reward.
    rearm_below : bool
        Re-arm only after the rate has fallen below theta (a reward needs an upward crossing).
    trial_timeout_s : float
        A trial without reward ends as a failure after this long.
    evaluate_every_s : float or None
        Evaluate the criterion only every this many seconds (a windowed-rate task); None: every tick.
    filter, tau_s, update_hz, reward_value
        Decoder filter (``"exponential"`` or ``"boxcar"``), its time constant or length, tick rate,
        reward size.
    """

    name = "threshold"

    def __init__(self, theta_hz: float | None = None, theta_percentile: float = 85.0, hold_s: float = 0.0,
                 refractory_s: float = 1.0, rearm_below: bool = False, trial_timeout_s: float = 5.0,
                 evaluate_every_s: float | None = None, filter: str = "exponential", tau_s: float = 0.2,
                 update_hz: float = 60.0, reward_value: float = 1.0):
        super().__init__(filter=filter, tau_s=tau_s, update_hz=update_hz, reward_value=reward_value)
        self.theta_hz = theta_hz
        self.theta_percentile = theta_percentile
        self.hold_s = hold_s
        self.refractory_s = refractory_s
        self.rearm_below = rearm_below
        self.trial_timeout_s = trial_timeout_s
        self.evaluate_every_s = evaluate_every_s

    def setup(self, cfg, spec, seeds):
        super().setup(cfg, spec, seeds)
        if not 0 < self.theta_percentile < 100:
            raise ValueError(f"theta_percentile must lie in (0, 100), got {self.theta_percentile}")
        self.every = None if self.evaluate_every_s is None else max(1, int(round(self.evaluate_every_s * self.update_hz)))
        self._calib: list = []  # (block name, t (n,), rates (R, n)) of unrewarded blocks before theta is set
        self._pending_blocks: list = []

    def init_state(self, R):
        D = len(self.decoder_units)
        theta = np.full(R, np.nan if self.theta_hz is None else float(self.theta_hz))
        rate0 = self.spec.baseline_rate_hz[:R, list(self.decoder_units)] if self.filter == "exponential" else None
        return {"dec": self.decoder.init(R, D, rate0=rate0), "theta": theta, "refr": np.zeros(R), "hold": np.zeros(R),
                "below": np.zeros(R, bool), "trial_start": np.zeros(R), "open": np.ones(R, bool)}

    # -- trial bookkeeping
    def _trigger(self, st, rates, t, ks, reward_on, block_name, log):
        """Run the ticks ``t`` (rates (R, n_ticks)); returns the number of rewarded hits per replicate."""
        every = 0 if self.every is None else self.every
        hits, outcome, start = _threshold_ticks(
            np.ascontiguousarray(rates, dtype=float), np.asarray(t, float), np.asarray(ks, np.int64), every,
            self.tick_dt, self.hold_s, self.refractory_s, self.rearm_below, self.trial_timeout_s,
            st["theta"], st["refr"], st["hold"], st["below"], st["trial_start"], st["open"])
        if log is not None and outcome.any():
            for r, j in zip(*np.nonzero(outcome)):
                ok = outcome[r, j] == 1
                log.trials[r].append({"start_s": start[r, j], "stop_s": t[j], "block": block_name, "success": ok,
                                      "reward_time_s": t[j] if (ok and reward_on) else np.nan})
                if ok and reward_on:
                    log.reward_events[r].append(t[j])
        return hits if reward_on else np.zeros_like(hits)

    def start_block(self, state, block, t_s, log):
        st = state
        st["trial_start"][:] = t_s
        st["open"][:] = True
        st["refr"][:] = 0.0
        st["hold"][:] = 0.0
        st["below"][:] = False
        if block.reward and np.isnan(st["theta"]).any():
            if log is None:
                raise RuntimeError("the threshold must be set in the factual session")
            if not self._calib:
                raise ValueError("threshold mapping: theta_hz is None and no unrewarded block precedes the first "
                                 "rewarded block; give theta_hz or start with a baseline Block(reward=False)")
            rates = np.concatenate([c[2] for c in self._calib], axis=1)
            st["theta"][:] = np.percentile(rates, self.theta_percentile, axis=1)
            self._replay(st, log)

    def _replay(self, st, log):
        """Evaluate the trials of the unrewarded blocks that ran before theta was known."""
        R = st["theta"].size
        rs = {k: np.array(v, copy=True) for k, v in st.items()}
        for name, t, rates, ks, (t_start, t_stop) in self._calib:
            rs["trial_start"][:] = t_start
            rs["open"][:] = True
            rs["refr"][:] = 0.0
            rs["hold"][:] = 0.0
            rs["below"][:] = False
            self._trigger(rs, rates, t, ks, False, name, log)
            self._close(rs, name, t_stop, log)
        self._calib = []

    def _close(self, st, block_name, t_s, log):
        if log is None:
            return
        for r in np.flatnonzero(st["open"]):
            if t_s > st["trial_start"][r]:
                log.trials[r].append({"start_s": st["trial_start"][r], "stop_s": t_s, "block": block_name,
                                      "success": False, "reward_time_s": np.nan})

    def end_block(self, state, block, t_s, log):
        if np.isnan(state["theta"]).any():
            if self._pending_blocks:
                name, t0, parts = self._pending_blocks.pop()
                if parts:
                    t = np.concatenate([p[0] for p in parts])
                    rates = np.concatenate([p[1] for p in parts], axis=1)
                    ks = np.concatenate([p[2] for p in parts])
                    self._calib.append((name, t, rates, ks, (t0, t_s)))
            return
        self._close(state, block.name, t_s, log)

    def step(self, state, spikes, block, t0_step, *, s_end=None, s_window=None, wrist=None, log=None):
        ks, steps, rates = self._decode(state, spikes, t0_step)
        rate = rates.mean(axis=1)  # (R, n_ticks): several decoder units are averaged
        t = (t0_step + steps) * self.dt
        R = rate.shape[0]
        reward = np.zeros(R)
        if np.isnan(state["theta"]).any():
            # theta not known yet (baseline before an automatic threshold): collect the decoded rate
            if log is not None:
                if not self._pending_blocks or self._pending_blocks[-1][0] != block.name:
                    self._pending_blocks.append((block.name, t0_step * self.dt, []))
                self._pending_blocks[-1][2].append((t, rate, ks))
        else:
            reward += self._trigger(state, rate, t, ks, block.reward, block.name, log)
        if log is not None:
            log.tick_t.append(t)
            log.tick_dec.append(rates.transpose(0, 2, 1))
        reward = reward * self.reward_value
        return reward, -reward

    def describe(self):
        d = super().describe()
        d.update(theta_hz=self.theta_hz, theta_percentile=self.theta_percentile, hold_s=self.hold_s,
                 refractory_s=self.refractory_s, rearm_below=self.rearm_below,
                 trial_timeout_s=self.trial_timeout_s, evaluate_every_s=self.evaluate_every_s)
        return d


@njit(cache=True)
def _threshold_ticks(rates, t, ks, every, dt, hold_s, refractory_s, rearm_below, timeout_s,
                     theta, refr, hold, below, trial_start, open_):
    """Threshold-task logic over the ticks of one window (state arrays (R,) updated in place).

    Returns hits per replicate, the outcome per (replicate, tick) (1 success, -1 timeout, 0 none)
    and the start time of the trial that ended there.
    """
    R, T = rates.shape
    hits = np.zeros(R)
    outcome = np.zeros((R, T), np.int8)
    start = np.zeros((R, T))
    eps = 1e-12
    for r in range(R):
        for j in range(T):
            tj = t[j]
            if refr[r] > eps:
                refr[r] = max(refr[r] - dt, 0.0)
                if refr[r] <= eps:
                    trial_start[r] = tj
                    open_[r] = True
            ready = refr[r] <= eps
            above = rates[r, j] >= theta[r]  # False while theta is NaN
            if ready and not above:
                below[r] = True
            armed = ready and (below[r] or not rearm_below)
            if armed and above:
                hold[r] += dt
            else:
                hold[r] = 0.0
            evaluate = every <= 0 or ks[j] % every == 0
            if armed and above and hold[r] >= hold_s - eps and evaluate:
                hits[r] += 1.0
                outcome[r, j] = 1
                start[r, j] = trial_start[r]
                refr[r] = refractory_s
                hold[r] = 0.0
                below[r] = False
                open_[r] = refractory_s <= eps
                trial_start[r] = tj
            elif ready and open_[r] and tj - trial_start[r] >= timeout_s - eps:
                outcome[r, j] = -1
                start[r, j] = trial_start[r]
                trial_start[r] = tj
    return hits, outcome, start


def _windowed_rate(bin_s: float = 0.5, theta_hz: float | None = None, theta_percentile: float = 85.0,
                   trial_timeout_s: float = 10.0, update_hz: float = 60.0, reward_value: float = 1.0) -> ThresholdMapping:
    """The windowed-rate task: reward when the count in a ``bin_s`` bin reaches the criterion."""
    m = ThresholdMapping(theta_hz=theta_hz, theta_percentile=theta_percentile, hold_s=0.0, refractory_s=0.0,
                         rearm_below=False, trial_timeout_s=trial_timeout_s, evaluate_every_s=bin_s,
                         filter="boxcar", tau_s=bin_s, update_hz=update_hz, reward_value=reward_value)
    m.name = "windowed_rate"
    return m


class CursorMapping(_DecodedMapping):
    """Cursor tasks: ``cursor1d`` (``dims=1``) and ``dual`` (``dims=2``), trial logic of ``bci_nwb.md`` §A.2.

    Parameters
    ----------
    dims : {1, 2}
        Cursor dimensions.
    gain : float
        Cursor velocity per Hz of (rate - baseline), workspace units per second per Hz.
    baseline_hz : float or None
        Rate giving zero velocity (None: the control unit's calibrated baseline rate).
    targets : "uniform" or sequence of float
        Targets drawn uniformly in the workspace on the controlled axes (at least ``min_dist`` from
        the cursor), or drawn at random from fixed positions on the unit-controlled axis.
    radius, hold_s, timeout_s, iti_s : float
        Success radius, hold time, trial timeout and inter-trial interval (0.12, 1.0, 40, 0.5 in
        the dualbci task).
    workspace : float
        Half-width of the square workspace.
    reset_cursor : bool
        Put the unit-controlled axis back at 0 at each trial start.
    shaping : float
        Adds ``shaping x distance to the target`` at each window end to the cost (0 = reward only).
    """

    def __init__(self, dims: int = 1, gain: float = 0.02, baseline_hz: float | None = None, targets="uniform",
                 radius: float = 0.12, hold_s: float = 1.0, timeout_s: float = 40.0, iti_s: float = 0.5,
                 min_dist: float = 0.12, workspace: float = 0.5, reset_cursor: bool = True, shaping: float = 0.0,
                 filter: str = "exponential", tau_s: float = 0.2, update_hz: float = 60.0, reward_value: float = 1.0):
        super().__init__(filter=filter, tau_s=tau_s, update_hz=update_hz, reward_value=reward_value)
        self.dims = dims
        self.gain = gain
        self.baseline_hz = baseline_hz
        self.targets = targets
        self.radius = radius
        self.hold_s = hold_s
        self.timeout_s = timeout_s
        self.iti_s = iti_s
        self.min_dist = min_dist
        self.workspace = workspace
        self.reset_cursor = reset_cursor
        self.shaping = shaping
        self.name = "cursor1d" if dims == 1 else "dual"

    N_CANDIDATES = 4096

    def setup(self, cfg, spec, seeds):
        super().setup(cfg, spec, seeds)
        if self.dims not in (1, 2):
            raise ValueError(f"cursor dims must be 1 or 2, got {self.dims}")
        for b in cfg.blocks:
            if self.dims == 1 and b.control == "dual":
                raise ValueError(f"block {b.name!r}: control='dual' needs the 2-D 'dual' mapping")
        R = spec.w0.shape[0]
        rngs = [np.random.default_rng(s) for s in seeds]
        ws = self.workspace
        if isinstance(self.targets, str):
            if self.targets != "uniform":
                raise ValueError(f"targets must be 'uniform' or a list of positions, got {self.targets!r}")
            self.cand = np.stack([rng.uniform(-ws, ws, (self.N_CANDIDATES, 2)) for rng in rngs])
        else:
            fixed = np.asarray(self.targets, float).ravel()
            if fixed.size == 0 or np.any(np.abs(fixed) > ws):
                raise ValueError(f"fixed targets must lie within the workspace +-{ws}, got {self.targets!r}")
            self.cand = np.stack([np.stack([rng.choice(fixed, self.N_CANDIDATES), rng.choice(fixed, self.N_CANDIDATES)],
                                           axis=1) for rng in rngs])
        base = self.baseline_hz
        ctrl = list(self.decoder_units)
        self.base = (np.broadcast_to(float(base), (R, len(ctrl))).copy() if base is not None
                     else spec.baseline_rate_hz[:, ctrl].copy())
        self.unit_axis = 0 if self.dims == 1 else 1

    def init_state(self, R):
        D = len(self.decoder_units)
        return {"dec": self.decoder.init(R, D, rate0=self.base[:R] if self.filter == "exponential" else None),
                "pos": np.zeros((R, 2)), "target": np.zeros((R, 2)), "phase": np.ones(R, int),
                "hold": np.zeros(R), "trial_start": np.zeros(R), "iti": np.zeros(R),
                "cand_i": np.zeros(R, int), "src": np.arange(R)}

    def _axes(self, control: str) -> tuple[list, list]:
        """(wrist-driven axes, unit-driven axes) for a block's control mode."""
        if self.dims == 1:
            return ([0], []) if control == "manual" else ([], [0])
        return {"manual": ([0, 1], []), "brain": ([], [1]), "dual": ([0], [1])}[control]

    def wrist_goal(self, state, block):
        wa, _ = self._axes(block.control)
        track = np.zeros(2, bool)
        track[wa] = True
        goal = state["target"] / self.cfg.wrist.cursor_gain
        return goal, track

    def _new_target(self, st, r, control):
        wa, ua = self._axes(control)
        active = wa + ua
        src = st["src"][r]
        for _ in range(64):
            c = self.cand[src, st["cand_i"][r] % self.N_CANDIDATES].copy()
            st["cand_i"][r] += 1
            tgt = np.zeros(2)
            tgt[active] = c[active]
            if np.linalg.norm((tgt - st["pos"][r])[active]) >= self.min_dist:
                return tgt
        return tgt

    def start_block(self, state, block, t_s, log):
        st = state
        st["phase"][:] = 1
        st["iti"][:] = 0.0  # a new trial starts at the first tick of the block
        st["pos"][:] = 0.0

    def end_block(self, state, block, t_s, log):
        if log is None:
            return
        for r in np.flatnonzero(state["phase"] == 0):
            log.trials[r].append({"start_s": state["trial_start"][r], "stop_s": t_s, "block": block.name,
                                  "success": False, "reward_time_s": np.nan,
                                  "target_x": state["target"][r, 0], "target_y": state["target"][r, 1]})

    def step(self, state, spikes, block, t0_step, *, s_end=None, s_window=None, wrist=None, log=None):
        st = state
        ks, steps, rates = self._decode(st, spikes, t0_step)
        rate = rates.mean(axis=1)
        base = self.base[st["src"]].mean(axis=1)
        t = (t0_step + steps) * self.dt
        wa, ua = self._axes(block.control)
        R = rate.shape[0]
        reward = np.zeros(R)
        dt = self.tick_dt
        ws = self.workspace
        cursor_log = np.empty((R, t.size, self.dims))
        for j in range(t.size):
            # inter-trial interval: cursor frozen; then a new trial
            in_iti = st["phase"] == 1
            st["iti"] = np.where(in_iti, st["iti"] - dt, st["iti"])
            start = in_iti & (st["iti"] <= 1e-12)
            for r in np.flatnonzero(start):
                if self.reset_cursor:
                    st["pos"][r, ua] = 0.0
                st["target"][r] = self._new_target(st, r, block.control)
                st["trial_start"][r] = t[j]
                st["phase"][r] = 0
                st["hold"][r] = 0.0
            run = st["phase"] == 0
            if ua:
                st["pos"][:, ua[0]] = np.where(run, np.clip(st["pos"][:, ua[0]] + self.gain * (rate[:, j] - base) * dt,
                                                            -ws, ws), st["pos"][:, ua[0]])
            if wa and wrist is not None:
                wpos = np.clip(self.cfg.wrist.cursor_gain * wrist[:, steps[j], :], -ws, ws)
                for a in wa:
                    st["pos"][:, a] = np.where(run, wpos[:, a], st["pos"][:, a])
            dist = np.linalg.norm(st["pos"] - st["target"], axis=1)
            inside = run & (dist <= self.radius)
            st["hold"] = np.where(inside, st["hold"] + dt, 0.0)
            success = inside & (st["hold"] >= self.hold_s - 1e-12)
            timeout = run & ~success & (t[j] - st["trial_start"] >= self.timeout_s - 1e-12)
            done = success | timeout
            if log is not None:
                for r in np.flatnonzero(done):
                    ok = bool(success[r])
                    log.trials[r].append({"start_s": st["trial_start"][r], "stop_s": t[j], "block": block.name,
                                          "success": ok, "reward_time_s": t[j] if ok and block.reward else np.nan,
                                          "target_x": st["target"][r, 0], "target_y": st["target"][r, 1]})
                    if ok and block.reward:
                        log.reward_events[r].append(t[j])
            if block.reward:
                reward += success
            st["phase"] = np.where(done, 1, st["phase"])
            st["iti"] = np.where(done, self.iti_s, st["iti"])
            cursor_log[:, j, :] = st["pos"][:, :self.dims] if self.dims == 2 else st["pos"][:, :1]
        if log is not None:
            log.tick_t.append(t)
            log.tick_dec.append(rates.transpose(0, 2, 1))
            log.tick_cursor.append(cursor_log)
        reward = reward * self.reward_value
        cost = -reward
        if self.shaping:
            dist = np.linalg.norm(st["pos"] - st["target"], axis=1)
            cost = cost + self.shaping * np.where(st["phase"] == 0, dist, 0.0)
        return reward, cost

    def describe(self):
        d = super().describe()
        d.update(dims=self.dims, gain=self.gain, baseline_hz=float(np.mean(self.base)) if hasattr(self, "base") else None,
                 targets=self.targets if isinstance(self.targets, str) else list(np.ravel(self.targets)),
                 radius=self.radius, hold_s=self.hold_s, timeout_s=self.timeout_s, iti_s=self.iti_s,
                 min_dist=self.min_dist, workspace=self.workspace, shaping=self.shaping)
        return d


class CostMapping(Mapping):
    """The paper's target-rate costs (``rdd_model.md`` §1.4 item 4) on the filtered outputs ``s``.

    All units are rewarded for firing at ``target_hz`` except the control unit, whose target is
    ``special_hz``; the block's ``control`` picks the variant: ``manual`` -> ``||s - target||``,
    ``brain`` -> ``|s_c|``, ``dual`` -> ``||s - target|| + |s_c|``.
    """

    name = "target_rate"
    uses_decoder = False
    reward_is_cost = True

    def __init__(self, target_hz: float = 20.0, special_hz: float = 0.0):
        self.target_hz = target_hz
        self.special_hz = special_hz

    def setup(self, cfg, spec, seeds):
        super().setup(cfg, spec, seeds)
        n = cfg.n_units
        c = self.decoder_units[0]
        mode = {"manual": "rate", "brain": "brain", "dual": "dual"}
        self.costs = {k: TargetRateCost.special_neuron(n, rate=self.target_hz * self.dt, special=c,
                                                       special_rate=self.special_hz * self.dt, mode=m)
                      for k, m in mode.items()}

    def cost_fn(self, block: Block):
        return self.costs[block.control]

    def step(self, state, spikes, block, t0_step, *, s_end=None, s_window=None, wrist=None, log=None):
        cost = np.asarray(self.costs[block.control](s_end), dtype=float)
        if log is not None:
            ws = self.cfg.model.window_steps
            log.tick_t.append(np.array([(t0_step + ws) * self.dt]))
            log.tick_dec.append(s_end[:, list(self.decoder_units)][:, None, :] / self.dt)
        return cost, cost

    def describe(self):
        return {"mapping": self.name, "control_units": list(self.decoder_units), "target_hz": self.target_hz,
                "special_hz": self.special_hz, "output": "filtered spike train s (Hz) at each window end"}


#: Mapping names accepted in ``SessionConfig.mapping``.
MAPPINGS = {
    "threshold": ThresholdMapping,
    "windowed_rate": _windowed_rate,
    "cursor1d": lambda **kw: CursorMapping(dims=1, **kw),
    "dual": lambda **kw: CursorMapping(dims=2, **kw),
    "target_rate": CostMapping,
}


def make_mapping(spec: dict) -> Mapping:
    """Build a mapping from ``{"name": ..., **params}``."""
    params = dict(spec)
    name = params.pop("name")
    if name not in MAPPINGS:
        raise ValueError(f"unknown mapping {name!r}; choose one of {sorted(MAPPINGS)}")
    try:
        return MAPPINGS[name](**params)
    except TypeError as err:
        raise ValueError(f"mapping {name!r}: {err}") from None


# ============================================================================ learning rules
def resolve_rule(rule, params: dict | None = None) -> LearningRule | None:
    """A rule object from a name (``bci_credit.learning.RULES`` plus ``rstdp``, ``oracle``, ``none``).

    A :class:`~bci_credit.learning.base.LearningRule` is returned as an unfitted clone.
    """
    if rule is None or rule == "none":
        return None
    if isinstance(rule, LearningRule):
        return rule.clone()
    from ..learning import RULES, make_rule
    from ..learning.oracle import OracleRule
    from ..learning.stdp import RewardModulatedSTDPRule

    extra = {"rstdp": RewardModulatedSTDPRule, "oracle": OracleRule}
    params = dict(params or {})
    if rule in RULES:
        return make_rule(rule, **params)
    if rule in extra:
        try:
            return extra[rule](**params)
        except TypeError as err:
            raise ValueError(f"learning rule {rule!r}: {err}") from None
    raise ValueError(f"unknown learning rule {rule!r}; choose one of {sorted(set(RULES) | set(extra) | {'none'})}")


# ============================================================================ the world
_BIG = 20.0  # a clamp moves v by +-_BIG per step: silences a unit or forces a spike


class _World:
    """Everything that evolves: population, mapping state, wrist, last window's counts."""

    def __init__(self, pop: LIFPopulation, mapping: Mapping, mstate: dict, spec: PopulationSpec, cfg: SessionConfig,
                 src: np.ndarray):
        self.pop = pop
        self.mapping = mapping
        self.mstate = mstate
        self.spec = spec
        self.cfg = cfg
        self.src = src  # source replicate of each row (for per-replicate tables)
        R, N = pop.w.shape
        self.wrist = np.zeros((R, 2))
        self.prev_counts = np.zeros((R, N))
        self.dec_idx = np.asarray(mapping.decoder_units, int)
        self.dec_pos = np.full(N, -1)
        self.dec_pos[self.dec_idx] = np.arange(self.dec_idx.size)
        wr = cfg.wrist
        dt = cfg.model.dt_s
        self.wa = math.exp(-dt / wr.tau_s)
        self.w_noise = wr.sd * math.sqrt(1 - self.wa**2)

    def snapshot(self) -> dict:
        return {"pop": self.pop.snapshot(), "m": copy.deepcopy(self.mstate), "wrist": self.wrist.copy(),
                "prev": self.prev_counts.copy()}

    def restore(self, snap: dict) -> None:
        self.pop.restore(snap["pop"])
        self.mstate = copy.deepcopy(snap["m"])
        self.wrist = snap["wrist"].copy()
        self.prev_counts = snap["prev"].copy()

    def clone(self, snap: dict, rows: np.ndarray) -> "_World":
        """A new world whose replicates are copies of rows ``rows`` of the snapshot ``snap``."""
        p = self.pop
        rows = np.asarray(rows, int)
        pop = LIFPopulation(snap["pop"]["w"][rows], c=p.c[rows], x=p.x[rows], params=p.params, seed=0,
                            sigma=p.sigma[rows], sigma_pert=p.sigma_pert, record_spikes=True)
        ps = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in snap["pop"].items()}
        pop.restore(ps)
        m = {k: np.array(v[rows], copy=True) for k, v in snap["m"].items()}
        w = _World(pop, self.mapping, m, self.spec, self.cfg, self.src[rows])
        w.wrist = snap["wrist"][rows].copy()
        w.prev_counts = snap["prev"][rows].copy()
        return w

    def _wrist_path(self, block: Block, noise: np.ndarray) -> np.ndarray:
        """Wrist positions at every step of the window (R, ws, 2)."""
        R = self.wrist.shape[0]
        ws = noise.shape[0]
        if not block.wrist:
            self.wrist[:] = 0.0
            return np.zeros((R, ws, 2))
        goal, track = self.mapping.wrist_goal(self.mstate, block)
        k = self.cfg.wrist.track_gain_hz * self.cfg.model.dt_s
        a = np.where(track, 1.0 - k, self.wa)  # (2,): a tracked axis relaxes to the goal, a free one to 0
        scale = np.where(track, self.cfg.wrist.track_sd * math.sqrt(1 - (1 - k) ** 2), self.w_noise)
        drive = np.zeros((R, 2)) if goal is None else np.where(track, k * goal, 0.0)
        path = np.empty((R, ws, 2))
        for ax in range(2):
            x = drive[:, ax][None, :] + scale[ax] * noise[:, :, ax]  # (ws, R)
            y, _ = lfilter([1.0], [1.0, -a[ax]], x, axis=0, zi=(a[ax] * self.wrist[:, ax])[None, :])
            path[:, :, ax] = y.T
        self.wrist = path[:, -1, :].copy()
        return path

    def step(self, w: np.ndarray, exo: tuple, block: Block, t0_step: int, *, clamp: np.ndarray | None = None,
             coupling_counts: np.ndarray | None = None, log: _Log | None = None):
        """Simulate one window; return (engine block, reward, cost, wrist path)."""
        spec = self.spec
        inp, wnoise = exo
        R, N = self.pop.w.shape
        ws = self.cfg.model.window_steps
        x = None
        if inp is not None:
            x = inp[:, self.src, :]
        wrist = None
        if wnoise is not None:
            wn = wnoise[:, self.src, :]
            wrist = self._wrist_path(block, wn)
            if spec.tuning is not None and block.wrist:
                tun = np.einsum("rsk,rkn->srn", wrist, spec.tuning[self.src])
                x = tun if x is None else x + tun
        if spec.coupling is not None:
            counts = self.prev_counts if coupling_counts is None else coupling_counts
            cpl = np.einsum("rji,ri->rj", spec.coupling[self.src], counts)
            # keep a step's coupling increment below half the threshold: the engine's refractory clamp
            # does not stop a unit whose single-step input exceeds threshold from firing every step
            lim = 0.5 * self.cfg.model.threshold / (self.cfg.model.dt_s * np.maximum(np.abs(w), 1e-9))
            cpl = np.clip(cpl, -lim, lim)[None, :, :]
            x = np.broadcast_to(cpl, (ws, R, N)).copy() if x is None else x + cpl
        if clamp is not None:
            x = clamp if x is None else x + clamp
        b = self.pop.run(1, w=w, x_t=x)
        counts = b.counts[:, 0, :]
        self.prev_counts = counts.astype(float)
        spikes = None
        if self.mapping.uses_decoder:
            spikes = np.zeros((R, self.dec_idx.size, ws))
            sel = self.dec_pos[b.spike_neuron] >= 0
            if sel.any():
                spikes[b.spike_rep[sel], self.dec_pos[b.spike_neuron[sel]], b.spike_step[sel] - t0_step] = 1.0
        reward, cost = self.mapping.step(self.mstate, spikes, block, t0_step, s_end=b.s_end[:, 0, :],
                                         s_window=b.s_window[:, 0, :], wrist=wrist, log=log)
        if log is not None and wrist is not None:
            ks, steps = _tick_steps(t0_step, ws, 1.0 / (60.0 * self.cfg.model.dt_s))
            log.tick_wrist.append((((t0_step + steps) * self.cfg.model.dt_s), wrist[:, steps, :]))
        return b, np.asarray(reward, float), np.asarray(cost, float), spikes


# ============================================================================ session
@dataclass
class SessionResult:
    """Output of :func:`run_session`: one Recording per replicate plus the rule and population."""

    recordings: list
    rule: LearningRule | None
    population: PopulationSpec
    config: SessionConfig

    def __getitem__(self, i) -> Recording:
        return self.recordings[i]

    def __len__(self) -> int:
        return len(self.recordings)


def _truth_units(cfg: SessionConfig, rng: np.random.Generator) -> np.ndarray:
    spec = cfg.truth.units
    N = cfg.n_units
    ctrl = list(cfg.control_units)
    if spec == "all":
        return np.arange(N)
    if spec == "decoder":
        return np.array(sorted(ctrl))
    k = int(spec)
    others = np.setdiff1d(np.arange(N), ctrl)
    pick = rng.choice(others, size=min(k, others.size), replace=False) if others.size else np.array([], int)
    return np.array(sorted(ctrl + list(pick)), int)


class _TruthJob:
    __slots__ = ("k", "t0", "block", "snap", "w", "counts", "exo", "u_steps")

    def __init__(self, k, t0, block, snap):
        self.k, self.t0, self.block, self.snap = k, t0, block, snap
        self.w, self.counts, self.exo = [], [], []


def _run_truth_job(world: _World, job: _TruthJob, units: np.ndarray, rng: np.random.Generator, ws: int,
                   blocks_for: list, propagate: bool) -> dict:
    """Counterfactual pair for every unit in ``units`` and every replicate; returns per-replicate arrays."""
    R = world.pop.w.shape[0]
    N = world.pop.w.shape[1]
    U = units.size
    L = len(job.w)
    out = {"same": np.zeros((R, U)), "horizon": np.zeros((R, U)), "total": np.zeros((R, U)),
           "silent": np.zeros((R, U))}
    for r in range(R):
        rows = np.full(2 * U, r)
        cw = world.clone(job.snap, rows)
        snap0 = cw.snapshot() if propagate else None
        u_steps = rng.integers(0, ws, size=U)
        w_first = np.asarray(job.w[0])[r]
        clamp = np.zeros((ws, 2 * U, N))
        for j, i in enumerate(units):
            big = _BIG / (world.cfg.model.dt_s * max(w_first[i], 1e-9))
            clamp[:, 2 * j, i] = -big  # silent
            clamp[:, 2 * j + 1, i] = -big  # one spike at u
            clamp[u_steps[j], 2 * j + 1, i] = big
        modes = [("blocked", False)] + ([("total", True)] if propagate else [])
        for mode, prop in modes:
            if mode == "total":
                cw.restore(snap0)
            rew = np.zeros((L, 2 * U))
            for ell in range(L):
                w = np.broadcast_to(np.asarray(job.w[ell])[r], (2 * U, N))
                cc = None
                if not prop and world.spec.coupling is not None and ell > 0:
                    cc = np.broadcast_to(np.asarray(job.counts[ell - 1])[r], (2 * U, N)).astype(float)
                b, reward, cost, _ = cw.step(w, job.exo[ell], blocks_for[ell], job.t0 + ell * ws,
                                             clamp=clamp if ell == 0 else None, coupling_counts=cc)
                rew[ell] = reward
            d = rew[:, 1::2] - rew[:, 0::2]  # (L, U): one spike minus silent
            if mode == "blocked":
                out["same"][r] = d[0]
                out["silent"][r] = rew[0, 0::2]
                out["horizon"][r] = d.sum(axis=0)
                if not propagate:
                    out["total"][r] = d.sum(axis=0)
            else:
                out["total"][r] = d.sum(axis=0)
    return out


def run_session(cfg: SessionConfig, *, rule=None, rule_params: dict | None = None, progress: bool = False,
                truth: bool = True, population: PopulationSpec | None = None, w0=None) -> SessionResult:
    """Simulate a BCI session (all replicates together) and return one Recording per replicate.

    Parameters
    ----------
    cfg : SessionConfig
        The session.
    rule : LearningRule or str, optional
        Overrides ``cfg.rule`` (an object is cloned, never modified).
    rule_params : dict, optional
        Hyper-parameters for a rule given by name (default: ``cfg.rule_params`` when ``rule`` is
        not given, else none).
    progress : bool
        Show a progress bar (tqdm), updated every 100 windows.
    truth : bool
        Compute the counterfactual ground truth (``cfg.truth``).
    population : PopulationSpec, optional
        A population drawn before (e.g. shared across rules); default: :func:`build_population`.
    w0 : array_like, optional
        Initial weights (replicates, neurons) overriding the population's (e.g. pretrained weights).
    """
    p = cfg.model
    R, N = int(cfg.n_replicates), int(cfg.n_units)
    root = seed_sequence(cfg.seed)
    s_pop, s_eng, s_exo, s_truth, s_map = root.spawn(5)
    spec = population if population is not None else build_population(cfg, seed=s_pop)
    if spec.w0.shape != (R, N):
        raise ValueError(f"population has shape {spec.w0.shape}, the config asks for {(R, N)}")
    w_init = spec.w0 if w0 is None else np.broadcast_to(np.asarray(w0, float), (R, N)).copy()
    if rule_params is None:
        rule_params = cfg.rule_params if rule is None else {}
    rule_obj = resolve_rule(cfg.rule if rule is None else rule, rule_params)
    sigma_pert = float(getattr(rule_obj, "sigma_pert", 0.0) or 0.0)
    pop = LIFPopulation(w_init, c=spec.engine_c, params=p, seed=s_eng, sigma=spec.engine_sigma, sigma_pert=sigma_pert)
    mapping = make_mapping(cfg.mapping)
    mapping.setup(cfg, spec, s_map.spawn(R))
    world = _World(pop, mapping, mapping.init_state(R), spec, cfg, np.arange(R))
    ws = p.window_steps
    horizon = max(1, int(round(cfg.truth.horizon_s / p.window_s)))
    exo = _Exogenous(cfg, spec, s_exo.spawn(R), keep=horizon + 1)
    logd = _Log(R)
    truth_rng = np.random.default_rng(s_truth)
    do_truth = truth and cfg.truth.every_s > 0
    t_units = _truth_units(cfg, truth_rng) if do_truth else np.array([], int)
    every_truth = max(1, int(round(cfg.truth.every_s / p.window_s))) if do_truth else 0
    propagate = spec.coupling is not None

    if rule_obj is not None:
        rule_obj.initialize(w_init.copy(), context_of(pop))
    needs_unpert = bool(getattr(rule_obj, "needs_unperturbed", False))
    from ..learning.oracle import OracleRule

    needs_true = isinstance(rule_obj, OracleRule)
    w = w_init.copy()
    n_total = sum(int(math.floor(b.duration_s / p.window_s + 1e-9)) for b in cfg.blocks)
    Z = np.empty((R, n_total, N))
    H = np.empty((R, n_total, N), dtype=bool)
    rew_all = np.empty((R, n_total))
    cost_all = np.empty((R, n_total))
    block_of = np.empty(n_total, dtype=object)
    ev = ([], [], [])
    every_w = max(1, int(round(cfg.record_weights_every_s / p.window_s)))
    wt_t, wt_v = [0.0], [w.copy()]
    jobs: deque = deque()
    truth_rows: list = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_total, unit="window", desc="BCI session")
    k = 0
    for block in cfg.blocks:
        nb = int(math.floor(block.duration_s / p.window_s + 1e-9))
        block_end = k + nb
        mapping.start_block(world.mstate, block, k * p.window_s, logd)
        for _ in range(nb):
            t0 = k * ws
            x_k = exo.window(k)
            # counterfactual horizons stay inside one block (the task state is reset at block edges)
            if do_truth and k % every_truth == every_truth // 2 and k + horizon <= block_end:
                jobs.append(_TruthJob(k, t0, block, world.snapshot()))
            r_unpert = None
            if needs_unpert:
                snap = world.snapshot()
                world.pop.sigma_pert = 0.0
                _, _, r_unpert, _ = world.step(w, x_k, block, t0)
                world.restore(snap)
                world.pop.sigma_pert = sigma_pert
            pre_m = copy.deepcopy(world.mstate) if needs_true else None
            b, reward, cost, spikes = world.step(w, x_k, block, t0, log=logd)
            true_eff = None
            if needs_true:
                true_eff = _true_window_effect(world, mapping, pre_m, spikes, b, block, t0, cost)
            Z[:, k, :] = b.drive[:, 0, :]
            H[:, k, :] = b.spiked[:, 0, :]
            rew_all[:, k] = reward
            cost_all[:, k] = cost
            block_of[k] = block.name
            ev[0].append(b.spike_rep)
            ev[1].append(b.spike_neuron)
            ev[2].append(b.spike_step)
            for job in jobs:
                if len(job.w) < horizon:
                    job.w.append(w.copy())
                    job.counts.append(b.counts[:, 0, :].copy())
                    job.exo.append(x_k)
            if rule_obj is not None and block.learn:
                win = SessionWindowData(drive=b.drive[:, 0, :], spiked=b.spiked[:, 0, :], counts=b.counts[:, 0, :],
                                        reward=cost, s_end=b.s_end[:, 0, :], index=k,
                                        eligibility=None if b.eligibility is None else b.eligibility[:, 0, :],
                                        reward_unperturbed=r_unpert, true_effect=true_eff, block=block.name)
                w = np.array(rule_obj.update(win), dtype=float, copy=True)
            while jobs and len(jobs[0].w) >= horizon:
                job = jobs.popleft()
                blocks_for = [job.block] * horizon
                res = _run_truth_job(world, job, t_units, truth_rng, ws, blocks_for, propagate)
                truth_rows.append((job.k, res))
            k += 1
            if (k % every_w) == 0:
                wt_t.append(k * p.window_s)
                wt_v.append(w.copy())
            if bar is not None and k % 100 == 0:
                bar.update(100)
        mapping.end_block(world.mstate, block, k * p.window_s, logd)
    if bar is not None:
        bar.close()
    spikes_all = tuple(np.concatenate(e) if e else np.empty(0, int) for e in ev)
    recs = _build_recordings(cfg, spec, mapping, world, logd, Z, H, rew_all, cost_all, block_of, spikes_all,
                             np.asarray(wt_t), np.asarray(wt_v), truth_rows, t_units, w_init, w, rule_obj, root)
    return SessionResult(recordings=recs, rule=rule_obj, population=spec, config=cfg)


def _true_window_effect(world, mapping, pre_m, spikes, b, block, t0, cost) -> np.ndarray:
    """Per-window true effect of each unit's spikes on this window's cost (cost - cost without them)."""
    R, N = world.pop.w.shape
    eff = np.zeros((R, N))
    if isinstance(mapping, CostMapping):
        cf = mapping.cost_fn(block)
        s_end = b.s_end[:, 0, :]
        s_win = b.s_window[:, 0, :]
        for i in range(N):
            s0 = s_end.copy()
            s0[:, i] -= s_win[:, i]
            eff[:, i] = cost - np.asarray(cf(s0), float)
        return eff
    for d, unit in enumerate(world.dec_idx):
        st = copy.deepcopy(pre_m)
        sp = spikes.copy()
        sp[:, d, :] = 0.0
        _, c0 = mapping.step(st, sp, block, t0, s_end=b.s_end[:, 0, :], s_window=b.s_window[:, 0, :], wrist=None, log=None)
        eff[:, unit] = cost - c0
    return eff


def _build_recordings(cfg, spec, mapping, world, logd, Z, H, rew_all, cost_all, block_of, spikes_all, wt_t, wt_v,
                      truth_rows, t_units, w_init, w_final, rule_obj, root) -> list:
    from ..experiment import EPOCH
    from ..outputs import versions

    p = cfg.model
    R, W, N = Z.shape
    starts = np.arange(W) * p.window_s
    rep, neu, stp = spikes_all
    # tick series
    tick_t = np.concatenate(logd.tick_t) if logd.tick_t else np.empty(0)
    tick_dec = np.concatenate(logd.tick_dec, axis=1) if logd.tick_dec else np.empty((R, 0, 1))
    tick_cur = np.concatenate(logd.tick_cursor, axis=1) if logd.tick_cursor else None
    if logd.tick_wrist:
        wr_t = np.concatenate([a for a, _ in logd.tick_wrist])
        wr_v = np.concatenate([b for _, b in logd.tick_wrist], axis=1)
    # truth
    truth_cols: dict = {}
    if truth_rows:
        ks = np.array([k for k, _ in truth_rows])
        same = np.stack([r["same"] for _, r in truth_rows], axis=1)  # (R, J, U)
        hor = np.stack([r["horizon"] for _, r in truth_rows], axis=1)
        tot = np.stack([r["total"] for _, r in truth_rows], axis=1)
        silent = np.stack([r["silent"] for _, r in truth_rows], axis=1)
        # removal effect: factual reward minus the reward with the unit silenced, in windows where it spiked
        removal = rew_all[:, ks][:, :, None] - silent
        truth_cols = {"ks": ks, "same": same, "horizon": hor, "total": tot, "removal": removal}
    recs = []
    decoder_meta = mapping.describe()
    for r in range(R):
        units_kw: dict = {}
        for name in ("true_direct_effect", "true_direct_effect_se", "true_direct_effect_horizon",
                     "true_total_effect", "true_total_effect_se", "true_marginal_effect", "true_marginal_n",
                     "true_removal_effect", "true_removal_marginal", "true_removal_marginal_se",
                     "true_removal_marginal_n"):
            units_kw[name] = np.full(N, np.nan)
        if truth_cols:
            J = truth_cols["ks"].size
            for key, col in (("same", "true_direct_effect"), ("horizon", "true_direct_effect_horizon"),
                             ("total", "true_total_effect")):
                vals = truth_cols[key][r]  # (J, U)
                units_kw[col][t_units] = vals.mean(axis=0)
                if col != "true_direct_effect_horizon":
                    units_kw[col + "_se"][t_units] = vals.std(axis=0, ddof=1) / math.sqrt(J) if J > 1 else np.nan
            zk = Z[r, truth_cols["ks"]][:, t_units]
            near = np.abs(zk - p.threshold) < cfg.truth.near_p
            vals = truth_cols["same"][r]
            nn = near.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                units_kw["true_marginal_effect"][t_units] = np.where(nn > 0, (vals * near).sum(axis=0) / nn, np.nan)
            units_kw["true_marginal_n"][t_units] = nn
            # effect of the unit's own spikes, where it spiked (all, and just above threshold: the RD estimand)
            hk = H[r, truth_cols["ks"]][:, t_units]
            rem = truth_cols["removal"][r]
            above = hk & (zk - p.threshold < cfg.truth.near_p)
            with np.errstate(invalid="ignore", divide="ignore"):
                units_kw["true_removal_effect"][t_units] = np.where(hk.sum(0) > 0, (rem * hk).sum(0) / hk.sum(0), np.nan)
                na = above.sum(0)
                mean_a = np.where(na > 0, (rem * above).sum(0) / np.maximum(na, 1), np.nan)
                var_a = np.where(na > 1, ((rem - mean_a) ** 2 * above).sum(0) / np.maximum(na - 1, 1), np.nan)
                units_kw["true_removal_marginal"][t_units] = mean_a
                units_kw["true_removal_marginal_se"][t_units] = np.sqrt(var_a / np.maximum(na, 1))
            units_kw["true_removal_marginal_n"][t_units] = na
        units = make_units_table(
            N, control={c: True for c in cfg.control_units}, threshold=p.threshold,
            baseline_rate_hz=spec.baseline_rate_hz[r], w_initial=w_init[r], w_final=w_final[r],
            preferred_direction_rad=spec.pd_rad[r], tuning_depth=cfg.tuning.depth, cluster=spec.cluster[r],
            private_scale=np.where(np.isin(np.arange(N), cfg.control_units), cfg.noise.control_private_scale, 1.0),
            **units_kw,
        )
        sel = rep == r
        st, nu = stp[sel], neu[sel]
        order = np.argsort(st, kind="stable")
        st, nu = st[order], nu[order]
        spike_times = [st[nu == i] * p.dt_s for i in range(N)]
        windows = pd.DataFrame({"start_s": starts, "stop_s": starts + p.window_s, "reward": rew_all[r],
                                "cost": cost_all[r], "block": block_of.astype(str)})
        series: dict = {}
        if tick_t.size:
            dec = tick_dec[r]
            series["decoder_output"] = TimeSeries(
                tick_t, dec[:, 0] if dec.shape[1] == 1 else dec, unit="Hz",
                description=f"decoder output: smoothed rate of the control unit(s) {list(cfg.control_units)}"
                if mapping.uses_decoder else "filtered output s of the control unit at each window end (Hz)")
        if tick_cur is not None:
            cur = tick_cur[r]
            series["cursor"] = TimeSeries(tick_t, cur[:, 0] if cur.shape[1] == 1 else cur, unit="workspace units",
                                          description="cursor position at each decoder update")
        if logd.tick_wrist:
            series["wrist"] = TimeSeries(wr_t, wr_v[r], unit="workspace units",
                                         description="2-D wrist (torque) signal at 60 Hz")
        if not mapping.reward_is_cost:
            rt = np.asarray(logd.reward_events[r], float)
            series["reward"] = TimeSeries(rt, np.full(rt.size, float(getattr(mapping, "reward_value", 1.0))),
                                          unit="a.u.", description="reward deliveries", kind="events")
        else:
            series["reward"] = TimeSeries(starts + p.window_s, rew_all[r], unit="a.u.",
                                          description="cost R at each window's end (minimised)")
        trials = None
        rows = logd.trials[r]
        if rows or not mapping.reward_is_cost:
            trials = pd.DataFrame(rows, columns=None if rows else ["start_s", "stop_s", "block", "success",
                                                                    "reward_time_s"])
            if len(trials):
                trials = trials.sort_values("start_s", kind="stable").reset_index(drop=True)
            trials["success"] = trials["success"].astype(bool)
            trials["reward_time_s"] = trials["reward_time_s"].astype(float)
            trials["block"] = trials["block"].astype(str)
        wtrace = WeightTrace(wt_t, wt_v[:, r, :])
        dec_meta = dict(decoder_meta)
        if "theta" in world.mstate:
            dec_meta["theta_hz"] = float(world.mstate["theta"][r])
        meta = {
            "source": "simulation", "name": "bci_session", "dt_s": p.dt_s, "duration_s": W * p.window_s,
            "session_start_time": EPOCH.isoformat(), "model": dataclasses.asdict(p), "config": cfg.to_dict(),
            "seed": {"root": seed_repr(root), "replicate": r}, "replicate": r, "c": cfg.noise.c,
            "decoder": dec_meta, "learning_rule": None if rule_obj is None else type(rule_obj).__name__,
            "learning_params": None if rule_obj is None else {k: (v if isinstance(v, (int, float, str, bool, type(None)))
                                                                  else repr(v)) for k, v in rule_obj.get_params().items()},
            "blocks": [dataclasses.asdict(b) for b in cfg.blocks],
            "reward_kind": "cost" if mapping.reward_is_cost else "reward",
            "truth": {"windows": int(truth_cols["ks"].size) if truth_cols else 0, "units": t_units.tolist(),
                      "horizon_s": cfg.truth.horizon_s, "near_p": cfg.truth.near_p,
                      "definition": "paired counterfactual re-simulation with the same noise: one forced spike "
                                    "minus silence in the sampled window"},
            "calibration": spec.calibration, "versions": versions(),
        }
        recs.append(Recording(units=units, spike_times=spike_times, windows=windows, drive=Z[r].copy(),
                              spiked=H[r].copy(), trials=trials, series=series, weights=wtrace, meta=meta))
    return recs


# ============================================================================ defaults for the demo
def default_session_config(**changes) -> SessionConfig:
    """The default BCI session: 20 units (c = 0.3), threshold task on unit 0, RDD learning.

    Baseline 60 s (threshold set at its 85th percentile), conditioning 240 s, extinction 60 s; the
    RDD rule's hyper-parameters are those of :func:`bci_credit.tasks.protocols.default_rule_params`.
    Runs in well under a minute on one core.
    """
    from .protocols import default_rule_params

    cfg = SessionConfig(rule="rdd", rule_params=default_rule_params("rdd", "threshold"))
    return cfg.replace(**changes) if changes else cfg


def run_default_session(seed: int = 0, *, progress: bool = False, **changes) -> Recording:
    """Run :func:`default_session_config` with RDD learning and return the Recording (for ``make demo``)."""
    cfg = default_session_config(seed=seed, **changes)
    return run_session(cfg, progress=progress).recordings[0]
