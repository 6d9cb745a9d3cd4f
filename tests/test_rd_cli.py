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


# ----------------------------------------------------------------------------- a user's pass (session 8)
def _curved(tmp_path, name="d.csv", **cols):
    df = pd.read_csv(DATA)
    for k, v in cols.items():
        df[k] = v
    f = tmp_path / name
    df.to_csv(f, index=False)
    return f, df


@pytest.mark.parametrize("name, content, match", [
    ("d.csv.gz", b"x,y\n1,2\n", "Not a gzipped file"),
    ("d.zip", b"x,y\n1,2\n", "not a zip file"),
    ("d.csv", b"\x89HDF\r\n\x1a\n" + bytes(64), "HDF5 file, not a CSV file; for an NWB recording use 'bci-credit analyze'"),
    ("d.csv", b"x;y\n1;2\n3;4\n", "does not look comma-separated"),
    ("d.csv", b"x, y\n1,2\n3,4\n", "note the spaces in ' y'"),
    ("d.csv", b"x,x,y\n1,2,3\n", "repeats the column name(s) 'x'"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, capsys, name, content, match):
    f = tmp_path / name
    f.write_bytes(content)
    _one_line_error(capsys, ["rd", str(f), "--y", "y", "--x", "x"], match)
    assert f.read_bytes() == content


def test_urls_and_bad_level_are_refused_before_reading(capsys):
    _one_line_error(capsys, ["rd", "http://example.org/d.csv", "--y", "y", "--x", "x"], "is a URL")
    _one_line_error(capsys, ["rd", str(DATA), "--y", "y", "--x", "x", "--level", "0.95"], "use --level 95")


def test_vce_with_cluster_is_checked_not_replaced(tmp_path, capsys):
    f, df = _curved(tmp_path, site=np.arange(len(pd.read_csv(DATA))) % 12)
    _one_line_error(capsys, ["rd", str(f), "--y", "y", "--x", "x", "--cluster", "site", "--vce", "hc2"],
                    "--vce 'hc2' with clusters")
    assert main(["rd", str(f), "--y", "y", "--x", "x", "--cluster", "site", "--vce", "HC1", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["vce"] == "cr1"
    assert out.err.strip() == "bci-credit rd: warning: --vce 'hc1' is not a cluster-robust option; using --vce 'cr1'"
    assert main(["rd", str(f), "--y", "y", "--x", "x", "--kernel", "TRI", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kernel"] == "triangular"


def test_json_records_the_design_and_input(tmp_path, capsys):
    site = np.arange(len(pd.read_csv(DATA))) % 12
    f, df = _curved(tmp_path, site=site)
    assert main(["rd", str(f), "--y", "yf", "--x", "x", "--fuzzy", "t", "--covs", "z1", "--cluster", "site",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fuzzy"] is True and out["covs"] == ["z1"] and len(out["coef_covs"]) == 1
    assert out["columns"] == {"y": "yf", "x": "x", "fuzzy": "t", "covs": ["z1"], "cluster": "site", "weights": None}
    assert out["data"] == str(f) and out["mass_points"] is False
    assert sum(out["n_clusters"]) >= 12 and out["first_stage"]["se_rb"] > 0
    from bci_credit.analysis.rd import RD

    res = RD("yf", "x", data=df, fuzzy="t", covs=["z1"], cluster="site").fit()
    np.testing.assert_allclose(out["first_stage"]["tau_bc"], res.first_stage["coef"][1], rtol=1e-12)


def test_summary_columns_stay_apart_and_mass_points_are_shown(tmp_path, capsys):
    df = pd.read_csv(DATA)
    f, _ = _curved(tmp_path, uv=df["y"] * 1e-6, xi=np.round(df["x"] * 10))
    assert main(["rd", str(f), "--y", "uv", "--x", "x"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(("Conventional", "Robust"))]
    assert all(" [" in ln for ln in rows), rows
    assert main(["rd", str(f), "--y", "y", "--x", "xi"]) == 0
    assert "Mass points in x" in capsys.readouterr().out


def test_review_fixes_home_paths_levels_numeric_headers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    f, _ = _curved(tmp_path, name="home.csv")
    assert main(["rd", "~/home.csv", "--y", "y", "--x", "x", "--json"]) == 0  # ~ is the home folder, as pandas had it
    capsys.readouterr()
    for level in ("0", "-5", "150"):
        _one_line_error(capsys, ["rd", str(DATA), "--y", "y", "--x", "x", f"--level={level}"], "in (0, 100)")
    g = tmp_path / "num.csv"
    g.write_text("0.1,0.10,y\n" + "".join(f"{i / 40 - 0.5},{i},{i % 7}\n" for i in range(40)))
    assert main(["rd", str(g), "--y", "y", "--x", "0.1", "--json"]) == 0  # two names, not one repeated
    assert main(["rd", str(DATA), "--y", "y", "--x", "x", "--vce", "cr1"]) == 0
    assert "--vce 'cr1' needs --cluster COL" in capsys.readouterr().err
