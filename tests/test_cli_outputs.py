"""Output folders of the CLI: one run per folder, nothing left behind by a failed start."""

from __future__ import annotations

import json

import pytest

from bci_credit.cli import main
from bci_credit.outputs import remove_previous_outputs


def test_a_rerun_removes_the_files_of_the_previous_run_it_does_not_rewrite(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["simulate", "paper_2neuron_estimation", "--duration", "1", "--out", str(out), "--no-progress"]) == 0
    assert (out / "session.nwb").is_file()
    (out / "notes.txt").write_text("mine")  # not written by bci-credit: never touched
    capsys.readouterr()
    assert main(["simulate", "paper_2neuron_estimation", "--duration", "1", "--no-nwb", "--out", str(out),
                 "--no-progress"]) == 0
    assert "removed the previous run's session.nwb" in capsys.readouterr().out
    assert not (out / "session.nwb").exists() and (out / "notes.txt").read_text() == "mine"
    assert "session.nwb" not in json.loads((out / "run.json").read_text())["files"]


def test_remove_previous_outputs_touches_only_listed_plain_files_in_the_folder(tmp_path):
    (tmp_path / "a.csv").write_text("1")
    (tmp_path / "b.png").write_text("1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"files": ["a.csv", "b.png", "sub", "../x", "run.json"]}))
    assert remove_previous_outputs(tmp_path, keep=["b.png"]) == ["a.csv"]
    assert (tmp_path / "b.png").exists() and (tmp_path / "sub").is_dir() and (tmp_path / "run.json").exists()
    assert remove_previous_outputs(tmp_path / "none", keep=[]) == []


@pytest.mark.parametrize("argv", [
    ["sweep", "paper_2neuron_estimation", "--grid", "cc=0,0.5", "--duration", "1"],
    ["simulate", "paper_2neuron_estimation", "--set", "learning.nope=1", "--duration", "1"],
])
def test_a_failed_start_leaves_no_folder(tmp_path, capsys, argv):
    out = tmp_path / "new"
    assert main([*argv, "--out", str(out)]) == 2
    assert not out.exists()
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "kept").mkdir()
    assert main([*argv, "--out", str(tmp_path / "kept" / "a" / "b")]) == 2  # every folder it made is removed
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not any((tmp_path / "kept").iterdir())
    # 'x/../kept/new' makes x and kept/new; it removes both, and never the user's own (empty) 'kept'
    assert main([*argv, "--out", str(tmp_path / "x" / ".." / "kept" / "new")]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not any((tmp_path / "kept").iterdir())


def test_an_empty_out_is_refused(capsys):
    assert main(["simulate", "paper_2neuron_estimation", "--duration", "1", "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err
