"""`make demo` in quick form: the whole pipeline writes a complete report folder."""

import json

import pandas as pd

from bci_credit.pipeline import run_demo


def test_demo_pipeline_writes_report(tmp_path):
    out = tmp_path / "demo"
    text = run_demo(out, seed=1, quick=True)
    for name in ("session.nwb", "run.json", "summary.md", "analysis/effects.csv", "learning.png", "causal_effects.png",
                 "overview.png", "analysis/plots/rd_spike_unit_0.png", "bci_session.png", "bci_metrics.json",
                 "success_rate.csv", "rate_changes.csv"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "analysis" / "effects.csv")
    spike = table[table["design"] == "spike"]
    assert len(spike) == 20 and {"estimate", "ci_lo", "ci_hi"} <= set(table.columns)
    assert (table["design"] == "naive-od").sum() == 20
    metrics = json.loads((out / "bci_metrics.json").read_text())
    assert abs(metrics["control_rate_change_pct"]) < 1000 and "leak_ratio" in metrics["misattribution"]
    assert json.loads((out / "run.json").read_text())["seed"] == 1
    assert "control unit 0" in text
    # what the analysis found, in words, against the truth (a newcomer read uncorrected CIs as detections)
    assert "What the analysis found:" in text and "after Holm's correction over 20 units" in text
    ctrl = spike[spike["is_control"]].iloc[0]
    inside = ctrl["ci_lo"] <= ctrl["true_marginal_effect"] <= ctrl["ci_hi"]
    assert f"true effect {ctrl['true_marginal_effect']:.4g} ({'inside' if inside else 'outside'} the CI)" in text
    covered = ((spike["ci_lo"] <= spike["true_marginal_effect"]) & (spike["true_marginal_effect"] <= spike["ci_hi"]))
    assert f"for {int(covered.sum())} of 20 units" in text
    assert "pvalue_holm" in table.columns and (table["pvalue_holm"].dropna() >= table["pvalue"].dropna()).all()
