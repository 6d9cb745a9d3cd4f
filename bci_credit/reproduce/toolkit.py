"""The recipes' toolkit: seeds, chunked batched runs, landscapes, gradient estimates, outputs.

Public, so that a new recipe or an analysis script (``analysis/a7_fixed_readout.py``,
``analysis/a3v_linear_rdd_bend.py``) is built from the same pieces as the paper's figures.

Every recipe follows the same pattern:

* one root ``seed``; every replicate gets its own int seed ``child_seed(seed, stream, k)``
  (:func:`replicate_seeds`), so a batched engine call over many replicates equals the same runs
  done one by one, and the result does not depend on how the replicates are split into tasks;
* the replicates are split into tasks whose size depends only on memory (:func:`chunk_slices`),
  never on ``n_jobs``; ``n_jobs`` only says how many tasks run at once
  (:func:`bci_credit.parallel.pmap`);
* a task returns small per-replicate summaries (dicts of arrays with the replicate on axis 0),
  joined in order by :func:`stack`;
* :func:`start` / :func:`finish` build the result dict (recipe, seed, configuration, numbers,
  acceptance checks, elapsed time, versions) and write ``<name>.json`` and ``<name>.png``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..parallel import child_seed, pmap
from ..sim.lif import LIFParams, LIFPopulation

__all__ = [
    "DEFAULT_SEED", "estimation_params", "learning_params", "replicate_seeds", "chunk_slices", "run_tasks",
    "stack", "collect_windows", "start", "finish", "check", "mean_se", "landscape", "gradient_estimate",
    "grid_points", "refine_minimum", "kappa", "angle_deg", "rel_error", "quantiles", "round_floats", "n_windows_of",
]

log = logging.getLogger("bci_credit")

#: Root seed of every recipe unless one is given.
DEFAULT_SEED = 2024

#: Upper bound on replicate x window x neuron elements one task holds at once (per array).
_MAX_ELEMS = 3_000_000


def estimation_params(**changes) -> LIFParams:
    """The paper's estimation setting: sigma 10, 20-ms windows, tau_s 0.02 s, original kernel."""
    return LIFParams(sigma=10.0, window_s=0.02, tau_s=0.02, paper_kernel=True).replace(**changes)


def learning_params(**changes) -> LIFParams:
    """The paper's learning setting: sigma 10, 50-ms windows, tau_s 0.2 s, original kernel."""
    return LIFParams(sigma=10.0, window_s=0.05, tau_s=0.2, paper_kernel=True).replace(**changes)


def replicate_seeds(seed: int, stream: int, n: int) -> list[int]:
    """``n`` int seeds for the replicates of one stream of a recipe (independent of any split)."""
    return [child_seed(seed, stream, k) for k in range(int(n))]


def chunk_slices(n: int, per_task: int) -> list[slice]:
    """Consecutive slices of ``range(n)`` with at most ``per_task`` items each."""
    per_task = max(1, int(per_task))
    return [slice(a, min(n, a + per_task)) for a in range(0, int(n), per_task)]


def run_tasks(fn: Callable, tasks: Sequence, n_jobs: int | None = 1) -> list:
    """``[fn(task) for task in tasks]`` through :func:`bci_credit.parallel.pmap` (results in order)."""
    return pmap(fn, list(tasks), n_jobs=n_jobs)


def stack(parts: Sequence[dict], axis: int = 0) -> dict:
    """Join per-task dicts of arrays along ``axis`` (the replicate axis), key by key."""
    if not parts:
        return {}
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=axis) for k in parts[0]}


def collect_windows(pop: LIFPopulation, n_windows: int, *, argmax: bool = False, x_t=None) -> dict:
    """Run ``pop`` for ``n_windows`` windows (in memory-bounded chunks) and keep the window arrays.

    Returns ``drive``, ``spiked``, ``counts``, ``s_end``, ``s_window`` shaped (replicates, windows,
    neurons) and, when ``argmax``, ``argmax_step``: the step (0-based in its window) at which the
    counterfactual drive u peaked, read from the engine's per-step traces chunk by chunk.
    """
    R, N = pop.n_replicates, pop.n_neurons
    ws = pop.params.window_steps
    per_call = max(1, _MAX_ELEMS // max(1, R * N * (ws if argmax else 1)))
    keys = ("drive", "spiked", "counts", "s_end", "s_window")
    parts: dict[str, list] = {k: [] for k in keys + (("argmax_step",) if argmax else ())}
    done = 0
    while done < n_windows:
        k = min(per_call, n_windows - done)
        b = pop.run(k, record_traces=argmax)
        for key in keys:
            parts[key].append(getattr(b, key))
        if argmax:
            parts["argmax_step"].append(b.u_trace.reshape(R, k, ws, N).argmax(axis=2).astype(np.int16))
        done += k
    return {key: np.concatenate(v, axis=1) if v else np.empty((R, 0, N)) for key, v in parts.items()}


def mean_se(x, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean over ``axis`` (NaN-aware; NaN where nothing is finite)."""
    import warnings

    x = np.asarray(x, dtype=float)
    n = np.sum(np.isfinite(x), axis=axis)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(x, axis=axis)
        sd = np.nanstd(x, axis=axis, ddof=1)
        return m, sd / np.sqrt(n)


def check(passed: bool, measured: Any, criterion: str, **notes) -> dict:
    """One acceptance check: whether it passed, what was measured, the criterion, and notes."""
    out = {"passed": bool(passed), "measured": measured, "criterion": criterion}
    out.update(notes)
    return out


def start(name: str, description: str, *, seed: int, quick: bool, n_jobs: int | None, config: dict) -> dict:
    """A new result dict (the timer starts now)."""
    log.info("%s: starting (%s, seed %s, n_jobs %s)", name, "quick" if quick else "full size", seed, n_jobs)
    return {"recipe": name, "description": description, "seed": int(seed), "quick": bool(quick),
            "n_jobs": n_jobs, "config": config, "results": {}, "acceptance": {}, "_t0": time.perf_counter()}


def finish(result: dict, out_dir, plot_data: dict | None = None, *, figure: bool = True) -> dict:
    """Write ``<name>.json`` (and ``<name>.png``) into ``out_dir``; return the result (JSON-friendly)."""
    from ..outputs import to_jsonable, versions, write_json

    name = result["recipe"]
    result["elapsed_s"] = round(time.perf_counter() - result.pop("_t0"), 3)
    result["versions"] = versions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = to_jsonable(result)
    write_json(result, out / f"{name}.json")
    if figure:
        from ..outputs import save_figure
        from ..plotting.reproduce import plot_recipe

        save_figure(plot_recipe(name, result, plot_data or {}), out / f"{name}.png")
    n_fail = sum(not c["passed"] for c in result["acceptance"].values())
    log.info("%s: %d acceptance check(s), %d failed, %.1f s", name, len(result["acceptance"]), n_fail,
             result["elapsed_s"])
    return result


# --------------------------------------------------------------------------------------------
# landscapes and gradients on the 2-neuron weight grid


def grid_points(w_grid) -> np.ndarray:
    """All (w1, w2) pairs of a square grid, shape (G*G, 2); point ``i*G + j`` is (w_grid[i], w_grid[j])."""
    g = np.asarray(w_grid, dtype=float)
    return np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)


def _landscape_task(task: dict) -> dict:
    from ..tasks.costs import make_cost

    params = LIFParams(**task["params"])
    cost = make_cost(task["cost"])
    w = np.asarray(task["w"])
    # common random numbers: every grid point sees the same noise
    pop = LIFPopulation(w, c=task["c"], params=params, seed=[task["seed"]] * len(w), record_spikes=False)
    n_windows = int(round(task["duration_s"] / params.window_s))
    sums = {"mean_cost": 0.0, "p_spike": 0.0, "mean_count": 0.0}
    per_call = max(1, _MAX_ELEMS // (len(w) * 2))
    done = 0
    while done < n_windows:
        k = min(per_call, n_windows - done)
        b = pop.run(k)
        sums["mean_cost"] = sums["mean_cost"] + cost(b.s_end).sum(axis=1)
        sums["p_spike"] = sums["p_spike"] + b.spiked.sum(axis=1)
        sums["mean_count"] = sums["mean_count"] + b.counts.sum(axis=1)
        done += k
    return {k: np.asarray(v, dtype=float) / n_windows for k, v in sums.items()}


_LANDSCAPES: dict = {}


def landscape(cost, params: LIFParams, c: float, w_grid, duration_s: float, seed: int, n_jobs: int | None = 1) -> dict:
    """Mean cost (and spike statistics) of the 2-neuron population on a square weight grid.

    All grid points are simulated with the **same** noise (common random numbers), so the
    differences between neighbouring points, and the finite-difference gradient, reflect the
    weights rather than sampling noise. Results are cached per process (same arguments, same
    numbers), because several recipes use the same landscape.

    Returns a dict with ``w_grid``, ``mean_cost`` (G, G), ``p_spike`` and ``mean_count`` (G, G, 2),
    ``grad`` (G, G, 2) (``np.gradient`` of the mean cost), ``min_w`` (sub-grid minimum from a
    quadratic fit around the grid minimum), ``argmin_w`` and ``min_cost``.
    """
    import dataclasses

    g = np.asarray(w_grid, dtype=float)
    cost_desc = cost.describe() if hasattr(cost, "describe") else cost
    key = (repr(cost_desc), repr(dataclasses.asdict(params)), float(c), tuple(g), float(duration_s), int(seed))
    if key in _LANDSCAPES:
        return _LANDSCAPES[key]
    W = grid_points(g)
    tasks = [{"w": W[s], "c": float(c), "params": dataclasses.asdict(params), "cost": cost_desc,
              "duration_s": float(duration_s), "seed": int(seed)} for s in chunk_slices(len(W), 128)]
    parts = stack(run_tasks(_landscape_task, tasks, n_jobs))
    G = g.size
    mc = parts["mean_cost"].reshape(G, G)
    out = {
        "w_grid": g,
        "mean_cost": mc,
        "p_spike": parts["p_spike"].reshape(G, G, 2),
        "mean_count": parts["mean_count"].reshape(G, G, 2),
        "grad": np.stack(np.gradient(mc, g, g), axis=-1),
    }
    i, j = np.unravel_index(np.argmin(mc), mc.shape)
    out["argmin_w"] = np.array([g[i], g[j]])
    out["min_cost"] = float(mc[i, j])
    out["max_cost"] = float(mc.max())
    out["min_w"] = refine_minimum(g, mc)
    _LANDSCAPES[key] = out
    return out


def refine_minimum(w_grid, values) -> np.ndarray:
    """Minimum of a quadratic fitted to the 3x3 neighbourhood of the grid minimum (kept in that box)."""
    g = np.asarray(w_grid, dtype=float)
    v = np.asarray(values, dtype=float)
    i, j = np.unravel_index(np.argmin(v), v.shape)
    i0, j0 = min(max(i, 1), g.size - 2), min(max(j, 1), g.size - 2)
    xs, ys, fs = [], [], []
    for a in (i0 - 1, i0, i0 + 1):
        for b in (j0 - 1, j0, j0 + 1):
            xs.append(g[a]), ys.append(g[b]), fs.append(v[a, b])
    x, y, f = np.array(xs), np.array(ys), np.array(fs)
    A = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)
    coef, *_ = np.linalg.lstsq(A, f, rcond=None)
    H = np.array([[2 * coef[3], coef[5]], [coef[5], 2 * coef[4]]])
    fallback = np.array([g[i], g[j]])
    if np.all(np.linalg.eigvalsh(H) > 0):
        m = np.linalg.solve(H, -coef[1:3])
        lo, hi = np.array([g[i0 - 1], g[j0 - 1]]), np.array([g[i0 + 1], g[j0 + 1]])
        return np.clip(m, lo, hi)
    return fallback


def kappa(decay: float, window_steps: int) -> float:
    """``1 / (1 - decay**window_steps)``: a spike's summed effect on all later window-end outputs.

    A spike adds ``k0 decay^(W-1-j)`` to ``s`` at the end of its own window and
    ``decay^W`` times that at each following window end, so its total effect on the stationary
    mean cost is the own-window effect beta times this factor (to first order in the cost).
    """
    return 1.0 / (1.0 - decay ** int(window_steps))


def gradient_estimate(beta, w, *, window_steps: int, decay: float, gain=None) -> np.ndarray:
    """The gradient of the mean cost implied by causal effects: ``kappa * beta_i * dE[n_i]/dw_i``.

    ``dE[n_i]/dw_i`` (spikes per window per unit weight) is ``window_steps * dmu/dw`` from the
    package's lookup gain (``data/gain_table_sigma10.json``) unless ``gain`` is given; ``kappa`` is
    :func:`kappa`. There is no free scale factor: with exact causal effects this matches the
    finite-difference gradient of the landscape (the fig3c recipe reports the fitted scale).
    """
    from ..learning.gain import LookupGain

    g = LookupGain() if gain is None else gain
    w = np.asarray(w, dtype=float)
    return kappa(decay, window_steps) * np.asarray(beta, dtype=float) * window_steps * g(w)


def angle_deg(a, b, axis: int = -1) -> np.ndarray:
    """Angle (degrees) between vectors ``a`` and ``b`` along ``axis`` (NaN for a zero vector)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a * b).sum(axis) / np.linalg.norm(a, axis=axis) / np.linalg.norm(b, axis=axis)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def rel_error(est, true, axis: int = -1) -> np.ndarray:
    """Relative L2 error ``||est - true|| / ||true||`` along ``axis``."""
    est, true = np.asarray(est, float), np.asarray(true, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.linalg.norm(est - true, axis=axis) / np.linalg.norm(true, axis=axis)


def quantiles(x, qs=(0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """Named quantiles of the finite values of ``x``."""
    x = np.asarray(x, float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {f"q{int(q * 100)}": None for q in qs}
    return {f"q{int(q * 100)}": float(np.quantile(x, q)) for q in qs}


def round_floats(x, digits: int = 6):
    """Round arrays/floats for compact JSON (significant digits)."""
    arr = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where((arr != 0) & np.isfinite(arr), np.floor(np.log10(np.abs(np.where(arr == 0, 1, arr)))), 0)
        factor = 10.0 ** (digits - 1 - mag)
        out = np.round(arr * factor) / factor
    out = np.where(np.isfinite(arr), out, np.nan)
    return out if out.ndim else float(out)


def n_windows_of(duration_s: float, params: LIFParams) -> int:
    """Whole windows in ``duration_s``."""
    return int(math.floor(duration_s / params.window_s + 1e-9))
