"""``bci-credit analyze``: per-unit causal-effect tables from NWB files, clear messages on bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from bci_credit.cli import main
from bci_credit.io import nwb


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_recording):
    d = tmp_path_factory.mktemp("analyze")
    rec = small_recording
    paths = {"sim": d / "good" / "sim.nwb"}
    nwb.write(rec, paths["sim"])
    paths["nodrive"] = d / "nodrive.nwb"
    nwb.write(dataclasses.replace(rec, drive=None, spiked=None), paths["nodrive"])
    paths["nospikes"] = d / "nospikes.nwb"
    nwb.write(dataclasses.replace(rec, spike_times=[np.array([]), np.array([])], drive=None, spiked=None),
              paths["nospikes"])
    return paths


def run_cli(args, capsys):
    rc = main(["analyze", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_help_has_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "bci-credit analyze session.nwb" in text and "reward-threshold" in text


@pytest.mark.parametrize("value", ["-1e9", "-2.5E-3", "-7", "-.5"])
def test_negative_numbers_in_exponent_form_are_values(value):
    from bci_credit.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["analyze", "f.nwb", "--threshold", value])
    assert args.threshold == float(value)
    args = parser.parse_args(["rd", "d.csv", "--y", "y", "--x", "x", "--cutoff", value])
    assert args.cutoff == float(value)
    with pytest.raises(SystemExit):  # an option's name still reads as one
        parser.parse_args(["analyze", "f.nwb", "--threshold", "-x"])


def test_single_file(files, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, _ = run_cli([files["sim"], "--design", "spike", "--out", out, "--no-density"], capsys)
    assert rc == 0
    t = pd.read_csv(out / "effects.csv")
    assert list(t["design"]) == ["spike", "spike"] + ["naive-od", "naive-rate", "naive-rate-adjusted"] * 2
    for col in ("estimate", "se", "ci_lo", "ci_hi", "bandwidth", "n_left", "n_right", "density_p", "design", "reason"):
        assert col in t.columns
    assert t["estimate"].notna().all()
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "analyze" and run["design"] == "spike" and run["drivers"] == ["0", "1"]
    assert len(list((out / "plots").glob("*.png"))) == 2
    text = (out / "summary.txt").read_text()
    assert (out / "density.csv").exists() and "Units with an effect after Holm's correction for 2 tests" in text
    assert "Units whose own 95% CI excludes 0 (uncorrected; about 0.1 expected by chance" in text
    assert "Causal effects per unit" in stdout


@pytest.mark.parametrize("name, design, missing, instead", [
    ("nodrive", "spike", "drive Z", "designs that can run on it: fuzzy, naive"),
    ("sim", "reward-threshold", "decoder output", "designs that can run on it: spike, fuzzy, naive"),
    ("nospikes", "fuzzy", "spike times", "no design can run on it"),
])
def test_missing_data_messages(files, tmp_path, capsys, name, design, missing, instead):
    rc, _, err = run_cli([files[name], "--design", design, "--out", tmp_path / "o", "--no-plots"], capsys)
    assert rc == 2
    line = err.strip()
    assert line.count("\n") == 0 and "Traceback" not in err
    assert str(files[name]) in line and f"the {design!r} design needs" in line
    assert missing in line and instead in line


def test_not_an_nwb_file(tmp_path, capsys):
    bad = tmp_path / "broken.nwb"
    bad.write_bytes(b"not HDF5")
    rc, _, err = run_cli([bad, "--out", tmp_path / "o"], capsys)
    assert rc == 2 and str(bad) in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # the folder made for the run is not left behind, empty
    (tmp_path / "mine").mkdir()
    rc, _, _ = run_cli([bad, "--out", tmp_path / "mine"], capsys)
    assert rc == 2 and (tmp_path / "mine").is_dir()  # a folder the user made stays


def test_unknown_control_unit(files, tmp_path, capsys):
    rc, _, err = run_cli([files["sim"], "--control-unit", "9", "--out", tmp_path / "o", "--no-plots"], capsys)
    assert rc == 2 and "unit '9' is not in this recording" in err


def test_many_files_one_broken(files, tmp_path, capsys):
    d = tmp_path / "many"
    d.mkdir()
    shutil.copy(files["sim"], d / "a.nwb")
    shutil.copy(files["sim"], d / "b.nwb")
    (d / "broken.nwb").write_bytes(b"this is not an HDF5 file")
    shutil.copy(files["nodrive"], d / "c_nodrive.nwb")
    out = tmp_path / "out"
    rc, stdout, _ = run_cli([d, "--design", "spike", "--out", out, "--no-plots", "--no-density"], capsys)
    assert rc == 0
    t = pd.read_csv(out / "effects.csv")
    assert t.columns[0] == "file" and sorted(set(t["file"])) == sorted([str(d / "a.nwb"), str(d / "b.nwb")])
    st = pd.read_csv(out / "files.csv").set_index("file")
    assert st.loc[str(d / "broken.nwb"), "status"] == "skipped"
    assert "HDF5" in st.loc[str(d / "broken.nwb"), "reason"] or "NWB" in st.loc[str(d / "broken.nwb"), "reason"]
    assert "drive Z" in st.loc[str(d / "c_nodrive.nwb"), "reason"]
    assert (out / "a" / "effects.csv").exists() and (out / "b" / "summary.txt").exists()
    a = t[t["file"] == str(d / "a.nwb")].reset_index(drop=True)
    b = t[t["file"] == str(d / "b.nwb")].reset_index(drop=True)
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-12)
    assert "skipped" in stdout
    prim = t[~t["design"].str.startswith("naive")]
    n_sig = int(((prim["ci_lo"] > 0) | (prim["ci_hi"] < 0)).sum())
    assert "across 2 file(s), rows with an effect after Holm's correction" in stdout
    assert f"with their own 95% CI excluding 0 (uncorrected): {n_sig}" in stdout
    # with the naive design alone, the batch line counts its associations (it counted none: 'no effect rows')
    rc, stdout, _ = run_cli([d, "--design", "naive", "--out", tmp_path / "naive", "--no-plots"], capsys)
    t = pd.read_csv(tmp_path / "naive" / "effects.csv")
    n_sig = int(((t["ci_lo"] > 0) | (t["ci_hi"] < 0)).sum())
    assert rc == 0 and "rows associated with the outcome (naive design; not causal)" in stdout
    assert f"with their own 95% CI excluding 0 (uncorrected): {n_sig}" in stdout and "rows with an effect" not in stdout


def test_reward_threshold_from_nwb(tmp_path, capsys):
    from test_causal_designs import bci_recording

    rec = bci_recording(seed=11, duration_s=200.0)[0]
    path = tmp_path / "bci.nwb"
    nwb.write(rec, path)
    out = tmp_path / "out"
    rc, _, _ = run_cli([path, "--design", "reward-threshold", "--control-unit", "0", "--out", out, "--no-plots",
                        "--no-density"], capsys)
    assert rc == 0
    t = pd.read_csv(out / "effects.csv")
    prim = t[t["design"].str.startswith("reward-threshold")]
    assert len(prim) == 4 and prim["estimate"].notna().all()
    assert list(prim["is_control"]) == [True, False, False, False]
    # the naive rows need a per-window reward: the reward events are counted per 50-ms window
    assert (t["design"] == "naive-od").sum() == 4


def test_blocks_restrict_the_analysis_to_their_windows(tmp_path, capsys, small_recording):
    """--blocks / blocks=: only the named blocks' windows are analysed; the whole-session truth is left out (it
    would not match); unknown names, files without blocks and the reward-threshold design are refused clearly."""
    from bci_credit.analysis.causal import analyze_recording
    from bci_credit.tasks.bci import Block, default_session_config, run_session

    cfg = default_session_config(seed=3)
    cfg = cfg.replace(blocks=(Block("baseline", 10.0, reward=False), Block("conditioning", 20.0)), calibration_s=10.0)
    rec = run_session(cfg).recordings[0]
    n_cond = int((rec.windows["block"] == "conditioning").sum())
    assert 0 < n_cond < len(rec.windows)
    # the session's blocks are also its epochs (NWB /intervals/epochs), spanning their windows
    assert rec.epochs["tags"].tolist() == [["baseline"], ["conditioning"]]
    assert rec.epochs["rewarded"].tolist() == [False, True]
    cond = rec.windows[rec.windows["block"] == "conditioning"]
    assert rec.epochs.loc[1, ["start_s", "stop_s"]].tolist() == [cond["start_s"].iloc[0], cond["stop_s"].iloc[-1]]
    a = analyze_recording(rec, "spike", blocks="conditioning", density=False)
    assert a.primary.options["n_windows"] == n_cond and a.naive.options["n_windows"] == n_cond
    assert not [c for c in a.to_frame().columns if c.startswith("true_")] and a.findings()[1:] and \
        "What the analysis found" not in a.summary()
    assert any(n.startswith(f"blocks: {n_cond} of {len(rec.windows)} windows") for n in a.primary.notes)
    # without the windows' block column the epochs name the blocks; own windows (and Z) are kept, also with a lag
    nb = dataclasses.replace(rec, windows=rec.windows.drop(columns="block"))
    lagged = analyze_recording(nb, "auto", blocks="conditioning", reward_lag_s=0.02, density=False)
    assert lagged.design == "spike" and lagged.primary.options["n_windows"] == n_cond
    assert lagged.primary.options["reward"].endswith("lagged by 0.02 s")
    whole = analyze_recording(rec, "spike", density=False)
    assert not np.allclose(whole.primary.table["estimate"], a.primary.table["estimate"])
    with pytest.raises(ValueError, match="'nope'; this recording's blocks are 'baseline', 'conditioning'"):
        analyze_recording(rec, "spike", blocks=["nope"], density=False)
    with pytest.raises(ValueError, match="reward-threshold design reads the decoder output"):
        analyze_recording(rec, "reward-threshold", blocks="conditioning")
    with pytest.raises(ValueError, match="names no task blocks"):
        analyze_recording(small_recording, "spike", blocks="conditioning")

    path = tmp_path / "bci.nwb"
    nwb.write(rec, path)
    rc, out, _ = run_cli([path, "--blocks", "conditioning", "--out", tmp_path / "a", "--no-plots", "--no-density"],
                         capsys)
    assert rc == 0 and f"note: blocks: {n_cond} of" in out
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["blocks"] == ["conditioning"]
    rc, _, err = run_cli([path, "--blocks", " ", "--out", tmp_path / "b"], capsys)
    assert rc == 2 and "--blocks is empty" in err and not (tmp_path / "b").exists()


def _lab_recording(seed=0, T=200.0, n=6, driver=3, bin_s=0.05):
    """A recording as another lab stores it: spikes and reward events only, task blocks as epochs with tags.
    Reward (an event late in a 50-ms bin) follows a spike of unit ``driver`` in the bin with probability 0.6,
    else 0.1, in the conditioning block only: the naive contrast there is 0.5, diluted outside it."""
    from bci_credit.recording import Recording, TimeSeries, make_units_table

    rng = np.random.default_rng(seed)
    nb = int(round(T / bin_s))
    counts = rng.poisson(rng.uniform(5, 15, n)[None, :] * bin_s, size=(nb, n))
    spikes = [np.sort(np.repeat(np.arange(nb) * bin_s, counts[:, i]) + rng.uniform(0, bin_s, counts[:, i].sum()))
              for i in range(n)]
    tb = np.arange(nb) * bin_s
    cond = (tb >= 0.2 * T) & (tb < 0.8 * T)
    rt = tb[rng.random(nb) < np.where(counts[:, driver] > 0, 0.6, 0.1) * cond] + 0.9 * bin_s
    epochs = pd.DataFrame({"start_s": [0.0, 0.2 * T, 0.8 * T], "stop_s": [0.2 * T, 0.8 * T, T],
                           "tags": [["baseline"], ["conditioning", "rewarded"], ["extinction"]]})
    return Recording(units=make_units_table(n), spike_times=spikes, epochs=epochs,
                     series={"reward": TimeSeries(rt, np.ones(rt.size), kind="events")},
                     meta={"source": "lab", "duration_s": T})


def test_blocks_from_epochs_or_trials_of_another_labs_recording(tmp_path, capsys):
    """Recordings from other labs name their blocks in an epochs table (NWB's add_epoch tags) or a trials
    'block' column, and have no windows table: --blocks lays windows over the named blocks' spans only. The
    driver's naive contrast is 0.5 in the conditioning block (0.5 x 0.6 = 0.3 when pooled over the session)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries as NWBSeries
    from pynwb.behavior import BehavioralEvents

    from bci_credit.analysis._causal_data import block_spans
    from bci_credit.analysis.causal import analyze_recording

    rec = _lab_recording()
    assert block_spans(rec) == ({"baseline": [(0.0, 40.0)], "conditioning": [(40.0, 160.0)],
                                 "rewarded": [(40.0, 160.0)], "extinction": [(160.0, 200.0)]}, "epochs")
    a = analyze_recording(rec, "naive", blocks="conditioning")
    t = a.primary.table.set_index(["unit", "design"])
    assert a.primary.options["n_windows"] == 2400  # 120 s of 50-ms windows
    est, se = t.loc[(3, "naive-od"), "estimate"], t.loc[(3, "naive-od"), "se"]
    assert abs(est - 0.5) < 4 * se and se < 0.03
    whole = analyze_recording(rec, "naive").primary.table.set_index(["unit", "design"])
    assert abs(whole.loc[(3, "naive-od"), "estimate"] - 0.3) < 4 * whole.loc[(3, "naive-od"), "se"]
    note = next(n for n in a.primary.notes if n.startswith("blocks:"))
    assert "2400 windows of 0.05 s laid over the recording" in note and "(from the epochs table)" in note
    assert "outcome: series 'reward'" in note
    assert analyze_recording(rec, "naive", blocks="rewarded", window_s=0.1).primary.options["n_windows"] == 1200
    two = analyze_recording(rec, "naive", blocks=["baseline", "extinction"])
    assert two.primary.options["n_windows"] == 1600
    assert "1 gap(s) in time" in next(n for n in two.primary.notes if n.startswith("blocks:"))
    with pytest.raises(ValueError, match=r"'nope'; this recording's blocks are 'baseline', 'conditioning', "
                                         r"'rewarded', 'extinction' \(from the epochs table\)"):
        analyze_recording(rec, "naive", blocks="nope")

    # a trials table's block column: each run of trials spans its first start to its last stop
    starts = np.arange(0.0, 200.0, 4.0)
    trials = pd.DataFrame({"start_s": starts, "stop_s": starts + 3.0,
                           "block": np.where(starts < 40, "baseline", np.where(starts < 160, "conditioning",
                                                                               "extinction"))})
    by_trials = dataclasses.replace(rec, epochs=None, trials=trials)
    spans, src = block_spans(by_trials)
    assert src == "trials" and spans["conditioning"] == [(40.0, 159.0)]
    b = analyze_recording(by_trials, "naive", blocks="conditioning")
    assert b.primary.options["n_windows"] == 2380 and "(from the trials table's block column)" in b.primary.notes[-1]

    # own windows without a block column: the rows inside the epochs are kept
    w0 = np.arange(0.0, 200.0, 0.5)
    own = dataclasses.replace(rec, windows=pd.DataFrame({"start_s": w0, "stop_s": w0 + 0.5,
                                                         "reward": np.zeros(w0.size)}))
    cut = analyze_recording(own, "naive", blocks="conditioning", naive=False)
    assert cut.primary.options["n_windows"] == 240

    # the same blocks read from an NWB file written with pynwb's add_epoch
    f = NWBFile("lab session", "lab-1", pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime())
    for a_, b_, tags in rec.epochs[["start_s", "stop_s", "tags"]].itertuples(index=False):
        f.add_epoch(a_, b_, tags)
    for st in rec.spike_times:
        f.add_unit(spike_times=st)
    with warnings.catch_warnings():  # pynwb 4 deprecates BehavioralEvents; files from labs still have it
        warnings.simplefilter("ignore", UserWarning)
        events = BehavioralEvents(name="BehavioralEvents")  # reward deliveries (bci_nwb.md B.2)
    events.add_timeseries(NWBSeries(name="reward", data=np.ones(rec.series["reward"].t_s.size),
                                    timestamps=rec.series["reward"].t_s, unit="a.u."))
    f.create_processing_module("behavior", "behaviour").add(events)
    path = tmp_path / "lab.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    back = nwb.read(path)
    assert list(back.epochs["tags"]) == [["baseline"], ["conditioning", "rewarded"], ["extinction"]]
    assert "epochs: 3 (baseline, conditioning, rewarded, extinction)" in back.summary()
    rc, out, _ = run_cli([path, "--design", "naive", "--reward", "reward", "--blocks", "conditioning", "--out",
                          tmp_path / "o"], capsys)
    assert rc == 0 and "2400 windows of 0.05 s laid over the recording analysed" in out, out


def test_blocks_with_auto_window_length_gaps_and_constant_reward(tmp_path):
    """Review cases: auto picks a windows design with blocks (not reward-threshold); a window length with blocks is
    refused (it would lay windows over the whole recording); gaps and a reward that never varies are noted."""
    from bci_credit.analysis.causal import analyze_recording
    from bci_credit.tasks.bci import Block, default_session_config, run_session

    cfg = default_session_config(seed=4)
    cfg = cfg.replace(blocks=(Block("baseline", 6.0, reward=False), Block("conditioning", 12.0),
                              Block("extinction", 6.0, reward=False)), calibration_s=6.0)
    rec = run_session(cfg).recordings[0]
    nodrive = dataclasses.replace(rec, drive=None, spiked=None)
    a = analyze_recording(nodrive, "auto", blocks="conditioning", density=False, naive=False)
    assert a.design in ("fuzzy", "naive")
    # an outcome the reward-threshold design cannot read (windows:, relative:) keeps auto to the windows designs
    assert analyze_recording(nodrive, "auto", reward="windows:reward", density=False, naive=False).design in (
        "fuzzy", "naive")
    with pytest.raises(ValueError, match="give no window length"):
        analyze_recording(rec, "naive", blocks="conditioning", window_s=0.05)
    b = analyze_recording(rec, "naive", blocks=["baseline", "extinction"])
    note = next(n for n in b.primary.notes if n.startswith("blocks:"))
    assert "1 gap(s) in time" in note and "reward is constant in these blocks" in note
    # a constant outcome has nothing to explain: no estimate (a fit would report rounding noise as significant)
    assert b.primary.table["estimate"].isna().all() and not len(b.primary.drivers())
    assert (b.primary.table["reason"] == "the reward is the same (0) in every analysed window").all()


def test_reward_lag_option(files, tmp_path, capsys):
    rc, out, _ = run_cli([files["sim"], "--design", "naive", "--reward", "reward", "--reward-lag", "0.02", "--out",
                          tmp_path / "a", "--no-plots"], capsys)
    assert rc == 0 and "lagged by 0.02 s" in out
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["reward_lag_s"] == 0.02
    rc, _, err = run_cli([files["sim"], "--design", "reward-threshold", "--reward-lag", "0.1", "--out", tmp_path / "b"],
                         capsys)
    assert rc == 2 and "reward-threshold design's outcome is the units' firing" in err
