"""bci_credit.parallel: n_jobs, seeds, error capture, input expansion and the many-files engine."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from bci_credit import parallel


def _square(x, *, offset=0):
    return x * x + offset


def _draw(x, *, seed):
    return float(np.random.default_rng(seed).normal()) + x


def _fail_on_two(x):
    if x == 2:
        raise ValueError("two is not allowed")
    return x


# ---------------------------------------------------------------- options and seeds


def test_effective_n_jobs(monkeypatch):
    monkeypatch.delenv(parallel.ENV_N_JOBS, raising=False)
    assert parallel.effective_n_jobs(None) == 1
    assert parallel.effective_n_jobs(3) == 3
    assert parallel.effective_n_jobs(-1) == parallel._cpu_count()
    monkeypatch.setenv(parallel.ENV_N_JOBS, "2")
    assert parallel.effective_n_jobs(None) == 2
    with parallel.parallel_options(n_jobs=5):
        assert parallel.effective_n_jobs(None) == 5
        assert parallel.effective_n_jobs(1) == 1
    assert parallel.effective_n_jobs(None) == 2
    with pytest.raises(ValueError, match="n_jobs"):
        parallel.effective_n_jobs(0)
    with pytest.raises(TypeError, match="unknown parallel option"):
        parallel.set_parallel_options(njobs=2)


def test_resolve_scheduler(monkeypatch):
    monkeypatch.delenv(parallel.ENV_SCHEDULER, raising=False)
    assert parallel.resolve_scheduler() is None
    monkeypatch.setenv(parallel.ENV_SCHEDULER, "tcp://10.0.0.1:8786")
    assert parallel.resolve_scheduler() == "tcp://10.0.0.1:8786"
    assert parallel.resolve_scheduler("local") is None
    assert parallel.resolve_scheduler("tcp://h:1") == "tcp://h:1"


def test_child_seed_is_spawned_from_root():
    """child_seed(root, k) comes from SeedSequence(root).spawn(n)[k], whatever n is."""
    def as_int(ss):
        return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))

    root = np.random.SeedSequence(2023)
    assert parallel.child_seed(2023, 3) == as_int(root.spawn(4)[3]) == as_int(np.random.SeedSequence(2023).spawn(9)[3])
    nested = np.random.SeedSequence(2023).spawn(3)[2].spawn(5)[4]
    assert parallel.child_seed(2023, 2, 4) == as_int(nested)
    seeds = parallel.spawn_task_seeds(7, 50)
    assert len(set(seeds)) == 50 and all(0 <= s < 2**63 for s in seeds)


# ---------------------------------------------------------------- running tasks


def test_pmap_same_results_for_any_n_jobs():
    items = list(range(6))
    serial = parallel.pmap(_draw, items, n_jobs=1, seed=11)
    par = parallel.pmap(_draw, items, n_jobs=2, seed=11)
    assert serial == par  # exact: same per-task seeds, input order kept
    assert parallel.pmap(_square, items, n_jobs=2, kwargs={"offset": 1}) == [x * x + 1 for x in items]


def test_pmap_failures_are_captured_not_fatal():
    outcomes = parallel.pmap(_fail_on_two, range(4), n_jobs=1, on_error="outcome")
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert outcomes[2].error == "ValueError: two is not allowed"
    assert "Traceback" in outcomes[2].traceback
    with pytest.raises(RuntimeError, match="1 of 4 task.*task 2: ValueError: two is not allowed"):
        parallel.pmap(_fail_on_two, range(4), n_jobs=1)


def test_bad_scheduler_address_is_one_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "DASK_CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises((ConnectionError, OSError), match="cannot connect to the Dask scheduler"):
        list(parallel.imap_unordered(_square, [1, 2], scheduler="tcp://127.0.0.1:9"))


# ---------------------------------------------------------------- inputs and files


def test_to_frame_variants():
    assert parallel.to_frame({"a": 1, "b": [1, 2], "c": None}).columns.tolist() == ["a", "c"]
    df = parallel.to_frame(pd.DataFrame({"x": [1, 2]}, index=pd.Index([5, 6], name="unit_id")))
    assert df.columns.tolist() == ["unit_id", "x"]
    assert len(parallel.to_frame([{"a": 1}, {"a": 2}])) == 2
    assert parallel.to_frame(None).empty
    with pytest.raises(TypeError, match="DataFrame or a dict"):
        parallel.to_frame(3.5)


def test_expand_inputs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.nwb", "d/a.nwb", "d/sub/c.nwb", "d/skip.txt", "d/.tmp.nwb"):
        (tmp_path / name).write_bytes(b"x")
    d = tmp_path / "d"
    assert parallel.expand_inputs(d) == [str(d / "a.nwb"), str(d / "b.nwb"), str(d / "sub" / "c.nwb")]
    assert parallel.expand_inputs(d, recursive=False) == [str(d / "a.nwb"), str(d / "b.nwb")]
    assert parallel.expand_inputs(str(d / "*.nwb")) == [str(d / "a.nwb"), str(d / "b.nwb")]
    lst = tmp_path / "files.txt"
    lst.write_text("# my files\nd/b.nwb\n\nhttps://example.org/x.nwb\nd/b.nwb\n")
    assert parallel.expand_inputs(lst) == [str(d / "b.nwb"), "https://example.org/x.nwb"]
    assert parallel.expand_inputs(["dandi://000404/draft/x.nwb", d / "a.nwb"]) == ["dandi://000404/draft/x.nwb",
                                                                                     str(d / "a.nwb")]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        parallel.expand_inputs(tmp_path / "nope.nwb")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        parallel.expand_inputs(str(tmp_path / "*.xyz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no files matching"):
        parallel.expand_inputs(tmp_path / "empty")


@pytest.fixture(scope="module")
def nwb_folder(tmp_path_factory):
    """3 good NWB files (short simulations, different seeds) + a truncated file + a text file named .nwb."""
    from bci_credit import experiment
    from bci_credit.config import load_preset
    from bci_credit.io import nwb

    folder = tmp_path_factory.mktemp("nwb_batch")
    cfg = load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 1.0})
    spikes = {}
    for i in range(3):
        rec = experiment.run(cfg.with_overrides(**{"run.seed": 100 + i}))
        path = folder / f"session{i}.nwb"
        nwb.write(rec, path)
        spikes[str(path)] = int(rec.n_spikes.sum())
    data = (folder / "session0.nwb").read_bytes()
    (folder / "truncated.nwb").write_bytes(data[: len(data) // 2])
    (folder / "notes.nwb").write_text("lab notes, not an NWB file\n")
    return folder, spikes


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_map_files_three_good_two_broken(nwb_folder, n_jobs):
    from bci_credit.io import nwb

    folder, spikes = nwb_folder
    paths = parallel.expand_inputs(folder)
    assert len(paths) == 5
    res = parallel.map_files(nwb.inspect, paths, n_jobs=n_jobs)
    assert res.table["file"].tolist() == sorted(spikes)  # one row per good file, input order
    assert res.table["n_spikes"].tolist() == [spikes[f] for f in sorted(spikes)]
    assert (res.table["n_units"] == 2).all()
    assert res.n_ok == 3
    skipped = res.skipped.set_index("file")["reason"]
    assert sorted(skipped.index) == [str(folder / "notes.nwb"), str(folder / "truncated.nwb")]
    assert "not an HDF5 file" in skipped[str(folder / "notes.nwb")]
    assert "truncated or corrupt" in skipped[str(folder / "truncated.nwb")]
    assert res.status["status"].tolist().count("ok") == 3 and set(res.values) == set(spikes)


def test_map_files_opener_and_missing_file(nwb_folder, tmp_path):
    from bci_credit.io import nwb
    from bci_credit.io.remote import open_nwb_source

    folder, spikes = nwb_folder
    good = str(folder / "session1.nwb")
    gone = tmp_path / "gone.nwb"
    shutil.copy(good, gone)
    paths = [good, str(gone)]
    os.remove(gone)  # disappears between listing and reading
    res = parallel.map_files(nwb.inspect, paths, opener=open_nwb_source, keep_values=False)
    assert res.table["file"].tolist() == [good] and res.values == {}
    assert res.status.loc[1, "status"] == "skipped" and "no such file" in res.status.loc[1, "reason"]
