"""The paper's CIFAR table in one call: BP, NP (direct) and DFA on the CIFAR CNN, 3 seeds each.

Lansdell, Prakash & Kording's CNN table, as quoted in the talk (test accuracy %, mean ± sd):

=========  ===========  ===========  ===========
data        BP           NP           DFA
=========  ===========  ===========  ===========
CIFAR-10    76.9 ± 0.1   74.8 ± 0.2   72.4 ± 0.2
CIFAR-100   51.2 ± 0.1   48.1 ± 0.2   47.3 ± 0.1
=========  ===========  ===========  ===========

Each method is trained with the settings of the code the table came from (``deep_np.md`` §2.3):
the CNN of :func:`~bci_credit.deep.models.cifar_cnn` with per-image standardisation, and

* **NP** (``np-direct``; ssdfa ``cifar10_conv_np.py`` defaults): tanh, dropout 0.5, Adam
  (lr 4.78e-6, ε 1e-5) on W, SGD (8.32e-6) on B, σ = 0.067, batch 128, 200 epochs;
* **BP** (ssdfa ``results.py``): ReLU, dropout 0.25, Adam (lr 3e-5, ε 1e-4), batch 64, 500 epochs;
* **DFA** (ssdfa ``results.py``): ReLU, dropout 0.5, Adam (lr 1e-5, ε 1e-5), batch 64, 500 epochs,
  forward weights initialised at zero.

For CIFAR-100, ssdfa's ``cifar100_conv.py`` (BP and DFA) uses tanh units and 100 epochs by default;
its other settings are not recorded in the reference, so they are carried over from CIFAR-10. The
repository has no finished NP script for CIFAR-100; NP uses its CIFAR-10 settings. The talk's numbers
are not confirmed against the paper's text (``deep_np.md`` §2.3). On an H200 the paper's CNN runs at
0.76 (BP) and 0.47 (NP) epochs per second at batch 128 (``BENCHMARKS.md``), so the nine CIFAR-10
runs take a few hours on one GPU; on a CPU they take weeks.

Every run has its own folder (``<method>_s<seed>``, written by :func:`~bci_credit.deep.train.train`:
checkpoints, ``metrics.csv``, ``epochs.csv``); calling :func:`run_table` again resumes unfinished runs
and skips finished ones. A run that fails is reported in the table and does not stop the others.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..outputs import write_json
from .train import TrainConfig, train

__all__ = ["TALK_TABLE", "PAPER_SETTINGS", "TABLE_METHODS", "table_config", "run_table", "summarize_table"]

logger = logging.getLogger("bci_credit")

#: Test accuracy (%, mean and sd over runs) of the talk's CNN table, by data set and method.
TALK_TABLE = {
    "cifar10": {"bp": (76.9, 0.1), "np-direct": (74.8, 0.2), "dfa": (72.4, 0.2)},
    "cifar100": {"bp": (51.2, 0.1), "np-direct": (48.1, 0.2), "dfa": (47.3, 0.1)},
}

_CIFAR10 = {
    "bp": dict(optimizer="adam", lr=3e-5, adam_eps=1e-4, batch_size=64, epochs=500,
               model_kwargs=dict(activation="relu", dropout=0.25, standardize=True)),
    "np-direct": dict(optimizer="adam", lr=4.78e-6, adam_eps=1e-5, batch_size=128, epochs=200, noise_std=0.067,
                      b_solver="sgd", b_lr=8.32e-6,
                      model_kwargs=dict(activation="tanh", dropout=0.5, standardize=True)),
    "dfa": dict(optimizer="adam", lr=1e-5, adam_eps=1e-5, batch_size=64, epochs=500,
                model_kwargs=dict(activation="relu", dropout=0.5, standardize=True, weight_init="zero")),
}


def _cifar100(method: str) -> dict:
    settings = {**_CIFAR10[method], "model_kwargs": dict(_CIFAR10[method]["model_kwargs"])}
    if method in ("bp", "dfa"):  # cifar100_conv.py's defaults
        settings["epochs"] = 100
        settings["model_kwargs"]["activation"] = "tanh"
    return settings


#: Each method's training settings by data set (deep_np.md §2.3), as TrainConfig fields.
PAPER_SETTINGS = {"cifar10": _CIFAR10, "cifar100": {m: _cifar100(m) for m in _CIFAR10}}
TABLE_METHODS = tuple(_CIFAR10)


def _check_dataset(dataset: str) -> str:
    if dataset not in TALK_TABLE:
        raise ValueError(f"the CIFAR table is for {' or '.join(TALK_TABLE)}, got {dataset!r}")
    return dataset


def table_config(dataset: str, method: str, seed: int = 0, *, epochs: Optional[int] = None,
                 model_kwargs: Optional[dict] = None, **fields) -> TrainConfig:
    """The :class:`~bci_credit.deep.train.TrainConfig` of one run of the table.

    ``epochs`` (default: the method's own, 500 or 200) shortens a run; ``model_kwargs`` are merged
    into the method's (e.g. a smaller ``channels``/``hidden`` for a trial); other ``fields``
    (``data_dir``, ``device``, ``n_train``...) are passed to the configuration as they are.
    """
    _check_dataset(dataset)
    if method not in TABLE_METHODS:
        raise ValueError(f"unknown table method {method!r}; choose from {', '.join(TABLE_METHODS)}")
    settings = dict(PAPER_SETTINGS[dataset][method])
    mk = {**settings.pop("model_kwargs"), **(model_kwargs or {})}
    if epochs is not None:
        settings["epochs"] = epochs
    return TrainConfig(model="cnn", method=method, dataset=dataset, seed=int(seed), model_kwargs=mk,
                       **{**settings, **fields})


def run_table(out_dir: str | os.PathLike, dataset: str = "cifar10", *, methods: Sequence[str] = TABLE_METHODS,
              seeds: Sequence[int] = (0, 1, 2), data_dir: Optional[str] = None, download: bool = False,
              device: str = "auto", epochs: Optional[int] = None, model_kwargs: Optional[dict] = None,
              n_train: Optional[int] = None, n_test: Optional[int] = None, progress: bool = True,
              argv: Optional[list] = None) -> dict:
    """Train every (method, seed) of the table into ``out_dir`` and write the table.

    Parameters
    ----------
    out_dir : path
        One folder per run, ``<method>_s<seed>``; ``cifar_table.json`` and ``cifar_table.md`` beside.
    dataset : {'cifar10', 'cifar100'}
        Loaded once (from ``data_dir``, the cache or, with ``download``, the web).
    methods, seeds
        The runs (default: BP, NP-direct and DFA, seeds 0, 1, 2).
    device : str
        ``'auto'`` (a CUDA GPU when there is one), ``'cuda'`` or ``'cpu'``.
    epochs, model_kwargs, n_train, n_test
        Shorten or shrink the runs (a trial, or the tests); ``None`` keeps the paper's.
    progress : bool
        Show a progress bar per run.
    argv : list of str, optional
        The command line, recorded in each run's ``run.json``.

    Returns
    -------
    dict
        What :func:`summarize_table` returns.
    """
    from .datasets import load_dataset

    _check_dataset(dataset)
    out = Path(out_dir)
    configs = [table_config(dataset, m, s, epochs=epochs, model_kwargs=model_kwargs, data_dir=data_dir,
                            download=download, device=device, n_train=n_train, n_test=n_test)
               for m in methods for s in seeds]
    for cfg in configs:
        cfg.resolved()  # every configuration is checked before hours of training start
    data = load_dataset(dataset, data_dir, download=download)
    out.mkdir(parents=True, exist_ok=True)
    failed = {}
    for cfg in configs:
        name = f"{cfg.method}_s{cfg.seed}"
        logger.info("cifar table: %s (%d epochs) in %s", name, cfg.epochs, out / name)
        try:
            train(cfg, out / name, progress=progress, dataset=data, argv=argv)
        except Exception as err:  # one failed run (a NaN, a full disk) must not cost the others
            logger.error("cifar table: %s failed: %s", name, err)
            failed[name] = f"{type(err).__name__}: {err}"
    return summarize_table(out, dataset, failed=failed)


def _run_record(folder: Path) -> dict:
    import pandas as pd

    ep = pd.read_csv(folder / "epochs.csv")
    acc = 100.0 * (1.0 - ep["test_error"].to_numpy(dtype=float))
    return {"epochs_run": int(ep["epoch"].max()), "final_test_accuracy": float(acc[-1]),
            "best_test_accuracy": float(np.nanmax(acc)), "epoch_of_best": int(ep["epoch"].iloc[int(np.nanargmax(acc))])}


def summarize_table(out_dir: str | os.PathLike, dataset: str = "cifar10", *, failed: Optional[dict] = None) -> dict:
    """The table from the run folders in ``out_dir``: per method, mean ± sd over seeds, next to the talk's.

    Reports each run's final test accuracy and its best over epochs (ssdfa logged the test accuracy
    after every epoch); writes ``cifar_table.json`` and ``cifar_table.md`` into ``out_dir``.
    """
    _check_dataset(dataset)
    out = Path(out_dir)
    runs, rows = {}, {}
    for folder in sorted(out.glob("*_s*")):
        method = folder.name.rsplit("_s", 1)[0]
        if method in TABLE_METHODS and (folder / "epochs.csv").is_file():
            try:
                runs[folder.name] = _run_record(folder)
            except Exception as err:  # a damaged table: report it, keep the others
                runs[folder.name] = {"error": f"cannot read {folder / 'epochs.csv'}: {err}"}
    for name, err in (failed or {}).items():
        runs.setdefault(name, {})["error"] = err
    for method in TABLE_METHODS:
        mine = [r for n, r in runs.items() if n.rsplit("_s", 1)[0] == method]
        done = [r for r in mine if "final_test_accuracy" in r and "error" not in r]  # a failed run is not averaged
        if not done:
            continue
        row = {"n_runs": len(done), "n_failed": sum("error" in r for r in mine),
               "epochs_run": sorted({r["epochs_run"] for r in done}),
               "paper_epochs": PAPER_SETTINGS[dataset][method]["epochs"]}
        for key in ("final_test_accuracy", "best_test_accuracy"):
            v = np.array([r[key] for r in done])
            row[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None}
        row["talk"] = {"mean": TALK_TABLE[dataset][method][0], "sd": TALK_TABLE[dataset][method][1]}
        rows[method] = row
    result = {"dataset": dataset, "table": rows, "runs": runs,
              "settings": PAPER_SETTINGS[dataset],
              "note": "test accuracy in %; the talk's numbers are not confirmed against the paper's text"}
    write_json(result, out / "cifar_table.json")
    (out / "cifar_table.md").write_text(_markdown(result))
    return result


def _markdown(result: dict) -> str:
    def ms(d):
        return "–" if d is None else f"{d['mean']:.1f}" + ("" if d.get("sd") is None else f" ± {d['sd']:.1f}")

    lines = [f"# CIFAR table: {result['dataset']} (test accuracy %)", "",
             "| method | runs (failed) | epochs (paper's) | final | best over epochs | talk |",
             "|---|---|---|---|---|---|"]
    for method, row in result["table"].items():
        epochs = ", ".join(map(str, row["epochs_run"]))
        failed = f" ({row['n_failed']})" if row["n_failed"] else ""
        lines.append(f"| {method} | {row['n_runs']}{failed} | {epochs} ({row['paper_epochs']}) | "
                     f"{ms(row['final_test_accuracy'])} | {ms(row['best_test_accuracy'])} | {ms(row['talk'])} |")
    errors = {n: r["error"] for n, r in result["runs"].items() if "error" in r}
    if errors:
        lines += ["", "Failed runs:"] + [f"- {n}: {e}" for n, e in errors.items()]
    return "\n".join(lines) + "\n"
