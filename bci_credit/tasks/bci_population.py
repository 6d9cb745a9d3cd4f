"""Population and exogenous inputs of a simulated BCI session (:mod:`bci_credit.tasks.bci`).

:func:`build_population` draws every replicate's baseline rates and gains, preferred directions,
latent loadings and coupling (a :class:`PopulationSpec`); :func:`calibrate_rates` is the simulated
rate-vs-gain curve that turns baseline rates into gains. The private helpers split the input noise
between the engine and this module and generate the latent OU input, the extra private noise and
the wrist noise window by window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from ..random import seed_sequence
from ..sim.lif import LIFPopulation
from .bci_config import SessionConfig

__all__ = ["PopulationSpec", "calibrate_rates", "build_population"]

log = logging.getLogger("bci_credit")


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
