"""Learning recipes: Fig. 4A (online beta), Fig. 4B/C (gradient error over the grid), Fig. 4D-G (weights).

Settings follow ``rdd_model.md`` §3.3 and §4.4. Online beta estimation (4A, 4B/C) uses fixed
weights (``epsilon = 0``), so the population is simulated in chunks and every rule is fed the
same windows; weight learning (4D-G) runs :func:`bci_credit.learning.loop.run_online` on one
batched population whose replicates are the 10 x 10 starting points.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.spiking import observed_dependence, rdd_constant, rdd_linear
from ..learning import make_rule
from ..learning.base import WindowData
from ..learning.gain import LookupGain
from ..learning.loop import context_of, run_online
from ..parallel import child_seed
from ..sim.filters import output_filter
from ..sim.lif import LIFParams, LIFPopulation
from ..tasks.costs import BananaCost, make_cost
from .toolkit import (
    DEFAULT_SEED, check, chunk_slices, collect_windows, finish, gradient_estimate, grid_points, landscape,
    learning_params, n_windows_of, rel_error, replicate_seeds, round_floats, run_tasks, stack, start,
)

__all__ = ["fig4a", "fig4bc", "fig4dg", "learning_trajectories", "distance_summary"]

C_VALUES = (0.01, 0.25, 0.5, 0.75, 0.99)


def _feed(rules: dict, b: dict, reward: np.ndarray, first_index: int) -> None:
    """Feed every window of a chunk ``b`` (arrays (R, k, N)) to every rule, in time order."""
    for j in range(reward.shape[1]):
        win = WindowData(drive=b["drive"][:, j], spiked=b["spiked"][:, j], counts=b["counts"][:, j],
                         reward=reward[:, j], s_end=b["s_end"][:, j], index=first_index + j)
        for rule in rules.values():
            rule.update(win)


def _ratio_se(a, b):
    """Ratio of means ``mean(a)/mean(b)`` over axis 0 and its delta-method standard error."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = a.shape[0]
    ma, mb = a.mean(0), b.mean(0)
    r = ma / mb
    va, vb = a.var(0, ddof=1), b.var(0, ddof=1)
    cov = ((a - ma) * (b - mb)).sum(0) / (n - 1)
    se = np.abs(r) * np.sqrt(np.maximum(va / (n * ma**2) + vb / (n * mb**2) - 2 * cov / (n * ma * mb), 0))
    return r, se


# ------------------------------------------------------------------------------------------ Fig. 4A

_FIG4A_RULES = {
    "repo_p0.05": ("rdd_repo", dict(p=0.05, eta=1.0, epsilon=0.0, decay_step=True, linear_correction=True)),
    "repo_p0.1": ("rdd_repo", dict(p=0.1, eta=1.0, epsilon=0.0, decay_step=True, linear_correction=False)),
    "canonical_p0.05": ("rdd", dict(p=0.05, eta=1.0, epsilon=0.0, step="decay", linear=True)),
    "canonical_p0.05_eta3": ("rdd", dict(p=0.05, eta=3.0, epsilon=0.0, step="decay", linear=True)),
    "canonical_p0.1": ("rdd", dict(p=0.1, eta=1.0, epsilon=0.0, step="decay", linear=False)),
    # the repository rule with p = 1 (its "OD"): pairs a below-threshold window with the next spiking one
    "repo_p1": ("rdd_repo", dict(p=1.0, eta=1.0, epsilon=0.0, decay_step=True, linear_correction=False)),
    "canonical_p1": ("od", dict(p=1.0, eta=3.0, epsilon=0.0, step="decay", linear=False)),
}


def _fig4a_task(task: dict) -> dict:
    params = LIFParams(**task["params"])
    cost = make_cost(task["cost"])
    w = np.asarray(task["w"], float)
    pop = LIFPopulation(w, c=np.asarray(task["c"]), params=params, seed=list(task["seeds"]), record_spikes=False)
    rules = {k: make_rule(name, record_every=10**9, **kw) for k, (name, kw) in task["rules"].items()}
    for r in rules.values():
        r.initialize(w.copy(), context_of(pop))
    n_total = n_windows_of(task["duration_s"], params)
    every = task["checkpoint_windows"]
    ck = {k: [] for k in rules}
    ideal = {"rd_const_p0.05": [], "rd_lin_p0.05": [], "rd_const_p0.1": [], "rd_lin_p0.1": [], "od": []}
    zs, rs = [], []
    done = 0
    while done < n_total:
        k = min(every, n_total - done)
        b = collect_windows(pop, k)
        reward = cost(b["s_end"])
        _feed(rules, b, reward, done)
        zs.append(b["drive"])
        rs.append(reward)
        done += k
        for name, r in rules.items():
            ck[name].append(r.beta_.copy())
        z, rr = np.concatenate(zs, 1), np.concatenate(rs, 1)
        ideal["rd_const_p0.05"].append(rdd_constant(z, rr, 0.05))
        ideal["rd_lin_p0.05"].append(rdd_linear(z, rr, 0.05))
        ideal["rd_const_p0.1"].append(rdd_constant(z, rr, 0.1))
        ideal["rd_lin_p0.1"].append(rdd_linear(z, rr, 0.1))
        ideal["od"].append(observed_dependence(z, rr))
    out = {f"online_{k}": np.stack(v, axis=1) for k, v in ck.items()}  # (R, n_ck, N)
    out.update({f"ideal_{k}": np.stack(v, axis=1) for k, v in ideal.items()})
    out.update({f"n_updates_{k}": r.n_updates_ for k, r in rules.items()})
    return out


def fig4a(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 4A: online beta against the ideal batch RD and OD (w = (14, 7), banana cost).

    50-ms windows, tau_s = 0.2 s (original kernel), 300-s runs, 20 runs per c for five c (quick:
    two c, 4 runs, 60 s). Online rules (weights fixed): the repository's paired rule (``2 V0``;
    eta 1, decaying step; p = 0.05 with linear correction as in Fig 4A, p = 0.1 without as in the
    4B/C script) and the canonical rule (decaying step) at the same p. Compared at every
    checkpoint with the batch estimators on all windows so far. Reported as rdd_model.md §6 A4.
    """
    cv = [0.01, 0.99] if quick else list(C_VALUES)
    n_runs = 4 if quick else 20
    duration = 60.0 if quick else 300.0
    params = learning_params()
    cost = BananaCost()
    every = 100  # windows (5 s)
    config = dict(w=[14.0, 7.0], c_values=cv, n_runs=n_runs, duration_s=duration, params=dataclasses.asdict(params),
                  cost=cost.describe(), rules={k: {"rule": n, **kw} for k, (n, kw) in _FIG4A_RULES.items()},
                  checkpoint_s=every * params.window_s)
    res = start("fig4a", "online learned beta vs ideal batch RD and OD", seed=seed, quick=quick, n_jobs=n_jobs,
                config=config)
    cs = np.repeat(cv, n_runs)
    R = cs.size
    seeds = replicate_seeds(seed, 0, R)
    tasks = [dict(w=np.tile([14.0, 7.0], (s.stop - s.start, 1)), c=cs[s], seeds=seeds[s], params=dataclasses.asdict(params),
                  cost=cost.describe(), rules=_FIG4A_RULES, duration_s=duration, checkpoint_windows=every)
             for s in chunk_slices(R, n_runs)]
    d = stack(run_tasks(_fig4a_task, tasks, n_jobs))
    C = len(cv)
    per_c = {k: v.reshape((C, n_runs) + v.shape[1:]) for k, v in d.items()}
    k0 = output_filter(params.tau_s, params.dt_s, params.paper_kernel)[1]
    t = (np.arange(per_c["online_repo_p0.05"].shape[2]) + 1) * every * params.window_s
    out = res["results"]
    out["t_s"] = t
    out["ds"] = k0
    keep = ("online_repo_p0.05", "online_canonical_p0.05", "online_canonical_p0.05_eta3", "ideal_rd_const_p0.05",
            "ideal_rd_lin_p0.05", "ideal_od")
    out["traces_mean"] = {k: round_floats(per_c[k].mean(axis=1), 4) for k in keep}  # (c, checkpoints, neurons)
    final = {k: v[:, :, -1, :] for k, v in per_c.items() if k.startswith(("online", "ideal"))}
    table = {}
    for ci, c in enumerate(cv):
        row = {}
        for name in _FIG4A_RULES:
            on = final[f"online_{name}"][ci]
            if name.endswith("_p1"):
                ro, ro_se = _ratio_se(on, final["ideal_od"][ci])
                row[name] = {"beta_per_spike_mean": round_floats(on.mean(0) / k0, 4),
                             "ratio_to_ideal_od": round_floats(ro, 4), "ratio_to_ideal_od_se": round_floats(ro_se, 3),
                             "n_updates_mean": round_floats(per_c[f"n_updates_{name}"][ci].mean(0), 4)}
                continue
            p = "0.05" if "0.05" in name else "0.1"
            rc, rc_se = _ratio_se(on, final[f"ideal_rd_const_p{p}"][ci])
            rl, rl_se = _ratio_se(on, final[f"ideal_rd_lin_p{p}"][ci])
            row[name] = {"beta_per_spike_mean": round_floats(on.mean(0) / k0, 4),
                         "ratio_to_ideal_rd_const": round_floats(rc, 4), "ratio_to_ideal_rd_const_se": round_floats(rc_se, 3),
                         "ratio_to_ideal_rd_linear": round_floats(rl, 4), "ratio_to_ideal_rd_linear_se": round_floats(rl_se, 3),
                         "n_updates_mean": round_floats(per_c[f"n_updates_{name}"][ci].mean(0), 4)}
        for key in ("rd_const_p0.05", "rd_lin_p0.05", "rd_const_p0.1", "od"):
            row[f"ideal_{key}_per_spike"] = round_floats(final[f"ideal_{key}"][ci].mean(0) / k0, 4)
        table[f"c={c}"] = row
    out["final"] = table
    out["note"] = ("beta in cost units per window; *_per_spike divides by ds = k0 (the jump of s at a spike), the "
                   "paper's unit. Neuron 1's effect is about 0 at w = (14, 7); ratios are for neuron 2 (index 1).")
    acc = res["acceptance"]
    cn = np.array([table[f"c={c}"]["canonical_p0.05_eta3"]["ratio_to_ideal_rd_linear"][1] for c in cv])
    cn1 = np.array([table[f"c={c}"]["canonical_p0.05"]["ratio_to_ideal_rd_linear"][1] for c in cv])
    acc["A4_canonical_rule_ratio"] = check(
        bool(np.all(np.abs(cn - 1) < 0.25)), {"eta3": cn.tolist(), "eta1": cn1.tolist()},
        "the canonical rule (decaying step eta/(k+1), local-linear, p = 0.05) recovers the ideal local-linear RD of "
        "neuron 2: ratio 1 +- 0.25 with eta = 3",
        explanation=("with eta = 1 it reaches only about 0.6-0.8 in 300 s: the features a = [1, H, ...] are correlated "
                     "(smallest eigenvalue of E[a a^T] ~ 0.2), and a 1/k step with eta * lambda_min < 1 converges like "
                     "k^(-eta * lambda_min); eta >= ~3 (or centred features) converges at the 1/k rate"))
    hi_c = [c for c in cv if c >= 0.75]
    sign = {f"c={c}": {"ideal_od_1": table[f"c={c}"]["ideal_od_per_spike"][0],
                       "ideal_rd_1": table[f"c={c}"]["ideal_rd_const_p0.05_per_spike"][0],
                       "online_2V0_1": table[f"c={c}"]["repo_p0.05"]["beta_per_spike_mean"][0],
                       "neuron2": {"ideal_rd": table[f"c={c}"]["ideal_rd_const_p0.05_per_spike"][1],
                                   "online_2V0": table[f"c={c}"]["repo_p0.05"]["beta_per_spike_mean"][1],
                                   "ideal_od": table[f"c={c}"]["ideal_od_per_spike"][1]}} for c in hi_c}
    acc["A4_online_tracks_rd_not_od"] = check(
        bool(hi_c) and all(v["ideal_od_1"] < 0 < v["ideal_rd_1"] and v["online_2V0_1"] > 0 for v in sign.values()),
        sign,
        "for c >= 0.75 neuron 1's OD has the wrong sign (negative) while the ideal RD and the learned 2 V0 are positive "
        "(reference per spike at c = 0.99, neuron 2: RD -0.020, 2V0 -0.018, OD -0.014)")
    nu = {name: float(np.mean([table[f"c={c}"][name]["n_updates_mean"][1] for c in cv])) for name in ("repo_p0.05", "repo_p0.1")}
    nu1 = {name: float(np.mean([table[f"c={c}"][name]["n_updates_mean"][0] for c in cv])) for name in ("repo_p0.05", "repo_p0.1")}
    rp1 = {f"c={c}": table[f"c={c}"]["repo_p1"]["ratio_to_ideal_od"][1] for c in cv}
    cp1 = {f"c={c}": table[f"c={c}"]["canonical_p1"]["ratio_to_ideal_od"][1] for c in cv}
    acc["A4_repo_rule_at_p1_is_not_od"] = check(
        True, {"repo_rule_p1_over_ideal_od": rp1, "canonical_p1_over_ideal_od": cp1},
        "reported: what the repository's paired rule learns with p = 1 (its 'OD' in Fig. 4D-G), relative to the ideal OD "
        "(neuron 2)",
        explanation=("the paired rule takes the first below-threshold window after an update and the next spiking window; "
                     "with p = 1 the 'below' window is usually the one right after the previous spike, whose window-end "
                     "output still holds that spike (decay over one 50-ms window ~0.88), so the pair difference cancels "
                     "most of the effect. The same pairing is why 2 V0 is only ~0.8 of the batch RD at p = 0.05."))
    acc["A4_update_counts"] = check(
        True, {"neuron1": {k: v * 300.0 / duration for k, v in nu1.items()},
               "neuron2": {k: v * 300.0 / duration for k, v in nu.items()}},
        "paired updates per 300 s (reference ~120 at p = 0.05, ~240 at p = 0.1); reported")
    return finish(res, out_dir)


# ------------------------------------------------------------------------------------------ Fig. 4B/C

_FIG4BC_RULES = {
    "learned_repo": ("rdd_repo", dict(p=0.1, eta=1.0, epsilon=0.0, decay_step=True, linear_correction=False)),
    # eta = 3: with eta = 1 the decaying-step canonical rule converges slowly (see fig4a, A4_canonical_rule_ratio)
    "learned_canonical": ("rdd", dict(p=0.1, eta=3.0, epsilon=0.0, step="decay", linear=False)),
}


def _fig4bc_task(task: dict) -> dict:
    params = LIFParams(**task["params"])
    cost = make_cost(task["cost"])
    w = np.asarray(task["w"], float)
    g_true = np.asarray(task["g_true"], float)
    R = w.shape[0]
    gain = LookupGain()
    pop = LIFPopulation(w, c=task["c"], params=params, seed=list(task["seeds"]), record_spikes=False)
    rules = {k: make_rule(name, record_every=10**9, **kw) for k, (name, kw) in task["rules"].items()}
    for r in rules.values():
        r.initialize(w.copy(), context_of(pop))
    n_total = n_windows_of(task["duration_s"], params)
    every = task["checkpoint_windows"]
    theta, p = params.threshold, task["p"]
    sums = {k: np.zeros((R, 2)) for k in ("rd_a", "rd_b", "od_a", "od_b")}
    cnts = {k: np.zeros((R, 2)) for k in sums}
    errs = {k: [] for k in list(rules) + ["ideal_rd", "ideal_od"]}
    done = 0
    while done < n_total:
        k = min(every, n_total - done)
        b = collect_windows(pop, k)
        reward = cost(b["s_end"])
        _feed(rules, b, reward, done)
        d = b["drive"] - theta
        for key, m in (("rd_a", (d > 0) & (d < p)), ("rd_b", (d < 0) & (d > -p)), ("od_a", (d > 0) & (d < 1)),
                       ("od_b", (d < 0) & (d > -1))):
            sums[key] += np.einsum("rw,rwn->rn", reward, m)
            cnts[key] += m.sum(axis=1)
        done += k
        with np.errstate(invalid="ignore", divide="ignore"):
            betas = {"ideal_rd": sums["rd_a"] / cnts["rd_a"] - sums["rd_b"] / cnts["rd_b"],
                     "ideal_od": sums["od_a"] / cnts["od_a"] - sums["od_b"] / cnts["od_b"]}
        betas.update({k: r.beta_ for k, r in rules.items()})
        for key, beta in betas.items():
            g_hat = gradient_estimate(beta, w, window_steps=params.window_steps, decay=pop.decay, gain=gain)
            errs[key].append(rel_error(g_hat, g_true).astype(np.float32))
    return {k: np.stack(v, axis=1) for k, v in errs.items()}  # (R, n_checkpoints)


def fig4bc(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 4B/C: error of the gradient implied by learned / ideal beta over the 19 x 19 grid, over time.

    Settings of the original sweep script: 20-ms windows, tau_s = 0.2 s, banana cost, p = 0.1,
    eta = 1 with decaying step, no linear correction, 60 s, five c. The gradient implied by a
    beta is ``kappa * beta_i * dE[n_i]/dw_i`` (no fitted factor); the truth is the finite-difference
    gradient of the common-random-number landscape at the same c. The paper's 50 repeats per grid
    point are reduced to 10 (full) to keep every recipe within the time budget; quick: 7 x 7 grid,
    two c, one repeat, 30 s.
    """
    n = 7 if quick else 19
    cv = [0.01, 0.99] if quick else list(C_VALUES)
    n_rep = 1 if quick else 10
    duration = 30.0 if quick else 60.0
    land_s = 30.0 if quick else 300.0
    params = learning_params(window_s=0.02)
    cost = BananaCost()
    grid = np.linspace(2.0, 20.0, n)
    W = grid_points(grid)
    every = 100  # windows (2 s)
    config = dict(w_grid=grid, c_values=cv, repeats=n_rep, duration_s=duration, landscape_duration_s=land_s, p=0.1,
                  params=dataclasses.asdict(params), cost=cost.describe(),
                  rules={k: {"rule": nm, **kw} for k, (nm, kw) in _FIG4BC_RULES.items()},
                  checkpoint_s=every * params.window_s,
                  gradient_estimate="kappa * beta_i * window_steps * dmu/dw(w_i) (lookup gain), kappa = 1/(1-decay^W)")
    res = start("fig4bc", "gradient error of learned/ideal RD and OD over the weight grid, over time", seed=seed,
                quick=quick, n_jobs=n_jobs, config=config)
    tasks = []
    for ci, c in enumerate(cv):
        land = landscape(cost, params, c, grid, land_s, child_seed(seed, 90), n_jobs)
        g_true = land["grad"].reshape(-1, 2)
        seeds = replicate_seeds(seed, ci, W.shape[0] * n_rep)
        for s in chunk_slices(n_rep, 2):
            k = s.stop - s.start
            tasks.append(dict(w=np.tile(W, (k, 1)), g_true=np.tile(g_true, (k, 1)), c=float(c),
                              seeds=seeds[s.start * W.shape[0]:s.stop * W.shape[0]], params=dataclasses.asdict(params),
                              cost=cost.describe(), rules=_FIG4BC_RULES, duration_s=duration, checkpoint_windows=every,
                              p=0.1, ci=ci))
    parts = run_tasks(_fig4bc_task, tasks, n_jobs)
    methods = list(parts[0])
    per_c = {m: [] for m in methods}
    for ci in range(len(cv)):
        mine = [pt for pt, tk in zip(parts, tasks) if tk["ci"] == ci]
        for m in methods:
            per_c[m].append(np.concatenate([pt[m] for pt in mine], axis=0))  # (reps*G*G, n_ck)
    t = (np.arange(per_c[methods[0]][0].shape[1]) + 1) * every * params.window_s
    out = res["results"]
    out["t_s"] = t
    for thr in (1.0, 0.5):
        out[f"frac_below_{thr:g}"] = {m: {f"c={c}": round_floats(np.mean(per_c[m][ci] < thr, axis=0), 4)
                                          for ci, c in enumerate(cv)} for m in methods}
    med = {m: [float(np.nanmedian(np.log10(per_c[m][ci][:, -1]))) for ci in range(len(cv))] for m in methods}
    out["final_log10_rel_error_median"] = {m: dict(zip([f"c={c}" for c in cv], v)) for m, v in med.items()}
    ref = med["ideal_od"][0]
    out["final_log10_rel_error_median_relative_to_ideal_od_c0.01"] = {
        m: dict(zip([f"c={c}" for c in cv], [x - ref for x in v])) for m, v in med.items()}
    out["final_log10_rel_error_quartiles"] = {
        m: {f"c={c}": round_floats(np.nanquantile(np.log10(per_c[m][ci][:, -1]), [0.1, 0.25, 0.5, 0.75, 0.9]), 4)
            for ci, c in enumerate(cv)} for m in methods}
    acc = res["acceptance"]
    od, rd, lr = np.array(med["ideal_od"]), np.array(med["ideal_rd"]), np.array(med["learned_repo"])
    acc["fig4c_od_error_grows_with_c"] = check(
        bool(od[-1] - od[0] > 0.1), {"ideal_od_log10_median": od.tolist()},
        "the OD gradient error grows with c (median log10 relative error at c = 0.99 exceeds c = 0.01 by > 0.1)")
    acc["fig4c_rd_error_flat_in_c"] = check(
        bool((rd[-1] - rd[0]) < 0.25 * (od[-1] - od[0]) and rd[-1] < od[-1]),
        {"ideal_rd_log10_median": rd.tolist(), "learned_repo_log10_median": lr.tolist(),
         "rise_rd": float(rd[-1] - rd[0]), "rise_od": float(od[-1] - od[0])},
        "the RD gradient error grows with c by less than a quarter of OD's rise (log10 median, c = 0.01 -> 0.99) and "
        "is below OD's at c = 0.99",
        note=("the ideal constant RD at p = 0.1 does rise a little with c: its first-order bias p * slope of E[R | Z] "
              "grows with c (the same trend as fig3a's constant estimator at p = 0.13)"))
    fr = {m: [float(out["frac_below_1"][m][f"c={c}"][-1]) for c in cv] for m in methods}
    fr5 = {m: [float(out["frac_below_0.5"][m][f"c={c}"][-1]) for c in cv] for m in methods}
    acc["fig4b_final_fraction_within_error_0.5"] = check(
        bool(fr5["ideal_rd"][-1] > fr5["ideal_od"][-1] and fr5["learned_repo"][-1] > 0), fr5,
        "with the stricter threshold 0.5, at c = 0.99 more grid points are within error for the ideal RD than for the "
        "ideal OD (the paper's threshold 1 is reached by almost every point by every method)")
    acc["fig4b_final_fraction_within_error_1"] = check(
        bool(fr["learned_repo"][-1] >= fr["ideal_od"][-1]), fr,
        "at c = 0.99 the learned RD puts at least as many grid points within relative error 1 as the ideal OD")
    data = {"box": {m: [np.log10(per_c[m][ci][:, -1]) for ci in range(len(cv))] for m in methods}}
    return finish(res, out_dir, data)


# ------------------------------------------------------------------------------------------ Fig. 4D-G


def _learning_task(task: dict) -> dict:
    params = LIFParams(**task["params"])
    cost = make_cost(task["cost"])
    rule = make_rule(task["rule"], **task["rule_params"])
    w0 = np.asarray(task["w0"], float)
    pop = LIFPopulation(w0, c=task["c"], params=params, seed=list(task["seeds"]), record_spikes=False,
                        sigma_pert=float(getattr(rule, "sigma_pert", 0.0)))
    n = n_windows_of(task["duration_s"], params)
    every = int(task["record_every"])
    rule.set_params(record_every=every)
    rewards = []

    class _Cost:  # keeps the window rewards (mean over replicates) while the loop runs
        def __call__(self, s):
            r = cost(s)
            rewards.append(float(np.mean(r)))
            return r

    run_online(pop, rule, _Cost(), n, keep_blocks=False, record_every_s=1e9)
    traj = np.concatenate([w0[None], np.asarray(rule.history_["weights"])], axis=0).astype(np.float32)
    rw = np.asarray(rewards)
    if getattr(rule, "needs_unperturbed", False):
        rw = rw[1::2]  # the loop evaluates the unperturbed re-run first
    k = every
    cost_trace = rw[: (rw.size // k) * k].reshape(-1, k).mean(axis=1)
    return {"trajectory": traj, "cost_trace": cost_trace.astype(np.float32),
            "n_updates": np.asarray(getattr(rule, "n_updates_", np.zeros_like(w0))).mean()}


def learning_trajectories(conditions: dict, *, w0, params: LIFParams, cost, duration_s: float, record_every_s: float,
                          n_jobs: int | None = 1) -> dict:
    """Run every condition (one batched population of all starts each; one task per condition).

    ``conditions``: name -> dict(rule=name, rule_params=dict, c=float, seeds=list). Returns
    name -> {"trajectory": (n_records + 1, starts, 2), "cost_trace": mean cost per record interval,
    "n_updates": mean updates per neuron}.
    """
    every = max(1, int(round(record_every_s / params.window_s)))
    tasks = [dict(rule=cd["rule"], rule_params=cd["rule_params"], c=float(cd["c"]), seeds=cd["seeds"], w0=w0,
                  params=dataclasses.asdict(params), cost=cost.describe(), duration_s=duration_s, record_every=every)
             for cd in conditions.values()]
    return dict(zip(conditions, run_tasks(_learning_task, tasks, n_jobs)))


def distance_summary(traj: np.ndarray, w_min, record_every_s: float, times=(50.0, 125.0, 250.0, 500.0),
                     radius: float = 2.0) -> dict:
    """Distance to the minimum over time, fraction of runs within ``radius`` at ``times``, final weights."""
    d = np.linalg.norm(traj - np.asarray(w_min), axis=-1)  # (T, R)
    t = np.arange(d.shape[0]) * record_every_s
    frac = {}
    for tt in times:
        k = int(round(tt / record_every_s))
        if k < d.shape[0]:
            frac[f"{tt:g}s"] = float(np.mean(d[k] < radius))
    fw = traj[-1]
    step = max(1, int(round(5.0 / record_every_s)))
    return {
        "frac_within": frac,
        "final_w_mean": round_floats(fw.mean(0), 4), "final_w_sd": round_floats(fw.std(0, ddof=1), 4),
        "final_spread": float(np.sqrt(np.trace(np.cov(fw.T)))),
        "final_mean_distance": float(d[-1].mean()),
        "t_s_every_5s": t[::step], "mean_distance_every_5s": round_floats(d[::step].mean(1), 4),
        "frac_within_every_5s": round_floats(np.mean(d[::step] < radius, axis=1), 4),
        "final_w": round_floats(fw, 4),
    }


def fig4dg(out_dir, *, quick: bool = False, seed: int = DEFAULT_SEED, n_jobs: int | None = 1) -> dict:
    """Fig. 4D-G: weight learning on the banana cost from a 10 x 10 grid of starts.

    §3.3 settings: eta 0.1, constant step, no linear correction, p = 0.1 (RDD) or 1 (OD), 500 s,
    c in {0.01, 0.5}, 50-ms windows, tau_s = 0.2 s (original kernel), lookup gain, weights
    clipped to [2, 20]. The main reproduction is the repository's paired rule (epsilon 2e5 on V0 =
    beta/2); the canonical rule (epsilon 1e5 on the full jump) is reported beside it. RDD and OD
    runs of one c share the noise seeds. The minimum is the common-random-number landscape's
    (grid argmin refined by a quadratic fit). Quick: 4 x 4 starts, 60 s.
    """
    starts = np.linspace(2.0, 20.0, 4 if quick else 10)
    duration = 60.0 if quick else 500.0
    land_s = 30.0 if quick else 300.0
    rec_s = 1.0
    params = learning_params()
    cost = BananaCost()
    w0 = grid_points(starts)
    cv = [0.01, 0.5]
    rules = {
        "rdd_repo": ("rdd_repo", dict(p=0.1, eta=0.1, epsilon=2e5, decay_step=False, linear_correction=False)),
        "od_repo": ("rdd_repo", dict(p=1.0, eta=0.1, epsilon=2e5, decay_step=False, linear_correction=False)),
        "rdd_canonical": ("rdd", dict(p=0.1, eta=0.1, epsilon=1e5, step="constant", linear=False)),
        "od_canonical": ("od", dict(p=1.0, eta=0.1, epsilon=1e5, step="constant", linear=False)),
    }
    config = dict(starts=starts, c_values=cv, duration_s=duration, landscape_duration_s=land_s, record_every_s=rec_s,
                  params=dataclasses.asdict(params), cost=cost.describe(),
                  rules={k: {"rule": n, **kw} for k, (n, kw) in rules.items()}, radius=2.0)
    res = start("fig4dg", "weight learning trajectories (RDD vs OD) from a grid of starts", seed=seed, quick=quick,
                n_jobs=n_jobs, config=config)
    conds = {}
    for ci, c in enumerate(cv):
        seeds = replicate_seeds(seed, ci, w0.shape[0])
        for name, (rn, kw) in rules.items():
            conds[f"{name}_c{c}"] = dict(rule=rn, rule_params=kw, c=c, seeds=seeds)
    runs = learning_trajectories(conds, w0=w0, params=params, cost=cost, duration_s=duration, record_every_s=rec_s,
                                 n_jobs=n_jobs)
    out = res["results"]
    out["landscape"] = {}
    data = {"trajectories": {}, "landscape": {}}
    for c in cv:
        land = landscape(cost, params, c, np.linspace(2.0, 20.0, 19), land_s, child_seed(seed, 90), n_jobs)
        out["landscape"][f"c={c}"] = {"min_w": land["min_w"], "argmin_w": land["argmin_w"], "min_cost": land["min_cost"],
                                      "max_cost": land["max_cost"]}
        data["landscape"][f"c={c}"] = {"w_grid": land["w_grid"], "log_cost": np.log10(land["mean_cost"])}
    out["conditions"] = {}
    for name, r in runs.items():
        c = conds[name]["c"]
        mn = out["landscape"][f"c={c}"]["min_w"]
        summ = distance_summary(r["trajectory"], mn, rec_s)
        summ["frac_within_grid_argmin"] = distance_summary(r["trajectory"], out["landscape"][f"c={c}"]["argmin_w"],
                                                           rec_s)["frac_within"]
        summ["mean_cost_last_50s"] = float(np.mean(r["cost_trace"][-int(50 / rec_s):]))
        summ["n_updates_mean"] = float(r["n_updates"])
        out["conditions"][name] = summ
        data["trajectories"][name] = r["trajectory"]
    acc = res["acceptance"]
    t125 = "125s" if not quick else "50s"
    for kind in ("repo", "canonical"):
        meas = {}
        ok = True
        for c in cv:
            rd, od = out["conditions"][f"rdd_{kind}_c{c}"], out["conditions"][f"od_{kind}_c{c}"]
            fr, fo = rd["frac_within"].get(t125), od["frac_within"].get(t125)
            meas[f"c={c}"] = {f"rdd_frac_{t125}": fr, f"od_frac_{t125}": fo, "rdd_final_spread": rd["final_spread"],
                              "od_final_spread": od["final_spread"]}
            ok &= fr is not None and fo is not None and fr >= 2 * fo and rd["final_spread"] < od["final_spread"]
        notes = {}
        if kind == "canonical":
            notes["note"] = ("the paper's RDD-over-OD advantage here rests on the repository rule: with p = 1 its paired "
                             "updates learn only a small fraction of the observed dependence (fig4a, "
                             "A4_repo_rule_at_p1_is_not_od), so its 'OD' runs move slowly. The canonical rule learns "
                             "the OD itself, from every window (about 10x more updates than RDD at p = 0.1), and on this "
                             "cost at c <= 0.5 its bias costs less than RDD's extra variance")
        acc[f"A5_{kind}"] = check(
            bool(ok), meas,
            f"at {t125} the fraction of RDD runs within distance 2 of the minimum is >= 2x OD's, and RDD's final spread "
            f"is smaller ({'main reproduction: repository rule' if kind == 'repo' else 'canonical rule, reported'})",
            **notes)
    return finish(res, out_dir, data)
