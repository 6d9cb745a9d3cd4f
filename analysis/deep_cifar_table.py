"""The paper's CIFAR table (BP, NP-direct, DFA on the CIFAR CNN, 3 seeds) in one command.

A thin driver over :func:`bci_credit.deep.cifar_table.run_table`; each method trains with the
settings of the code the table came from (see that module). On one GPU:

    python analysis/deep_cifar_table.py --dataset cifar10 --data-dir ~/data --device cuda
    python analysis/deep_cifar_table.py --dataset cifar100 --data-dir ~/data --device cuda

``--data-dir`` holds ``cifar-10-batches-py`` / ``cifar-100-python`` (or their ``.tar.gz``); with
``--download`` the data set is fetched into the cache when online. Rerunning the command resumes
unfinished runs. ``--methods``/``--seeds`` split the nine runs over several GPUs (one process each,
same ``--out``); ``--summarize`` rewrites the table from the finished folders. ``--quick`` is a
seconds-long trial of the whole path on a shrunken network (the tests run it on synthetic data).
Writes ``cifar_table.json`` and ``cifar_table.md`` into ``--out`` (default ``out/cifar_table_<dataset>``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

QUICK = dict(epochs=1, model_kwargs=dict(channels=(8, 8, 8), hidden=(32, 32)), n_train=256, n_test=128)


def main(argv=None) -> int:
    from bci_credit.deep.cifar_table import TABLE_METHODS, run_table, summarize_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("cifar10", "cifar100"), default="cifar10")
    ap.add_argument("--data-dir", default=None, help="folder holding the CIFAR python pickles")
    ap.add_argument("--download", action="store_true", help="fetch the data set into the cache if missing")
    ap.add_argument("--device", default="auto", help="cuda, cpu or auto (default)")
    ap.add_argument("--methods", nargs="+", choices=TABLE_METHODS, default=list(TABLE_METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="cap every run at this many epochs (default: the paper's)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="a small network, 1 epoch, 256 training images")
    ap.add_argument("--summarize", action="store_true", help="only rewrite the table from the run folders")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = a.out or Path("out") / f"cifar_table_{a.dataset}"
    try:
        if a.summarize:
            result = summarize_table(out, a.dataset)
        else:
            opts = dict(QUICK) if a.quick else {}
            if a.epochs is not None:
                opts["epochs"] = a.epochs
            result = run_table(out, a.dataset, methods=a.methods, seeds=a.seeds, data_dir=a.data_dir,
                               download=a.download, device=a.device, progress=not a.no_progress,
                               argv=["analysis/deep_cifar_table.py", *(sys.argv[1:] if argv is None else argv)],
                               **opts)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"deep_cifar_table: error: {err}", file=sys.stderr)
        return 2
    print((out / "cifar_table.md").read_text(), end="")
    return 1 if any("error" in r for r in result["runs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
