"""``bci-credit inspect``: a correct summary or a one-line error, for good, odd and broken files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bci_credit.cli import main
from bci_credit.io import nwb

import test_nwb_builders as B
from test_nwb import BAD_KINDS, bad_file


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    rec = B.sim_recording(seed=7)
    path = tmp_path_factory.mktemp("cli") / "sim.nwb"
    nwb.write(rec, path)
    return rec, path


def _json(capsys, *args) -> dict:
    assert main(["inspect", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_summary_of_our_file(sim, capsys):
    rec, path = sim
    s = _json(capsys, path)
    for key in ("n_units", "n_spikes", "duration_s", "n_trials", "units", "warnings"):
        assert key in s
    assert s["n_units"] == rec.n_units and s["n_spikes"] == int(rec.n_spikes.sum())
    assert s["n_trials"] == len(rec.trials) and s["warnings"] == []
    assert s["duration_s"] == pytest.approx(rec.duration_s)
    assert [u["id"] for u in s["units"]] == rec.unit_ids.tolist()
    assert [u["n_spikes"] for u in s["units"]] == rec.n_spikes.tolist()
    np.testing.assert_allclose([u["rate_hz"] for u in s["units"]], rec.rates_hz(), rtol=1e-12)
    assert s["units"][0]["is_control"] is True and s["written_by_bci_credit"] is True
    names = {ts["name"] for ts in s["time_series"]}
    assert {"decoder_output", "cursor", "reward"} <= names
    assert {i["name"] for i in s["intervals"]} == {"trials", "windows", "epochs"}


def test_text_summary(sim, capsys):
    rec, path = sim
    assert main(["inspect", str(path), "--max-units", "2"]) == 0
    out = capsys.readouterr().out
    assert f"units: {rec.n_units} from /units; spikes: {int(rec.n_spikes.sum())}" in out
    assert f"... {rec.n_units - 2} more units" in out
    assert "trials: 4" in out and "decoder_output" in out and "/intervals/windows" in out
    assert "/intervals/epochs: 3 rows; columns: start_time, stop_time, tags, gain; tags: baseline, conditioning, " \
           "rewarded\n" in out


@pytest.mark.parametrize("case", ["no_units", "outside", "binned", "unsorted"])
def test_odd_files_are_summarised_with_warnings(tmp_path, capsys, case):
    if case == "no_units":
        path, expect = B.no_units_file(tmp_path / "f.nwb"), (0, 0, "no Units table")
    elif case == "outside":
        path, expect = B.units_outside_file(tmp_path / "f.nwb", [[0.1, 0.2], [0.3]]), (2, 3, "ecephys/sorted_units")
    elif case == "binned":
        counts = np.array([[1, 0], [2, 1], [0, 0]])
        path, expect = B.binned_file(tmp_path / "f.nwb", counts), (2, 4, "binned spike counts")
    else:
        path, expect = B.unsorted_file(tmp_path / "f.nwb", [[0.2, 0.1]]), (1, 2, "not sorted")
    s = _json(capsys, path)
    assert (s["n_units"], s["n_spikes"]) == expect[:2]
    assert any(expect[2] in w for w in s["warnings"]), s["warnings"]
    assert main(["inspect", str(path)]) == 0
    assert "warnings:" in capsys.readouterr().out


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_unreadable_files_give_a_one_line_error(tmp_path, sim, capsys, kind):
    path = bad_file(tmp_path, kind, sim[1])
    assert main(["inspect", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bci-credit inspect: error:") and str(path) in lines[0]
    assert "Traceback" not in captured.err


def test_help_explains_with_example():
    out = subprocess.run([sys.executable, "-m", "bci_credit.cli", "inspect", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "Summarise an NWB file" in out and "bci-credit inspect session.nwb" in out and "--json" in out
