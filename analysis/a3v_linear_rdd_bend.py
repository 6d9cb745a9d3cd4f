"""Why the local-linear RDD of Fig 3A is not flat up to p = 1 at c = 0.99 (check A3(v)).

``rdd_model.md`` §6 A3(v) expects the linear RDD estimate of neuron 1 to stay at 5.4–5.7 for every
window half-width p up to 1. Our full-size fig3a run gives 5.8–6.0 at c = 0.99 for p >= 0.36. This
script shows that the rise is a property of the model, not of our engine or estimator:

1. a literal re-implementation of the original repository's per-step loop (``lib/lif.py``:
   per-step noise, u reset to v at each window start and floored at 0, 3-step refractory, the
   2000-sample exponential kernel, the cost at each window's last step) and of its linear estimator
   (``lib/causal.py`` ``causaleffect_maxv_linear``: strict bounds, separate OLS per side, evaluated
   at the threshold) gives the same rise as ``bci_credit``'s engine and ``rdd_linear``;
2. the mechanism: at c = 0.99 neuron 2's drive tracks neuron 1's (Z2 ≈ 0.75 Z1), so neuron 2 starts
   spiking near Z1 ≈ 1.33 and its negative effect puts a second step into E[R | Z1] inside a wide
   window; a straight line per side tilts across it. Restricted to windows in which neuron 2 did
   not spike, the linear estimate is flat.

Writes ``analysis/results/reproduce/a3v_linear_rdd_bend.json``.

    python analysis/a3v_linear_rdd_bend.py [--runs 20] [--seconds 100]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "analysis" / "results" / "reproduce" / "a3v_linear_rdd_bend.json"
SHORT = {"original_loop_original_estimator": "orig loop+est", "original_loop_bci_credit_estimator": "orig loop+ours",
         "bci_credit_engine_and_estimator": "bci_credit", "engine_windows_without_neuron2_spike": "no n2 spike",
         "engine_quadratic_per_side": "quadratic"}
P_VALUES = (0.0464, 0.129, 0.215, 0.359, 0.599, 1.0)
W = (12.0, 9.0)


def simulate_original_loop(c: float, runs: int, seconds: float, seed: int):
    """The original per-step LIF loop, vectorised over runs; returns per-window (Z, R, H)."""
    rng = np.random.default_rng(seed)
    dt, tau, theta, reset, refractory, sigma, window = 0.001, 1.0, 1.0, 0.0, 3, 10.0, 20
    n = int(np.ceil(seconds / dt))
    w = np.asarray(W)
    v = np.zeros((runs, 2))
    u = np.zeros((runs, 2))
    left = np.zeros((runs, 2))
    h = np.zeros((runs, n, 2), dtype=np.uint8)
    us = np.empty((runs, n, 2))
    for i in range(n):
        if i % window == 0:
            u = v.copy()
        xi = sigma * rng.standard_normal((runs, 3)) / np.sqrt(tau)
        drive = xi[:, :1] * np.sqrt(c) + xi[:, 1:] * np.sqrt(1 - c)
        dv = -v / tau + w * drive
        v = v + dt * dv
        u = u + dt * dv
        spike = v > theta
        h[:, i] = spike
        us[:, i] = u
        left[spike] = refractory
        v[left > 0] = reset
        v[v < reset] = reset
        u[u < reset] = reset
        left[left > 0] -= 1
    k = np.exp(-np.linspace(0, 1, 2000) / 0.02)
    k /= k.sum()
    s = fftconvolve(h.astype(float), k[None, :, None], axes=1)[:, :n]
    cost = (-30 * s[..., 0] + 20 * s[..., 1] + 20 * s[..., 1] ** 2 - 4) ** 2
    return (us.reshape(runs, -1, window, 2).max(axis=2), cost.reshape(runs, -1, window)[:, :, -1],
            h.reshape(runs, -1, window, 2).max(axis=2))


def simulate_engine(c: float, runs: int, seconds: float, seed: int):
    """The same setting through bci_credit's engine (as the fig3a recipe runs it)."""
    from bci_credit.reproduce.toolkit import collect_windows, estimation_params, n_windows_of
    from bci_credit.sim.lif import LIFPopulation
    from bci_credit.tasks.costs import QuadraticCost

    params = estimation_params()
    pop = LIFPopulation(np.tile(W, (runs, 1)), c=np.full(runs, c), params=params,
                        seed=[seed * 1000 + k for k in range(runs)], record_spikes=False)
    d = collect_windows(pop, n_windows_of(seconds, params))
    return d["drive"], np.asarray(QuadraticCost()(d["s_end"]), float), d["spiked"]


def linear_original(Z, R, p, *, keep=None, degree=1, theta=1.0):
    """The original estimator (strict bounds, one polynomial fit per side, difference at θ), per run."""
    out = []
    for k in range(Z.shape[0]):
        z, r = Z[k, :, 0], R[k]
        m = np.ones_like(z, bool) if keep is None else keep[k]
        above = (z > theta) & (z < theta + p) & m
        below = (z < theta) & (z > theta - p) & m
        out.append(np.polyval(np.polyfit(z[above] - theta, r[above], degree), 0.0)
                   - np.polyval(np.polyfit(z[below] - theta, r[below], degree), 0.0))
    return np.asarray(out)


def _mean_se(x):
    return [float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(len(x)))]


def main():
    from bci_credit.analysis.spiking import rdd_linear
    from bci_credit.outputs import provenance, write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    t0 = time.time()
    res = {**provenance("analysis/a3v_linear_rdd_bend.py"), "seed": a.seed, "runs": a.runs, "seconds": a.seconds,
           "w": W, "p_values": P_VALUES, "by_c": {}}
    for ci, c in enumerate((0.01, 0.99)):
        Zo, Ro, Ho = simulate_original_loop(c, a.runs, a.seconds, seed=a.seed + 10 * ci)
        Zn, Rn, Hn = simulate_engine(c, a.runs, a.seconds, seed=a.seed + 10 * ci + 1)
        rows = {}
        for p in P_VALUES:
            rows[f"p={p:g}"] = {
                "original_loop_original_estimator": _mean_se(linear_original(Zo, Ro, p)),
                "original_loop_bci_credit_estimator": _mean_se(rdd_linear(Zo, Ro, p)[:, 0]),
                "bci_credit_engine_and_estimator": _mean_se(rdd_linear(Zn, Rn, p)[:, 0]),
                "engine_windows_without_neuron2_spike": _mean_se(linear_original(Zn, Rn, p, keep=Hn[..., 1] == 0)),
                "engine_quadratic_per_side": _mean_se(linear_original(Zn, Rn, p, degree=2)),
            }
        z1, r, h2 = Zn[..., 0].ravel(), np.broadcast_to(Rn, Zn.shape[:2]).ravel(), Hn[..., 1].ravel()
        bins = {}
        for lo in np.arange(0.8, 1.8, 0.1):
            m = (z1 >= lo) & (z1 < lo + 0.1)
            if m.sum() >= 50:
                bins[f"[{lo:.1f},{lo + 0.1:.1f})"] = {"n": int(m.sum()), "mean_R": float(r[m].mean()),
                                                     "p_neuron2_spiked": float(h2[m].mean())}
        res["by_c"][f"c={c}"] = {"linear_rdd_neuron1": rows, "reward_by_z1_bin": bins}
    res["elapsed_s"] = time.time() - t0
    write_json(res, OUT)
    for c, d in res["by_c"].items():
        print(c)
        for p, row in d["linear_rdd_neuron1"].items():
            print(f"  {p:9s} " + "  ".join(f"{SHORT[k]}: {v[0]:.2f}±{v[1]:.2f}" for k, v in row.items()))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
