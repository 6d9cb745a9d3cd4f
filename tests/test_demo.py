"""`make demo` in quick form: the whole pipeline writes a complete report folder."""

import json

import numpy as np
import pandas as pd
import pytest

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
    # what the session did, in words, from its own tables
    sr = pd.read_csv(out / "success_rate.csv", index_col="block")
    assert "What the session did" in text
    assert f"conditioning {sr.loc['conditioning', 'success_per_s']:.2f} (rewarded)" in text
    assert f"From baseline to conditioning its rate changed by {metrics['control_rate_change_pct']:+.0f}%" in text
    assert f"the control unit's weight changed by {metrics['misattribution']['dw_control']:+.2f}" in text
    # what the analysis found, in words, against the truth (a newcomer read uncorrected CIs as detections)
    assert "What the analysis found:" in text and "after Holm's correction over 20 units" in text
    ctrl = spike[spike["is_control"]].iloc[0]
    # judged against the RD estimand: the effect of the control unit's spikes as they happened just above threshold
    truth = "true_removal_marginal"
    assert "with the simulation's true effect:" in text and truth in text.split("What the analysis found")[0]
    inside = ctrl["ci_lo"] <= ctrl[truth] <= ctrl["ci_hi"]
    assert (f"true effect {ctrl[truth]:.4g} (itself a Monte Carlo estimate over {int(ctrl[truth + '_n'])} sampled "
            "just-above-threshold windows") in text
    assert f"the truth lies {'inside' if inside else 'outside'} the CI" in text
    assert ctrl[truth + "_se"] >= 0 and ctrl[truth + "_n"] > 1  # the truth's own precision is kept
    assert ctrl["true_marginal_effect_se"] >= 0 and ctrl["true_marginal_n"] > 1  # the other truth stays in the table
    covered = ((spike["ci_lo"] <= spike[truth]) & (spike[truth] <= spike["ci_hi"]))
    assert f"for {int(covered.sum())} of 20 units" in text
    # the naive comparisons' Holm-listed units, and how many of them have no effect (the confounding RD avoids)
    od = table[table["design"] == "naive-od"]
    listed = od[od["pvalue_holm"] < 0.05]
    null = int((listed["true_total_effect"] == 0).sum())  # no effect by construction (a Monte Carlo 0 is not)
    assert f"spike): {len(listed)} of 20 units" + (f" ({null} without any effect)" if len(listed) else "") in text
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out / "session.nwb"), "r") as io:  # every column a simulation writes says what it is
        f = io.read()
        vague = [c.name for c in (*f.units.columns, *f.trials.columns) if c.description.startswith("Column '")]
    assert vague == []
    assert "pvalue_holm" in table.columns and (table["pvalue_holm"].dropna() >= table["pvalue"].dropna()).all()


def test_findings_contrast_the_naive_listing_with_the_rd_design():
    """Units the naive comparison lists although their true effect is 0 are counted, against the RD design's."""
    from types import SimpleNamespace

    from bci_credit.analysis.causal import CausalAnalysis

    units = [0, 1, 2, 3]
    truth = [0.02, 0.0, 0.0, 0.0]
    spike = pd.DataFrame({"unit": units, "is_control": [True, False, False, False], "design": "spike",
                          "estimate": [0.02, 0.001, 0.03, -0.01], "se": 0.01, "ci_lo": [0.0, -0.02, 0.01, -0.03],
                          "ci_hi": [0.04, 0.02, 0.05, 0.01], "pvalue": [0.04, 0.9, 0.003, 0.3],
                          "true_marginal_effect": truth})
    naive = pd.DataFrame({"unit": units, "design": "naive-od", "pvalue": [1e-9, 1e-6, 0.2, 1e-5]})

    def drivers(table, listed):
        return lambda correction="holm": table[table["unit"].isin(listed)]

    analysis = SimpleNamespace(primary=SimpleNamespace(table=spike, level=95.0), duration_s=60.0, design="spike",
                               naive=SimpleNamespace(table=naive, drivers=drivers(naive, [0, 1, 3])),
                               drivers=drivers(spike, [2]))
    text = "\n".join(CausalAnalysis.findings(analysis))
    assert ("the naive comparisons list as associated with the reward, after Holm's correction: observed dependence "
            "(mean reward with against without a spike): 3 of 4 units (2 without any effect)") in text
    assert "The spike RD lists 1 unit(s) (1 without any effect)" in text
    # a listed unit whose truth is unknown is not counted as one without an effect
    spike.loc[spike["unit"] == 3, "true_marginal_effect"] = float("nan")
    assert "3 of 4 units (1 without any effect, 1 of unknown truth)" in "\n".join(CausalAnalysis.findings(analysis))


def test_findings_say_what_is_missing_and_nothing_for_an_association():
    """A control unit without an estimate or a truth is said to lack it (no 'outside the CI' verdict); the naive
    design, an association, gets no findings; the power statement follows the level."""
    from types import SimpleNamespace

    from bci_credit.analysis.causal import CausalAnalysis

    def table(**kw):
        row = {"unit": [0, 1], "is_control": [True, False], "design": "spike", "estimate": [0.02, 0.0],
               "se": [0.01, 0.01], "ci_lo": [0.0, -0.02], "ci_hi": [0.04, 0.02], "pvalue": [0.05, 0.9],
               "reason": ["", ""], "true_marginal_effect": [0.01, 0.0]}
        row.update(kw)
        return pd.DataFrame(row)

    def analysis(t, design="spike", level=95.0):
        return SimpleNamespace(primary=SimpleNamespace(table=t, level=level), naive=None, duration_s=100.0,
                               design=design, drivers=lambda correction="holm": t.iloc[:0])

    nan = float("nan")
    text = "\n".join(CausalAnalysis.findings(analysis(table(estimate=[nan, 0.0], se=[nan, 0.01], ci_lo=[nan, -0.02],
                                                                ci_hi=[nan, 0.02], reason=["too few windows", ""]))))
    assert "control unit 0: no estimate (too few windows), true effect 0.01." in text and "CI" not in text.split("\n")[1]
    text = "\n".join(CausalAnalysis.findings(analysis(table(true_marginal_effect=[None, 0.0]))))
    assert "true effect unknown." in text and "outside" not in text
    assert CausalAnalysis.findings(analysis(table(), design="naive")) == []
    assert "at the 10% level" in "\n".join(CausalAnalysis.findings(analysis(table(), level=90.0)))


def test_session_findings_say_only_what_the_session_shows(tmp_path):
    """The 'task is easy' and 'rate stays up' sentences appear only when the session's numbers show them."""
    from bci_credit.io import nwb
    from bci_credit.pipeline import _bci_outputs, _session_findings
    from bci_credit.tasks.bci import default_session_config

    out = tmp_path / "demo"
    run_demo(out, seed=3, quick=True)
    rec = nwb.read(out / "session.nwb")
    _, metrics = _bci_outputs(rec, tmp_path)
    blocks = default_session_config().blocks
    sr = metrics["success"]
    sr.loc[sr.index[0], "success_per_trial"] = 0.97
    text = " ".join(_session_findings(rec, metrics, blocks))
    assert "The task is easy from the start" in text and "97% of the time already in baseline" in text
    sr.loc[sr.index[0], "success_per_trial"] = 0.4
    rates = metrics["rates"]
    c = int(rec.units["is_control"].to_numpy(bool).argmax())
    rates.iloc[c, -1] = 3.0 * rates.iloc[c, 0]
    text = " ".join(_session_findings(rec, metrics, blocks))
    assert "The task is easy" not in text and "so the unit's rate stays up" in text
    rates.iloc[c, -1] = rates.iloc[c, 0]
    text = " ".join(_session_findings(rec, metrics, blocks))
    assert "stays up" not in text and "In extinction, without reward, the control unit's weight went from" in text


def test_null_units_line_only_for_the_measured_configuration(tmp_path):
    """The demo cites the stored false-discovery measurement only for the configuration it was made on."""
    import json

    from bci_credit.pipeline import NULL_UNITS_JSON, NULL_UNITS_JSONS, _null_units_line
    from bci_credit.tasks.bci import Block, default_session_config

    cfg = default_session_config()
    stored = json.loads(NULL_UNITS_JSON.read_text())
    line = _null_units_line(cfg)
    fp = stored["variants"]["spike"]["false_positive_uncorrected"]["rate"]
    assert len(line) == 1 and f"exclude 0 for {100 * fp:.1f}% of the other units" in line[0]
    assert f"over {stored['setting']['replicates']} simulated sessions" in line[0]
    assert _null_units_line(cfg.replace(blocks=(Block("baseline", 10, reward=False), Block("conditioning", 30)))) == []
    assert _null_units_line(cfg.replace(n_units=12)) == []
    # the same sessions with the weights fixed have their own measurement; a rule without one gets no line
    fixed = json.loads(NULL_UNITS_JSONS[1].read_text())
    line_fixed = _null_units_line(default_session_config(rule="none"))
    assert fixed["setting"]["rule"] == "none" and len(line_fixed) == 1
    assert f"exclude 0 for {100 * fixed['variants']['spike']['false_positive_uncorrected']['rate']:.1f}%" in line_fixed[0]
    assert _null_units_line(default_session_config(rule="od")) == []
    assert "80% power" not in line[0]  # without this session's SE
    from bci_credit.analysis.causal_results import session_length_factor

    with_se = _null_units_line(cfg, control_se=0.0153, duration_s=360.0)[0]
    factor = session_length_factor(stored["control_coverage_spike"]["removal"]["pooled"], 0.0153)
    assert f"needs a session about {factor:.1f}x as long as this one (~{factor * 6:.0f} min)" in with_se
    # (z_0.975 + z_0.8)^2 = 7.85 for an effect of one SE; a 99% level needs more; no effect, no answer
    assert session_length_factor(1.0, 1.0) == pytest.approx(7.849, abs=1e-3)
    assert session_length_factor(-2.0, 1.0) == pytest.approx(7.849 / 4, abs=1e-3)
    assert session_length_factor(1.0, 1.0, level=99.0) == pytest.approx(11.679, abs=1e-3)
    assert np.isnan(session_length_factor(0.0, 1.0)) and np.isnan(session_length_factor(1.0, float("nan")))
    assert _null_units_line(cfg, tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text("{not json")
    assert _null_units_line(cfg, tmp_path / "bad.json") == []


def test_demo_runs_another_learner_from_the_command_line(tmp_path, capsys):
    """`bci-credit demo --rule NAME` runs the session with that learner's defaults and says so; no learning
    is said in words, not as a weight change of +0.00; an unknown rule is refused before anything runs."""
    from bci_credit.cli import main

    out = tmp_path / "none"
    assert main(["demo", "--quick", "--rule", "none", "--out", str(out)]) == 0
    text = (out / "summary.md").read_text()
    assert "; no learning, seed 2023;" in text and "- learning: none; the weights stayed where they started." in text
    assert json.loads((out / "run.json").read_text())["config"]["rule"] == "none"
    capsys.readouterr()
    assert main(["demo", "--quick", "--rule", "backprop", "--out", str(tmp_path / "bad")]) == 2
    from bci_credit.tasks.protocols import RULE_NAMES

    assert f"--rule must be one of {', '.join(RULE_NAMES)}; got 'backprop'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # the help lists every learner by name (it cannot import the list: that would slow every command's start)
    from bci_credit.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["demo"].format_help()
    assert all(name in " ".join(help_text.split()) for name in RULE_NAMES)
