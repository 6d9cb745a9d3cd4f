"""Acceptance A6 (``rdd_model.md`` §4.7, §6): the preprint's 10-neuron "special neuron" BCI task.

Ten LIF neurons (sigma = 10, 50-ms windows, tau_s = 0.2 s with the paper's kernel) are pretrained
for 500 s at c = 0.01 on ``||s - 0.02||`` (all at 20 Hz) with the repository's RDD rule
(p = 0.2, epsilon = 1e4, eta = 0.1, constant step), then the task changes: neuron 0's target becomes
0 (brain control of one unit). The perturbed phase (500 s) starts **from the pretrained weights**
(the original notebook restarted from the random initial weights, §7.10) and runs at
c in {0.1, 0.5, 0.9} with the repository rule as RDD (p = 0.2, epsilon = 1e4) and as observed
dependence (p = 1, epsilon = 5e4); 16 runs are 16 replicates of one batched population.

Pass (§6 A6): for c >= 0.5 the RDD plateau (mean cost over the last 50 s) is at least 10 % below
OD's, and the mean non-special weight ends lower under OD than under RDD (paired over replicates:
the 95 % CI of RDD - OD lies above 0; §6 A6: 17.4 / 17.1 / 16.8 under RDD against 16.8 / 15.9 /
15.1 under OD). The quick form (8 replicates, 200 s of pretraining) is too small to resolve that
difference: with seed 0 its CI includes 0 and the check fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.metrics import mean_ci
from ..learning.rdd import RepoRDDRule
from ..tasks.costs import TargetRateCost
from ..tasks.protocols import pretrain_then_perturb
from ._base import PredictionResult

NAME = "special_neuron"
CLAIM = ("In the special-neuron task, RDD learning reaches a plateau cost >= 10 % below observed dependence for "
         "c >= 0.5, and the non-special neurons end with lower weights under OD than under RDD (with correlated "
         "noise every neuron shares the blame for the special neuron's error).")
FULL = {"cs": (0.1, 0.5, 0.9), "n_replicates": 16, "pretrain_s": 500.0, "perturb_s": 500.0, "plateau_s": 50.0,
        "variants": ("rate", "brain", "dual")}
QUICK = {"cs": (0.9,), "n_replicates": 8, "pretrain_s": 200.0, "perturb_s": 250.0, "plateau_s": 50.0,
         "variants": ("rate",)}
RULES = {"rdd": dict(p=0.2, eta=0.1, epsilon=1e4), "od": dict(p=1.0, eta=0.1, epsilon=5e4)}
QUICK_NOTE = ("quick form: 8 replicates after 200 s of pretraining (the weights are still rising) are too few to "
              "resolve the non-special weight difference reliably (seed 0: its CI includes 0, the check fails); the "
              "full form resolves it (seed 0: CI above 0 at c = 0.5 and 0.9)")


def run(quick: bool = False, seed: int = 0, progress: bool = False) -> PredictionResult:
    s = dict(QUICK if quick else FULL)
    R, N = s["n_replicates"], 10
    pre = pretrain_then_perturb(RepoRDDRule(**RULES["rdd"]), n_neurons=N, n_replicates=R, c_pretrain=0.01,
                                pretrain_s=s["pretrain_s"], perturb_s=0.05, seed=seed)
    w_pre = pre.w_pretrained
    win = int(round(s["plateau_s"] / 0.05))
    rows, traces = [], {}
    for variant in s["variants"]:
        cost = TargetRateCost.special_neuron(N, mode=variant)
        for c in s["cs"]:
            for name, kw in RULES.items():
                res = pretrain_then_perturb(RepoRDDRule(**kw), n_neurons=N, n_replicates=R, c=c, w_pretrained=w_pre,
                                            perturb_s=s["perturb_s"], perturbed_cost=cost, seed=seed + 1)
                if not np.array_equal(res.weights_perturb[0], w_pre):
                    raise AssertionError("perturbed phase did not start from the pretrained weights")
                plateau = res.cost_perturb[:, -win:].mean(axis=1)
                nonspecial = res.w_final[:, 1:].mean(axis=1)
                for r in range(R):
                    rows.append({"variant": variant, "c": c, "rule": name, "replicate": r, "plateau_cost": plateau[r],
                                 "w_special_final": res.w_final[r, 0], "w_nonspecial_final": nonspecial[r],
                                 "w_nonspecial_pretrained": w_pre[r, 1:].mean()})
                k = max(1, int(round(5.0 / 0.05)))
                cc = res.cost_perturb.mean(axis=0)
                traces[(variant, c, name)] = cc[: cc.size // k * k].reshape(-1, k).mean(axis=1)
    df = pd.DataFrame(rows)
    summ = df.groupby(["variant", "c", "rule"], sort=False)[["plateau_cost", "w_special_final", "w_nonspecial_final"]].mean().reset_index()
    rate = df[df.variant == "rate"]
    out, checks = {}, {}
    for c in s["cs"]:
        g = rate[rate.c == c].pivot(index="replicate", columns="rule", values="plateau_cost")
        gw = rate[rate.c == c].pivot(index="replicate", columns="rule", values="w_nonspecial_final")
        rel = 1.0 - g["rdd"].mean() / g["od"].mean()
        out[str(c)] = {"plateau_rdd": float(g["rdd"].mean()), "plateau_od": float(g["od"].mean()),
                       "rdd_below_od_fraction": float(rel),
                       "w_nonspecial_rdd": float(gw["rdd"].mean()), "w_nonspecial_od": float(gw["od"].mean()),
                       "w_nonspecial_diff_ci": mean_ci((gw["rdd"] - gw["od"]).to_numpy(float))}
        if c >= 0.5:
            checks[f"c = {c}: RDD plateau >= 10 % below OD"] = rel >= 0.10
            checks[f"c = {c}: non-special weights end lower under OD than under RDD (paired 95 % CI > 0)"] = bool(
                out[str(c)]["w_nonspecial_diff_ci"]["ci_lo"] > 0)
    checks["perturbed phase starts from the pretrained weights (not the initial ones)"] = bool(
        not np.allclose(w_pre, pre.w_initial))
    numbers = {"by_c": out, "pretrained_cost_last_50s": float(pre.cost_pretrain[:, -win:].mean()),
               "w_initial_mean": float(pre.w_initial.mean()), "w_pretrained_mean": float(w_pre.mean()),
               "summary": summ.to_dict(orient="records"),
               "reference_A6": {"0.1": [0.0152, 0.0179], "0.5": [0.0158, 0.0196], "0.9": [0.0162, 0.0205],
                                "note": "[RDD, OD] mean cost over the last 50 s in rdd_model.md §6 A6"}}
    curves = pd.DataFrame([{"variant": v, "c": c, "rule": r, "t_s": 5.0 * (i + 1), "cost": val}
                           for (v, c, r), tr in traces.items() for i, val in enumerate(tr)])
    return PredictionResult(NAME, CLAIM, numbers, checks, tables={"runs": df, "summary": summ, "cost_curves": curves},
                            settings={**s, "seed": seed, "rules": RULES}, quick=quick,
                            notes=["rules: bci_credit.learning.RepoRDDRule (epsilon applies to V0 = beta/2, as the "
                                   "original did)", "plateau = mean cost over the last 50 s of the perturbed phase"]
                            + ([QUICK_NOTE] if quick else []))
