"""Quick (seeded, test-sized) forms of every prediction, and the ``bci-credit predict`` command."""

import json

import numpy as np
import pytest

from bci_credit.predict import PREDICTIONS, list_predictions, run_prediction


#: Checks that the quick form (seed 0) is too small to pass: they fail there, honestly (see the
#: prediction's notes). The full form passes them (special_neuron: paired CI of RDD - OD [0.31, 1.43]
#: at c = 0.5 and [0.32, 3.08] at c = 0.9; quick, c = 0.9: [-0.70, 1.79]).
QUICK_UNRESOLVED = {
    "special_neuron": ["c = 0.9: non-special weights end lower under OD than under RDD (paired 95 % CI > 0)"],
}


@pytest.mark.parametrize("name", list(PREDICTIONS))
def test_prediction_quick_form_holds(name):
    res = run_prediction(name, quick=True, seed=0)
    assert res.checks, "a prediction must state testable checks"
    failed = [k for k, v in res.checks.items() if not v]
    assert failed == QUICK_UNRESOLVED.get(name, []), f"{name}: failed checks {failed}\n{res.summary()}"
    json.dumps(res.to_json(), default=float)  # JSON-ready (through outputs.to_jsonable when written)
    import matplotlib.pyplot as plt

    from bci_credit.plotting.bci import prediction_figures

    figs = prediction_figures(res)  # every prediction has its figure
    assert name in figs
    for f in figs.values():
        plt.close(f)


def test_cli_lists_and_writes_a_prediction(tmp_path, capsys):
    from bci_credit.analysis import metrics as M
    from bci_credit.cli import main
    from bci_credit.io import nwb

    assert main(["predict", "--list"]) == 0
    assert "threshold_vs_windowed" in capsys.readouterr().out
    assert set(list_predictions()) == set(PREDICTIONS)
    assert main(["predict", "nonexistent"]) == 2
    out = tmp_path / "p4"
    assert main(["predict", "threshold_vs_windowed", "--quick", "--out", str(out), "--no-progress"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"prediction.json", "run.json", "sessions.csv", "summary.csv", "threshold_vs_windowed.png"} <= names
    nwbs = [p for p in out.iterdir() if p.suffix == ".nwb"]
    assert len(nwbs) == 1
    data = json.loads((out / "prediction.json").read_text())
    assert data["passed"] is True and data["quick"] is True
    # the analysis layer runs on the file exactly as on the simulated Recording
    rec = nwb.read(nwbs[0])
    assert rec.meta["decoder"]["mapping"] == "threshold"
    assert rec.units["is_control"].sum() == 1 and "true_direct_effect" in rec.units
    sp = M.specificity(rec, "baseline", ("conditioning", 100.0))
    assert np.isfinite(sp["index_all"])
    assert set(rec.trials.columns) >= {"start_s", "stop_s", "block", "success", "reward_time_s"}
    assert rec.series["reward"].kind == "events" and rec.drive is not None and rec.spiked is not None


def test_matched_rate_regimes_are_matched_for_every_seed():
    """The plasticity test's two regimes must be rate-matched whatever the seed.

    The calibration's bisections see one 200-s noise realisation, whose rate estimate has a few per
    cent of sampling error; with seed 1 the fresh re-measurement used to miss the 5 % tolerance and
    ``bci-credit predict plasticity --seed 1`` crashed. A miss now recalibrates on 10x longer runs.
    """
    from bci_credit.predict.plasticity import MODEL
    from bci_credit.tasks.protocols import matched_rate_regimes

    for seed in range(6):
        fl, dr, stats = matched_rate_regimes(10.0, p=0.05, params=MODEL, seed=seed)
        r0, r1 = stats[0]["rate_hz"], stats[1]["rate_hz"]
        assert abs(r1 - r0) <= 0.05 * r0, (seed, r0, r1)
        assert fl.x == 0.0 and dr.x > 0 and dr.sigma < fl.sigma  # the two regimes are what they claim
    # a passing seed keeps its first calibration (stored results stay as they were)
    fl0, _, _ = matched_rate_regimes(10.0, p=0.05, params=MODEL, seed=0)
    # sigma that matched_rate_regimes gave for seed 0 at commit a0c198d, before the retry existed
    assert fl0.sigma == pytest.approx(11.454074667061024, rel=1e-12)


def test_cli_reports_a_protocol_that_cannot_be_set_up(tmp_path, capsys, monkeypatch):
    """A prediction whose protocol fails for a seed: one line, exit 2, no empty folder left behind."""
    import bci_credit.predict as P
    from bci_credit.cli import main

    def fail(*args, **kwargs):
        raise RuntimeError("regimes not matched within 5%: 9.44 vs 9.97 Hz")

    monkeypatch.setattr(P, "run_prediction", fail)
    out = tmp_path / "new"
    assert main(["predict", "plasticity", "--quick", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bci-credit predict: error: plasticity: regimes not matched" in err and "Traceback" not in err
    assert not out.exists()
    kept = tmp_path / "existing"
    kept.mkdir()  # a folder the user made stays
    assert main(["predict", "plasticity", "--quick", "--out", str(kept), "--no-progress"]) == 2
    assert kept.is_dir()
