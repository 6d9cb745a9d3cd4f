"""``bci-credit predict``: run one of the single-unit BCI model's experimental predictions."""

from __future__ import annotations

import argparse
import sys

from . import CLIError, run_folder

EXAMPLE = """\
Run an experimental prediction of the simulated single-unit BCI (bci_nwb.md A.8, rdd_model.md 4.8)
and write prediction.json (claim, checks, numbers), CSV tables, figures (PNG), representative
simulated sessions as NWB, and run.json into the output folder.

examples:
  bci-credit predict --list
  bci-credit predict conditioning --out out/p1 --quick
  bci-credit predict plasticity --out out/plasticity --seed 3
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="run an experimental prediction of the BCI model (JSON + figures + NWB)",
        description="Run an experimental prediction of the simulated single-unit BCI.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="prediction name (see --list)")
    p.add_argument("--out", help="output folder (default: out/predict/NAME)")
    p.add_argument("--quick", action="store_true", help="the quick, test-sized form (seconds to a minute)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--nwb", choices=("one", "all", "none"), default="one",
                   help="which representative sessions to write as NWB (default: one)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--list", action="store_true", help="list the predictions and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..predict import PREDICTIONS, list_predictions

    if args.list:
        for name, claim in list_predictions().items():
            print(f"{name:24s} {claim}")
        return 0
    if not args.name:
        raise CLIError("give a prediction name (see --list)")
    if args.name not in PREDICTIONS:
        raise CLIError(f"unknown prediction {args.name!r}; choose one of: {', '.join(PREDICTIONS)}")
    if args.seed < 0:
        raise CLIError("--seed must be a non-negative integer")
    from ..outputs import remove_previous_outputs, write_run_json
    from ..predict import run_prediction, write_prediction

    path = args.out or f"out/predict/{args.name}"
    with run_folder(path, "predict") as out:  # a bad --out fails now, not after the run
        try:
            res = run_prediction(args.name, quick=args.quick, seed=args.seed,
                                 progress=not args.no_progress and sys.stderr.isatty())
        except RuntimeError as err:  # a protocol that cannot be set up for this seed (e.g. rate calibration)
            raise CLIError(f"{args.name}: {err}") from err
    files = write_prediction(res, out, nwb=args.nwb, figures=not args.no_figures)
    names = [f.name for f in files]
    removed = remove_previous_outputs(out, names)
    write_run_json(out, command="predict", config=res.settings, seed=args.seed,
                   extra={"prediction": args.name, "quick": args.quick, "passed": res.passed, "files": names})
    print(res.summary())
    print(f"wrote {len(files) + 1} files to {out}/"
          + (f" (removed the previous run's {', '.join(removed)})" if removed else ""))
    return 0
