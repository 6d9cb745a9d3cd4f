"""Run every reproduction recipe (full size by default) and record the timings.

Usage::

    python analysis/reproduce_all.py --out out/reproduce_full            # full size, one recipe at a time
    python analysis/reproduce_all.py --quick --out out/reproduce_quick
    python analysis/reproduce_all.py --only fig3a fig4dg --n-jobs 2
    python analysis/reproduce_all.py --out /tmp/full --results analysis/results/reproduce

Each recipe writes NAME.json and NAME.png into --out. With --results, the JSON files (small:
numbers, seed, configuration, acceptance checks) and a timings.json are copied there; this is
how analysis/results/reproduce/ was made.
"""

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from bci_credit.outputs import write_json
from bci_credit.reproduce import DEFAULT_SEED, RECIPES, run_recipe


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished worker processes."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced versions")
    ap.add_argument("--out", default="out/reproduce_all", help="output folder for JSON + PNG")
    ap.add_argument("--results", default=None, help="also copy the JSON outputs (and timings.json) here")
    ap.add_argument("--only", nargs="*", default=None, help="run only these recipes")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    a = ap.parse_args(argv)
    names = a.only or list(RECIPES)
    timings = {}
    t_all = time.perf_counter()
    for name in names:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t0 = time.perf_counter()
        cpu0 = _cpu_s()
        res = run_recipe(name, a.out, quick=a.quick, seed=a.seed, n_jobs=a.n_jobs)
        dt = time.perf_counter() - t0
        cpu = _cpu_s() - cpu0
        failed = [k for k, c in res["acceptance"].items() if not c["passed"]]
        timings[name] = {"elapsed_s": round(dt, 2), "cpu_s": round(cpu, 2), "load_avg_1min_at_start": load,
                         "checks": len(res["acceptance"]), "failed": failed}
        print(f"{name:<17} {dt:8.1f} s  cpu {cpu:8.1f} s  load {load:.2f}  failed: {failed or 'none'}", flush=True)
    total = time.perf_counter() - t_all
    summary = {"quick": a.quick, "n_jobs": a.n_jobs, "seed": a.seed, "total_s": round(total, 1),
               "total_cpu_s": round(sum(v["cpu_s"] for v in timings.values()), 1),
               "cpu_count": os.cpu_count(), "recipes": timings}
    write_json(summary, Path(a.out) / "timings.json")
    if a.results:
        dst = Path(a.results)
        dst.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(Path(a.out) / f"{name}.json", dst / f"{name}.json")
        write_json(summary, dst / "timings.json")
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
