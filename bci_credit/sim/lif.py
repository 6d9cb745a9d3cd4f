"""Batched leaky integrate-and-fire (LIF) population with correlated noise.

The model of Lansdell & Kording (``rdd_model.md`` §1.1-1.3), integrated with forward Euler:

``dv_i/dt = -v_i/tau + w_i (x_i + xi_c + xi_i) [+ psi_i]``

* spike when ``v_i > theta`` (strict); the recorded voltage is the value before reset;
* a spiking neuron is clamped to ``v_reset`` for ``ceil(refractory_s/dt_s)`` steps (the step it
  spikes and the next ones), and ``v`` is floored at ``v_reset``;
* noise: one shared Gaussian ``xi_c = sigma sqrt(c) N(0,1)/sqrt(tau)`` per replicate and step, and a
  private ``xi_i = sigma sqrt(1-c) N(0,1)/sqrt(tau)`` per neuron, so the total inputs of two
  neurons have correlation ``c``. ``noise="per_step"`` (the paper's convention) does not scale the
  noise with dt; ``noise="sde"`` treats ``sigma`` as a diffusion coefficient and scales it by
  ``1/sqrt(dt)`` (``sigma_sde = sigma_per_step * sqrt(dt)`` gives identical runs);
* time is cut into windows of ``window_steps`` steps. At each window start the counterfactual
  input drive ``u`` is set to ``v``; it then receives the same increments as ``v`` but is never
  reset by this window's spikes. Per window the engine returns ``Z = max u`` (running variable),
  ``H = spiked`` (treatment; ``H = 1`` exactly when ``Z > theta``), spike counts, and the filtered
  output ``s`` at the window's last step (where reward is evaluated).

One deliberate refinement over the original code: when a neuron is still refractory from a spike
in the previous window, its drive is clamped with ``v`` until this window's first spike. Without
it a window starting inside a refractory period can (rarely) break ``H = 1 <=> Z > theta``.

The state is shaped ``(replicates, neurons)``: many independent runs (different ``w``, ``c``, seeds)
advance in one compiled loop. Each replicate draws its noise from its own generator, in blocks,
so a batched run equals the same runs done one by one with the same per-replicate seeds, and the
result does not depend on how the run is split into calls.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..checks import check_flag, check_number
from ..random import SeedLike, seed_repr, seed_sequence
from ._kernels import lif_chunk
from ._rng import ZIG_F, ZIG_K, ZIG_W, new_states
from .filters import output_filter

__all__ = ["LIFParams", "LIFPopulation", "WindowBlock", "simulate", "run_windows", "concat_blocks", "step_times",
           "window_times"]

_CHUNK_TARGET = 2_000_000  # neuron-steps per compiled call (bounds the spike-event buffer)


_LIF_NUMBER_FIELDS = ("dt_s", "tau_m_s", "threshold", "v_reset", "refractory_s", "sigma", "tau_s", "window_s")


@dataclass(frozen=True)
class LIFParams:
    """Parameters of the LIF population (defaults: the paper's ``ParamsLIF`` with sigma = 10).

    Attributes
    ----------
    dt_s : float
        Time step (s).
    tau_m_s : float
        Membrane time constant (s); also scales the noise (``/sqrt(tau)``).
    threshold : float
        Spike threshold theta.
    v_reset : float
        Reset potential and floor of v and u.
    refractory_s : float
        Refractory period (s); ``ceil(refractory_s/dt_s)`` clamped steps.
    sigma : float
        Noise scale.
    noise : {"per_step", "sde"}
        Noise convention (see module docstring).
    tau_s : float
        Output filter time constant (s).
    paper_kernel : bool
        Use the original code's output kernel (effective time constant ~ 2 tau_s).
    window_s : float
        Window length (s); a whole number of steps.
    """

    dt_s: float = 0.001
    tau_m_s: float = 1.0
    threshold: float = 1.0
    v_reset: float = 0.0
    refractory_s: float = 0.003
    sigma: float = 10.0
    noise: str = "per_step"
    tau_s: float = 0.02
    paper_kernel: bool = False
    window_s: float = 0.02

    def __post_init__(self) -> None:
        for name in _LIF_NUMBER_FIELDS:
            check_number(getattr(self, name), f"LIFParams.{name}")
        object.__setattr__(self, "paper_kernel", check_flag(self.paper_kernel, "LIFParams.paper_kernel"))
        for name in ("dt_s", "tau_m_s", "tau_s", "window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LIFParams.{name} must be positive, got {getattr(self, name)}")
        for name in ("refractory_s", "sigma"):
            if getattr(self, name) < 0:
                raise ValueError(f"LIFParams.{name} must be non-negative, got {getattr(self, name)}")
        if self.noise not in ("per_step", "sde"):
            raise ValueError(f"LIFParams.noise must be 'per_step' or 'sde', got {self.noise!r}")
        if self.threshold <= self.v_reset:
            raise ValueError(f"LIFParams.threshold must be above v_reset, got threshold={self.threshold} "
                             f"<= v_reset={self.v_reset}")
        ws = self.window_s / self.dt_s
        if abs(ws - round(ws)) > 1e-6 or round(ws) < 1:
            raise ValueError(f"LIFParams.window_s={self.window_s} is not a whole number of dt_s={self.dt_s} steps")

    @property
    def window_steps(self) -> int:
        """Steps per window."""
        return int(round(self.window_s / self.dt_s))

    @property
    def refractory_steps(self) -> int:
        """Clamped steps after a spike (including the spike step)."""
        return int(math.ceil(self.refractory_s / self.dt_s - 1e-9))

    @property
    def noise_scale(self) -> float:
        """Factor turning a standard normal into the noise input (before sqrt(c) splitting)."""
        scale = self.sigma / math.sqrt(self.tau_m_s)
        return scale / math.sqrt(self.dt_s) if self.noise == "sde" else scale

    def replace(self, **changes: Any) -> "LIFParams":
        """A copy with ``changes`` applied.

        Parameters
        ----------
        **changes
            Field name -> new value.

        Returns
        -------
        LIFParams
            The new (validated) parameters.
        """
        return dataclasses.replace(self, **changes)


def step_times(steps, params: LIFParams) -> np.ndarray:
    """Times (s) of simulation steps: the whole step count times ``params.dt_s``.

    Spike times and window edges (:func:`window_times`) are both written this way, so they round
    alike and a spike at a window's first step is at that window's start, bit for bit.
    """
    return np.asarray(steps) * params.dt_s


def window_times(first_window: int, n_windows: int, params: LIFParams) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop times (s) of ``n_windows`` windows from window index ``first_window``.

    Each edge is a whole step count times ``dt_s`` (:func:`step_times`), so the spikes of window
    ``k`` (steps ``k * window_steps`` to ``(k + 1) * window_steps - 1``) fall in its
    ``[start, stop)`` and a window's stop is the next one's start.
    """
    edges = step_times((int(first_window) + np.arange(int(n_windows) + 1)) * params.window_steps, params)
    return edges[:-1], edges[1:]


@dataclass
class WindowBlock:
    """Per-window output of :meth:`LIFPopulation.run`; arrays are shaped (replicates, windows, neurons).

    Attributes
    ----------
    drive : ndarray of float
        Z, the maximum counterfactual input drive in the window.
    spiked : ndarray of bool
        H, whether the neuron spiked in the window.
    counts : ndarray of int
        Number of spikes in the window.
    s_end : ndarray of float
        Filtered output s at the window's last step.
    s_window : ndarray of float
        Contribution of this window's own spikes to ``s_end`` (so ``s_end - s_window`` is the
        output had the neuron not spiked in this window: the paired do() counterfactual).
    eligibility : ndarray of float or None
        Node-perturbation eligibility ``sum_t (x + xi_c + xi_i) psi_i`` (when ``sigma_pert > 0``).
    spike_rep, spike_neuron, spike_step : ndarray of int
        Spike events (replicate, neuron, global step index), ordered by replicate, window, neuron, step.
    first_window : int
        Global index of the first window in this block.
    v_trace, u_trace : ndarray or None
        Per-step membrane potential (before reset) and drive, shape (replicates, steps, neurons),
        when requested.
    """

    drive: np.ndarray
    spiked: np.ndarray
    counts: np.ndarray
    s_end: np.ndarray
    s_window: np.ndarray
    eligibility: np.ndarray | None
    spike_rep: np.ndarray
    spike_neuron: np.ndarray
    spike_step: np.ndarray
    first_window: int
    v_trace: np.ndarray | None = None
    u_trace: np.ndarray | None = None

    @property
    def n_windows(self) -> int:
        """Number of windows in the block."""
        return self.drive.shape[1]


def _require_finite(arr: np.ndarray, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``arr`` holds NaN or +-inf (cheap for finite input)."""
    if not math.isfinite(arr.sum()) and not np.isfinite(arr).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        where = f" at index {idx}" if idx else ""
        raise ValueError(f"{name} must be finite, got {arr[idx] if idx else arr.item()}{where}; "
                         f"pass finite numbers (shape {arr.shape})")


def _as_rn(value, R: int, N: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    _require_finite(arr, name)
    try:
        if arr.ndim == 1 and arr.size == R and R != N:
            arr = arr[:, None]
        return np.ascontiguousarray(np.broadcast_to(arr, (R, N)), dtype=float)
    except ValueError:
        raise ValueError(f"{name} with shape {arr.shape} cannot be broadcast to (replicates, neurons) = {(R, N)}") from None


def _as_r(value, R: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(R, float(arr))
    if arr.shape != (R,):
        raise ValueError(f"{name} must be a scalar or one value per replicate ({R}), got shape {arr.shape}")
    return arr


class LIFPopulation:
    """A batch of independent LIF populations advanced window by window.

    Parameters
    ----------
    w : array_like, shape (neurons,) or (replicates, neurons)
        Input gains (the "weights"); a 1-D ``w`` is one replicate unless ``n_replicates`` is given.
    c : float or array_like (replicates,)
        Noise correlation coefficient in [0, 1].
    x : float or array_like
        Constant stimulus, broadcast to (replicates, neurons); multiplied by w.
    params : LIFParams
        Model parameters (``sigma`` can be overridden per replicate with ``sigma=``).
    seed : int, Generator, SeedSequence or sequence of those
        Root seed (one child stream per replicate is spawned) or one seed per replicate.
    n_replicates : int, optional
        Number of replicates when ``w`` is 1-D.
    sigma : float or array_like (replicates,), optional
        Per-replicate noise scale (default ``params.sigma``).
    sigma_pert : float
        Standard deviation scale of a node-perturbation current ``psi = sigma_pert N(0,1)/sqrt(tau)``
        added to dv (0 = none). Drawn from a separate stream, so the network noise is the same
        with and without perturbation.
    v0 : array_like, optional
        Initial membrane potentials (default: ``v_reset``).
    record_spikes : bool
        Keep spike events (needed for spike times; off saves memory in huge sweeps).
    """

    def __init__(self, w: ArrayLike, *, c: ArrayLike = 0.99, x: ArrayLike = 0.0, params: LIFParams | None = None,
                 seed: SeedLike | Sequence = None, n_replicates: int | None = None, sigma: ArrayLike | None = None,
                 sigma_pert: float = 0.0, v0: ArrayLike | None = None, record_spikes: bool = True) -> None:
        self.params = params if params is not None else LIFParams()
        w = np.asarray(w, dtype=float)
        if w.ndim == 1:
            w = np.broadcast_to(w, (n_replicates or 1, w.size))
        elif w.ndim != 2:
            raise ValueError(f"w must be 1-D (neurons) or 2-D (replicates, neurons), got shape {w.shape}")
        _require_finite(w, "w (input gains)")
        self.n_replicates, self.n_neurons = w.shape
        R, N = w.shape
        if R < 1 or N < 1:
            raise ValueError("need at least one replicate and one neuron")
        self.w = np.ascontiguousarray(w, dtype=float)
        c_arr = _as_r(c, R, "c")
        if np.any((c_arr < 0) | (c_arr > 1)) or not np.all(np.isfinite(c_arr)):
            raise ValueError(f"noise correlation c must lie in [0, 1], got {c}")
        self.c = c_arr
        self.x = _as_rn(x, R, N, "x (stimulus)")
        sig = _as_r(self.params.sigma if sigma is None else sigma, R, "sigma")
        if not (np.isfinite(sig).all() and (sig >= 0).all()):
            raise ValueError(f"sigma (noise scale) must be finite and >= 0, got {sigma}")
        if not (math.isfinite(float(sigma_pert)) and float(sigma_pert) >= 0):
            raise ValueError(f"sigma_pert must be finite and >= 0, got {sigma_pert}")
        sde = 1.0 / math.sqrt(self.params.dt_s) if self.params.noise == "sde" else 1.0
        self.noise_scale = sig / math.sqrt(self.params.tau_m_s) * sde
        self.sigma = sig
        self.sigma_pert = float(sigma_pert)
        self.record_spikes = bool(record_spikes)
        # seeds: one child per replicate, each split into (network noise, perturbation noise)
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != R:
                raise ValueError(f"got {len(seed)} seeds for {R} replicates; give one per replicate or one root seed")
            seqs = [seed_sequence(int(s) if isinstance(s, np.integer) else s) for s in seed]
            self.seed_record = [seed_repr(s) for s in seed]
        else:
            root = seed_sequence(seed)
            seqs = root.spawn(R)
            self.seed_record = seed_repr(root)
        streams = [s.spawn(2) for s in seqs]
        self._rng = new_states([a for a, _ in streams])
        self._pert_rng = new_states([b for _, b in streams])
        # state
        self.v = np.full((R, N), self.params.v_reset, dtype=float) if v0 is None else _as_rn(v0, R, N, "v0").copy()
        self.u = self.v.copy()
        self.refr = np.zeros((R, N), dtype=np.int64)
        self.s = np.zeros((R, N), dtype=float)
        self._spiked_in_win = np.zeros((R, N), dtype=np.bool_)
        self.decay, self.k0 = output_filter(self.params.tau_s, self.params.dt_s, self.params.paper_kernel)
        self.step = 0

    # ----------------------------------------------------------------------------- running
    @property
    def window(self) -> int:
        """Index of the next window."""
        return self.step // self.params.window_steps

    @property
    def t_s(self) -> float:
        """Current simulated time (s)."""
        return self.step * self.params.dt_s

    def run(self, n_windows: int, *, w: ArrayLike | None = None, x_t: np.ndarray | None = None,
            record_traces: bool = False) -> WindowBlock:
        """Advance ``n_windows`` windows and return their per-window outputs.

        Parameters
        ----------
        n_windows : int
            Number of windows to simulate.
        w : array_like, optional
            New input gains (replicates, neurons) to use from now on.
        x_t : ndarray, optional
            Extra time-varying input, shape (steps, replicates, neurons) or (steps, neurons) with
            ``steps = n_windows * window_steps``; added to ``x`` (so also multiplied by w).
        record_traces : bool
            Also return per-step v (before reset) and u traces (memory: replicates*steps*neurons).

        Returns
        -------
        WindowBlock
            The windows' outputs, shape (replicates, n_windows, neurons), and their spike events.
        """
        p = self.params
        R, N = self.n_replicates, self.n_neurons
        ws = p.window_steps
        try:
            n_windows = int(n_windows)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"n_windows must be a whole number of windows >= 0, got {n_windows!r}") from None
        if n_windows < 0:
            raise ValueError(f"n_windows must be >= 0, got {n_windows}")
        if w is not None:
            self.w = _as_rn(w, R, N, "w (input gains)")
        total = n_windows * ws
        if x_t is not None:
            x_t = np.asarray(x_t, dtype=float)
            _require_finite(x_t, "x_t (time-varying input)")
            if x_t.ndim == 2:
                x_t = x_t[:, None, :]
            if x_t.shape[0] != total or x_t.shape[2] != N or x_t.shape[1] not in (1, R):
                raise ValueError(f"x_t must have shape ({total}, {R} or 1, {N}), got {x_t.shape}")
            x_t = np.ascontiguousarray(np.broadcast_to(x_t, (total, R, N)))
        z = np.empty((R, n_windows, N))
        h = np.empty((R, n_windows, N), dtype=np.bool_)
        cnt = np.empty((R, n_windows, N), dtype=np.int32)
        s_end = np.empty((R, n_windows, N))
        g = np.empty((R, n_windows, N))
        elig = np.empty((R, n_windows, N))
        tr_v = np.empty((R, total, N) if record_traces else (1, 1, 1))
        tr_u = np.empty_like(tr_v)
        ev = ([], [], [])
        dummy3 = np.empty((1, 1, 1))
        sqrt_c, sqrt_1mc = np.sqrt(self.c), np.sqrt(1.0 - self.c)
        done = 0
        first_window = self.window
        pert_scale = self.sigma_pert / math.sqrt(p.tau_m_s)
        chunk = max(ws, (_CHUNK_TARGET // (R * N)) // ws * ws)
        while done < total:
            k = min(total - done, chunk)
            # a spike per step is possible when one step's input exceeds the threshold: size for the worst case
            cap = R * N * k if self.record_spikes else 1
            ev_r = np.empty(cap, dtype=np.int32)
            ev_n = np.empty(cap, dtype=np.int32)
            ev_s = np.empty(cap, dtype=np.int64)
            n_ev = lif_chunk(
                self.v, self.u, self.refr, self.s, self._spiked_in_win,
                self.w, self.x, sqrt_c, sqrt_1mc, self.noise_scale,
                self._rng, ZIG_K, ZIG_W, ZIG_F,
                x_t[done:done + k] if x_t is not None else dummy3, x_t is not None,
                self._pert_rng, pert_scale,
                p.dt_s, p.tau_m_s, p.threshold, p.v_reset, p.refractory_steps, self.decay, self.k0,
                ws, k, done // ws,
                z, h, cnt, s_end, g, elig,
                self.record_spikes, ev_r, ev_n, ev_s, self.step,
                record_traces, tr_v, tr_u, done,
            )
            if self.record_spikes:
                ev[0].append(ev_r[:n_ev].copy())
                ev[1].append(ev_n[:n_ev].copy())
                ev[2].append(ev_s[:n_ev].copy())
            self.step += k
            done += k
        cat = (lambda lst, dt: np.concatenate(lst) if lst else np.empty(0, dtype=dt))
        return WindowBlock(
            drive=z, spiked=h, counts=cnt, s_end=s_end, s_window=g,
            eligibility=elig if self.sigma_pert > 0 else None,
            spike_rep=cat(ev[0], np.int32), spike_neuron=cat(ev[1], np.int32), spike_step=cat(ev[2], np.int64),
            first_window=first_window,
            v_trace=tr_v if record_traces else None, u_trace=tr_u if record_traces else None,
        )

    def snapshot(self) -> dict:
        """Copy of the full dynamic state.

        Returns
        -------
        dict
            Membrane, drive, filters, noise streams, weights and step, for :meth:`restore` or
            :meth:`take`.
        """
        return {k: np.copy(getattr(self, k)) for k in ("v", "u", "refr", "s", "_spiked_in_win", "_rng", "_pert_rng", "w")} | {
            "step": self.step}

    def restore(self, snap: dict) -> None:
        """Return to a state taken with :meth:`snapshot` (same noise from then on).

        Parameters
        ----------
        snap : dict
            A :meth:`snapshot` of this population.
        """
        for k, val in snap.items():
            setattr(self, k, np.copy(val) if isinstance(val, np.ndarray) else val)

    def take(self, rows: ArrayLike, snap: dict | None = None) -> "LIFPopulation":
        """A new population whose replicates are copies of replicates ``rows`` of this one.

        Parameters
        ----------
        rows : array_like of int
            Source replicate of each new replicate (repeats allowed).
        snap : dict, optional
            A :meth:`snapshot` of this population to copy from (default: its current state).

        Returns
        -------
        LIFPopulation
            Each copy carries its source's state and noise streams, so it continues the source's
            noise; nothing is drawn or seeded (cheap for the many short counterfactual runs of a
            ground truth).
        """
        rows = np.asarray(rows, dtype=int)
        new = copy.copy(self)
        state = self.snapshot() if snap is None else snap
        for k, val in state.items():
            setattr(new, k, np.ascontiguousarray(val[rows]) if isinstance(val, np.ndarray) else val)
        for k in ("c", "x", "sigma", "noise_scale"):
            setattr(new, k, np.ascontiguousarray(getattr(self, k)[rows]))
        new.n_replicates = int(rows.size)
        new.record_spikes = True
        return new

    def describe(self) -> dict:
        """JSON-friendly description of this population (for provenance).

        Returns
        -------
        dict
            Parameters, replicate and neuron counts, ``c``, ``sigma``, ``sigma_pert`` and the seed record.
        """
        return {
            "params": dataclasses.asdict(self.params),
            "n_replicates": self.n_replicates,
            "n_neurons": self.n_neurons,
            "c": self.c.tolist(),
            "sigma": self.sigma.tolist(),
            "sigma_pert": self.sigma_pert,
            "seed": self.seed_record,
        }


def concat_blocks(blocks: Sequence[WindowBlock]) -> WindowBlock:
    """Join consecutive blocks of one population along the window axis.

    Parameters
    ----------
    blocks : sequence of WindowBlock
        Consecutive blocks, in order (at least one).

    Returns
    -------
    WindowBlock
        The joined block, starting at the first block's ``first_window``. Traces (``v_trace``,
        ``u_trace``) are not joined: they are None.
    """
    if not blocks:
        raise ValueError("no blocks to join")
    cat = lambda name: np.concatenate([getattr(b, name) for b in blocks], axis=1)  # noqa: E731
    return WindowBlock(
        drive=cat("drive"), spiked=cat("spiked"), counts=cat("counts"), s_end=cat("s_end"), s_window=cat("s_window"),
        eligibility=None if blocks[0].eligibility is None else cat("eligibility"),
        spike_rep=np.concatenate([b.spike_rep for b in blocks]),
        spike_neuron=np.concatenate([b.spike_neuron for b in blocks]),
        spike_step=np.concatenate([b.spike_step for b in blocks]),
        first_window=blocks[0].first_window,
    )


def run_windows(pop: LIFPopulation, n_windows: int, *, chunk_windows: int | None = None,
                progress_bar=None) -> list[WindowBlock]:
    """Advance ``pop`` by ``n_windows`` windows in chunks (one progress update per chunk)."""
    if chunk_windows is None:
        chunk_windows = max(1, n_windows // 50) if progress_bar is not None else max(1, n_windows)
    blocks, done = [], 0
    while done < n_windows:
        k = min(chunk_windows, n_windows - done)
        blocks.append(pop.run(k))
        done += k
        if progress_bar is not None:
            progress_bar.update(k)
    return blocks or [pop.run(0)]


def simulate(w: ArrayLike, duration_s: float, *, c: ArrayLike = 0.99, x: ArrayLike = 0.0,
             params: LIFParams | None = None, seed: SeedLike | Sequence = None, n_replicates: int | None = None,
             sigma: ArrayLike | None = None, record_spikes: bool = True, progress: bool = False,
             chunk_windows: int | None = None) -> tuple[WindowBlock, LIFPopulation]:
    """Simulate a batch of populations for ``duration_s`` seconds with fixed weights.

    A sweep over many weight settings is one call: pass ``w`` shaped (replicates, neurons).

    Parameters
    ----------
    w : array_like, shape (neurons,) or (replicates, neurons)
        Input gains (finite).
    duration_s : float
        Simulated time (finite, > 0), rounded down to whole windows; at least one window of
        ``params.window_s``.
    c, x, params, seed, n_replicates, sigma, record_spikes
        As in :class:`LIFPopulation` (``x`` must be finite).
    progress : bool
        Show a tqdm progress bar over windows.
    chunk_windows : int, optional
        Windows per engine call (default: all at once, or 50 chunks with ``progress``).

    Returns
    -------
    block : WindowBlock
        The per-window outputs.
    pop : LIFPopulation
        The population (final state, parameters, seeds).

    Examples
    --------
    >>> block, pop = simulate([12.0, 9.0], 10.0, c=0.5, seed=1)
    >>> block.drive.shape
    (1, 500, 2)
    """
    try:
        dur = float(duration_s)
    except (TypeError, ValueError):
        raise ValueError(f"duration_s must be a number of seconds, got {duration_s!r}") from None
    if not (math.isfinite(dur) and dur > 0):
        raise ValueError(f"duration_s must be a finite number of seconds > 0, got {duration_s!r}")
    pop = LIFPopulation(w, c=c, x=x, params=params, seed=seed, n_replicates=n_replicates, sigma=sigma,
                        record_spikes=record_spikes)
    n_windows = int(math.floor(duration_s / pop.params.window_s + 1e-9))
    if n_windows < 1:
        raise ValueError(f"duration_s={duration_s} s is shorter than one window (params.window_s="
                         f"{pop.params.window_s} s): pass duration_s >= window_s")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_windows, unit="window", desc="simulating")
    blocks = run_windows(pop, n_windows, chunk_windows=chunk_windows, progress_bar=bar)
    if bar is not None:
        bar.close()
    return concat_blocks(blocks), pop
