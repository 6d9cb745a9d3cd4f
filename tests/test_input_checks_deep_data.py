"""Bad input to the deep part's data loaders, training runs and theory checks: clear errors, no
silently wrong numbers, no tracebacks from inside numpy/torch/pickle/gzip."""

import json
import pickle
import shutil
import tarfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from bci_credit.cli import main  # noqa: E402
from bci_credit.deep import datasets as D  # noqa: E402
from bci_credit.deep import theory  # noqa: E402
from bci_credit.deep.train import TrainConfig, load_run, train  # noqa: E402

NAMES = {"xtr": "train-images-idx3-ubyte", "ytr": "train-labels-idx1-ubyte",
         "xte": "t10k-images-idx3-ubyte", "yte": "t10k-labels-idx1-ubyte"}


def idx_set(folder, gz=False, **override):
    """A small IDX folder (20 train, 10 test 8×8 uint8 images, labels 0..9); ``override`` replaces arrays."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"xtr": rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), "ytr": rng.integers(0, 10, 20).astype(np.uint8),
              "xte": rng.integers(0, 256, (10, 8, 8), dtype=np.uint8), "yte": rng.integers(0, 10, 10).astype(np.uint8)}
    arrays.update(override)
    for k, a in arrays.items():
        D.write_idx(folder / (NAMES[k] + (".gz" if gz else "")), a)
    return folder


# -- IDX ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override,match", [
    ({"ytr": np.zeros(19, np.uint8)}, "19 labels for 20 train images"),
    ({"ytr": np.zeros((20, 2), np.uint8)}, r"1-D .*shape \(20, 2\)"),
    ({"ytr": np.zeros((20, 8, 8), np.uint8)}, "is this the labels file"),
    ({"ytr": np.full(20, -1, np.int8)}, r"labels must lie in \[0, 100000\)"),
    ({"ytr": np.full(20, 2_000_000_000, np.int32)}, r"labels must lie in \[0, 100000\)"),
    ({"ytr": np.full(20, 2.7, np.float32)}, "whole numbers"),
    ({"xte": np.zeros((10, 10, 10), np.uint8)}, r"train images have shape \(1, 8, 8\) but test images \(1, 10, 10\)"),
    ({"xtr": np.zeros(20, np.uint8)}, "IDX images must be"),
    ({"xtr": np.full((20, 8, 8), 100.0, np.float32)}, r"only uint8 images are scaled"),
    ({"xtr": np.full((20, 8, 8), 7, np.int32)}, r"int32 images must lie in \[0, 1\]"),
])
def test_idx_contents_are_checked(tmp_path, override, match):
    idx_set(tmp_path / "d", **override)
    with pytest.raises(ValueError, match=match):
        D.load_dataset("idx", tmp_path / "d")


def test_valid_idx_unchanged(tmp_path):
    """uint8 images scaled by 1/255, whole float labels and float images in [0, 1] accepted."""
    rng = np.random.default_rng(1)
    xtr = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    idx_set(tmp_path / "a", xtr=xtr, ytr=np.arange(20) % 3)
    ds = D.load_dataset("idx", tmp_path / "a")
    np.testing.assert_array_equal(ds.x_train[:, 0], xtr.astype(np.float32) / np.float32(255.0))
    assert ds.n_classes == 10 and ds.y_train.dtype == np.int64  # test labels reach 9
    xf = rng.random((20, 8, 8)).astype(np.float32)
    idx_set(tmp_path / "b", xtr=xf, ytr=(np.arange(20) % 3).astype(np.float32))
    ds = D.load_dataset("idx", tmp_path / "b")
    np.testing.assert_array_equal(ds.x_train[:, 0], xf)
    np.testing.assert_array_equal(ds.y_train, np.arange(20) % 3)


def test_idx_files_truncated_corrupt_or_too_long(tmp_path):
    d = idx_set(tmp_path / "gz", gz=True)
    p = d / (NAMES["xtr"] + ".gz")
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        D.load_dataset("idx", d)
    q = tmp_path / "crc.gz"
    D.write_idx(q, np.random.default_rng(0).integers(0, 256, (200, 8, 8), dtype=np.uint8))
    b = bytearray(q.read_bytes())
    b[len(b) // 2:len(b) // 2 + 30] = b"\x00" * 30
    q.write_bytes(bytes(b))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        D.read_idx(q)
    (tmp_path / "head.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        D.read_idx(tmp_path / "head.gz")
    d = idx_set(tmp_path / "trail")
    p = d / NAMES["ytr"]
    before = p.read_bytes() + b"\x07" * 50
    p.write_bytes(before)
    with pytest.raises(ValueError, match="longer than its header says"):
        D.load_dataset("idx", d)
    assert p.read_bytes() == before  # input files are never modified
    with pytest.raises(FileNotFoundError, match="not a file"):
        D.read_idx(tmp_path / "nope")


def test_missing_idx_files_are_named(tmp_path):
    d = idx_set(tmp_path / "d")
    (d / NAMES["yte"]).unlink()
    for name in ("idx", "mnist"):
        with pytest.raises(FileNotFoundError, match=f"{d} lacks t10k-labels-idx1-ubyte"):
            D.load_dataset(name, d)


def test_raw_wins_over_gz(tmp_path):
    d = idx_set(tmp_path / "d")
    idx_set(d, gz=True, xtr=np.zeros((30, 8, 8), np.uint8), ytr=np.zeros(30, np.uint8))
    assert len(D.load_dataset("idx", d).x_train) == 20


# -- CIFAR ---------------------------------------------------------------------------------------------
def cifar_dir(root, bad_name="data_batch_1", raw=None, bad=None):
    """A CIFAR-10 folder of 4-image batches; ``bad_name`` gets ``raw`` bytes or ``bad`` dict entries."""
    rng = np.random.default_rng(0)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 4))}
        if name == bad_name:
            if raw is not None:
                (d / name).write_bytes(raw)
                continue
            batch.update(bad or {})
        with open(d / name, "wb") as fh:
            pickle.dump(batch, fh)
    return root


@pytest.mark.parametrize("kw,match", [
    ({"raw": b"hello world"}, "truncated, corrupt or not a CIFAR python pickle"),
    ({"raw": b""}, "truncated, corrupt or not a CIFAR python pickle"),
    ({"raw": pickle.dumps([1, 2])}, "pickled list, not a CIFAR batch"),
    ({"bad": {b"labels": [1, 2, 3]}}, "3 labels for 4 images"),
    ({"bad": {b"labels": [12, 1, 2, 3]}}, r"labels must lie in \[0, 10\)"),
    ({"bad": {b"labels": [-1, 1, 2, 3]}}, r"labels must lie in \[0, 10\)"),
    ({"bad": {b"data": np.zeros((4, 1000), np.uint8)}}, r"shape \(4, 1000\); expected \(n, 3072\)"),
    ({"bad": {b"data": np.full((4, 3072), 300)}}, "bytes 0-255"),
    ({"bad": {b"data": np.random.default_rng(0).random((4, 3072))}}, "bytes 0-255"),
])
def test_cifar_batches_are_checked(tmp_path, kw, match):
    cifar_dir(tmp_path, **kw)
    with pytest.raises(ValueError, match=match) as info:
        D.load_dataset("cifar10", tmp_path)
    assert "data_batch_1" in str(info.value)  # names the file


def test_cifar100_label_range(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name, labels in (("train", [0, 1, 100, 2]), ("test", [0, 1, 2, 3])):
        with open(d / name, "wb") as fh:
            pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": labels}, fh)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 100\)"):
        D.load_dataset("cifar100", tmp_path)


def test_truncated_cifar_archive(tmp_path):
    src = cifar_dir(tmp_path / "src")
    arch = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(arch, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    good = arch.read_bytes()
    (tmp_path / "t").mkdir()
    for cut in (200, len(good) // 2):
        (tmp_path / "t" / arch.name).write_bytes(good[:cut])
        with pytest.raises(ValueError, match="truncated or corrupt"):
            D.load_dataset("cifar10", tmp_path / "t")
    assert len(D.load_dataset("cifar10", arch).x_train) == 20


# -- training runs and checkpoints ---------------------------------------------------------------------
def small_cfg(**kw):
    base = dict(model="mlp", method="np", dataset="digits", n_train=64, n_test=32, epochs=1, batch_size=16,
                warmup_steps=0, log_every=2, checkpoint_every=0, seed=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    train(small_cfg(), out)
    return out


def copy_run(run_dir, tmp_path, name="r"):
    dst = tmp_path / name
    shutil.copytree(run_dir, dst)
    return dst


def test_corrupt_checkpoints(run_dir, tmp_path):
    for label, content in (("trunc", (run_dir / "checkpoint.pt").read_bytes()[:500]), ("garbage", b"garbage\n")):
        d = copy_run(run_dir, tmp_path, label)
        (d / "checkpoint.pt").write_bytes(content)
        with pytest.raises(ValueError, match="unreadable or not a bci-credit checkpoint.*--overwrite"):
            load_run(d)
        with pytest.raises(ValueError, match="unreadable or not a bci-credit checkpoint.*--overwrite"):
            train(small_cfg(epochs=2), d)
    d = copy_run(run_dir, tmp_path, "nokeys")
    torch.save({"model": {}}, d / "checkpoint.pt")
    with pytest.raises(ValueError, match="lacks epoch, step, config"):
        load_run(d)
    with pytest.raises(ValueError, match="lacks epoch, step, config"):
        train(small_cfg(epochs=2), d)
    # the CLI reports it on one line
    assert main(["train", "--dataset", "digits", "--out", str(d), "--epochs", "2", "--no-progress"]) == 2


@pytest.mark.parametrize("change,field", [({"model": "autoencoder"}, "model"), ({"method": "fa"}, "method"),
                                          ({"b_solver": "sgd"}, "b_solver"), ({"dataset": "synthetic"}, "dataset"),
                                          ({"noise_std": 0.5}, "noise_std"), ({"seed": 9}, "seed"),
                                          ({"model_kwargs": {"bogus": 1}}, "model_kwargs")])
def test_load_run_compares_run_json_with_checkpoint(run_dir, tmp_path, change, field):
    d = copy_run(run_dir, tmp_path)
    j = json.loads((d / "run.json").read_text())
    j["config"].update(change)
    (d / "run.json").write_text(json.dumps(j))
    with pytest.raises(ValueError, match=f"disagree on .*{field}"):
        load_run(d)


def test_data_of_another_shape(run_dir, tmp_path):
    model, cfg, prog = load_run(run_dir)  # the run itself loads
    assert prog["epoch"] == 1
    other = D.synthetic(n_train=64, n_test=32, shape=(1, 8, 8), n_classes=5)
    with pytest.raises(ValueError, match="5 classes"):
        load_run(run_dir, dataset=other)
    with pytest.raises(ValueError, match=r"shape \(4, 4, 4\)"):  # same size flattened: caught by the recorded shape
        load_run(run_dir, dataset=D.synthetic(n_train=8, n_test=8, shape=(4, 4, 4)))
    with pytest.raises(ValueError, match="5 classes"):
        train(small_cfg(epochs=2), copy_run(run_dir, tmp_path), dataset=other)
    m2, _, _ = load_run(run_dir, dataset="digits")  # a name is loaded
    for k, a in model.state_dict().items():
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, m2.state_dict()[k]), k
    with pytest.raises(TypeError, match="ImageDataset or a data set name"):
        load_run(run_dir, dataset=3)


def test_threads_and_zero_epochs(tmp_path, capsys):
    for bad in (0, -1, 2.5, "4"):
        with pytest.raises(ValueError, match="threads"):
            small_cfg(threads=bad).resolved()
    assert small_cfg(threads=2.0).resolved().threads == 2
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "t"), "--threads", "0"]) == 2
    assert "threads must be a positive" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "e"), "--epochs", "0", "--no-progress"]) == 0
    assert "0 epochs: nothing to train" in capsys.readouterr().err


# -- theory checks -------------------------------------------------------------------------------------
X = np.random.default_rng(0).random((100, 16))
Y = np.arange(100) % 4


@pytest.mark.parametrize("fn,kw,match", [
    (theory.lambda_hat_bias, {"n_draws": 0}, "n_draws must be a positive"),
    (theory.lambda_hat_bias, {"batch_size": 0}, "batch_size must be a positive"),
    (theory.readout_consistency, {"sizes": (20, 5)}, "at least 3 layer sizes"),
    (theory.readout_consistency, {"n_batches": 5, "checkpoints": (10,)}, "beyond n_batches"),
    (theory.upstream_bias, {"noise_std": 0.1, "n_batches": 0}, "n_batches must be a positive"),
    (theory.linear_network_consistency, {"batch_size": 2.5}, "batch_size must be a whole number"),
])
def test_theory_counts(fn, kw, match):
    with pytest.raises(ValueError, match=match):
        fn(**kw)


@pytest.mark.parametrize("x,labels,kw,match", [
    (X, Y, {"n_blocks": 0}, "n_blocks must be a positive"),
    (X, Y, {"eval_size": 0}, "eval_size must be a positive"),
    (X, Y[:50], {}, "100 samples but labels 50"),
    (X, Y + 0.7, {}, "whole numbers"),
    (X, Y - 1, {}, "class indices"),
    (X, np.zeros(100, int), {}, "single class"),
    (X, np.eye(4)[Y], {}, "not one-hot"),
    (X[:0], Y[:0], {}, "x is empty"),
    (X, Y, {"n_samples": 10}, "fewer than one batch"),
    (X[:10], Y[:10], {}, "exceeds the 10 samples"),
    (np.full((100, 16), np.nan), Y, {}, "finite"),
])
def test_fixed_w_convergence_arguments(x, labels, kw, match):
    with pytest.raises(ValueError, match=match):
        theory.fixed_w_convergence(x, labels, **{"n_samples": 64, **kw})


def test_error_structure_arguments():
    rng = np.random.default_rng(0)
    B, W = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    cov = np.diag([1.0, 0.5, 0.2])
    ok = theory.error_structure(B, W, cov, 1)
    assert ok["n_weak"] == 1
    for kw, match in (({"n_weak": -1}, r"n_weak must be .* \[0, 2\]"), ({"n_weak": 3}, r"\[0, 2\]"),
                      ({"cov": np.eye(4)}, r"\(3, 3\) covariance"), ({"W": W.T}, "same shape"),
                      ({"cov": cov + np.triu(np.ones((3, 3)), 1)}, "symmetric"), ({"cov": np.zeros((3, 3))}, "no positive"),
                      ({"cov": np.full((3, 3), np.nan)}, "NaN"), ({"weak_below": 2}, "weak_below")):
        args = {"B": B, "W": W, "cov": cov, **kw}
        with pytest.raises(ValueError, match=match):
            theory.error_structure(**args)


def test_feedback_identifiability_needs_a_credit_model():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(TypeError, match="convert the network first"):
        theory.feedback_identifiability(net, torch.zeros(5, 4), torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="convert the network first"):
        theory.feedback_errors(net)
