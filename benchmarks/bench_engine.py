"""Engine throughput: neuron-steps per second, side by side with a plain numpy LIF loop.

Our engine (compiled loop, per-window drive tracking, windowed outputs, spike events) is timed
against a plain vectorised numpy loop of the same LIF model without drive tracking or windows
(the "simple limit" of peers.md §1.2) in the same run, at several (replicates x neurons) sizes,
and against a per-replicate Python loop in the structure of the original code for the paper's
100-s, 2-neuron x 500-replicate setting. Everything runs on one core (one process, no threads).
"""

from __future__ import annotations

import math
import time

import numpy as np

from bci_credit.sim import LIFParams, LIFPopulation

CASES = [  # (label, replicates, neurons)
    ("2 neurons x 1", 1, 2),
    ("2 neurons x 500 replicates", 500, 2),
    ("1 x 1000 neurons", 1, 1000),
    ("10 x 1000 neurons", 10, 1000),
    ("1 x 10000 neurons", 1, 10000),
]


def numpy_lif(w, c, steps, params: LIFParams, seed=0):
    """Plain vectorised numpy LIF loop (correlated noise, refractory, floor; no drive, no windows)."""
    rng = np.random.default_rng(seed)
    R, N = w.shape
    v = np.zeros((R, N))
    refr = np.zeros((R, N), dtype=np.int64)
    count = np.zeros((R, N), dtype=np.int64)
    sc = params.noise_scale * math.sqrt(c)
    sp = params.noise_scale * math.sqrt(1 - c)
    a = 1 - params.dt_s / params.tau_m_s
    noise = np.empty((R, N + 1))
    for _ in range(steps):
        rng.standard_normal(out=noise)
        inp = noise[:, 1:] * sp
        inp += noise[:, :1] * sc
        inp *= w
        inp *= params.dt_s
        v *= a
        v += inp
        spk = v > params.threshold
        count += spk
        refr[spk] = params.refractory_steps
        ref = refr > 0
        v[ref] = params.v_reset
        np.maximum(v, params.v_reset, out=v)
        refr[ref] -= 1
    return count


def original_style_loop(w2, c, steps, params: LIFParams, seed=0):
    """One replicate in the structure of the original ``LIF.simulate``: per-step numpy on 2 neurons."""
    rng = np.random.default_rng(seed)
    n = w2.size
    xi = params.sigma * rng.standard_normal((n + 1, steps)) / math.sqrt(params.tau_m_s)
    xi[0] *= math.sqrt(c)
    xi[1:] *= math.sqrt(1 - c)
    v = np.zeros(n)
    u = np.zeros(n)
    r = np.zeros(n)
    ws = params.window_steps
    h = np.zeros((n, steps))
    uu = np.zeros((n, steps))
    for i in range(steps):
        if i % ws == 0:
            u = v
        dv = -v / params.tau_m_s + w2 * (xi[0, i] + xi[1:, i])
        v = v + params.dt_s * dv
        u = u + params.dt_s * dv
        s = v > params.threshold
        h[:, i] = s
        uu[:, i] = u
        r[s] = params.refractory_steps
        v[r > 0] = params.v_reset
        v[v < params.v_reset] = params.v_reset
        u[u < params.v_reset] = params.v_reset
        r[r > 0] -= 1
    return h, uu


def _time(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(quick: bool = False) -> dict:
    params = LIFParams(window_s=0.02)
    target_ns = 3e6 if quick else 3e7  # neuron-steps per timed call
    rows = []
    LIFPopulation(np.full((1, 2), 10.0), c=0.5, params=params, seed=0).run(2)  # compile
    for label, R, N in CASES:
        steps = max(params.window_steps, int(target_ns / (R * N)) // params.window_steps * params.window_steps)
        w = np.full((R, N), 10.0)

        def ours():
            LIFPopulation(w, c=0.5, params=params, seed=1).run(steps // params.window_steps)

        np_steps = max(200, steps // (20 if R * N < 100 else 1))

        def base():
            numpy_lif(w, 0.5, np_steps, params, seed=1)

        t_ours = _time(ours)
        t_base = _time(base)
        rate_ours = R * N * steps / t_ours
        rate_base = R * N * np_steps / t_base
        rows.append({"case": label, "replicates": R, "neurons": N, "steps": steps,
                     "engine_neuron_steps_per_s": rate_ours, "numpy_baseline_neuron_steps_per_s": rate_base,
                     "ratio_vs_numpy": rate_ours / rate_base})
    # the paper's 100-s simulation, 2 neurons x 500 replicates, vs a per-replicate Python loop
    T = int(100.0 / params.dt_s)
    w500 = np.tile([12.0, 9.0], (500, 1))
    t_batch = _time(lambda: LIFPopulation(w500, c=0.5, params=params, seed=2).run(T // params.window_steps), repeat=1)
    n_loop = 1 if quick else 2
    loop_steps = T // (10 if quick else 4)
    t_one = _time(lambda: original_style_loop(np.array([12.0, 9.0]), 0.5, loop_steps, params), repeat=n_loop)
    t_loop_est = t_one * (T / loop_steps) * 500
    return {
        "benchmark": "engine",
        "description": __doc__.strip().splitlines()[0],
        "cases": rows,
        "paper_100s_2x500": {"batched_engine_s": t_batch, "per_replicate_python_loop_s_extrapolated": t_loop_est,
                             "speedup": t_loop_est / t_batch,
                             "note": f"loop timed on {loop_steps} steps of one replicate, extrapolated to 500 x {T}"},
    }


def markdown(res: dict) -> str:
    lines = ["| case | engine (neuron-steps/s) | plain numpy loop | ratio |", "|---|---|---|---|"]
    for r in res["cases"]:
        lines.append(f"| {r['case']} | {r['engine_neuron_steps_per_s']:.3g} | {r['numpy_baseline_neuron_steps_per_s']:.3g} "
                     f"| {r['ratio_vs_numpy']:.2f}x |")
    p = res["paper_100s_2x500"]
    lines.append("")
    lines.append(f"Paper's 100-s run, 2 neurons x 500 replicates: batched engine {p['batched_engine_s']:.2f} s vs "
                 f"per-replicate Python loop (original structure) {p['per_replicate_python_loop_s_extrapolated']:.0f} s "
                 f"(extrapolated) -> **{p['speedup']:.0f}x**.")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a reduced smoke run")
    out = run(quick=ap.parse_args().quick)
    print(json.dumps(out, indent=2))
    print(markdown(out))
