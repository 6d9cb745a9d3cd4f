"""``bci-credit rd``: JSON keys, readable summary, one-line errors (exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bci_credit.cli import main

DATA = Path(__file__).parent / "results" / "rd_data_curved.csv"
REF = json.loads((Path(__file__).parent / "results" / "rd_reference.json").read_text())
KEYS = {"tau_cl", "tau_bc", "se_cl", "se_rb", "ci_cl", "ci_rb", "pv_cl", "pv_rb", "h", "b", "n", "n_h", "kernel",
        "bwselect", "vce", "p", "q"}


def test_json_output_matches_reference(capsys):
    assert main(["rd", str(DATA), "--y", "y", "--x", "x", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert KEYS <= set(out)
    exp = next(c for c in REF["cases"] if c["name"] == "curved_nn")["expected"]
    np.testing.assert_allclose([out["tau_cl"], out["tau_bc"], out["se_cl"], out["se_rb"]],
                               [exp["coef"][0], exp["coef"][1], exp["se"][0], exp["se"][2]], rtol=1e-6)
    np.testing.assert_allclose(out["ci_rb"], exp["ci"][2], rtol=1e-6)
    np.testing.assert_allclose(out["h"], exp["h"], rtol=1e-6)
    assert out["n_h"] == exp["N_h"] and out["n"] == exp["N"]


def test_options_and_summary(capsys):
    args = ["rd", str(DATA), "--y", "yf", "--x", "x", "--fuzzy", "t", "--covs", "z1", "--kernel", "uniform",
            "--bwselect", "msetwo", "--vce", "hc1", "--cutoff", "0.05"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Fuzzy RD" in text and "Robust" in text and "First stage" in text
    assert main(["rd", str(DATA), "--y", "y", "--x", "x", "--h", "0.4", "0.5", "--b", "0.6", "--p", "2",
                 "--deriv", "1", "--weights", "w", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["h"] == [0.4, 0.5] and out["b"] == [0.6, 0.6] and out["p"] == 2 and out["q"] == 3


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("bci-credit rd: error:")
    assert match in err, err


@pytest.mark.parametrize("content, extra, match", [
    ("", [], "is empty"),
    ("x,y\n", [], "no data rows"),
    ("x,y\n1,2\n3,4\n", ["--x", "nope"], "'nope' not in"),
    ("x,y\na,1\nb,2\nc,3\n", [], "numeric"),
    ("x,y\n" + "".join(f"1.0,{i}\n" for i in range(30)), [], "constant"),
    ("x,y\n" + "".join(f"{i + 1},{i}\n" for i in range(30)), [], "one side"),
])
def test_cli_errors(tmp_path, capsys, content, extra, match):
    f = tmp_path / "d.csv"
    f.write_text(content)
    argv = ["rd", str(f), "--y", "y", "--x", "x"]
    if extra:
        argv = ["rd", str(f), "--y", "y"] + extra
    _one_line_error(capsys, argv, match)


def test_cli_missing_file(capsys, tmp_path):
    _one_line_error(capsys, ["rd", str(tmp_path / "none.csv"), "--y", "y", "--x", "x"], "no such file")


def test_cli_nan_rows_reported(tmp_path, capsys):
    df = pd.read_csv(DATA)[["x", "y"]]
    df.loc[[3, 7], "y"] = np.nan
    f = tmp_path / "d.csv"
    df.to_csv(f, index=False)
    assert main(["rd", str(f), "--y", "y", "--x", "x", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_dropped"] == 2


def test_help_has_example(capsys):
    with pytest.raises(SystemExit):
        main(["rd", "--help"])
    out = capsys.readouterr().out
    assert "bci-credit rd data.csv" in out and "--json" in out
