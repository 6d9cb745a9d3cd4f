"""Single-unit BCI experiment simulator (``bci_nwb.md`` §A.8).

A population of N leaky integrate-and-fire units (the batched engine of :mod:`bci_credit.sim.lif`)
with correlated noise, optional cosine tuning to a 2-D "wrist" signal and optional sparse coupling,
one (or a few) **control units** read by a decoder, a pluggable **mapping** from the decoder to
reward, a schedule of **blocks**, any learning rule of :mod:`bci_credit.learning`, and ground-truth
causal effects by paired counterfactual re-simulation. Spike injection
(:class:`~bci_credit.learning.SpikeInjectionRule`) probes the decoder: its random +-1 spikes are added
to the spike trains the decoder reads, in a copy of the window that only the rule sees. :func:`run_session` returns one
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
* ``true_marginal_effect``: ``true_direct_effect`` over sampled windows with ``|Z_i - theta| < near_p``
  (``true_marginal_n`` of them; a Monte Carlo estimate, with its ``true_marginal_effect_se``);
* ``true_removal_effect``: factual reward minus the reward with unit i silenced, over sampled windows
  in which it spiked (the effect of its actual spikes), and ``true_removal_marginal`` over those just
  above threshold (``theta < Z_i < theta + near_p``): the estimand of the spike-discontinuity RD;
* ``*_se``: standard errors over sampled windows.

Units that interact only through the decoder have exactly zero direct effect when the decoder does
not read them: the counterfactual changes nothing else. With coupling, ``true_total_effect`` of a
unit that excites the control unit is positive. The rate calibration ignores the coupling input.

Weights are frozen inside a counterfactual only in the sense that both arms use the factual
weight sequence; the effect of a spike on later learning is not part of the truth.

Modules
-------
The simulator is split over flat sibling modules; every public name is importable from here too:

* :mod:`bci_credit.tasks.bci_config`: the configuration (:class:`SessionConfig`, :class:`Block`, ...);
* :mod:`bci_credit.tasks.bci_population`: the population draw, rate calibration, exogenous inputs;
* :mod:`bci_credit.tasks.bci_mappings`: the decoder and the mappings (:func:`make_mapping`);
* this module: the session itself (:func:`run_session`), the ground truth and the Recordings.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ..learning.base import LearningRule, WindowData
from ..learning.loop import context_of
from ..random import seed_repr, seed_sequence
from ..recording import Recording, TimeSeries, WeightTrace, make_units_table
from ..sim.lif import LIFPopulation, step_times, window_times
from .bci_config import (
    BCI_MODEL, Block, CouplingConfig, NoiseConfig, SessionConfig, TruthConfig, TuningConfig, WristConfig,
)
from .bci_mappings import (
    MAPPINGS, CostMapping, CursorMapping, Mapping, ThresholdMapping, _Log, _tick_steps, make_mapping,
)
from .bci_population import PopulationSpec, _Exogenous, build_population, calibrate_rates

__all__ = [
    "NoiseConfig", "WristConfig", "TuningConfig", "CouplingConfig", "TruthConfig", "Block", "SessionConfig",
    "SessionWindowData", "PopulationSpec", "build_population", "calibrate_rates", "make_mapping", "MAPPINGS",
    "ThresholdMapping", "CursorMapping", "CostMapping", "resolve_rule", "run_session", "SessionResult",
    "default_session_config", "run_default_session", "BCI_MODEL",
]


@dataclass
class SessionWindowData(WindowData):
    """:class:`~bci_credit.learning.base.WindowData` plus what the BCI session knows.

    ``true_effect`` (replicates, neurons): change of this window's cost caused by each unit's spikes
    in the window (paired counterfactual with the same noise), used by the oracle rule; ``block``:
    the block name.
    """

    true_effect: np.ndarray | None = None
    block: str = ""


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

    def cost_on_copy(self, w: np.ndarray, exo: tuple, block: Block, t0_step: int, **step_kw) -> np.ndarray:
        """The cost of this window simulated on a copy of the state (same noise); the state is left as it was."""
        snap = self.snapshot()
        try:
            return self.step(w, exo, block, t0_step, **step_kw)[2]
        finally:
            self.restore(snap)

    def clone(self, snap: dict, rows: np.ndarray) -> "_World":
        """A new world whose replicates are copies of rows ``rows`` of the snapshot ``snap``."""
        rows = np.asarray(rows, int)
        pop = self.pop.take(rows, snap["pop"])
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
             coupling_counts: np.ndarray | None = None, inject: np.ndarray | None = None, log: _Log | None = None):
        """Simulate one window; return (engine block, reward, cost, decoder spikes).

        ``inject`` (replicates, decoder units, window steps) is added to the spike trains the decoder
        reads (spike injection's probe), not to the population."""
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
            if inject is not None:
                spikes = spikes + inject
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
    probes = bool(getattr(rule_obj, "perturbs_outputs", False))  # spike injection: probes the decoder's input
    sigma_pert = float(getattr(rule_obj, "sigma_pert", 0.0) or 0.0)
    pop = LIFPopulation(w_init, c=spec.engine_c, params=p, seed=s_eng, sigma=spec.engine_sigma, sigma_pert=sigma_pert)
    mapping = make_mapping(cfg.mapping)
    if probes and not mapping.uses_decoder:
        raise ValueError(f"{type(rule_obj).__name__} probes the reward by adding spikes to the decoder's input; the "
                         f"{cfg.mapping['name']!r} mapping reads no decoder. Use a decoder mapping (threshold, "
                         f"windowed_rate, cursor1d, dual) or a configured simulation (bci_credit.experiment.run)")
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
    k = 0  # window index; times are whole step counts times dt (sim.lif.step_times)
    for block in cfg.blocks:
        nb = int(math.floor(block.duration_s / p.window_s + 1e-9))
        block_end = k + nb
        mapping.start_block(world.mstate, block, step_times(k * ws, p), logd)
        for _ in range(nb):
            t0 = k * ws
            x_k = exo.window(k)
            # counterfactual horizons stay inside one block (the task state is reset at block edges)
            if do_truth and k % every_truth == every_truth // 2 and k + horizon <= block_end:
                jobs.append(_TruthJob(k, t0, block, world.snapshot()))
            r_unpert = None
            if needs_unpert:
                world.pop.sigma_pert = 0.0
                r_unpert = world.cost_on_copy(w, x_k, block, t0)
                world.pop.sigma_pert = sigma_pert
            probe_cost = None
            if probes and rule_obj is not None and block.learn:
                # the same window with the injected spikes in the decoder's input
                signs = rule_obj.draw_injections((R, N))
                probe_cost = world.cost_on_copy(w, x_k, block, t0, inject=signs[:, world.dec_idx, :])
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
                                        reward=cost if probe_cost is None else probe_cost, s_end=b.s_end[:, 0, :], index=k,
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
                wt_t.append(step_times(k * ws, p))
                wt_v.append(w.copy())
            if bar is not None and k % 100 == 0:
                bar.update(100)
        mapping.end_block(world.mstate, block, step_times(k * ws, p), logd)
    if k % every_w:  # the trace always ends with the final weights
        wt_t.append(step_times(k * ws, p))
        wt_v.append(w.copy())
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


def _block_epochs(starts: np.ndarray, stops: np.ndarray, blocks, window_s: float) -> pd.DataFrame:
    """The session's blocks as an epochs table: one row per block that has windows (``starts``,
    ``stops``: the session's windows), with its span, its name as ``tags`` and its settings
    (``rewarded``, ``learning``, ``wrist``, ``control``)."""
    rows, k = [], 0
    for b in blocks:
        nb = int(math.floor(b.duration_s / window_s + 1e-9))  # as run_session lays them
        if nb:
            rows.append({"start_s": float(starts[k]), "stop_s": float(stops[k + nb - 1]), "tags": [b.name],
                         "rewarded": bool(b.reward), "learning": bool(b.learn), "wrist": bool(b.wrist),
                         "control": str(b.control)})
        k += nb
    return pd.DataFrame(rows, columns=["start_s", "stop_s", "tags", "rewarded", "learning", "wrist", "control"])


def _build_recordings(cfg, spec, mapping, world, logd, Z, H, rew_all, cost_all, block_of, spikes_all, wt_t, wt_v,
                      truth_rows, t_units, w_init, w_final, rule_obj, root) -> list:
    from ..experiment import EPOCH
    from ..outputs import versions

    p = cfg.model
    R, W, N = Z.shape
    starts, stops = window_times(0, W, p)
    epochs = _block_epochs(starts, stops, cfg.blocks, p.window_s)  # the same for every replicate
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
                     "true_total_effect", "true_total_effect_se", "true_marginal_effect", "true_marginal_effect_se",
                     "true_marginal_n",
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
                mean_m = np.where(nn > 0, (vals * near).sum(axis=0) / nn, np.nan)
                var_m = np.where(nn > 1, ((vals - mean_m) ** 2 * near).sum(axis=0) / np.maximum(nn - 1, 1), np.nan)
                units_kw["true_marginal_effect"][t_units] = mean_m
                units_kw["true_marginal_effect_se"][t_units] = np.sqrt(var_m / np.maximum(nn, 1))
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
        spike_times = [step_times(st[nu == i], p) for i in range(N)]
        windows = pd.DataFrame({"start_s": starts, "stop_s": stops, "reward": rew_all[r],
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
            series["reward"] = TimeSeries(stops, rew_all[r], unit="a.u.",
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
            "source": "simulation", "name": "bci_session", "dt_s": p.dt_s,
            "duration_s": float(step_times(W * p.window_steps, p)),
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
                              spiked=H[r].copy(), trials=trials, series=series, weights=wtrace, meta=meta,
                              epochs=epochs.copy()))
    return recs


# ============================================================================ defaults for the demo
def default_session_config(**changes) -> SessionConfig:
    """The default BCI session: 20 units (c = 0.3), threshold task on unit 0, RDD learning.

    Baseline 60 s (threshold set at its 85th percentile), conditioning 240 s, extinction 60 s; the
    rule's hyper-parameters are those of :func:`bci_credit.tasks.protocols.default_rule_params`, also
    when ``changes`` names another ``rule`` (or ``mapping``) without its ``rule_params``.
    Runs in well under a minute on one core.
    """
    from .protocols import default_rule_params

    cfg = SessionConfig(rule="rdd", rule_params=default_rule_params("rdd", "threshold"))
    if ("rule" in changes or "mapping" in changes) and "rule_params" not in changes:
        rule = changes.get("rule", cfg.rule)
        mapping = dict(changes.get("mapping", cfg.mapping)).get("name", "threshold")
        try:
            changes["rule_params"] = {} if rule is None or not isinstance(rule, str) else default_rule_params(rule, mapping)
        except ValueError:  # a rule without defaults for this mapping takes its own
            changes["rule_params"] = {}
    return cfg.replace(**changes) if changes else cfg


def run_default_session(seed: int = 0, *, progress: bool = False, **changes) -> Recording:
    """Run :func:`default_session_config` with RDD learning and return the Recording (for ``make demo``)."""
    cfg = default_session_config(seed=seed, **changes)
    return run_session(cfg, progress=progress).recordings[0]
