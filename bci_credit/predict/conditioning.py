"""Prediction 1 (``bci_nwb.md`` §A.8): operant conditioning raises the control unit's rate specifically.

Threshold (Fetz / Arduin) task on a population with correlated noise: baseline (no reward; the
threshold is set at the 85th percentile of the decoded rate) -> conditioning -> extinction. Every
learner runs on the same populations and noise seeds. The prediction, as Fetz (1969) reported:
the control unit's rate rises by tens to hundreds of percent while the non-control units change
less, so the specificity index ``(drate_control - mean drate_noncontrol) / sd(drate_noncontrol)`` is
positive (rate changes in percent; last 100 s of conditioning against the baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import metrics as M
from ..tasks.bci_config import NoiseConfig, SessionConfig
from ..tasks.protocols import RULE_NAMES, conditioning_blocks, default_rule_params
from ._base import PredictionResult
from ._common import run_rules, session_row, summarise

NAME = "conditioning"
CLAIM = ("Conditioning raises the control unit's rate by tens to hundreds of percent (Fetz 1969), more than "
         "the non-control units, so the specificity index is > 0.")
FULL = {"n_units": 20, "n_replicates": 8, "baseline_s": 60.0, "conditioning_s": 600.0, "extinction_s": 120.0,
        "c": 0.3, "rules": RULE_NAMES, "truth_every_s": 1.0}
QUICK = {"n_units": 10, "n_replicates": 6, "baseline_s": 60.0, "conditioning_s": 240.0, "extinction_s": 0.0,
         "c": 0.3, "rules": ("rdd", "none"), "truth_every_s": 2.0}
LAST_S = 100.0


def run(quick: bool = False, seed: int = 0, progress: bool = False) -> PredictionResult:
    s = dict(QUICK if quick else FULL)
    blocks = conditioning_blocks(s["baseline_s"], s["conditioning_s"], s["extinction_s"])
    cfg = SessionConfig(n_units=s["n_units"], n_replicates=s["n_replicates"], seed=seed, noise=NoiseConfig(c=s["c"]),
                        mapping={"name": "threshold"}, blocks=blocks, truth={"every_s": s["truth_every_s"]})
    results = run_rules(cfg, s["rules"], progress=progress)
    if quick:
        rep = results["rdd"].recordings[0]
    else:
        # the representative session (RDD, replicate 0) with ground truth, for the NWB file
        from ..tasks.bci import run_session

        rep = run_session(cfg.replace(n_replicates=1), rule="rdd", rule_params=default_rule_params("rdd", "threshold"),
                          truth=True, progress=progress).recordings[0]
    rows = []
    after = ("conditioning", min(LAST_S, s["conditioning_s"]))
    for rule, res in results.items():
        for r, rec in enumerate(res.recordings):
            row = session_row(rec, "baseline", after, rule=rule, replicate=r)
            sr = M.success_rate(rec)
            row["baseline_success_per_s"] = float(sr.loc["baseline", "success_per_s"]) if "baseline" in sr.index else np.nan
            if "extinction" in sr.index:
                row["drate_control_extinction_pct"] = float(M.rate_change(rec, "baseline", ("extinction", 60.0))[0])
            rows.append(row)
    df = pd.DataFrame(rows)
    cols = ["drate_control_pct", "drate_noncontrol_pct", "specificity_all", "specificity_cotuned", "specificity_random",
            "leak", "rewards_per_s", "baseline_success_per_s", "median_time_to_reward_s"]
    if "drate_control_extinction_pct" in df:
        cols.append("drate_control_extinction_pct")
    summ = summarise(df, "rule", cols)
    rdd = summ.set_index("rule").loc["rdd"]
    numbers = {"per_rule": summ.set_index("rule").to_dict(orient="index"),
               "rdd_control_rate_change_pct": float(rdd["drate_control_pct"]),
               "rdd_specificity_index": float(rdd["specificity_all"]),
               "rdd_specificity_ci": [float(rdd["specificity_all_lo"]), float(rdd["specificity_all_hi"])],
               "theta_hz": rep.meta["decoder"].get("theta_hz")}
    eff = rep.units["true_direct_effect"].to_numpy(float)
    if np.isfinite(eff).all():
        numbers["truth_control_direct_effect"] = float(eff[0])
        numbers["truth_control_direct_effect_se"] = float(rep.units["true_direct_effect_se"].iloc[0])
        numbers["truth_noncontrol_max_abs"] = float(np.max(np.abs(eff[1:])))
    checks = {"RDD raises the control rate by >= 50 %": rdd["drate_control_pct"] >= 50.0,
              "RDD specificity index > 0 (95 % CI excludes 0)": rdd["specificity_all_lo"] > 0,
              "control rises more than non-control units": rdd["drate_control_pct"] > rdd["drate_noncontrol_pct"]}
    if "none" in results:
        none = summ.set_index("rule").loc["none"]
        checks["no-learning control: control rate change CI includes 0 or |change| < 10 %"] = bool(
            (none["drate_control_pct_lo"] <= 0 <= none["drate_control_pct_hi"]) or abs(none["drate_control_pct"]) < 10)
    notes = ["rate changes are percent changes from the baseline block to the last "
             f"{after[1]:.0f} s of conditioning; the specificity index uses the sd over all non-control units",
             "hyper-parameters: bci_credit.tasks.protocols.default_rule_params(rule, 'threshold')",
             "the index divides by the spread of the non-control changes: a leak that moves every non-control "
             "unit alike lowers the numerator only; the 'leak' column (mean non-control dw / control dw) shows it"]
    return PredictionResult(NAME, CLAIM, numbers, checks, tables={"sessions": df, "summary": summ},
                            recordings={"rdd_session": rep}, settings={**s, "seed": seed, "rules": list(s["rules"])},
                            quick=quick, notes=notes)
