"""Sweeps: grid parsing, seeds, identical results for any n_jobs / Dask, journaling, resume after a kill."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bci_credit.config import ConfigError, load_preset
from bci_credit.recording import Recording, WeightTrace, make_units_table
from bci_credit.sweep import (
    JOURNAL,
    default_metrics,
    load_results,
    make_tasks,
    normalize_grid,
    parse_grid_item,
    rd_quick,
    resolve_key,
    run_sweep,
)

REPO = Path(__file__).resolve().parents[1]
#: Columns that legitimately differ between runs (wall time, process id).
VOLATILE = ["elapsed_s", "cpu_s", "worker"]
_HERE = f"{socket.gethostname()}:{os.getpid()}"


@pytest.fixture(scope="module")
def cfg():
    return load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 1.0})


GRID = {"c": [0.0, 0.5, 0.99], "p": [0.01, 0.2]}


@pytest.fixture(scope="module")
def reference(cfg):
    """The sweep run in this process, one task after the other, nothing written."""
    return run_sweep(cfg, GRID, replicates=2, seed=5, n_jobs=1)


def _stable(df):
    return df.drop(columns=VOLATILE).reset_index(drop=True)


# ---------------------------------------------------------------- grid and seeds


def test_grid_keys_and_values(cfg):
    assert resolve_key("c", cfg) == "population.c"
    assert resolve_key("p", cfg) == "learning.p"
    assert resolve_key("sigma", cfg) == "model.sigma"
    assert resolve_key("model.tau_s", cfg) == "model.tau_s"
    assert resolve_key("duration_s", cfg) == "run.duration_s"
    with pytest.raises(ConfigError, match="not a config field"):
        resolve_key("bogus", cfg)
    with pytest.raises(ConfigError, match="has no key 'sigmaa'"):
        resolve_key("model.sigmaa", cfg)
    with pytest.raises(ConfigError, match="--seed"):
        resolve_key("run.seed", cfg)
    banana = load_preset("paper_2neuron_banana")  # a setting of the rule that the preset leaves at its default
    assert "warmup" not in banana.learning.params and resolve_key("warmup", banana) == "learning.warmup"
    assert parse_grid_item("c=0,0.5,0.99") == ("c", [0, 0.5, 0.99])
    assert parse_grid_item("w=[12,9],[14,7]") == ("w", [[12, 9], [14, 7]])
    assert parse_grid_item("noise=per_step,sde") == ("noise", ["per_step", "sde"])
    assert parse_grid_item("c=0:1:3") == ("c", [0.0, 0.5, 1.0])
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        parse_grid_item("c")
    grid = normalize_grid(cfg, ["c=0,0.5", "sigma=5,10"])
    assert grid == {"population.c": [0, 0.5], "model.sigma": [5, 10]}
    with pytest.raises(ConfigError, match=r"grid point .*population.c.*1.5"):
        make_tasks(cfg, normalize_grid(cfg, {"c": [0.5, 1.5]}), 1, 0)


def test_task_seeds_depend_only_on_root_and_key(cfg):
    grid = normalize_grid(cfg, GRID)
    three = make_tasks(cfg, grid, 3, 5)
    two = make_tasks(cfg, grid, 2, 5)
    by_key = {t.key: t.seed for t in three}
    assert all(by_key[t.key] == t.seed for t in two)  # adding replicates keeps the old seeds
    assert len({t.seed for t in three}) == len(three)
    assert [t.key for t in two[:3]] == [(0, 0), (0, 1), (1, 0)]  # last key fastest, replicates innermost


# ---------------------------------------------------------------- metrics


def test_rd_quick_known_answer():
    # unit 0 decides the reward (1 when it spiked): effect 1; unit 1 spikes in the other windows
    z = np.array([[0.92, 1.05], [1.05, 0.95], [0.97, 1.01], [1.02, 0.99], [3.0, 1.03]])
    h = z > 1.0
    r = h[:, 0].astype(float)
    est, n = rd_quick(z, h, r, 1.0, 0.1)
    np.testing.assert_allclose(est, [1.0, 1 / 3 - 1.0])
    np.testing.assert_array_equal(n, [4, 5])
    est, n = rd_quick(z, h, r, 1.0, 0.005)
    assert np.isnan(est).all() and (n == 0).all()  # empty window: NaN, not an error


def test_default_metrics_with_learning(cfg):
    learn = cfg.with_overrides(**{"learning.rule": "rdd", "learning.p": 0.1})
    rec = Recording(units=make_units_table(2, threshold=1.0), spike_times=[[0.1, 0.5], [0.2]],
                    windows=pd.DataFrame({"start_s": np.arange(20) * 0.05, "stop_s": np.arange(1, 21) * 0.05,
                                          "reward": np.arange(20.0)}),
                    weights=WeightTrace([0.0, 1.0], [[12.0, 9.0], [13.0, 8.0]]), meta={"duration_s": 1.0})
    m = default_metrics(rec, learn)
    np.testing.assert_allclose(m["w_final"], [13.0, 8.0])
    np.testing.assert_allclose(m["final_cost"], 18.5)  # mean of the last 10 % (2 of 20) windows
    np.testing.assert_allclose(m["rate_hz"], [2.0, 1.0])
    assert "rdd_const" not in m


def test_sweep_with_learning_gives_final_weights():
    cfg = load_preset("paper_2neuron_banana").with_overrides(**{"run.duration_s": 2.0})
    res = run_sweep(cfg, {"c": [0.5]}, replicates=1, seed=1)
    row = res.results.iloc[0]
    assert row["status"] == "ok", row["reason"]
    for col in ("w_final_0", "w_final_1", "final_cost", "mean_reward"):
        assert np.isfinite(row[col]), col
    assert 2.0 <= row["w_final_0"] <= 20.0  # the preset clips weights to [2, 20]


def test_reference_sweep_rows(reference):
    df = reference.results
    assert len(df) == 12 and df["task_id"].tolist() == list(range(12))
    assert (df["status"] == "ok").all()
    assert {"population.c", "learning.p", "seed", "rdd_const_0", "od_1", "true_direct_effect_0", "mean_reward",
            "rate_hz_1", "n_near_0"} <= set(df.columns)
    # the window p of a task is its grid value: more windows near threshold at p = 0.2 than at 0.01
    wide = df[df["learning.p"] == 0.2]["n_near_0"].to_numpy()
    narrow = df[df["learning.p"] == 0.01]["n_near_0"].to_numpy()
    assert (wide > narrow).all()
    assert len(reference.summary) == 6 and (reference.summary["n_ok"] == 2).all()


# ---------------------------------------------------------------- identical results for any backend


def test_same_results_with_two_processes_and_folder(cfg, reference, tmp_path):
    res = run_sweep(cfg, GRID, replicates=2, seed=5, n_jobs=2, out=tmp_path / "s")
    pd.testing.assert_frame_equal(_stable(res.results), _stable(reference.results), check_exact=True)
    assert not (res.results["worker"] == _HERE).any()  # ran in worker processes
    on_disk = pd.read_csv(tmp_path / "s" / "results.csv")
    np.testing.assert_array_equal(on_disk["seed"], reference.results["seed"])
    np.testing.assert_array_equal(on_disk["rdd_const_0"], reference.results["rdd_const_0"])
    pd.testing.assert_frame_equal(_stable(load_results(tmp_path / "s")), _stable(reference.results), check_exact=True)
    for name in ("sweep.json", "run.json", "summary.csv", "sweep.png", JOURNAL):
        assert (tmp_path / "s" / name).is_file(), name
    assert json.loads((tmp_path / "s" / "run.json").read_text())["n_ok"] == 12


def test_same_results_on_a_dask_cluster(cfg, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        res = run_sweep(cfg, GRID, replicates=2, seed=5, scheduler=cl.scheduler_address)
    pd.testing.assert_frame_equal(_stable(res.results), _stable(reference.results), check_exact=True)


@pytest.mark.slow
def test_same_results_on_a_dask_cluster_of_processes(cfg, reference, monkeypatch):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        monkeypatch.setenv("BCI_CREDIT_SCHEDULER", cl.scheduler_address)  # no argument: the environment decides
        res = run_sweep(cfg, GRID, replicates=2, seed=5)
    assert not (res.results["worker"] == _HERE).any()
    pd.testing.assert_frame_equal(_stable(res.results), _stable(reference.results), check_exact=True)


# ---------------------------------------------------------------- journal and resume


def test_resume_after_half_written_line(cfg, reference, tmp_path):
    out = tmp_path / "s"
    run_sweep(cfg, GRID, replicates=2, seed=5, out=out, figure=False)
    journal = out / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    # keep 5 finished tasks, then a line cut in the middle, as a killed process leaves it
    journal.write_bytes(b"".join(lines[:5]) + lines[5][: len(lines[5]) // 2])
    res = run_sweep(cfg, GRID, replicates=2, seed=5, out=out, figure=False)
    assert (res.n_resumed, res.n_run) == (5, 7)
    pd.testing.assert_frame_equal(_stable(res.results), _stable(reference.results), check_exact=True)
    keys = [(r["point"], r["replicate"]) for r in map(json.loads, journal.read_bytes().splitlines())]
    assert len(keys) == len(set(keys)) == 12  # every task exactly once, no glued half line
    again = run_sweep(cfg, GRID, replicates=3, seed=5, out=out, figure=False)  # extend: only the new replicates run
    assert (again.n_resumed, again.n_run) == (12, 6)
    kept = again.results[again.results["replicate"] < 2].drop(columns="task_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(_stable(kept), _stable(reference.results).drop(columns="task_id"), check_exact=True)


def test_a_different_sweep_in_the_folder_is_refused(cfg, tmp_path):
    out = tmp_path / "s"
    run_sweep(cfg, {"c": [0.5]}, out=out, seed=1, figure=False)
    with pytest.raises(ValueError, match="different sweep.*grid"):
        run_sweep(cfg, {"c": [0.9]}, out=out, seed=1)
    res = run_sweep(cfg, {"c": [0.9]}, out=out, seed=1, overwrite=True, figure=False)
    assert res.results["population.c"].tolist() == [0.9]


def test_the_same_grid_in_another_key_order_resumes_in_the_stored_order(cfg, tmp_path):
    # tasks are numbered over the keys in order; a reordered grid used to resume with the new order,
    # filing runs of one grid point under another's number
    out = tmp_path / "s"
    first = run_sweep(cfg, {"c": [0.0, 0.9], "p": [0.01, 0.2]}, out=out, seed=1, figure=False)
    again = run_sweep(cfg, {"p": [0.01, 0.2], "c": [0.0, 0.9]}, out=out, seed=1, replicates=2, figure=False)
    assert (again.n_resumed, again.n_run) == (4, 4)
    res = again.results
    for (point, rep), row in res.set_index(["point", "replicate"]).iterrows():
        ref = first.results[(first.results.point == point)].iloc[0]  # one point, one pair of values
        assert (row["population.c"], row["learning.p"]) == (ref["population.c"], ref["learning.p"])
    assert res.groupby("point")[["population.c", "learning.p"]].nunique().max().max() == 1


def test_two_sweeps_cannot_write_one_folder(cfg, tmp_path):
    from bci_credit.sweep import _locked

    pytest.importorskip("fcntl")
    out = tmp_path / "s"
    out.mkdir()
    with _locked(out):  # as if another process were running a sweep there
        with pytest.raises(RuntimeError, match="another sweep is writing to this folder"):
            run_sweep(cfg, {"c": [0.5]}, out=out, seed=1)


def _metric_with_failure(rec, config):
    if config.population.c > 0.9:
        raise RuntimeError("unstable at high c")
    return {"n_spikes_total": int(rec.n_spikes.sum())}


def test_custom_metrics_and_failed_tasks(cfg, tmp_path):
    res = run_sweep(cfg, {"c": [0.5, 0.99]}, replicates=2, seed=3, metrics=_metric_with_failure, out=tmp_path / "s",
                    figure=False)
    assert res.results["status"].tolist() == ["ok", "ok", "error", "error"]
    assert (res.results["reason"].iloc[2:] == "RuntimeError: unstable at high c").all()
    assert (res.results["n_spikes_total"].iloc[:2] > 0).all()
    rerun = run_sweep(cfg, {"c": [0.5, 0.99]}, replicates=2, seed=3, metrics=_metric_with_failure,
                      out=tmp_path / "s", figure=False)
    assert (rerun.n_resumed, rerun.n_run) == (2, 2)  # failed tasks are retried, finished ones are not


# ---------------------------------------------------------------- the command line


def test_cli_sweep_help_and_errors(tmp_path, capsys):
    from bci_credit.cli import main

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "examples:" in capsys.readouterr().out
    assert main(["sweep", "paper_2neuron_estimation", "--grid", "bogus=1", "--out", str(tmp_path / "x")]) == 2
    assert "not a config field" in capsys.readouterr().err


def test_cli_sweep_says_a_rule_switch_and_a_rounded_duration_once(tmp_path, capsys):
    from bci_credit.cli import main

    assert main(["sweep", "paper_2neuron_banana", "--grid", "learning.rule=rdd,od", "--replicates", "2",
                 "--duration", "0.52", "--out", str(tmp_path / "s"), "--no-figure", "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "bci-credit sweep: warning: run.duration_s=0.52 s is not a whole number of 0.05-s windows: "
        "simulating 10 windows (0.5 s)",
        "bci-credit sweep: warning: learning.rule 'od' replaces 'rdd': starting it from its own defaults, without "
        "the settings of 'rdd': ['epsilon', 'eta', 'p', 'w_max', 'w_min'] (set them again to keep them)"]
    results = pd.read_csv(tmp_path / "s" / "results.csv")
    assert (results["status"] == "ok").all() and len(results) == 4


SLOW_METRICS = """
import time
from bci_credit.sweep import default_metrics

def metrics(rec, config):
    time.sleep(0.2)
    return default_metrics(rec, config)
"""


def _sweep_cmd(out, n_jobs):
    return [sys.executable, "-m", "bci_credit.cli", "sweep", "paper_2neuron_estimation", "--grid", "c=0,0.5,0.99",
            "--grid", "p=0.01,0.2", "--replicates", "2", "--duration", "1", "--seed", "5", "--out", str(out),
            "--metrics", "slow_metrics_for_test:metrics", "--n-jobs", str(n_jobs), "--no-figure"]


def _children(pid):
    """Pids of the live child processes of ``pid`` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


def _start_and_kill(tmp_path, sig, n_jobs):
    """Start the CLI sweep in a subprocess and send ``sig`` once 3 tasks are journaled.

    Returns (process, its stderr, journaled tasks, env). Output goes to files, not pipes, so that
    nothing waits on a worker process that inherited them.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "slow_metrics_for_test.py").write_text(textwrap.dedent(SLOW_METRICS))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    journal = tmp_path / "out" / JOURNAL
    with open(tmp_path / "stdout.txt", "w") as fo, open(tmp_path / "stderr.txt", "w") as fe:
        proc = subprocess.Popen(_sweep_cmd(tmp_path / "out", n_jobs), env=env, cwd=tmp_path, stdout=fo, stderr=fe)
    deadline = time.monotonic() + 90
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= 3):
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert time.monotonic() < deadline, "the sweep did not start"
        time.sleep(0.02)
    kids = _children(proc.pid)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 15
    while _orphans(kids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _orphans(kids), "worker processes outlived the sweep"
    done = journal.read_bytes().count(b"\n")
    err = (tmp_path / "stderr.txt").read_text()
    assert 3 <= done < 12, (f"the sweep should have been stopped part-way: {done} tasks journaled, exit status "
                            f"{proc.returncode}; its stderr ends: {err[-1500:]}")
    return proc, err, done, env


def _orphans(pids):
    """The processes among ``pids`` that are still running (not zombies)."""
    alive = []
    for k in pids:
        try:
            state = Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(k)
    return alive


def _check_complete(out, reference):
    keys = [(r["point"], r["replicate"]) for r in map(json.loads, (out / JOURNAL).read_bytes().splitlines())]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 12  # every task exactly once
    final = pd.read_csv(out / "results.csv")
    assert final["task_id"].tolist() == list(range(12)) and (final["status"] == "ok").all()
    for col in ("seed", "rdd_const_0", "od_1", "mean_reward", "true_direct_effect_0"):
        np.testing.assert_array_equal(final[col].to_numpy(), reference.results[col].to_numpy(), err_msg=col)


def _sigint_then_cli_rerun(tmp_path, reference, n_jobs):
    proc, err, done, env = _start_and_kill(tmp_path, signal.SIGINT, n_jobs)
    assert proc.returncode == 130 and "run the same command again to resume" in err
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == done  # the table of finished tasks was written
    rerun = subprocess.run(_sweep_cmd(tmp_path / "out", n_jobs), env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({done} resumed, {12 - done} run now)" in rerun.stdout
    _check_complete(tmp_path / "out", reference)


def _sigkill_then_rerun(tmp_path, reference, n_jobs, monkeypatch):
    proc, _, done, _ = _start_and_kill(tmp_path, signal.SIGKILL, n_jobs)
    assert proc.returncode == -signal.SIGKILL
    # rerun the same sweep through the library, in this process (the metric module must be importable)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module("slow_metrics_for_test")
    cfg = load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 1.0})
    res = run_sweep(cfg, GRID, replicates=2, seed=5, out=tmp_path / "out", metrics=mod.metrics, n_jobs=1, figure=False)
    assert (res.n_resumed, res.n_run) == (done, 12 - done)
    _check_complete(tmp_path / "out", reference)


def test_sigint_then_rerun_completes_every_task_once(tmp_path, reference):
    _sigint_then_cli_rerun(tmp_path, reference, n_jobs=1)


def test_sigkill_then_rerun_completes_every_task_once(tmp_path, reference, monkeypatch):
    _sigkill_then_rerun(tmp_path, reference, 1, monkeypatch)


@pytest.mark.slow
def test_sigint_and_sigkill_with_worker_processes(tmp_path, reference, monkeypatch):
    _sigint_then_cli_rerun(tmp_path / "int", reference, n_jobs=2)
    _sigkill_then_rerun(tmp_path / "kill", reference, 2, monkeypatch)


def test_a_rule_grid_refuses_settings_it_would_drop_and_old_folders_of_the_old_semantics(tmp_path, capsys):
    from bci_credit.cli import main
    from bci_credit.sweep import SPEC

    argv = ["sweep", "paper_2neuron_banana", "--grid", "learning.rule=rdd,od", "--duration", "0.5", "--no-figure",
            "--no-progress", "--out"]
    assert main(argv + [str(tmp_path / "a"), "--set", "learning.epsilon=50"]) == 2
    assert "--set learning.epsilon would be dropped at the grid points that switch learning.rule" in capsys.readouterr().err
    assert main(argv + [str(tmp_path / "b")]) == 0
    spec = json.loads((tmp_path / "b" / SPEC).read_text())
    assert spec["rule_switch"] == "own defaults"
    del spec["rule_switch"]  # a folder made before a switched-in rule started from its own defaults
    (tmp_path / "b" / SPEC).write_text(json.dumps(spec))
    capsys.readouterr()
    assert main(argv + [str(tmp_path / "b")]) == 2
    assert "made before a switched-in rule started from its own defaults" in capsys.readouterr().err
