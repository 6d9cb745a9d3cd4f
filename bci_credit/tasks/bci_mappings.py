"""Decoder and control-unit mappings of a simulated BCI session (:mod:`bci_credit.tasks.bci`).

A mapping turns the decoded control-unit rate (or the filtered outputs ``s``) into the reward and
cost of each window and keeps the trial bookkeeping: :class:`ThresholdMapping` (``threshold`` and
``windowed_rate``), :class:`CursorMapping` (``cursor1d`` and ``dual``) and :class:`CostMapping`
(``target_rate``), built from ``SessionConfig.mapping`` by :func:`make_mapping` (names in
:data:`MAPPINGS`). The module docstring of :mod:`bci_credit.tasks.bci` describes the tasks.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from scipy.signal import lfilter

from .costs import TargetRateCost

if TYPE_CHECKING:  # annotations only: bci_config imports this module (for MAPPINGS)
    from .bci_config import Block, SessionConfig
    from .bci_population import PopulationSpec

__all__ = ["Mapping", "ThresholdMapping", "CursorMapping", "CostMapping", "MAPPINGS", "make_mapping"]


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
