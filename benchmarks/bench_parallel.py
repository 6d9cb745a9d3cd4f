"""Scaling of a parameter sweep with ``n_jobs`` (local worker processes).

A 60-task sweep (15 grid points x 4 replicates of the 2-neuron estimation preset, each task a
``duration_s``-second simulation plus the default metrics, journaled with fsync as in the CLI) is
timed at ``n_jobs = 1`` and ``n_jobs = 2``, alternating, ``repeats`` times; the best time of each is
kept (the least disturbed by other processes on a shared machine) and the load average is recorded
around every measurement. The worker pool is started (and its imports and JIT caches loaded)
before timing; that cold-start cost is reported separately.

The cores are shared with other processes, so every run also records each task's CPU time next to
its wall time, and a busy-loop probe measures the share of a core two processes get before and after.
``speedup_2_vs_1`` is the measured wall-clock ratio; ``speedup_cpu_normalised_estimate`` scales each
wall time by the share of a core its tasks got (what the ratio would be with two free cores; an
estimate, reported as such).

Projection beyond the measured workers (labelled as such): the two normalised times fix
``T(W) = a + b / W`` (``b = 2 (T1 - T2)``: the part that divides among workers; ``a = T1 - b``:
the part that does not, dispatch and result handling in the parent), so
``tasks/s(W) = n_tasks / T(W)``. This assumes W free cores and ignores memory bandwidth and
scheduler overhead growth, so treat it as an upper bound.

    python benchmarks/bench_parallel.py                   # full: 1500 s simulated per task, 3 timed pairs
    python benchmarks/bench_parallel.py --wait-idle 600   # wait longer for free cores on a busy machine
    python benchmarks/bench_parallel.py --quick           # smoke run: 100 s per task, 1 pair
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

GRID = {"c": [0.0, 0.25, 0.5, 0.75, 0.99], "p": [0.01, 0.05, 0.2]}
REPLICATES = 4  # 15 points x 4 = 60 tasks
SEED = 2024


def _config(duration_s: float):
    from bci_credit.config import load_preset

    return load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": float(duration_s)})


def _timed_sweep(cfg, n_jobs: int, folder: Path):
    from bci_credit.sweep import run_sweep

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = run_sweep(cfg, GRID, replicates=REPLICATES, seed=SEED, n_jobs=n_jobs, out=folder, overwrite=True,
                    figure=False)
    wall = time.perf_counter() - t0
    return wall, load, os.getloadavg()[0], res.results


def _burn(seconds: float) -> float:
    """Busy-loop for ``seconds``; return the share of a core this process got."""
    t0, c0 = time.perf_counter(), time.process_time()
    x = 0
    while time.perf_counter() - t0 < seconds:
        x += 1
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def cpu_probe(seconds: float = 1.0) -> list[float]:
    """Share of a core each of 2 simultaneous busy processes gets right now (1.0 each on 2 free cores)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as ex:
        return [round(v, 3) for v in ex.map(_burn, [seconds, seconds])]


def _wait_idle(max_wait_s: float) -> list[float]:
    """Probe until two free cores are seen (each busy process >= 0.9 of a core) or ``max_wait_s`` passes."""
    deadline = time.monotonic() + max_wait_s
    probe = cpu_probe(0.5)
    while min(probe) < 0.9 and time.monotonic() < deadline:
        time.sleep(5.0)
        probe = cpu_probe(0.5)
    return probe


def run(quick: bool = False, wait_idle_s: float | None = None, repeats: int | None = None) -> dict:
    """Time the 60-task sweep at n_jobs = 1 and 2; return speed-up, tasks/s and a projection.

    ``wait_idle_s``: before each (n_jobs=1, n_jobs=2) pair, wait up to this long for two free cores
    (other processes share the machine; default 60 s, 0 in quick mode); pairs with free cores before
    and after are marked ``clean`` and, when there are any, the best times are taken from them.
    """
    if wait_idle_s is None:
        wait_idle_s = 0.0 if quick else 60.0
    import numpy as np
    import pandas as pd

    from bci_credit.sweep import run_sweep

    duration_s = 100.0 if quick else 1500.0
    repeats = repeats or (1 if quick else 3)
    cfg = _config(duration_s)
    n_tasks = len(GRID["c"]) * len(GRID["p"]) * REPLICATES
    out: dict = {"benchmark": "bench_parallel", "quick": quick, "cpu_count": os.cpu_count(), "n_tasks": n_tasks,
                 "task": f"paper_2neuron_estimation, {duration_s:g} s simulated, default metrics, journaled",
                 "loadavg_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="bench_parallel_") as tmp:
        tmp = Path(tmp)
        # cold start: a fresh pool of 2 workers imports the package and loads the JIT caches
        t0 = time.perf_counter()
        run_sweep(_config(1.0), {"c": [0.5]}, replicates=2, seed=1, n_jobs=2)
        out["pool_cold_start_s"] = round(time.perf_counter() - t0, 3)
        run_sweep(_config(1.0), {"c": [0.5]}, replicates=1, seed=1, n_jobs=1)  # warm this process too
        out["cpu_probe_before"] = cpu_probe()
        runs: dict[str, list] = {"1": [], "2": []}
        tables = {}
        for _ in range(repeats):
            before = _wait_idle(wait_idle_s) if wait_idle_s > 0 else cpu_probe(0.5)
            pair = []
            for n_jobs in (1, 2):
                wall, l0, l1, table = _timed_sweep(cfg, n_jobs, tmp / f"n{n_jobs}")
                busy = float(table["elapsed_s"].sum())
                pair.append({"wall_s": round(wall, 3), "sum_task_s": round(busy, 3),
                             "sum_task_cpu_s": round(float(table["cpu_s"].sum()), 3),
                             "concurrency": round(busy / wall, 3), "loadavg_1min_before": l0,
                             "loadavg_1min_after": l1, "cpu_probe_before": before})
                tables[n_jobs] = table
            after = cpu_probe(0.5)
            for n_jobs, rec in zip((1, 2), pair):
                rec.update(cpu_probe_after=after, clean=min(before) >= 0.9 and min(after) >= 0.9)
                runs[str(n_jobs)].append(rec)
        stable = [c for c in tables[1].columns if c not in ("elapsed_s", "cpu_s", "worker")]
        try:
            pd.testing.assert_frame_equal(tables[1][stable], tables[2][stable], check_exact=True)
            identical = True
        except AssertionError:
            identical = False
        task_s = float(np.mean(tables[1]["elapsed_s"]))  # last n_jobs=1 run
    clean = [i for i, r in enumerate(runs["1"]) if r["clean"]]
    use = clean or list(range(len(runs["1"])))
    best1 = min((runs["1"][i] for i in use), key=lambda r: r["wall_s"])
    best2 = min((runs["2"][i] for i in use), key=lambda r: r["wall_s"])
    t1, t2 = best1["wall_s"], best2["wall_s"]
    # the projection uses the wall times scaled by the share of a core the tasks got (so that other tenants of a
    # shared machine do not distort it); on an idle machine the scale factors are ~1
    t1n = t1 * best1["sum_task_cpu_s"] / best1["sum_task_s"]
    t2n = t2 * best2["sum_task_cpu_s"] / best2["sum_task_s"]
    b = max(0.0, 2.0 * (t1n - t2n))
    a = max(0.0, t1n - b)
    projection = {str(w): round(n_tasks / (a + b / w), 2) for w in (1, 2, 4, 8, 16, 32, 64)}
    out.update(
        runs=runs,
        n_clean_pairs=len(clean),
        best_from="clean pairs (two free cores before and after)" if clean else "all pairs (no clean pair: shared cores)",
        best_wall_s={"1": t1, "2": t2},
        speedup_2_vs_1=round(t1 / t2, 3),
        parallel_efficiency_2=round(t1 / t2 / 2.0, 3),
        tasks_per_s={"1": round(n_tasks / t1, 2), "2": round(n_tasks / t2, 2)},
        mean_task_compute_s=round(task_s, 4),
        # speed-up = concurrency (tasks running at once) / inflation (how much slower each task ran):
        concurrency_at_2=best2["concurrency"],
        task_time_inflation_2_vs_1=round((best2["sum_task_s"] / best1["sum_task_s"]), 3),
        # CPU time does not depend on other tenants: ~1 means the parallel run does no extra work, and a
        # wall-time inflation far above it means the cores were shared with other processes
        task_cpu_ratio_2_vs_1=round((best2["sum_task_cpu_s"] / best1["sum_task_cpu_s"]), 3),
        cpu_share_of_wall_at_2=round(best2["sum_task_cpu_s"] / best2["sum_task_s"], 3),
        # what the speed-up would be had every worker had its core to itself (an estimate, not a measurement):
        # each wall time scaled by the share of a core its tasks actually got
        speedup_cpu_normalised_estimate=round(t1n / t2n, 3),
        serial_part_s=round(a, 3),
        parallel_part_s=round(b, 3),
        projected_tasks_per_s=projection,
        projection_note="T(W) = a + b/W fitted to the W = 1, 2 wall times scaled by the share of a core the tasks got "
                        "(a: the part that does not divide among workers); an upper bound beyond W = 2",
        identical_results_n1_n2=identical,
        loadavg_end=list(os.getloadavg()),
        cpu_probe_after=cpu_probe(),
    )
    return out


def markdown(res: dict) -> str:
    """The table for BENCHMARKS.md."""
    lines = [
        f"{res['n_tasks']}-task sweep ({res['task']}) on {res['cpu_count']} cores; best of "
        f"{len(res['runs']['1'])} alternating runs each, taken from {res.get('best_from', 'all pairs')}.",
        "",
        "| workers | wall (s) | tasks/s | speed-up | load avg (1 min) during runs |",
        "|---|---|---|---|---|",
    ]
    for w in ("1", "2"):
        loads = ", ".join(f"{r['loadavg_1min_before']:.2f}" for r in res["runs"][w])
        speed = res["best_wall_s"]["1"] / res["best_wall_s"][w]
        lines.append(f"| {w} (measured) | {res['best_wall_s'][w]:.2f} | {res['tasks_per_s'][w]:.1f} | {speed:.2f}x | "
                     f"{loads} |")
    base = res["projected_tasks_per_s"]["1"]
    for w, tps in res["projected_tasks_per_s"].items():
        if int(w) > 2:
            lines.append(f"| {w} (projected) | {res['n_tasks'] / tps:.2f} | {tps:.1f} | {tps / base:.2f}x | - |")
    lines += ["", f"Speed-up at 2 workers: **{res['speedup_2_vs_1']:.2f}x** (parallel efficiency "
              f"{res['parallel_efficiency_2']:.0%}; {res['concurrency_at_2']:.2f} tasks running at once, each "
              f"{res['task_time_inflation_2_vs_1']:.2f}x as long as alone while using "
              f"{res['task_cpu_ratio_2_vs_1']:.2f}x the CPU time, i.e. it was on a core "
              f"{res['cpu_share_of_wall_at_2']:.0%} of the time); identical results at n_jobs=1 and 2: "
              f"{res['identical_results_n1_n2']}. "
              f"Two busy-loop processes got {res['cpu_probe_before']} / {res['cpu_probe_after']} of a core each "
              f"before / after the runs (1.0 each = two free cores); scaled by the share of a core the tasks got, the "
              f"2-worker speed-up would be about {res['speedup_cpu_normalised_estimate']:.2f}x (estimate). "
              f"Starting a pool of 2 workers (imports, JIT caches): {res['pool_cold_start_s']:.1f} s. "
              f"Projection: {res['projection_note']}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the result to this JSON file")
    parser.add_argument("--wait-idle", type=float, default=None, metavar="SECONDS",
                        help="before each timed pair, wait up to this long for two free cores (default 60, quick 0)")
    parser.add_argument("--repeats", type=int, default=None, help="timed pairs (default 3, quick 1)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, wait_idle_s=args.wait_idle, repeats=args.repeats)
    if args.json:
        from bci_credit.outputs import write_json

        write_json(result, args.json)
    print(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
