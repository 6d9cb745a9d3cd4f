"""Bad input to the readers, the analysis entry points and the CLI: a clear error (or warning) naming
what is wrong, never a traceback from deep inside, a silently wrong number or a modified input file."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import warnings

import h5py
import numpy as np
import pytest

from bci_credit.analysis import _causal_data as CD
from bci_credit.analysis import causal
from bci_credit.analysis.rd import RD, check_level, fit_many
from bci_credit.cli import main
from bci_credit.io import nwb
from bci_credit.outputs import OutputPathError, ensure_dir, write_json
from bci_credit.recording import Recording


# ---------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def base(tmp_path_factory, small_recording):
    """A small NWB file written by the package (20 s, 2 units, windows with drive and reward)."""
    path = tmp_path_factory.mktemp("checks") / "base.nwb"
    nwb.write(small_recording, path)
    return path


def mutate(base, tmp_path, name, fn):
    """A copy of ``base`` changed in place by ``fn(h5py.File)``."""
    path = tmp_path / name
    shutil.copy(base, path)
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(capsys, *args):
    rc = main([*map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _inf_spike(f):
    st = f["units/spike_times"]
    a = st[:]
    a[10] = np.inf
    st[:] = a


# ---------------------------------------------------------------------------- 1. non-finite spike times
def test_read_drops_infinite_spike_times_with_a_warning(base, tmp_path, small_recording):
    path = mutate(base, tmp_path, "inf.nwb", _inf_spike)
    with pytest.warns(nwb.NWBReadWarning, match="dropped 1 infinite spike time"):
        rec = nwb.read(path)
    assert all(np.isfinite(s).all() for s in rec.spike_times)
    assert int(rec.n_spikes.sum()) == int(small_recording.n_spikes.sum()) - 1
    assert not any("not sorted" in w for w in rec.meta["warnings"])  # the inf is no disorder


def test_inspect_counts_and_formats_a_file_with_an_infinite_spike(base, tmp_path, small_recording, capsys):
    path = mutate(base, tmp_path, "inf.nwb", _inf_spike)
    s = nwb.inspect(path)
    assert s["n_spikes"] == int(small_recording.n_spikes.sum()) - 1
    assert s["t_stop_s"] is not None and np.isfinite(s["t_stop_s"])
    assert any("infinite" in w for w in s["warnings"]) and not any("not sorted" in w for w in s["warnings"])
    text = nwb.format_summary(s)
    assert "units: 2" in text
    rc, out, err = cli(capsys, "inspect", path)
    assert rc == 0 and "infinite" in out and "Traceback" not in err


def test_format_summary_survives_unknown_times(base):
    s = nwb.inspect(base)
    for missing in ({"t_start_s": None}, {"t_stop_s": None}, {"t_start_s": None, "t_stop_s": None},
                    {"duration_s": None}):
        text = nwb.format_summary({**s, **missing})
        assert text.startswith(str(base))
    assert "[?, " in nwb.format_summary({**s, "t_start_s": None})


# ---------------------------------------------------------------------------- 2. reversed windows
def test_recording_rejects_windows_with_stop_before_start(small_recording):
    w = small_recording.windows.copy()
    w.loc[[3, 5], ["start_s", "stop_s"]] = w.loc[[3, 5], ["stop_s", "start_s"]].to_numpy()
    with pytest.raises(ValueError, match=r"2 window\(s\) with stop_s < start_s \(rows \[3, 5\]"):
        dataclasses.replace(small_recording, windows=w)
    w_nan = small_recording.windows.copy()
    w_nan.loc[0, "stop_s"] = np.nan  # an open interval is allowed
    dataclasses.replace(small_recording, windows=w_nan)


def test_reversed_windows_file_is_reported_by_read_inspect_and_analyze(base, tmp_path, capsys):
    def flip(f):
        g = f["intervals/windows"]
        s, e = g["start_time"][:], g["stop_time"][:]
        g["start_time"][:], g["stop_time"][:] = e, s

    path = mutate(base, tmp_path, "rev.nwb", flip)
    before = sha(path)
    with pytest.raises(nwb.NWBFormatError, match="stop_s < start_s") as err:
        nwb.read(path)
    assert "corrupt" not in str(err.value)
    assert any("stop_time < start_time" in w for w in nwb.inspect(path)["warnings"])
    rc, _, err_text = cli(capsys, "analyze", path, "--out", tmp_path / "out", "--no-plots")
    assert rc == 2 and "stop_s < start_s" in err_text and "Traceback" not in err_text
    assert sha(path) == before


# ---------------------------------------------------------------------------- 3. analyze options
@pytest.mark.parametrize("args, fragment", [
    (["--level", "150"], "--level must be a number in (0, 100)"),
    (["--level", "0"], "--level must be a number in (0, 100)"),
    (["--level", "nan"], "--level must be a number in (0, 100)"),
    (["--max-plots", "-1"], "--max-plots must be >= 0"),
    (["--threshold", "nan"], "--threshold must be a finite number"),
    (["--threshold", "inf"], "--threshold must be a finite number"),
    (["--seed", "-3"], "--seed must be a non-negative integer"),
])
def test_analyze_rejects_bad_options(base, tmp_path, capsys, args, fragment):
    rc, _, err = cli(capsys, "analyze", base, "--out", tmp_path / "out", "--no-plots", *args)
    assert rc == 2 and fragment in err
    assert not (tmp_path / "out").exists()  # rejected before anything was written


def test_analyze_level_below_one_warns_once(base, tmp_path, capsys):
    rc, out, err = cli(capsys, "analyze", base, "--out", tmp_path / "out", "--no-plots", "--no-density",
                       "--design", "spike", "--level", "0.95")
    assert rc == 0
    assert err.count("is a percentage") == 1 and "use --level=95" in err


# ---------------------------------------------------------------------------- 4. level below 1 in RD
def test_rd_level_fraction_warns():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 400)
    y = x + (x > 0) + rng.normal(size=400)
    with pytest.warns(UserWarning, match=r"level=0\.95 is a percentage.*use level=95"):
        RD(y, x, level=0.95)
    with pytest.warns(UserWarning, match="is a percentage"):
        fit_many(x[:, None], y, level=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        RD(y, x, level=95)
        assert check_level(90) == 90.0
    for bad in (0, 100, 150, -1, np.nan, "abc"):
        with pytest.raises(ValueError, match="level must be a number in"):
            RD(y, x, level=bad)


# ---------------------------------------------------------------------------- 5. decoder threshold key
def _with_decoder(rec: Recording, decoder_meta: dict) -> Recording:
    dec = causal.reconstruct_decoder(rec, 0, tau_s=0.2, rate_hz=60.0)
    return dataclasses.replace(rec, series={**rec.series, "decoder_output": dec},
                               meta={**rec.meta, "decoder": decoder_meta})


def test_decoder_threshold_reads_theta_hz_written_by_the_bci_task(small_recording, tmp_path):
    rec = _with_decoder(small_recording, {"mapping": "threshold", "theta_hz": 12.5})
    assert CD.decoder_threshold(rec) == 12.5
    assert CD.design_requirements(rec)["reward-threshold"] is None
    path = nwb.write(rec, tmp_path / "dec.nwb")  # through the file, as `predict conditioning` writes it
    back = nwb.read(path, warn=False)
    assert back.meta["decoder"]["theta_hz"] == 12.5 and CD.decoder_threshold(back) == 12.5


def test_missing_decoder_threshold_names_cli_option_and_keyword(small_recording):
    rec = _with_decoder(small_recording, {"mapping": "threshold"})
    why = CD.design_requirements(rec)["reward-threshold"]
    assert "--threshold" in why and "threshold=" in why and "theta_hz" in why
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        CD.decoder_threshold(rec, float("nan"))


# ---------------------------------------------------------------------------- 6. content problems
def test_no_units_table_says_there_are_no_units(base, tmp_path, capsys):
    path = mutate(base, tmp_path, "no_units.nwb", lambda f: f.__delitem__("units"))
    rc, _, err = cli(capsys, "analyze", path, "--out", tmp_path / "out", "--no-plots")
    assert rc == 2 and "0 units" in err and "drive Z" not in err


def test_missing_reward_column_is_a_content_problem(base, tmp_path, capsys):
    def drop(f):
        del f["intervals/windows/reward"]
        del f["processing/behavior"]

    path = mutate(base, tmp_path, "no_reward.nwb", drop)
    with pytest.warns(nwb.NWBReadWarning) as record:
        rec = nwb.read(path)
    messages = [str(w.message) for w in record]
    # the reader names each missing piece of the layout: the column, the reward series, and what follows
    assert any("has no 'reward' column" in m for m in messages), messages
    assert any("column 'reward' listed in the bci_credit layout is missing" in m for m in messages), messages
    assert any("series 'reward'" in m and "missing; skipped" in m for m in messages), messages
    assert rec.windows["reward"].isna().all()
    rc, _, err = cli(capsys, "analyze", path, "--out", tmp_path / "out", "--no-plots")
    assert rc == 2 and "'reward' column" in err and "--reward NAME" in err
    assert "corrupt" not in err and "truncated" not in err


def test_duplicate_unit_ids_are_a_content_problem(base, tmp_path):
    def dup(f):
        f["units/id"][:] = [7, 7]

    path = mutate(base, tmp_path, "dup.nwb", dup)
    with pytest.raises(nwb.NWBFormatError, match=r"unit ids are not unique \(repeated: \[7\]\)") as err:
        nwb.read(path)
    assert "corrupt" not in str(err.value)


def test_damaged_file_still_gets_the_corrupt_hint(base, tmp_path):
    path = tmp_path / "truncated.nwb"
    data = base.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(nwb.NWBFormatError, match="truncated or corrupt"):
        nwb.read(path)


# ---------------------------------------------------------------------------- 7. output folders
def test_ensure_dir_errors(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(OutputPathError, match=r"--out .*a_file exists and is a file; give a folder"):
        ensure_dir(a_file, option="--out")
    with pytest.raises(OutputPathError, match=r"cannot create folder .*a_file is a file, not a folder"):
        ensure_dir(a_file / "sub")
    assert ensure_dir(tmp_path / "new" / "deeper").is_dir()
    with pytest.raises(OutputPathError, match="is a folder; give a file path"):
        write_json({}, tmp_path / "new")
    assert a_file.read_text() == "x"


def test_nwb_write_onto_a_folder_is_a_clear_error(small_recording, tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputPathError, match="is a folder"):
        nwb.write(small_recording, tmp_path / "d")


@pytest.mark.parametrize("command", [
    ["analyze", "BASE", "--no-plots"],
    ["simulate", "paper_2neuron_estimation", "--duration", "1", "--no-progress"],
])
def test_cli_out_that_is_a_file_or_cannot_be_created(base, tmp_path, capsys, command):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me")
    command = [str(base) if c == "BASE" else c for c in command]
    before = sha(base)
    rc, _, err = cli(capsys, *command, "--out", a_file)
    assert rc == 2 and "--out" in err and "exists and is a file; give a folder" in err
    rc, _, err = cli(capsys, *command, "--out", a_file / "sub")
    assert rc == 2 and "cannot create folder" in err and "Traceback" not in err
    assert a_file.read_text() == "keep me" and sha(base) == before


def test_cli_out_holding_another_commands_results_is_refused(base, tmp_path, capsys):
    sim = tmp_path / "sim"
    rc, _, _ = cli(capsys, "simulate", "paper_2neuron_estimation", "--duration", "1", "--no-progress", "--out", sim)
    assert rc == 0
    before = (sim / "run.json").read_text()
    rc, _, err = cli(capsys, "analyze", base, "--no-plots", "--out", sim)
    assert rc == 2 and "holds the results of a 'simulate' run" in err and "another folder" in err
    assert (sim / "run.json").read_text() == before and not (sim / "effects.csv").exists()
    # the same command may write into its own folder again
    rc, _, _ = cli(capsys, "simulate", "paper_2neuron_estimation", "--duration", "1", "--no-progress", "--out", sim)
    assert rc == 0
