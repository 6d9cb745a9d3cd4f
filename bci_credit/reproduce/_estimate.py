"""The per-replicate estimation task shared by the estimation recipes (fig2, fig3a, figs2, fig3b, fig3c).

One task simulates a batch of 2-neuron (or n-neuron) replicates with fixed weights and returns,
per replicate, the paper's estimators of each neuron's causal effect and several ground truths:

* ``rdd_constant`` / ``rdd_linear`` / ``rdd_one_sided`` at each ``p`` of ``p_grid``;
* ``od`` (constant, p = 1) and ``od_linear``;
* ``truth_all``: the paired do() effect averaged over every window (a spike inserted at a
  uniformly random step);
* ``truth_near_uniform_sum`` / ``truth_near_argmax_sum`` with ``n_near``: the paired do() effect
  summed over near-threshold windows (``|Z - theta| < near``), with the inserted spike at a random
  step or at the step where the drive peaked (``argmax_step``). The latter is the RD estimand: a
  window at the margin spikes where its drive peaks, and in these models the peak is late in
  the window (its distribution is reported), where a spike weighs more on the window-end output;
* ``sp``: the original code's spike-perturbation truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.spiking import observed_dependence, rdd_constant, rdd_linear
from ..sim.lif import LIFParams, LIFPopulation
from ..sim.truth import paired_do_effects, spike_perturbation_effects
from ..tasks.costs import make_cost
from .toolkit import chunk_slices, collect_windows, n_windows_of, replicate_seeds, run_tasks, stack

__all__ = ["estimation_batch"]


def _estimation_task(task: dict) -> dict:
    params = LIFParams(**task["params"])
    cost = make_cost(task["cost"])
    w = np.asarray(task["w"], dtype=float)
    R = w.shape[0]
    pop = LIFPopulation(w, c=np.asarray(task["c"], dtype=float), params=params, seed=list(task["seeds"]),
                        record_spikes=False)
    data = collect_windows(pop, n_windows_of(task["duration_s"], params), argmax=task["argmax"])
    z, s_end, s_win = data["drive"], data["s_end"], data["s_window"]
    theta = params.threshold
    r = np.asarray(cost(s_end), dtype=float)
    p_grid = list(task["p_grid"])
    out = {
        "rdd_constant": np.stack([rdd_constant(z, r, p, theta) for p in p_grid], axis=1),
        "rdd_linear": np.stack([rdd_linear(z, r, p, theta) for p in p_grid], axis=1),
        "od": observed_dependence(z, r, theta),
        "od_linear": observed_dependence(z, r, theta, linear=True),
        "rate_hz": data["counts"].sum(axis=1) / (z.shape[1] * params.window_s),
        "p_spike": data["spiked"].mean(axis=1),
        "sharp_mismatch": np.sum(data["spiked"] != (z > theta), axis=(1, 2)),
        "mean_cost": r.mean(axis=1),
    }
    if task.get("one_sided"):
        out["rdd_one_sided"] = np.stack([rdd_constant(z, r, p, theta, one_sided=True) for p in p_grid], axis=1)
    near = np.abs(z - theta) < task["near"]
    out["n_near"] = near.sum(axis=1)
    ws = params.window_steps
    t_all = np.empty((R, pop.n_neurons))
    t_nu = np.empty_like(t_all)
    t_na = np.empty_like(t_all)
    sp = np.empty_like(t_all)
    for k in range(R):  # per-replicate seeds: results do not depend on how replicates are batched
        ss = np.random.SeedSequence(int(task["truth_seeds"][k])).spawn(2)
        sl = slice(k, k + 1)
        eff = paired_do_effects(s_end[sl], s_win[sl], cost, window_steps=ws, decay=pop.decay, k0=pop.k0,
                                seed=ss[0])[0]
        t_all[k] = eff.mean(axis=0)
        t_nu[k] = (eff * near[k]).sum(axis=0)
        if task["argmax"]:
            eff_a = paired_do_effects(s_end[sl], s_win[sl], cost, window_steps=ws, decay=pop.decay, k0=pop.k0,
                                      steps=data["argmax_step"][sl])[0]
            t_na[k] = (eff_a * near[k]).sum(axis=0)
        else:
            t_na[k] = np.nan
        if task.get("sp", True):
            sp[k] = spike_perturbation_effects(s_end[sl], cost, window_steps=ws, decay=pop.decay, k0=pop.k0,
                                               seed=ss[1])[0]
        else:
            sp[k] = np.nan
    out.update(truth_all=t_all, truth_near_uniform_sum=t_nu, truth_near_argmax_sum=t_na, sp=sp)
    if task["argmax"]:
        # where in the window the drive peaks, for near-threshold windows (pooled over neurons)
        out["argmax_hist"] = np.stack([np.bincount(data["argmax_step"][k][near[k]].ravel(), minlength=ws)[:ws]
                                       for k in range(R)])
    return out


def estimation_batch(w, c, *, params: LIFParams, cost, duration_s: float, seed: int, p_grid, near: float = 0.01,
                     argmax: bool = True, one_sided: bool = False, sp: bool = True, stream: int = 0,
                     n_jobs: int | None = 1, per_task: int = 64) -> dict:
    """Simulate replicates with fixed weights and estimate every neuron's effect (see module docstring).

    Parameters
    ----------
    w : array_like (replicates, neurons)
        Weights of each replicate.
    c : array_like (replicates,)
        Noise correlation of each replicate.
    params, cost, duration_s
        Model, cost (a :class:`~bci_credit.tasks.costs.Cost`) and simulated seconds per replicate.
    seed, stream : int
        Root seed and stream number; replicate ``k`` uses ``child_seed(seed, stream, k)`` for its
        noise and ``child_seed(seed, stream + 1, k)`` for the ground truths.
    p_grid : sequence of float
        Window half-widths of the RD estimators.
    near : float
        Half-width of the near-threshold band of the marginal ground truth.
    argmax, one_sided, sp : bool
        Compute the argmax-step truth (needs per-step traces), the one-sided estimator, the SP truth.
    n_jobs : int
        Tasks run at once; the split into tasks depends only on ``per_task``.

    Returns
    -------
    dict of ndarray
        Per-replicate arrays (replicate on axis 0), see the module docstring.
    """
    w = np.asarray(w, dtype=float)
    R = w.shape[0]
    c = np.broadcast_to(np.asarray(c, dtype=float), (R,))
    seeds = replicate_seeds(seed, stream, R)
    tseeds = replicate_seeds(seed, stream + 1, R)
    cost_desc = cost.describe()
    tasks = [dict(w=w[s], c=c[s], seeds=seeds[s], truth_seeds=tseeds[s], params=dataclasses.asdict(params),
                  cost=cost_desc, duration_s=float(duration_s), p_grid=[float(p) for p in p_grid], near=float(near),
                  argmax=bool(argmax), one_sided=bool(one_sided), sp=bool(sp))
             for s in chunk_slices(R, per_task)]
    return stack(run_tasks(_estimation_task, tasks, n_jobs))
