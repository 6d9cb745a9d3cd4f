"""`make demo` in quick form: the whole pipeline writes a complete report folder."""

import json

import pandas as pd

from bci_credit.pipeline import run_demo


def test_demo_pipeline_writes_report(tmp_path):
    out = tmp_path / "demo"
    text = run_demo(out, seed=1, quick=True)
    for name in ("session.nwb", "run.json", "summary.md", "causal_effects.csv", "learning.png", "rd_plots.png",
                 "overview.png"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "causal_effects.csv")
    assert len(table) == 10 and {"estimate", "ci_rb_lo", "ci_rb_hi", "observed_dependence"} <= set(table.columns)
    assert json.loads((out / "run.json").read_text())["seed"] == 1
    assert "control unit 0" in text
