"""Benchmark: one simulated single-unit BCI session with N = 200 units and 30 simulated minutes.

Acceptance (issue 4): a run with N = 200 units and 30 simulated minutes takes under 10 minutes on
one core. The session is the threshold task with RDD learning on every unit, correlated noise
(c = 0.3), baseline 5 min -> conditioning 20 min -> extinction 5 min, ground truth by paired
counterfactual re-simulation for the control unit and 10 random others every 5 s, and the
Recording (spike times, per-window Z/H/reward, decoder output, trials) built at the end. The NWB
file is written too and timed separately. Baseline in the same run: the bare LIF engine simulating
the same population for the same time with fixed weights (``session_over_engine_cpu`` is the cost of
the task, learning, ground truth and bookkeeping relative to the dynamics alone).

``run(quick)`` returns a dict of timings; ``quick=True`` is N = 50 units and 2 simulated minutes.
Run ``python benchmarks/bench_bci.py [--quick]`` (single-threaded: NUMBA_NUM_THREADS=1).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def run(quick: bool = False) -> dict:
    from bci_credit.io import nwb
    from bci_credit.tasks.bci import SessionConfig, NoiseConfig, run_session
    from bci_credit.tasks.protocols import conditioning_blocks, default_rule_params

    n, minutes = (50, 2.0) if quick else (200, 30.0)
    total = minutes * 60.0
    blocks = conditioning_blocks(total / 6, total * 2 / 3, total / 6)
    cfg = SessionConfig(n_units=n, n_replicates=1, seed=1, noise=NoiseConfig(c=0.3), mapping={"name": "threshold"},
                        blocks=blocks, rule="rdd", rule_params=default_rule_params("rdd", "threshold"),
                        truth={"every_s": 5.0, "units": 10, "horizon_s": 0.5})
    # warm the compiled kernels (numba cache) so compilation is not timed
    run_session(cfg.replace(n_units=10, blocks=conditioning_blocks(1.0, 1.0, 0.0)), truth=True)
    t0 = time.perf_counter()
    c0 = time.process_time()
    rec = run_session(cfg).recordings[0]
    sim_wall, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    # baseline in the same run: the bare engine, same population size and duration, fixed weights
    from bci_credit.sim.lif import LIFPopulation

    pop = LIFPopulation(rec.units["w_initial"].to_numpy()[None, :], c=0.3, params=cfg.model, seed=1)
    t2, c2 = time.perf_counter(), time.process_time()
    pop.run(int(round(total / cfg.model.window_s)))
    eng_wall, eng_cpu = time.perf_counter() - t2, time.process_time() - c2
    with tempfile.TemporaryDirectory() as d:
        t1 = time.perf_counter()
        path = nwb.write(rec, os.path.join(d, "bench.nwb"))
        nwb_wall = time.perf_counter() - t1
        size_mb = os.path.getsize(path) / 1e6
    return {"benchmark": "bci_session", "quick": quick, "n_units": n, "simulated_s": total,
            "windows": int(len(rec.windows)), "spikes": int(rec.n_spikes.sum()),
            "session_wall_s": round(sim_wall, 2), "session_cpu_s": round(sim_cpu, 2),
            "nwb_write_wall_s": round(nwb_wall, 2), "nwb_size_mb": round(size_mb, 1),
            "engine_only_wall_s": round(eng_wall, 2), "engine_only_cpu_s": round(eng_cpu, 2),
            "session_over_engine_cpu": round(sim_cpu / max(eng_cpu, 1e-9), 2),
            "realtime_factor": round(total / sim_wall, 2), "limit_s": 600.0, "within_limit": sim_wall + nwb_wall < 600.0}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 50 units and 2 simulated minutes")
    print(json.dumps(run(quick=ap.parse_args().quick), indent=2))
