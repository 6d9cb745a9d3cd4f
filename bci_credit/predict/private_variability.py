"""Prediction 5 (``bci_nwb.md`` §A.8; Lansdell et al. 2020): learning depends on the control unit's
private (intrinsic) variability.

Threshold task at c = 0.5; the control unit's private noise is scaled (0 = all of its input noise
is shared with the population; its baseline rate is re-calibrated so only the kind of variability
changes). Measured per learner: the control unit's rate change (learning), the leak of credit to
non-control units, the specificity index, and the fraction of the control unit's windows near
threshold (what RDD learns from).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.metrics import mean_ci
from ..tasks.bci_config import NoiseConfig, SessionConfig
from ..tasks.protocols import conditioning_blocks
from ._base import PredictionResult
from ._common import run_rules, session_row, summarise

NAME = "private_variability"
CLAIM = ("The control unit's private variability matters: without it, credit given by REINFORCE-type learners "
         "leaks to the units that share its fluctuations (lower specificity), and the control unit's learning "
         "is slower; RDD's specificity depends on it much less.")
FULL = {"scales": (0.0, 0.5, 1.0, 2.0), "rules": ("rdd", "reinforce", "rstdp"), "c": 0.5, "n_units": 20,
        "n_replicates": 6, "baseline_s": 60.0, "conditioning_s": 300.0, "p": 0.2}
QUICK = {"scales": (0.0, 2.0), "rules": ("reinforce",), "c": 0.5, "n_units": 10, "n_replicates": 6,
         "baseline_s": 30.0, "conditioning_s": 200.0, "p": 0.2}


def run(quick: bool = False, seed: int = 0, progress: bool = False) -> PredictionResult:
    s = dict(QUICK if quick else FULL)
    rows = []
    rep = None
    for sc in s["scales"]:
        cfg = SessionConfig(n_units=s["n_units"], n_replicates=s["n_replicates"], seed=seed,
                            noise=NoiseConfig(c=s["c"], control_private_scale=sc), mapping={"name": "threshold"},
                            blocks=conditioning_blocks(s["baseline_s"], s["conditioning_s"], 0))
        res = run_rules(cfg, s["rules"], progress=progress)
        for rule, rr in res.items():
            for r, rec in enumerate(rr.recordings):
                base = rec.windows["block"].to_numpy(str) == "baseline"
                near = float(np.mean(np.abs(rec.drive[base, 0] - rec.units["threshold"].iloc[0]) < s["p"]))
                rows.append(session_row(rec, "baseline", ("conditioning", min(100.0, s["conditioning_s"])), rule=rule,
                                        private_scale=sc, replicate=r, control_near_fraction=near))
        if sc == min(s["scales"]):
            rep = res[s["rules"][0]].recordings[0]
    df = pd.DataFrame(rows)
    summ = summarise(df, ["rule", "private_scale"], ["drate_control_pct", "leak", "specificity_all",
                                                      "control_near_fraction"])
    lo, hi = min(s["scales"]), max(s["scales"])
    diffs = {}
    for rule in s["rules"]:
        d = df[df.rule == rule].pivot(index="replicate", columns="private_scale", values="leak")
        diffs[rule] = mean_ci((d[lo] - d[hi]).to_numpy(float))
    main = "reinforce" if "reinforce" in s["rules"] else s["rules"][0]
    numbers = {"summary": summ.to_dict(orient="records"),
               f"leak_scale{lo}_minus_scale{hi}": diffs}
    checks = {f"{main}: leak larger without private variability (scale {lo} vs {hi}; paired 95 % CI > 0)":
              diffs[main]["ci_lo"] > 0}
    notes = ["private_scale multiplies the sd of the control unit's private input noise; the shared part is unchanged",
             "control_near_fraction: fraction of baseline windows with |Z - theta| < p for the control unit"]
    return PredictionResult(NAME, CLAIM, numbers, checks, tables={"sessions": df, "summary": summ},
                            recordings={f"private_scale_{lo}": rep}, settings={**s, "seed": seed}, quick=quick, notes=notes)
