"""Quick (seeded, test-sized) forms of every prediction, and the ``bci-credit predict`` command."""

import json

import numpy as np
import pytest

from bci_credit.predict import PREDICTIONS, list_predictions, run_prediction


@pytest.mark.parametrize("name", list(PREDICTIONS))
def test_prediction_quick_form_holds(name):
    res = run_prediction(name, quick=True, seed=0)
    assert res.checks, "a prediction must state testable checks"
    failed = [k for k, v in res.checks.items() if not v]
    assert not failed, f"{name}: failed checks {failed}\n{res.summary()}"
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
