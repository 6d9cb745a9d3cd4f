"""Reproduction recipes: the fig3a recipe at full size vs a per-run Python loop of the original's structure.

The fig3a recipe (50 runs x 5 values of c x 100 s, 2 neurons, 20-ms windows: simulation with
per-step drive traces for the argmax truth, every estimator at 10 window widths, three ground
truths, JSON and PNG) is timed on one core (``n_jobs=1``). The baseline, timed in the same run,
is one replicate at a time in the structure of the original ``lib/lif.py`` ``LIF.simulate``: a
per-step numpy loop over the 2 neurons (``bench_engine.original_style_loop``), then the output
convolution, the per-window maxima, the cost and the window-mean estimators; it is timed on a
few runs (shortened) and extrapolated to the 250 runs of 100 s. The full-size timings of every
recipe are read from ``analysis/results/reproduce/timings.json`` (made by
``analysis/reproduce_all.py``) when present.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _engine_bench():
    spec = importlib.util.spec_from_file_location("bench_engine", HERE / "bench_engine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def original_style_run(w, c, duration_s, params, p_grid, seed=0):
    """One run as the original code did it: per-step loop, convolution, window maxima, estimators."""
    from bci_credit.tasks.costs import QuadraticCost

    steps = int(round(duration_s / params.dt_s))
    h, u = _engine_bench().original_style_loop(np.asarray(w, float), c, steps, params, seed=seed)
    t = np.linspace(0, 1, 2000)  # the notebooks' kernel (rdd_model.md §1.3)
    kern = np.exp(-t / params.tau_s)
    kern /= kern.sum()
    s = np.stack([np.convolve(h[i], kern)[:steps] for i in range(h.shape[0])])
    ws = params.window_steps
    nb = steps // ws
    z = u[:, : nb * ws].reshape(-1, nb, ws).max(axis=2).T  # (windows, neurons)
    s_end = s[:, ws - 1:nb * ws:ws].T
    r = QuadraticCost()(s_end)
    est = []
    for p in list(p_grid) + [1.0]:
        for i in range(z.shape[1]):
            above = (z[:, i] > 1) & (z[:, i] < 1 + p)
            below = (z[:, i] < 1) & (z[:, i] > 1 - p)
            est.append(r[above].mean() - r[below].mean() if above.any() and below.any() else np.nan)
    return np.asarray(est)


def _load_avg() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run(quick: bool = False) -> dict:
    from bci_credit.reproduce import fig3a
    from bci_credit.reproduce.toolkit import estimation_params
    from bci_credit.reproduce.estimation import P_GRID

    params = estimation_params()
    # warm up (numba compilation cache, imports, matplotlib)
    with tempfile.TemporaryDirectory() as tmp:
        fig3a(tmp, quick=True, seed=1)
    load0 = _load_avg()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = fig3a(tmp, quick=quick, seed=2024, n_jobs=1)
        t_recipe = time.perf_counter() - t
    cfg = res["config"]
    n_runs = cfg["n_runs"] * len(cfg["c_values"])
    dur = cfg["duration_s"]
    # baseline: a few shortened runs, extrapolated to n_runs x duration
    base_s = 5.0 if quick else 20.0
    n_base = 1 if quick else 2
    best = math.inf
    for k in range(n_base):
        t = time.perf_counter()
        original_style_run([12.0, 9.0], 0.5, base_s, params, P_GRID, seed=k)
        best = min(best, time.perf_counter() - t)
    t_base = best * (dur / base_s) * n_runs
    out = {
        "benchmark": "reproduce",
        "description": __doc__.strip().splitlines()[0],
        "fig3a": {"runs": n_runs, "duration_s": dur, "quick": quick, "recipe_s": t_recipe,
                  "original_structure_s_extrapolated": t_base, "speedup": t_base / t_recipe,
                  "baseline_note": f"best of {n_base} run(s) of {base_s:g} s, extrapolated to {n_runs} x {dur:g} s",
                  "target_s": 20.0 if not quick else None, "load_avg_1min": load0,
                  "acceptance_failed": [k for k, v in res["acceptance"].items() if not v["passed"]]},
    }
    full = _all_recipes_full()
    if full:
        out["all_recipes_full"] = full
    return out


def _all_recipes_full() -> dict | None:
    """The full-size timings of every recipe, from ``analysis/results/reproduce/timings.json`` (None without it)."""
    timings = ROOT / "analysis" / "results" / "reproduce" / "timings.json"
    if not timings.exists():
        return None
    tj = json.loads(timings.read_text())
    if tj.get("quick", False) or tj.get("total_s") is None:  # only a full-size run's timings stand for it
        return None
    return {"total_s": tj.get("total_s"), "total_cpu_s": tj.get("total_cpu_s"), "n_jobs": tj.get("n_jobs"),
            "per_recipe_s": {k: v.get("elapsed_s", float("nan")) for k, v in tj.get("recipes", {}).items()},
            "note": tj.get("note"),
            "source": "analysis/results/reproduce/timings.json (analysis/reproduce_all.py)"}


def markdown(res: dict) -> str:
    f = res["fig3a"]
    lines = [f"fig3a recipe ({f['runs']} runs x {f['duration_s']:g} s, one core): **{f['recipe_s']:.1f} s**"
             + (f" (target < {f['target_s']:g} s)" if f.get("target_s") else "")
             + f"; per-run Python loop of the original's structure: {f['original_structure_s_extrapolated']:.0f} s "
             f"(extrapolated) -> **{f['speedup']:.0f}x**. Load average at start {f['load_avg_1min']:.2f}."]
    a = _all_recipes_full() or res.get("all_recipes_full")  # the timings file as it is now, when there is one
    if a:
        lines.append("")
        lines.append(f"All recipes at full size (n_jobs={a['n_jobs']}, `{a['source'].split()[0]}`): {a['total_s']:.0f} s wall"
                     + (f", {a['total_cpu_s']:.0f} s CPU" if a.get("total_cpu_s") else "") + " in total"
                     + "." + (f" Note: {a['note']}." if a.get("note") else ""))
        lines.append("")
        lines.append("| recipe | s |")
        lines.append("|---|---|")
        for k, v in a["per_recipe_s"].items():
            lines.append(f"| {k} | {v:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fig3a in its quick form")
    result = run(quick=ap.parse_args().quick)
    print(json.dumps(result, indent=2))
    print(markdown(result))
