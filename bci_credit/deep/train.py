"""Training runs: a model × a method × a data set → an output folder.

:func:`train` writes into ``out_dir``:

* ``metrics.csv`` — one row every ``log_every`` steps and one at each epoch's end: running train
  loss, batch accuracy and, per layer, the angle of the method's update to the BP update, the
  error-signal angles, the angle/relative error/norm ratio between ``B`` and ``W`` and their sign
  congruence (taking these metrics does not change the run);
* ``epochs.csv`` — one row per epoch: test loss, test error, train loss;

  Loss units: ``test_loss`` and ``train_loss_per_sample`` are per sample; ``train_loss`` is the
  training objective of one batch, i.e. the *sum* over the batch with ``reduction='sum'`` (the MLP
  and autoencoder) and the mean with ``reduction='mean'`` (the CNN); ``test_loss_per_32`` is the
  test loss of a batch of 32 (comparable with the MLP's ``train_loss`` at batch 32);
* ``checkpoint.pt`` — everything needed to resume exactly (weights, feedback, NP statistics,
  optimizer, random streams, position in the epoch), written every ``checkpoint_every`` steps and
  at each epoch's end; a run started again on the same folder resumes from it;
* ``training.png`` — the curves; ``summary.json``; ``run.json`` (config with absolute data paths,
  seed, versions, the resolved :class:`~bci_credit.deep.FeedbackConfig` and the warm-up used).

On CPU a run is deterministic for a seed (also across an interruption and resume).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..checks import check_number
from ..outputs import atomic_path, save_figure, to_jsonable, write_csv, write_json, write_run_json
from ..parallel import progress_bar
from ..plotting import pyplot
from ..random import seed_sequence
from .datasets import ImageDataset, load_dataset
from .feedback import METHODS
from .losses import get_loss
from .methods import CreditModel, FeedbackConfig, convert
from .models import MODELS, build_model

__all__ = ["TrainConfig", "TrainResult", "train", "load_run", "default_hyperparameters", "evaluate", "plot_training"]

logger = logging.getLogger("bci_credit")

_FB_FIELDS = {f.name for f in dataclasses.fields(FeedbackConfig)}
# data_dir is where the data were found, not what they are (their shapes are checked against the weights)
_IGNORED_ON_RESUME = {"epochs", "device", "threads", "checkpoint_every", "data_dir"}
#: Methods whose feedback learns while ``W`` is frozen (``warmup_steps`` applies to these only; KP's
#: ``B`` learns through ``W``'s update, the other methods learn no feedback).
WARMUP_METHODS = ("np", "np-direct", "wm")
#: Data sets whose train/test split is fixed (seed 0) whatever the training seed, so runs share a test set.
_FIXED_SPLIT = {"digits": 0}
#: Configuration fields added after runs were made, with the value those older runs used.
_LEGACY_DEFAULTS = {"adam_eps": 1e-5}


def default_hyperparameters(model: str, method: str) -> dict:
    """The defaults for a model/method pair (after the paper's configs, deep_np.md §2).

    MLP: SGD on the batch-summed squared loss, batch 32, lr 4e-4; NP: σ = 1e-2, exact LS with
    γ = 0.1, 1000 B-only warm-up steps. Autoencoder: SGD, lr 1e-4 (NP) / 5e-5 (others), NP with
    SGD for B (η_B = 8e-6), σ = 0.0189. CNN: Adam on the mean cross-entropy, batch 128, lr 1e-4;
    NP direct with SGD for B, σ = 0.067. Adam's ε is 1e-5 throughout (ssdfa's default).
    """
    if model == "mlp":
        hp = dict(optimizer="sgd", lr=4e-4, batch_size=32, loss="mse", reduction="sum",
                  noise_std=1e-2, b_solver="ls", gamma=0.1, warmup_steps=1000 if method in ("np", "np-direct") else 0)
    elif model == "autoencoder":
        hp = dict(optimizer="sgd", lr=1e-4 if method in ("np", "np-direct") else 5e-5, batch_size=32, loss="mse",
                  reduction="sum", noise_std=0.018942, b_solver="sgd", b_lr=8e-6, gamma=0.1, warmup_steps=0)
    elif model == "cnn":
        hp = dict(optimizer="adam", lr=1e-4, batch_size=128, loss="ce", reduction="mean", noise_std=0.067,
                  b_solver="sgd", b_lr=8.32e-6, gamma=0.1, warmup_steps=0)
    else:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    hp["adam_eps"] = _LEGACY_DEFAULTS["adam_eps"]
    return hp


@dataclass
class TrainConfig:
    """Everything that defines a training run (``None`` fields take :func:`default_hyperparameters`).

    ``feedback`` holds extra :class:`~bci_credit.deep.FeedbackConfig` fields (e.g.
    ``{"mirror_rate": 0.05}``); ``model_kwargs`` extra model-builder arguments (e.g. smaller CNN
    ``channels`` for tests). ``device`` is ``'cpu'`` by default here (reproducible); the CLI's
    ``--device`` defaults to ``'auto'``, which takes a CUDA GPU when there is one.
    ``warmup_steps`` (the first steps learn only the feedback, ``W`` frozen) applies to
    :data:`WARMUP_METHODS` only. ``split_seed`` draws the train/test split of data sets that are
    split at random (``digits``, ``synthetic``): by default 0 for ``digits``, so that runs of every
    ``seed`` share one test set, and ``seed`` otherwise. Runs made before the field existed split
    ``digits`` with their ``seed``; they resume and load with that split.
    """

    model: str = "mlp"
    method: str = "bp"
    dataset: str = "fashion-mnist"
    data_dir: Optional[str] = None
    download: bool = False
    epochs: int = 10
    batch_size: Optional[int] = None
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    adam_eps: Optional[float] = None
    loss: Optional[str] = None
    reduction: Optional[str] = None
    noise_std: Optional[float] = None
    b_solver: Optional[str] = None
    b_lr: Optional[float] = None
    gamma: Optional[float] = None
    warmup_steps: Optional[int] = None
    feedback: dict = field(default_factory=dict)
    model_kwargs: dict = field(default_factory=dict)
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    seed: int = 0
    split_seed: Optional[int] = None
    device: str = "cpu"
    threads: Optional[int] = None
    log_every: int = 100
    checkpoint_every: int = 2000

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` hyper-parameter filled in and the inputs validated."""
        method = str(self.method).lower().replace("_", "-")
        if method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        hp = default_hyperparameters(self.model, method)
        values = {k: (getattr(self, k) if getattr(self, k) is not None else hp.get(k)) for k in hp}
        cfg = dataclasses.replace(self, method=method, **values)
        cfg = dataclasses.replace(cfg, **_check_counts(cfg))
        if cfg.split_seed is None:
            key = str(cfg.dataset).lower().replace("_", "-")
            cfg = dataclasses.replace(cfg, split_seed=_FIXED_SPLIT.get(key, cfg.seed))
        if cfg.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {cfg.optimizer!r}")
        if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {cfg.lr}; give e.g. --lr 0.004")
        if not cfg.adam_eps > 0:
            raise ValueError(f"adam_eps must be positive, got {cfg.adam_eps}")
        if cfg.threads is not None:
            threads = check_number(cfg.threads, "threads", integer=True)
            if threads < 1:
                raise ValueError(f"threads must be a positive number of CPU threads (or None for torch's choice), "
                                 f"got {cfg.threads!r}")
            cfg = dataclasses.replace(cfg, threads=threads)
        bad = set(cfg.feedback) - _FB_FIELDS
        if bad:
            raise ValueError(f"unknown feedback option(s) {sorted(bad)}; valid: {sorted(_FB_FIELDS)}")
        return cfg

    def feedback_config(self) -> FeedbackConfig:
        """The :class:`~bci_credit.deep.FeedbackConfig` of this run (its NP options and ``feedback``)."""
        opts = {k: getattr(self, k) for k in ("noise_std", "b_solver", "b_lr", "gamma") if getattr(self, k) is not None}
        opts.update(self.feedback)
        return FeedbackConfig(**opts)


#: whole-number options: (lowest allowed value, what the option counts)
_COUNTS = {"epochs": (0, "passes over the training set"), "batch_size": (1, "samples per step"),
           "log_every": (1, "steps between metric rows"),
           "checkpoint_every": (0, "steps between checkpoints; 0: at epoch ends only"),
           "warmup_steps": (0, "steps that learn only the feedback")}


def _check_counts(cfg: TrainConfig) -> dict:
    """The whole-number options of ``cfg`` as ints; a ValueError naming the first bad one."""
    out = {}
    for name, (low, what) in _COUNTS.items():
        value = getattr(cfg, name)
        try:
            n = check_number(value, name, integer=True)
        except (TypeError, ValueError):
            n = None
        if n is None or n < low:
            hint = 1 if name == "epochs" else low  # 0 epochs is allowed but trains nothing
            raise ValueError(f"{name} must be a whole number >= {low} ({what}), got {value!r}; "
                             f"give --{name.replace('_', '-')} {hint} or more")
        out[name] = n
    return out


def effective_warmup(cfg: TrainConfig) -> int:
    """The steps of ``cfg`` that learn only the feedback: ``warmup_steps`` for :data:`WARMUP_METHODS`, else 0."""
    return int(cfg.warmup_steps or 0) if cfg.method in WARMUP_METHODS else 0


def _warn_warmup(cfg: TrainConfig, total_steps: int) -> None:
    """Warn when the warm-up is ignored (a method without feedback learning) or covers the whole run."""
    if cfg.warmup_steps and cfg.method not in WARMUP_METHODS:
        warnings.warn(f"warmup_steps={cfg.warmup_steps} is ignored for {cfg.method!r}: only {', '.join(WARMUP_METHODS)} "
                      "learn their feedback with W frozen", UserWarning, stacklevel=3)
    warm = effective_warmup(cfg)
    if warm and warm >= total_steps > 0:
        warnings.warn(f"the warm-up of {warm} feedback-only steps covers all {total_steps} training steps of this run, "
                      "so the weights never change; lower --warmup-steps or train for more epochs",
                      UserWarning, stacklevel=3)


def _load_data(cfg: TrainConfig, name: Optional[str] = None, *, download: bool = False) -> ImageDataset:
    """The run's data set; ``digits`` always with the same train/test split (the training seed does not move it)."""
    key = str(name or cfg.dataset).lower().replace("_", "-")
    split = cfg.split_seed if cfg.split_seed is not None else _FIXED_SPLIT.get(key, cfg.seed)
    return load_dataset(name or cfg.dataset, cfg.data_dir, download=download, seed=split)


def _abs_path(value: Optional[str]) -> Optional[str]:
    """``value`` as an absolute path when it names an existing file or folder (else unchanged)."""
    if value is None:
        return None
    p = Path(str(value)).expanduser()
    return str(p.resolve()) if p.exists() else str(value)


@dataclass
class TrainResult:
    """What :func:`train` returns: the tables, the summary and the trained model."""

    config: TrainConfig
    metrics: "object"
    epochs: "object"
    summary: dict
    model: CreditModel
    out_dir: Optional[Path] = None


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu")
    return dev


def _epoch_order(seed_entropy, epoch: int, n: int) -> np.ndarray:
    """The sample order of one epoch: a function of the seed and the epoch only (resumable)."""
    return np.random.default_rng(np.random.SeedSequence(seed_entropy, spawn_key=(7, epoch))).permutation(n)


def _targets(model_name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) if model_name == "autoencoder" else y


@torch.no_grad()
def evaluate(model: CreditModel, x: torch.Tensor, y: torch.Tensor, loss: str = "mse", *,
             model_name: str = "mlp", batch_size: int = 1000) -> dict:
    """Mean per-sample loss and error rate (NaN for the autoencoder) on a data set, eval mode.

    A diverged model gives a non-finite loss, which :func:`train` refuses (FloatingPointError).
    """
    was = model.training
    model.eval()
    loss_fn = get_loss(loss)
    total, correct, n = 0.0, 0.0, 0
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            yb = y[i:i + batch_size]
            out = model(xb)
            tb = _targets(model_name, xb, yb)
            total += float(loss_fn(out, tb).sum())
            if model_name != "autoencoder":
                correct += float((out.argmax(1) == yb).sum())
            n += len(xb)
    finally:
        model.train(was)
    mean = total / max(n, 1)
    return {"loss": mean, "error": (1.0 - correct / n) if model_name != "autoencoder" and n else float("nan")}


def _optimizer(cfg: TrainConfig, model: CreditModel) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps)
    return torch.optim.SGD(params, lr=cfg.lr)


def _flat_alignment(align: dict) -> dict:
    row = {}
    for l in align["layers"]:
        i = l["layer"]
        for k, v in l.items():
            if k != "layer":
                row[f"{k}_L{i}"] = v
    return row


def _load_error(err: Exception) -> str:
    """A one-line account of a failed ``load_state_dict`` (torch's message spans lines)."""
    text = " ".join(str(err).split())
    if "np_V" in text:
        return ("its node-perturbation statistics have another layout: np-direct with b_solver='ls' and "
                "perturb='cycle' keeps one V per site since 2026-11-28 (one shared V learned feedback shrunk by "
                "the number of sites), so a run made before cannot be continued")
    return text[:300] or type(err).__name__


def _same_config(a: dict, b: dict) -> list:
    """The fields on which two stored configurations differ (a field older runs lack has its old value)."""
    def get(d, k):
        if k == "split_seed" and k not in d:  # before the field existed the split followed the seed
            return d.get("seed")
        return d.get(k, _LEGACY_DEFAULTS.get(k))

    return sorted(k for k in set(a) | set(b) if k not in _IGNORED_ON_RESUME and get(a, k) != get(b, k))


def _build(cfg: TrainConfig, data: ImageDataset, source: str = "the configuration"):
    """The run's model (from its seed) and the seed of its data order.

    Errors of the model builder (an unknown ``model_kwargs`` entry, a bad feedback option) are
    raised as ValueError naming ``source``.
    """
    s_model, s_fb, s_data = seed_sequence(cfg.seed).spawn(3)
    try:
        net = build_model(cfg.model, data.input_shape, data.n_classes, seed=s_model, **cfg.model_kwargs)
        model = convert(net, cfg.method, input_shape=data.input_shape, seed=s_fb, config=cfg.feedback_config())
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot build the {cfg.model}/{cfg.method} model of {source} for data of shape "
                         f"{data.input_shape} with {data.n_classes} classes: {err} (check model, method, "
                         "model_kwargs and feedback)") from None
    return model, s_data


_CKPT_KEYS = ("model", "epoch", "step", "config")
_RESUME_KEYS = ("optimizer", "batch", "metric_rows", "epoch_rows", "acc_loss", "acc_n")


def _read_checkpoint(path: Path, device, keys=_CKPT_KEYS, *, advice: str) -> dict:
    """``torch.load`` of a run's checkpoint, checked to be a bci-credit checkpoint with ``keys``."""
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # a truncated zip, a garbage or foreign pickle: torch raises many kinds
        raise ValueError(f"checkpoint {path} is unreadable or not a bci-credit checkpoint "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); {advice}") from None
    if not isinstance(ck, dict):
        raise ValueError(f"checkpoint {path} is unreadable or not a bci-credit checkpoint (it holds a "
                         f"{type(ck).__name__}, not a dict); {advice}")
    missing = [k for k in keys if k not in ck]
    if missing or not isinstance(ck.get("config"), dict) or not isinstance(ck.get("model"), dict):
        what = f"lacks {', '.join(missing)}" if missing else "has no config or weights dict"
        raise ValueError(f"checkpoint {path} is unreadable or not a bci-credit checkpoint (it {what}); {advice}")
    return ck


def _plain(obj):
    """``obj`` as JSON would store it (tuples → lists), so configs from run.json and a checkpoint compare."""
    import json

    return json.loads(json.dumps(to_jsonable(obj)))


def _check_fits(model: CreditModel, ck: dict, data: ImageDataset, path: Path, advice: str) -> None:
    """Raise a ValueError when the checkpoint's weights were made for data of another shape."""
    rec = ck.get("data")
    if isinstance(rec, dict) and "input_shape" in rec and "n_classes" in rec:
        want = (tuple(rec["input_shape"]), int(rec["n_classes"]))
        if want != (tuple(data.input_shape), int(data.n_classes)):
            raise ValueError(f"checkpoint {path} was trained on data of sample shape {want[0]} with {want[1]} classes, "
                             f"but {data.name} has shape {tuple(data.input_shape)} with {data.n_classes} classes; "
                             f"{advice}")
    own = model.state_dict()
    theirs = ck["model"]  # key sets are left to load_state_dict (it knows older checkpoints' layouts)
    bad = [k for k in own if k in theirs and hasattr(theirs[k], "shape") and hasattr(own[k], "shape")
           and tuple(theirs[k].shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise ValueError(f"checkpoint {path} does not fit a model for {data.name} (shape {tuple(data.input_shape)}, "
                         f"{data.n_classes} classes): {k} is {tuple(theirs[k].shape)} in the checkpoint but "
                         f"{tuple(own[k].shape)} here ({len(bad)} tensor(s) differ); {advice}")


def load_run(out_dir: str | os.PathLike, *, dataset: Optional[ImageDataset | str] = None,
             device: str = "cpu") -> tuple[CreditModel, TrainConfig, dict]:
    """The model of a run folder written by :func:`train`, as of its last checkpoint.

    Parameters
    ----------
    out_dir : path
        A run folder holding ``run.json`` and ``checkpoint.pt``.
    dataset : ImageDataset or str, optional
        The run's data (only its shapes are used), or the name of a data set to load (as
        :func:`~bci_credit.deep.datasets.load_dataset`, looking also in the run's ``data_dir``);
        loaded from the run's configuration otherwise. Data of another sample shape or number of
        classes than the run's raise a ValueError.
    device : str
        ``'cpu'``, ``'cuda'`` or ``'auto'`` (CUDA when available): where the model is loaded.

    Returns
    -------
    (model, config, progress)
        The model in eval mode, the run's configuration and ``{"epoch", "step"}`` of the checkpoint.

    Raises
    ------
    ValueError
        If ``run.json`` or ``checkpoint.pt`` is unreadable, if they disagree on the configuration
        (the differing fields are listed) or if the data do not fit the run's weights.
    """
    import json

    out = Path(out_dir)
    run, ckpt = out / "run.json", out / "checkpoint.pt"
    for f in (run, ckpt):
        if not f.is_file():
            raise FileNotFoundError(f"{out} is not a resumable run folder: {f.name} is missing")
    if dataset is not None and not isinstance(dataset, (ImageDataset, str)):
        raise TypeError(f"dataset must be an ImageDataset or a data set name, got {type(dataset).__name__}")
    try:
        raw = json.loads(run.read_text())["config"]
        raw.setdefault("split_seed", raw.get("seed", 0))  # a run made before split_seed: its split followed its seed
        cfg = TrainConfig(**raw).resolved()
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{run} is not the run.json of a bci-credit training run ({err!r})") from None
    advice = f"the run in {out} cannot be loaded; train it again (--overwrite starts afresh)"
    dev = _device(device)
    ck = _read_checkpoint(ckpt, dev, advice=advice)
    diff = _same_config(_plain(ck["config"]), _plain(asdict(cfg)))
    if diff:
        raise ValueError(f"{run} and {ckpt.name} disagree on {', '.join(diff)} (run.json: "
                         + ", ".join(f"{k}={asdict(cfg).get(k)!r}" for k in diff) + "; checkpoint: "
                         + ", ".join(f"{k}={ck['config'].get(k)!r}" for k in diff)
                         + "); run.json was edited or belongs to another run: restore it or train again")
    data = dataset if isinstance(dataset, ImageDataset) else _load_data(cfg, dataset)
    model, _ = _build(cfg, data, str(run))
    data_advice = "give the data set the run was trained on" if dataset is not None else advice
    _check_fits(model, ck, data, ckpt, data_advice)
    try:
        model.load_state_dict(ck["model"])
        progress = {"epoch": int(ck["epoch"]), "step": int(ck["step"])}
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"checkpoint {ckpt} does not fit the run's model ({_load_error(err)}); {advice}") from None
    model.to(dev).eval()
    return model, cfg, progress


def train(config: TrainConfig, out_dir: Optional[str | os.PathLike] = None, *, progress: bool = False,
          resume: bool = True, dataset: Optional[ImageDataset] = None, argv: Optional[list] = None) -> TrainResult:
    """Train a model by a method and write the run's folder.

    Parameters
    ----------
    config : TrainConfig
    out_dir : path, optional
        Output folder (no files are written without one, and no resume is possible).
    progress : bool
        Show a tqdm progress bar.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` when present (the configs must agree, except for
        ``epochs``, ``device``, ``threads`` and ``checkpoint_every``); ``False`` starts afresh.
    dataset : ImageDataset, optional
        Use these data instead of loading ``config.dataset`` (on resume they must have the sample
        shape and number of classes the run was trained on).
    argv : list of str, optional
        The command line that started the run, recorded in ``run.json`` (the CLI passes it).
    """
    import pandas as pd

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if dataset is not None and not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset must be an ImageDataset (or None to load config.dataset), got "
                        f"{type(dataset).__name__}")
    cfg = config.resolved()
    if cfg.data_dir is not None:  # recorded absolute, so that load_run works from any folder
        cfg = dataclasses.replace(cfg, data_dir=_abs_path(cfg.data_dir))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    out = Path(out_dir) if out_dir is not None else None
    data = dataset if dataset is not None else _load_data(cfg, download=cfg.download)
    data = data.subset(cfg.n_train, cfg.n_test)
    if cfg.model == "cnn" and len(data.input_shape) != 3:
        raise ValueError(f"the CNN needs image data; {data.name} has sample shape {data.input_shape}")

    model, s_data = _build(cfg, data)
    model.to(device)
    model.train()
    opt = _optimizer(cfg, model)
    x_tr = torch.as_tensor(data.x_train, device=device)
    y_tr = torch.as_tensor(data.y_train, device=device)
    x_te = torch.as_tensor(data.x_test, device=device)
    y_te = torch.as_tensor(data.y_test, device=device)
    n = len(x_tr)
    bs = int(cfg.batch_size)
    if n < bs:
        raise ValueError(f"{n} training samples are fewer than one batch of {bs}")
    steps_per_epoch = n // bs
    total_steps = steps_per_epoch * cfg.epochs
    warmup = effective_warmup(cfg)
    _warn_warmup(cfg, total_steps)
    cfg_dict = asdict(cfg)

    epoch, batch, step = 0, 0, 0
    metric_rows: list = []
    epoch_rows: list = []
    acc_loss, acc_n = 0.0, 0
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    if ckpt_path is not None and ckpt_path.is_file() and resume:
        advice = (f"delete {ckpt_path.name} to start afresh (--overwrite on the command line, resume=False in "
                  "train()) or use another output folder")
        ck = _read_checkpoint(ckpt_path, device, _CKPT_KEYS + _RESUME_KEYS, advice=advice)
        diff = _same_config(_plain(ck["config"]), _plain(cfg_dict))
        if diff:
            hint = ""
            if "split_seed" in diff and "split_seed" not in ck["config"]:
                hint = (f"; it was made before the digits split was fixed and split with its seed: resume it with "
                        f"split_seed={ck['config'].get('seed')} (--split-seed)")
            raise ValueError(f"{out} holds a run with a different configuration ({', '.join(diff)}); "
                             "use another output folder or start afresh (overwrite)" + hint)
        _check_fits(model, ck, data, ckpt_path, "give the data the run was trained on, " + advice)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, TypeError, ValueError, KeyError) as err:
            raise ValueError(f"checkpoint {ckpt_path} does not fit this run's model or optimizer "
                             f"({_load_error(err)}); {advice}") from None
        epoch, batch, step = ck["epoch"], ck["batch"], ck["step"]
        metric_rows, epoch_rows = ck["metric_rows"], ck["epoch_rows"]
        acc_loss, acc_n = ck["acc_loss"], ck["acc_n"]
        logger.info("resuming %s from step %d (epoch %d)", out, step, epoch)

    def save_checkpoint():
        if ckpt_path is None:
            return
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "batch": batch,
                 "step": step, "metric_rows": metric_rows, "epoch_rows": epoch_rows, "acc_loss": float(acc_loss),
                 "acc_n": acc_n, "config": cfg_dict,
                 "data": {"input_shape": list(data.input_shape), "n_classes": int(data.n_classes)}}
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)
        if metric_rows:
            write_csv(pd.DataFrame(metric_rows), out / "metrics.csv", index=False)
        if epoch_rows:
            write_csv(pd.DataFrame(epoch_rows), out / "epochs.csv", index=False)

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_run_json(out, command="deep.train", config=cfg_dict, seed=cfg.seed, argv=argv,
                       extra={"dataset_source": _abs_path(data.source), "n_train": n, "n_test": len(x_te),
                              "device": str(device), "steps_per_epoch": steps_per_epoch,
                              "warmup_steps_used": warmup, "feedback_config": asdict(model.config)})
    if cfg.epochs == 0:  # a UserWarning: the CLI prints it once, as one line
        warnings.warn("0 epochs: nothing to train; give epochs >= 1", UserWarning, stacklevel=2)
    elif epoch >= cfg.epochs:  # a finished run visited again (e.g. by the CIFAR table): no warning
        logger.warning("nothing to train: the run in %s already has %d epoch(s) of the %d asked for",
                       out, epoch, cfg.epochs)
    loss_name = cfg.loss
    t0 = time.perf_counter()
    bar = progress_bar(total_steps, enabled=progress, desc=f"{cfg.model}/{cfg.method}",
                       initial=min(step, total_steps), unit="step")
    chunk = max(1, min(cfg.log_every, 50))
    pending = 0
    per_sample = 1.0 / bs if cfg.reduction == "sum" else 1.0  # batch objective → per-sample loss

    def log_row(xb, yb) -> dict:
        """A metrics row: the losses since the last row, and alignment with BP on the last batch."""
        align = model.alignment(xb, yb, loss_name, reduction=cfg.reduction)
        loss = float(acc_loss) / acc_n
        row = {"step": step, "epoch": epoch + batch / steps_per_epoch, "train_loss": loss,
               "train_loss_per_sample": loss * per_sample, "batch_accuracy": align["accuracy"],
               "feedback_learning_only": step <= warmup}
        row.update(_flat_alignment(align))
        if not math.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss} at step {step}; lower the learning rate")
        return row
    try:
        while epoch < cfg.epochs:
            order = torch.as_tensor(_epoch_order(s_data.entropy, epoch, n), device=device)
            while batch < steps_per_epoch:
                idx = order[batch * bs:(batch + 1) * bs]
                xb = x_tr[idx]
                yb = _targets(cfg.model, xb, y_tr[idx])
                so = model.step(xb, yb, loss_name, opt, reduction=cfg.reduction, update_weights=step >= warmup)
                batch += 1
                step += 1
                acc_loss = acc_loss + so.loss  # a tensor: no device sync per step
                acc_n += 1
                if step % cfg.log_every == 0:
                    metric_rows.append(log_row(xb, yb))
                    acc_loss, acc_n = 0.0, 0
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    save_checkpoint()
                pending += 1
                if pending >= chunk:
                    bar.update(pending)
                    pending = 0
            if acc_n:  # the epoch's last steps since the last row (alignment() leaves the run unchanged)
                metric_rows.append(log_row(xb, yb))
                acc_loss, acc_n = 0.0, 0
            ev = evaluate(model, x_te, y_te, loss_name, model_name=cfg.model)
            if not math.isfinite(ev["loss"]):
                raise FloatingPointError(f"the test loss became {ev['loss']} after epoch {epoch + 1} (the weights "
                                         "diverged); lower the learning rate")
            recent = [r for r in metric_rows if r["epoch"] > epoch]
            epoch += 1
            batch = 0
            epoch_rows.append({"epoch": epoch, "step": step, "test_loss": ev["loss"], "test_error": ev["error"],
                               "test_loss_per_32": ev["loss"] * 32.0,
                               "train_loss": _mean_of(recent, "train_loss"),
                               "train_loss_per_sample": _mean_of(recent, "train_loss_per_sample"),
                               "wall_s": time.perf_counter() - t0})
            bar.set_postfix(test_error=ev["error"], test_loss=ev["loss"])
            save_checkpoint()
    finally:
        bar.update(pending)
        bar.close()

    metrics = pd.DataFrame(metric_rows)
    epochs_df = pd.DataFrame(epoch_rows)
    summary = _summary(cfg, epochs_df, metrics)
    if out is not None:
        write_csv(metrics, out / "metrics.csv", index=False)
        write_csv(epochs_df, out / "epochs.csv", index=False)
        write_json(summary, out / "summary.json")
        if len(metrics) or len(epochs_df):
            try:
                plot_training(metrics, epochs_df, out / "training.png", title=f"{cfg.model} / {cfg.method} / {data.name}")
            except Exception as err:  # a figure must never lose a finished run
                logger.warning("could not draw training.png: %s", err)
    return TrainResult(cfg, metrics, epochs_df, summary, model, out)


def _mean_of(rows: list, key: str) -> float:
    """Mean of ``key`` over ``rows`` (NaN when none has it: rows of runs made before the column existed)."""
    vals = [r[key] for r in rows if key in r]
    return float(np.mean(vals)) if vals else float("nan")


def _summary(cfg: TrainConfig, epochs_df, metrics) -> dict:
    s = {"model": cfg.model, "method": cfg.method, "dataset": cfg.dataset, "seed": cfg.seed,
         "epochs": int(len(epochs_df))}
    if len(epochs_df):
        last = epochs_df.iloc[-1]
        s.update(final_test_error=float(last["test_error"]), final_test_loss=float(last["test_loss"]),
                 best_test_loss=float(epochs_df["test_loss"].min()),
                 best_test_loss_per_32=float(epochs_df["test_loss_per_32"].min()),
                 best_test_error=float(epochs_df["test_error"].min()), steps=int(last["step"]))
    if len(metrics):
        tail = metrics.iloc[-max(1, len(metrics) // 10):]
        s["final_alignment"] = {c: float(tail[c].mean()) for c in metrics.columns
                                if c.endswith(tuple(f"_L{i}" for i in range(64))) and tail[c].notna().any()}
    return s


def plot_training(metrics, epochs_df, path: str | os.PathLike, *, title: str = "") -> Path:
    """Draw loss, test error, update angles, B–W angles and sign congruence of a run."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    ax = axes[0]
    if len(metrics):
        ax.plot(metrics["step"], metrics["train_loss"], lw=0.8)
    ax.set(xlabel="step", ylabel="train loss (batch)", yscale="log")
    ax = axes[1]
    if len(epochs_df):
        col = "test_error" if epochs_df["test_error"].notna().any() else "test_loss"
        ax.plot(epochs_df["epoch"], epochs_df[col], "o-")
        ax.set(xlabel="epoch", ylabel=col.replace("_", " "))
    panels = [("update_angle_deg", "angle(ΔW, ΔW_BP) [deg]"), ("weight_angle_deg", "angle(B, W) [deg]"),
              ("sign_congruence", "sign congruence B vs W")]
    for ax, (key, label) in zip(axes[2:], panels):
        cols = [c for c in metrics.columns if c.startswith(key + "_L")] if len(metrics) else []
        for c in cols:
            if metrics[c].notna().any():
                ax.plot(metrics["step"], metrics[c], lw=0.8, label=c.rsplit("_", 1)[1])
        ax.set(xlabel="step", ylabel=label)
        if key.endswith("deg"):
            ax.set_ylim(0, 180 if key == "update_angle_deg" else 120)
            ax.axhline(90, color="0.7", lw=0.5)
        if any(not line.get_label().startswith("_") for line in ax.lines):
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
