"""Data loaders (IDX, CIFAR pickles, digits), training runs (outputs, resume, determinism) and the CLI."""

import json
import pickle
import tarfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a shared machine

from bci_credit.cli import main  # noqa: E402
from bci_credit.deep import datasets as D  # noqa: E402
from bci_credit.deep.train import TrainConfig, load_run, train  # noqa: E402


def write_idx_set(folder, n_train=96, n_test=32, size=8, gz=True, seed=0):
    """A learnable MNIST-format set: class = which quadrant is bright."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""

    def make(n):
        y = rng.integers(0, 4, size=n)
        x = rng.integers(0, 60, size=(n, size, size)).astype(np.uint8)
        h = size // 2
        for i, c in enumerate(y):
            r, k = divmod(int(c), 2)
            x[i, r * h:(r + 1) * h, k * h:(k + 1) * h] += 180
        return x, y.astype(np.uint8)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    D.write_idx(folder / f"train-images-idx3-ubyte{suffix}", xtr)
    D.write_idx(folder / f"train-labels-idx1-ubyte{suffix}", ytr)
    D.write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", xte)
    D.write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", yte)
    return xtr, ytr


def write_cifar(folder, n_per_batch=8, classes=10, as_tar=False, seed=0):
    rng = np.random.default_rng(seed)
    if classes == 10:
        sub, names, key = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
    else:
        sub, names, key = "cifar-100-python", ["train", "test"], b"fine_labels"
    d = folder / sub
    d.mkdir(parents=True)
    for name in names:
        batch = {b"data": rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8),
                 key: list(rng.integers(0, classes, size=n_per_batch))}
        with open(d / name, "wb") as fh:
            pickle.dump(batch, fh)
    if as_tar:
        arch = folder / ("cifar-10-python.tar.gz" if classes == 10 else "cifar-100-python.tar.gz")
        with tarfile.open(arch, "w:gz") as tar:
            tar.add(d, arcname=sub)
        return arch
    return d


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_and_folder_loading(tmp_path, gz):
    xtr, ytr = write_idx_set(tmp_path, gz=gz)
    np.testing.assert_array_equal(D.read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))), xtr)
    ds = D.load_dataset("mnist", tmp_path)
    assert ds.input_shape == (1, 8, 8) and ds.n_classes == 4 and len(ds.x_test) == 32
    np.testing.assert_allclose(ds.x_train[:, 0], xtr / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, ytr)
    assert D.load_dataset("idx", tmp_path).name == "idx"


def test_idx_rejects_garbage(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(p)
    with pytest.raises(FileNotFoundError, match="lacks the IDX"):
        D.load_idx_folder(tmp_path)


@pytest.mark.parametrize("classes,as_tar", [(10, False), (10, True), (100, False)])
def test_cifar_pickles_folder_and_archive(tmp_path, classes, as_tar):
    write_cifar(tmp_path, classes=classes, as_tar=as_tar)
    if as_tar:  # read straight from the archive, not unpacked
        import shutil

        shutil.rmtree(tmp_path / "cifar-10-batches-py")
    ds = D.load_dataset(f"cifar{classes}", tmp_path)
    n_train = 40 if classes == 10 else 8
    assert ds.x_train.shape == (n_train, 3, 32, 32) and ds.x_test.shape == (8, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.n_classes == classes


def test_dataset_search_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("BCI_CREDIT_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "mnist").mkdir()
    write_idx_set(tmp_path / "mnist")
    assert D.load_dataset("mnist").source == str(tmp_path / "mnist")  # found via $BCI_CREDIT_DATA
    assert "/usr/share/datasets/fashion-mnist" in map(str, D.search_paths("fashion-mnist"))
    with pytest.raises(FileNotFoundError, match="cifar10 not found"):
        D.load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        D.load_dataset("imagenet")
    digits = D.load_dataset("digits")
    assert digits.input_shape == (1, 8, 8) and len(digits.x_train) + len(digits.x_test) == 1797
    # a file where a folder is expected, a file that is no CIFAR archive, bad subset sizes
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(ValueError, match="is a file; fashion-mnist is read from the folder"):
        D.load_dataset("fashion-mnist", tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="not a tar file"):
        D.load_dataset("cifar10", tmp_path / "notes.txt")
    for kw in ({"n_train": -3}, {"n_test": 0}, {"n_train": 2.5}):
        with pytest.raises(ValueError, match="positive number of samples"):
            digits.subset(**kw)
    assert len(digits.subset(n_train=10.0).x_train) == 10


def mlp_cfg(tmp_path, method="np", **kw):
    base = dict(model="mlp", method=method, dataset="idx", data_dir=str(tmp_path / "data"), epochs=2,
                batch_size=16, lr=0.01, log_every=2, checkpoint_every=5, seed=3)
    if method in ("np", "np-direct", "wm"):  # the warm-up applies to the methods that learn feedback with W frozen
        base["warmup_steps"] = 2
    base.update(kw)
    return TrainConfig(**base)


def test_training_run_writes_outputs_and_learns(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    res = train(mlp_cfg(tmp_path, epochs=4), tmp_path / "run")
    out = tmp_path / "run"
    for name in ("metrics.csv", "epochs.csv", "summary.json", "run.json", "training.png", "checkpoint.pt"):
        assert (out / name).is_file(), name
    cols = set(res.metrics.columns)
    for key in ("update_angle_deg_L0", "weight_angle_deg_L1", "norm_ratio_L2", "sign_congruence_L2", "train_loss"):
        assert key in cols
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 4 and summary["final_test_error"] < 0.5  # 4 classes: chance is 0.75
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["method"] == "np" and run["seed"] == 3


def test_resume_after_interruption_is_exact(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    full = train(mlp_cfg(tmp_path, epochs=2), tmp_path / "full")
    # an interrupted run: one epoch, then the same command with more epochs resumes from the checkpoint
    train(mlp_cfg(tmp_path, epochs=1), tmp_path / "part")
    resumed = train(mlp_cfg(tmp_path, epochs=2), tmp_path / "part")
    np.testing.assert_array_equal(resumed.epochs["test_loss"].to_numpy(), full.epochs["test_loss"].to_numpy())
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="different configuration"):
        train(mlp_cfg(tmp_path, epochs=2, lr=0.1), tmp_path / "part")


def test_load_run_restores_the_trained_model(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    res = train(mlp_cfg(tmp_path, epochs=2), tmp_path / "run")
    model, cfg, progress = load_run(tmp_path / "run")
    assert cfg.method == "np" and progress["epoch"] == 2 and not model.training
    for (k, a), (_, b) in zip(res.model.state_dict().items(), model.state_dict().items()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), k
    with pytest.raises(FileNotFoundError, match="run.json is missing"):
        load_run(tmp_path / "data")
    (tmp_path / "norun").mkdir()
    (tmp_path / "norun" / "run.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="checkpoint.pt is missing"):
        load_run(tmp_path / "norun")
    (tmp_path / "run" / "run.json").write_text('{"config": {"nonsense": 1}}')
    with pytest.raises(ValueError, match="not the run.json of a bci-credit training run"):
        load_run(tmp_path / "run")


def test_cnn_runs_end_to_end_on_cifar_format_data(tmp_path):
    write_cifar(tmp_path / "data", n_per_batch=16)
    cfg = TrainConfig(model="cnn", method="np-direct", dataset="cifar10", data_dir=str(tmp_path / "data"),
                      epochs=1, batch_size=16, log_every=2, checkpoint_every=0, seed=0,
                      model_kwargs={"channels": (4, 4, 4), "hidden": (16, 16)})
    res = train(cfg, tmp_path / "run")
    assert np.isfinite(res.summary["final_test_loss"])
    # rows at steps 2 and 4 and at the epoch's end (step 5); L3 is the first FC layer's site
    assert list(res.metrics["step"]) == [2, 4, 5] and "signal_angle_deg_L3" in res.metrics.columns


def test_autoencoder_runs(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    cfg = mlp_cfg(tmp_path, method="fa", model="autoencoder", epochs=1, lr=1e-3, model_kwargs={"hidden": 16})
    res = train(cfg)
    assert np.isnan(res.summary["final_test_error"]) and np.isfinite(res.summary["best_test_loss"])


def test_cli_train_and_errors(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    rc = main(["train", "--model", "mlp", "--method", "dfa", "--dataset", "idx", "--data-dir", str(tmp_path / "data"),
               "--epochs", "1", "--batch-size", "16", "--lr", "0.01", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert rc == 0 and (tmp_path / "cli" / "metrics.csv").is_file()
    assert "mlp/dfa on idx" in capsys.readouterr().out
    rc = main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert rc == 2 and "not found" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    for method in ("np", "np-direct", "fa", "wm", "kp"):
        res = train(mlp_cfg(tmp_path, method=method, device="cuda", epochs=1))
        assert next(res.model.parameters()).is_cuda and np.isfinite(res.summary["final_test_loss"])
