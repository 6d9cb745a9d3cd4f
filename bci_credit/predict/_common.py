"""Helpers shared by the predictions: running several learners on the same sessions, session metrics."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..analysis import metrics as M
from ..recording import Recording
from ..tasks.bci import SessionConfig, build_population, run_session
from ..tasks.protocols import default_rule_params

__all__ = ["run_rules", "session_row", "summarise", "RULE_LABELS"]

log = logging.getLogger("bci_credit")

RULE_LABELS = {"rdd": "RDD", "od": "observed dependence", "reinforce": "REINFORCE (spike)",
               "node_perturbation": "node perturbation", "spike_injection": "spike injection (decoder probe)",
               "rstdp": "R-STDP", "oracle": "oracle", "none": "no learning"}


def run_rules(cfg: SessionConfig, rules, *, truth: bool = False, progress: bool = False, overrides: dict | None = None):
    """Run every rule on the same populations and noise seeds; returns ``{rule: SessionResult}``.

    Hyper-parameters come from :func:`~bci_credit.tasks.protocols.default_rule_params` for the
    config's mapping, updated by ``overrides[rule]``.
    """
    spec = build_population(cfg, seed=np.random.SeedSequence(cfg.seed).spawn(5)[0])
    out = {}
    for rule in rules:
        params = default_rule_params(rule, cfg.mapping["name"])
        params.update((overrides or {}).get(rule, {}))
        log.info("running %s on %d replicate(s)", rule, cfg.n_replicates)
        out[rule] = run_session(cfg, rule=rule, rule_params=params, truth=truth, progress=progress, population=spec)
    return out


def session_row(rec: Recording, before="baseline", after=("conditioning", 100.0), **extra) -> dict:
    """Headline metrics of one session: rate changes, specificity, leak, rewards."""
    sp = M.specificity(rec, before, after)
    mi = M.misattribution(rec)
    row = {"drate_control_pct": sp["control"], "drate_noncontrol_pct": sp["noncontrol_mean"],
           "specificity_all": sp["index_all"], "specificity_cotuned": sp["index_cotuned"],
           "specificity_random": sp["index_random"], "dw_control": mi["dw_control"],
           "dw_noncontrol": mi["dw_noncontrol_mean"], "dw_noncontrol_abs": mi["dw_noncontrol_abs"],
           "leak": mi["dw_noncontrol_mean"] / mi["dw_control"] if mi["dw_control"] else np.nan}
    try:
        sr = M.success_rate(rec)
        name = after[0] if isinstance(after, tuple) else after
        if name in sr.index:
            row["rewards_per_s"] = float(sr.loc[name, "rewards_per_s"])
            row["success_per_s"] = float(sr.loc[name, "success_per_s"])
            row["median_time_to_reward_s"] = float(sr.loc[name, "median_time_to_reward_s"])
    except ValueError:
        pass
    row.update(extra)
    return row


def summarise(df: pd.DataFrame, by, cols) -> pd.DataFrame:
    """Mean and 95% t-interval of ``cols`` per group ``by`` (one row per group)."""
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip([by] if isinstance(by, str) else by, key))
        for c in cols:
            ci = M.mean_ci(g[c].to_numpy(float))
            row[c] = ci["mean"]
            row[c + "_lo"] = ci["ci_lo"]
            row[c + "_hi"] = ci["ci_hi"]
        row["n"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)
