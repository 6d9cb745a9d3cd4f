"""Training speed of the paper's CIFAR CNN on a CUDA GPU: epochs/s of BP, DFA and NP-direct.

The network is the paper's (conv 96/128/256 5×5 + 3/2 max-pooling, FC 2048-2048-10, tanh,
dropout 0.5), trained by :func:`bci_credit.deep.train.train` with its CNN defaults (Adam, batch 128,
cross-entropy; NP-direct with SGD-learned feedback, σ = 0.067) on a data set of CIFAR-10's size and
format (50 000 + 10 000 images of 3×32×32, written as the python pickles ``load_cifar`` reads;
random pixels — the time of a step does not depend on them, and no CIFAR download is possible on
the GPU machine). Two measures per method, in the same run:

* ``epoch_s``: wall time of one full training epoch (390 steps) through ``train`` — data on the GPU,
  the test-set evaluation included — taken as the time of the second epoch (the first includes
  CUDA/cuDNN start-up); ``epochs_per_s`` is its inverse;
* ``step_ms``: the median of timed blocks of ``CreditModel.step`` calls on one batch, synchronised
  with the device (the method's own cost, without data handling).

Ratios are to BP in the same run. Without a CUDA GPU the benchmark reports that it was skipped, and
``benchmarks/run.py`` keeps the stored result.

    python benchmarks/bench_deep_gpu.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("bp", "dfa", "np-direct")


def write_cifar10_format(folder: Path, n_train: int = 50_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """Write random images as ``cifar-10-batches-py`` pickles (5 train batches + test batch)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sub = folder / "cifar-10-batches-py"
    sub.mkdir(parents=True, exist_ok=True)
    per = n_train // 5
    for name, n in [(f"data_batch_{i}", per) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=n).tolist()}
        with open(sub / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=4)
    return sub


def _step_ms(method: str, torch, device: str, batch: int = 128, blocks: int = 5, per_block: int = 20) -> float:
    from bci_credit.deep import convert
    from bci_credit.deep.models import cifar_cnn
    from bci_credit.deep.train import TrainConfig

    cfg = TrainConfig(model="cnn", method=method).resolved()
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    cm = convert(cifar_cnn(3, 10, 32, seed=0), method, input_shape=(3, 32, 32), seed=0,
                 config=cfg.feedback_config()).to(dev)
    cm.train()
    opt = torch.optim.Adam(cm.parameters(), lr=cfg.lr)
    x = torch.rand((batch, 3, 32, 32), device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    for _ in range(10):
        cm.step(x, y, "ce", opt, reduction="mean")
    sync()
    times = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(per_block):
            cm.step(x, y, "ce", opt, reduction="mean")
        sync()
        times.append((time.perf_counter() - t) / per_block)
    return 1e3 * statistics.median(times)


def _eval_s(result, data, device: str, torch) -> float:
    """Wall time of the end-of-epoch test-set evaluation (part of ``epoch_s``)."""
    from bci_credit.deep.train import evaluate

    x = torch.as_tensor(data.x_test, device=device)
    y = torch.as_tensor(data.y_test, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    evaluate(result.model, x, y, "ce", model_name="cnn")
    sync()
    t = time.perf_counter()
    evaluate(result.model, x, y, "ce", model_name="cnn")
    sync()
    return time.perf_counter() - t


def run(quick: bool = True, *, device: str = "cuda", n_train: int | None = None, n_test: int | None = None,
        step_blocks: int = 5) -> dict:
    """Epochs/s and step times of BP, DFA and NP-direct on the GPU (skipped without one).

    ``device``, ``n_train``, ``n_test`` and ``step_blocks`` exist for a dry run of the script on a
    CPU with a few images; the benchmark itself is the default.
    """
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU on this machine"}
    from bci_credit.deep.datasets import load_cifar
    from bci_credit.deep.train import TrainConfig, train

    n_train = n_train or (10_240 if quick else 50_000)
    n_test = n_test or (2_000 if quick else 10_000)
    res = {"benchmark": "paper CIFAR CNN training speed on a GPU", "quick": quick,
           "gpu": torch.cuda.get_device_name(0) if device == "cuda" else device, "torch": torch.__version__, "cuda": torch.version.cuda,
           "n_train": n_train, "n_test": n_test, "batch_size": 128, "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_cifar10_format(Path(tmp), n_train, n_test)
        data = load_cifar(folder)  # read once through the CIFAR loader, shared by every run
        for method in METHODS:
            cfg = TrainConfig(model="cnn", method=method, dataset="cifar10", data_dir=str(folder), epochs=2,
                              device=device, log_every=10 ** 9, checkpoint_every=0, seed=0)
            r = train(cfg, progress=False, dataset=data)
            walls = r.epochs.get("wall_s").tolist()
            epoch_s = walls[1] - walls[0]
            eval_s = _eval_s(r, data, device, torch)
            res["methods"][method] = {"epoch_s": epoch_s, "epochs_per_s": 1.0 / epoch_s,
                                      "first_epoch_s": walls[0], "steps_per_epoch": n_train // 128,
                                      "final_test_loss": float(r.epochs["test_loss"].iloc[-1]),
                                      "test_eval_s": eval_s, "train_part_s": epoch_s - eval_s,
                                      "step_ms": _step_ms(method, torch, device, blocks=step_blocks)}
    bp = res["methods"]["bp"]
    for m, v in res["methods"].items():
        v["epoch_ratio_to_bp"] = v["epoch_s"] / bp["epoch_s"]
        v["step_ratio_to_bp"] = v["step_ms"] / bp["step_ms"]
    return res


def markdown(res: dict) -> str:
    if "skipped" in res:
        return f"Skipped: {res['skipped']}."
    lines = [f"Paper CIFAR CNN (96/128/256 conv, 2048-2048 FC, batch 128) on **{res['gpu']}** "
             f"(torch {res['torch']}, CUDA {res['cuda']}), {res['n_train']} training images of CIFAR-10 format.",
             "",
             "| method | epochs/s | epoch (s) | of which test eval (s) | ratio to BP | step (ms) | step ratio to BP |",
             "|---|---|---|---|---|---|---|"]
    for m, v in res["methods"].items():
        lines.append(f"| {m} | {v['epochs_per_s']:.3f} | {v['epoch_s']:.2f} | {v.get('test_eval_s', float('nan')):.2f} | "
                     f"{v['epoch_ratio_to_bp']:.2f} | "
                     f"{v['step_ms']:.2f} | {v['step_ratio_to_bp']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a fifth of the data")
    ap.add_argument("--out", default=None, help="write the JSON result here")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    result = run(quick=a.quick)
    if a.out:
        from bci_credit.outputs import write_json

        write_json(result, a.out)
    print(json.dumps(result, indent=2))
    if "skipped" not in result:
        print(markdown(result))
