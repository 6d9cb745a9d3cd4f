"""Which part of each learned feedback matrix the NP regression can determine (checks 4–5).

Check 5 asks NP's ``B`` to agree in sign with ``W`` on more than 80 % of the entries after 1e5
steps on the paper's MLP. The lower ``B`` (20 × 50) does not (about 0.7), although the signal it
delivers is within ~8° of backprop's. The reason is identifiability: ``B`` is regressed on the
layer's output error ``δ`` (20-dim), which the 10-dim output error drives, so only about 9
directions of ``δ`` vary at all; ``B`` along the other ~11 is never seen by the regression (nor used
by the signal), stays wherever the estimation noise put it, and carries nearly all of ``‖B − W‖``.

For each finished run folder (``checkpoint.pt`` + ``run.json``, written by
``analysis/deep_fashion_mnist.py --part check5``) this script loads the model
(:func:`bci_credit.deep.train.load_run`) and applies
:func:`bci_credit.deep.theory.feedback_identifiability` on 20 000 training images: plain and
excited-subspace sign congruence and relative error, the weak directions' share of the error.

Writes ``analysis/results/deep/feedback_identifiability.json`` (``--dataset mnist-5k``:
``feedback_identifiability_mnist_5k.json``, on the runs of ``--part check5 --dataset mnist-5k``).

    python analysis/deep_feedback_identifiability.py [--runs-dir DIR] [--pattern 'check5*_s*'] [--dataset D]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "analysis" / "results" / "deep" / "feedback_identifiability.json"
RUNS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bci_credit" / "deep_runs_local"
KEYS = ("sign_congruence", "sign_congruence_excited", "rel_error", "rel_error_excited", "weak_share_of_error",
        "rel_error_signal_weighted", "n_weak", "n_directions")
LOGGED = ("train_loss", "signal_angle_deg_L", "update_angle_deg_L", "weight_angle_deg_L", "sign_congruence_L")


def main():
    import pandas as pd
    import torch

    from bci_credit.deep.datasets import load_dataset
    from bci_credit.deep.theory import feedback_identifiability
    from bci_credit.deep.train import load_run
    from bci_credit.outputs import provenance, write_json

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=RUNS)
    ap.add_argument("--pattern", default="check5*_s*")
    ap.add_argument("--n-eval", type=int, default=20000)
    ap.add_argument("--dataset", choices=("fashion-mnist", "mnist-5k"), default="fashion-mnist",
                    help="the data set the runs were trained on (also the evaluation images)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if a.out is None:
        a.out = OUT if a.dataset == "fashion-mnist" else OUT.with_name(f"{OUT.stem}_{a.dataset.replace('-', '_')}.json")
    ds = load_dataset(a.dataset)
    x = torch.as_tensor(ds.x_train[:a.n_eval])
    y = torch.as_tensor(ds.y_train[:a.n_eval])
    runs = {}
    for d in sorted(a.runs_dir.glob(a.pattern)):
        if not (d / "checkpoint.pt").is_file():
            continue
        model, cfg, progress = load_run(d, dataset=ds)
        if cfg.method == "bp":  # no feedback matrix: nothing to identify
            continue
        r = feedback_identifiability(model, x, y, cfg.loss)
        last = pd.read_csv(d / "metrics.csv").iloc[-1]
        runs[d.name] = {"method": cfg.method, "seed": cfg.seed, "perturb": cfg.feedback.get("perturb", "all"),
                        "lr": cfg.lr, "step": progress["step"],
                        "sites": {f"L{k + 1}": {key: v[key] for key in KEYS} for k, v in r.items()},
                        "last_logged": {c: float(last[c]) for c in last.index
                                        if c.startswith(LOGGED) and last[c] == last[c]}}
        print(d.name, {s: (round(v["sign_congruence"], 3), round(v["sign_congruence_excited"], 3))
                       for s, v in runs[d.name]["sites"].items()}, flush=True)
    groups: dict = {}
    for name, rec in runs.items():
        groups.setdefault(name.rsplit("_s", 1)[0], []).append(rec)
    summary = {}
    for g, recs in groups.items():
        summary[g] = {"seeds": [r["seed"] for r in recs], "step": [r["step"] for r in recs]}
        for site in recs[0]["sites"]:
            summary[g][site] = {k: float(np.mean([r["sites"][site][k] for r in recs])) for k in KEYS}
    out = {**provenance("analysis/deep_feedback_identifiability.py"), "dataset": ds.name, "runs_dir": str(a.runs_dir),
           "n_eval": min(a.n_eval, len(ds.x_train)),
           "weak_below": "variance < 1% of the largest (feedback_identifiability default)",
           "summary": summary, "runs": runs}
    write_json(out, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
