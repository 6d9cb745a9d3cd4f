"""Bad input to Recording, nwb.write, analyze/inspect on remote sources, Dask schedulers and reproduce:
a clear error naming what is wrong (never a deep traceback, a silently wrong number or a broken file)."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from bci_credit import parallel
from bci_credit.cli import main
from bci_credit.io import nwb
from bci_credit.recording import Recording, WeightTrace, make_units_table

WINDOWS = pd.DataFrame({"start_s": [0.0, 0.1], "stop_s": [0.1, 0.2], "reward": [1.0, 2.0]})
TRAINS = [[0.1], [0.2]]


def _rec(**kw):
    kw.setdefault("units", make_units_table(2))
    kw.setdefault("spike_times", TRAINS)
    return Recording(**kw)


# ---------------------------------------------------------------- Recording: spike times


@pytest.mark.parametrize("trains, what", [
    ([[0.1, np.nan, 0.3], [0.2]], "1 NaN"),
    ([[np.nan, 0.1, 0.05], [0.2]], "1 NaN"),  # NaN first: not called "not sorted"
    ([[0.1, np.inf], [0.2]], "1 infinite"),
    ([[0.1], [-np.inf, np.nan, 0.2]], "1 NaN and 1 infinite"),
])
def test_non_finite_spike_times_are_refused(trains, what):
    with pytest.raises(ValueError, match=rf"spike times of unit \d include {what} value.*np\.isfinite") as e:
        _rec(spike_times=trains)
    assert "sorted" not in str(e.value)


def test_non_finite_spike_times_are_refused_by_validate_and_write(tmp_path):
    rec = _rec()
    rec.spike_times[0] = np.array([0.1, np.nan])
    with pytest.raises(ValueError, match="NaN"):
        rec.validate()
    with pytest.raises(ValueError, match="NaN"):
        nwb.write(rec, tmp_path / "x.nwb")
    assert not (tmp_path / "x.nwb").exists()


def test_spike_times_as_dict_keyed_by_unit_id():
    units = make_units_table(2)
    units.index = pd.Index(["b", "a"], name="unit_id")
    rec = Recording(units, {"a": [0.5], "b": [0.1, 0.2]})  # put in the order of units
    assert rec.n_spikes.tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"no spike times for unit\(s\) \['b'\]"):
        Recording(units, {"a": [0.5]})
    with pytest.raises(ValueError, match=r"key\(s\) \['c'\] are not unit ids"):
        Recording(units, {"a": [0.5], "b": [0.1], "c": [1.0]})


@pytest.mark.parametrize("trains, err, match", [
    (5, TypeError, "spike_times must be a list"),
    ("0.1,0.2", TypeError, "spike_times must be a list"),
    ([["x"], [0.2]], ValueError, "spike times of unit 0 must be numbers"),
    (["0.1", [0.2]], TypeError, "spike times of unit 0 must be numbers"),
])
def test_spike_times_of_the_wrong_type(trains, err, match):
    with pytest.raises(err, match=match):
        _rec(spike_times=trains)


# ---------------------------------------------------------------- Recording: units, windows, arrays


@pytest.mark.parametrize("flags", [["no", "yes"], ["True", "False"], [0.5, 1], [np.nan, 1], [None, True]])
def test_is_control_only_takes_bools_or_0_1(flags):
    units = make_units_table(2)
    units["is_control"] = pd.Series(flags, index=units.index, dtype=object)
    with pytest.raises(ValueError, match=r"is_control'\] must be True/False \(or 0/1\)"):
        Recording(units, TRAINS)


@pytest.mark.parametrize("flags", [[0, 1], [1.0, 0.0], [np.True_, False], np.array([True, False])])
def test_is_control_bools_and_0_1_still_work(flags):
    units = make_units_table(2)
    units["is_control"] = flags
    rec = Recording(units, TRAINS)
    assert rec.units["is_control"].dtype == bool
    assert rec.units["is_control"].tolist() == [bool(f) for f in flags]


def test_threshold_and_reward_must_be_numbers():
    units = make_units_table(2)
    units["threshold"] = ["a", "1.0"]
    with pytest.raises(ValueError, match=r"threshold'\] must be numbers.*unit 0: 'a'"):
        Recording(units, TRAINS)
    with pytest.raises(ValueError, match=r"windows\['reward'\] must be numbers.*row 1: 'x'"):
        _rec(windows=WINDOWS.assign(reward=[1.0, "x"]))
    rec = _rec(windows=WINDOWS.assign(reward=[1.0, np.nan]))  # NaN = no reward: fine
    assert np.isnan(rec.windows["reward"].iloc[1])


@pytest.mark.parametrize("name, value, match", [
    ("spiked", 0.5, r"spiked must have shape \(n_windows, n_units\) = \(2, 2\), got \(\)"),
    ("spiked", np.full((2, 2), 0.5), r"spiked must hold True/False \(or 0/1\).*e\.g\. 0\.5"),
    ("spiked", np.array([["a", "b"], ["c", "d"]]), "spiked must hold True/False"),
    ("drive", np.array([["a", "b"], ["c", "d"]]), "drive must hold numbers"),
    ("drive", np.zeros((2, 3)), r"drive must have shape .*\(2, 2\), got \(2, 3\)"),
    ("drive", {"a": 1}, "drive must be an array"),
])
def test_drive_and_spiked_shape_and_dtype(name, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _rec(windows=WINDOWS, **{name: value})


def test_drive_and_spiked_valid_forms_still_work():
    rec = _rec(windows=WINDOWS, drive=[[0.0, 1.0], [2.0, 3.0]], spiked=np.array([[0, 1], [1, 0]]))
    assert isinstance(rec.drive, np.ndarray) and rec.drive.shape == (2, 2)
    assert rec.spiked.dtype.kind == "i"  # 0/1 numbers kept as they are
    rec = _rec(windows=WINDOWS, drive=np.full((2, 2), np.nan), spiked=np.zeros((2, 2), bool))
    assert rec.spiked.dtype == bool


def test_weight_trace_must_have_one_column_per_unit(tmp_path):
    with pytest.raises(ValueError, match=r"weights has 3 column\(s\) but the recording has 2 unit\(s\)"):
        _rec(weights=WeightTrace([0.0, 1.0], np.zeros((2, 3))))
    with pytest.raises(TypeError, match="weights must be a WeightTrace"):
        _rec(weights=np.zeros((2, 2)))


@pytest.mark.parametrize("kw, match", [
    ({"units": [0, 1]}, "units must be a pandas DataFrame"),
    ({"units": {"is_control": [True, False]}}, "units must be a pandas DataFrame"),
    ({"windows": {"start_s": [0], "stop_s": [1], "reward": [0]}}, "windows must be a pandas DataFrame"),
    ({"trials": [[0, 1]]}, "trials must be a pandas DataFrame"),
    ({"meta": [1, 2]}, "meta must be a dict"),
    ({"meta": "simulation"}, "meta must be a dict"),
    ({"series": [1]}, "series must be a dict"),
])
def test_wrong_container_types_are_type_errors(kw, match):
    with pytest.raises(TypeError, match=match):
        _rec(**kw)


def test_meta_none_is_an_empty_dict():
    rec = _rec(meta=None)
    assert rec.meta == {} and "unknown source" in rec.summary()


def test_select_units_takes_one_id_or_a_list():
    units = make_units_table(3)
    units.index = pd.Index(["a", "b", "c"])
    rec = Recording(units, [[0.1], [0.2, 0.3], []], windows=WINDOWS, drive=np.zeros((2, 3)))
    assert rec.select_units("b").unit_ids.tolist() == ["b"]
    assert rec.select_units("b").n_spikes.tolist() == [2]
    assert rec.select_units(["c", "a"]).unit_ids.tolist() == ["c", "a"]
    assert _rec().select_units(0).unit_ids.tolist() == [0]
    assert _rec().select_units(np.int64(1)).unit_ids.tolist() == [1]
    with pytest.raises(ValueError, match=r"select_units got unit\(s\) \['a'\] more than once"):
        rec.select_units(["a", "b", "a"])
    with pytest.raises(KeyError, match="unit 'z' is not in this recording"):
        rec.select_units("z")


def test_valid_recording_unchanged(small_recording):
    rec = small_recording
    again = Recording(rec.units, rec.spike_times, rec.windows, rec.drive, rec.spiked, rec.trials, rec.series,
                      rec.weights, rec.meta)
    assert again.equals(rec, check_meta=True)
    assert again.drive is rec.drive and again.spiked is rec.spiked  # arrays are not copied


# ---------------------------------------------------------------- nwb.write: ids and meta keys


def test_write_refuses_unit_ids_equal_as_text(tmp_path):
    units = make_units_table(2)
    units.index = pd.Index(["1", 1], name="unit_id")
    rec = Recording(units, TRAINS)  # fine in memory
    with pytest.raises(ValueError, match=r"unit ids '1' and 1 are the same as text"):
        nwb.write(rec, tmp_path / "ids.nwb")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temp file


def test_write_non_text_meta_keys_become_text_and_clashes_are_refused(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = _rec(meta={"source": "simulation", 5: "five", "nested": {1: [1, 2]}})
        nwb.write(rec, tmp_path / "m.nwb")
        back = nwb.read(tmp_path / "m.nwb", warn=False)
    assert back.meta["5"] == "five" and back.meta["nested"] == {"1": [1, 2]}
    for meta, where in (({5: "a", "5": "b"}, "meta has the keys 5 and '5'"),
                        ({"x": [{1: 1, "1": 2}]}, r"meta\['x'\]\[0\] has the keys 1 and '1'")):
        with pytest.raises(ValueError, match=where + ".*are the same as text.*rename one"):
            nwb.write(_rec(meta={"source": "simulation", **meta}), tmp_path / "clash.nwb")
    assert not (tmp_path / "clash.nwb").exists()


# ---------------------------------------------------------------- analyze / inspect on remote sources


def _cli(capsys, *args):
    rc = main([*map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


class _NoRangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static server that ignores Range headers (answers 200 with the whole file)."""

    def log_message(self, *args):
        pass


@pytest.fixture
def no_range_server(tmp_path):
    (tmp_path / "x.nwb").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    handler = functools.partial(_NoRangeHandler, directory=str(tmp_path))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/x.nwb"
    finally:
        srv.shutdown()
        srv.server_close()


def test_analyze_unreachable_url_is_one_line(tmp_path, capsys):
    pytest.importorskip("requests")
    rc, _, err = _cli(capsys, "analyze", "http://127.0.0.1:9/x.nwb", "--out", tmp_path / "an")
    assert rc == 2
    assert "cannot connect" in err and "http://127.0.0.1:9/x.nwb" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_analyze_server_without_range_support_is_one_line(tmp_path, capsys, no_range_server):
    pytest.importorskip("requests")
    rc, _, err = _cli(capsys, "analyze", no_range_server, "--out", tmp_path / "an")
    assert rc == 2 and "ignores HTTP range requests" in err and "Traceback" not in err


def test_analyze_without_the_remote_extra_is_one_line(tmp_path, capsys, monkeypatch):
    from bci_credit.io import remote

    def missing():
        raise ImportError(f"reading remote NWB files needs the 'remote' extra: {remote._EXTRA_HINT}")

    monkeypatch.setattr(remote, "_requests", missing)
    rc, _, err = _cli(capsys, "analyze", "https://example.org/x.nwb", "--out", tmp_path / "an")
    assert rc == 2 and "needs the 'remote' extra" in err and "Traceback" not in err


def test_analyze_batch_skips_remote_failures_and_goes_on(tmp_path, capsys, small_recording):
    pytest.importorskip("requests")
    good = tmp_path / "good.nwb"
    nwb.write(small_recording, good)
    rc, out, err = _cli(capsys, "analyze", "http://127.0.0.1:9/x.nwb", good, "dandi://000404",
                        "--no-plots", "--no-density", "--out", tmp_path / "an")
    assert rc == 0 and "Traceback" not in err
    status = pd.read_csv(tmp_path / "an" / "files.csv").set_index("file")
    assert status.loc[str(good), "status"] == "ok"
    assert status.loc["http://127.0.0.1:9/x.nwb", "status"] == "skipped"
    assert status.loc["http://127.0.0.1:9/x.nwb", "reason"].startswith("ConnectionError:")
    assert "need a dandiset, a version and a file path" in status.loc["dandi://000404", "reason"]


@pytest.mark.parametrize("url, match", [
    ("dandi://000404", "need a dandiset, a version and a file path"),
    ("dandi://", "need a dandiset, a version and a file path"),
    ("dandi://dandi/", "no dandiset"),
    ("s3://bucket-only", "write s3://BUCKET/KEY"),
])
def test_inspect_malformed_remote_address_is_one_line(capsys, url, match):
    rc, _, err = _cli(capsys, "inspect", url)
    assert rc == 2 and match in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- Dask scheduler addresses


def _sq(x):
    return x * x


@pytest.mark.parametrize("address, why", [
    ("dask", "missing port number"),
    ("tcp://10.0.0.5", "missing port number"),
    ("tcp://:8786", "missing host"),
    ("tcp://host:port", "port 'port' is not a number"),
    ("tcp://host:0", "port '0' is not a number from 1 to 65535"),
    ("http://host:8786", "unknown scheme 'http://'"),
    ("inproc://", "an inproc address looks like inproc://IP/PID/N"),
    ("inproc://10.0.0.1/1/1", "an inproc:// cluster lives in process 1, not in this one"),
])
def test_bad_scheduler_address_form_is_refused_at_once(address, why):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"scheduler '{address}' is not a Dask scheduler address \({why}"):
        list(parallel.imap_unordered(_sq, [1, 2], scheduler=address))
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786", "10.0.0.5:8786", "tls://h.example:8786",
                                     "TCP://[::1]:8786", " tcp://h:1 "])
def test_good_scheduler_address_forms_pass_the_check(address):
    assert parallel._check_scheduler_address(address) == address.strip()


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # `import dask.distributed` now fails
    with pytest.raises(ImportError, match=r"needs the 'distributed' extra: pip install 'bci_credit\[distributed\]'"):
        list(parallel.imap_unordered(_sq, [1, 2], scheduler="tcp://127.0.0.1:9"))


def test_failed_dask_connection_leaves_no_half_made_client():
    """A server that is not a Dask scheduler: one ConnectionError, fast, and no ``Client.__del__``
    traceback (nor its 30 s wait) when the interpreter exits."""
    pytest.importorskip("distributed")
    script = textwrap.dedent("""
        import socket, threading
        from bci_credit import parallel
        parallel.DASK_CONNECT_TIMEOUT_S = 2.0
        srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(5)
        keep = []
        def serve():
            while True:
                c, _ = srv.accept(); keep.append(c); c.sendall(b"\\xff" * 64)
        threading.Thread(target=serve, daemon=True).start()
        try:
            list(parallel.imap_unordered(abs, [1], scheduler=f"tcp://127.0.0.1:{srv.getsockname()[1]}"))
        except ConnectionError as err:
            print("ERROR", err)
    """)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t0
    assert "ERROR cannot connect to the Dask scheduler" in res.stdout, res.stderr
    assert "is a Dask scheduler listening at that address?" in res.stdout
    assert "Exception ignored" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert elapsed < 20


def test_sweep_cli_bad_scheduler_is_one_line(tmp_path, capsys):
    t0 = time.perf_counter()
    rc, _, err = _cli(capsys, "sweep", "paper_2neuron_estimation", "--scheduler", "dask", "--duration", "0.2",
                      "--out", tmp_path / "s", "--no-progress", "--no-figure")
    assert rc == 2 and "'dask' is not a Dask scheduler address" in err and "Traceback" not in err
    assert time.perf_counter() - t0 < 10


# ---------------------------------------------------------------- reproduce


def test_reproduce_runs_each_named_recipe_once(tmp_path, capsys, monkeypatch):
    import bci_credit.reproduce as R

    calls = []

    def fake(name, out, **kw):
        calls.append(name)
        return {"acceptance": {"ok": {"passed": True}}}

    monkeypatch.setattr(R, "run_recipe", fake)
    first, second = list(R.RECIPES)[:2]
    rc, out, _ = _cli(capsys, "reproduce", first, second, first, "--quick", "--out", tmp_path / "r")
    assert rc == 0 and calls == [first, second]
    assert "wrote 5 files" in out


def test_sweep_with_a_malformed_scheduler_address_writes_nothing(tmp_path):
    from bci_credit.config import load_preset
    from bci_credit.sweep import run_sweep

    with pytest.raises(ValueError, match="missing port number"):
        run_sweep(load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 0.2}), {"c": [0.5]},
                  out=tmp_path / "sw", scheduler="dask")
    assert not (tmp_path / "sw").exists() or not any((tmp_path / "sw").iterdir())


@pytest.mark.parametrize("epochs, match", [
    ("baseline", "Recording.epochs must be a pandas DataFrame"),
    (pd.DataFrame({"start_s": [0.0]}), r"Recording.epochs lacks column\(s\) \['stop_s'\]"),
    (pd.DataFrame({"start_s": ["a"], "stop_s": [1.0]}), "start_s/stop_s must be numbers"),
    (pd.DataFrame({"start_s": [0.0, 5.0], "stop_s": [5.0, 4.0]}), r"1 epoch\(s\) with stop_s < start_s \(e.g. row 1"),
])
def test_bad_epochs_are_refused(epochs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Recording(units=make_units_table(1), spike_times=[np.array([0.5])], epochs=epochs)
