"""Full-size runs of the experimental predictions; each writes analysis/results/predict/NAME.json.

Usage: python analysis/predict_all.py [NAME ...] [--out DIR]
  NAME: one or more of the registered predictions (default: all; see `bci-credit predict --list`).
  --out DIR: also write each prediction's tables, figures and NWB into DIR/NAME.
"""

import argparse
import sys
from pathlib import Path

from bci_credit.outputs import provenance, write_json
from bci_credit.predict import PREDICTIONS, run_prediction, write_prediction


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="predictions to run (default: all)")
    ap.add_argument("--out", help="folder for the full outputs of each prediction")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    results = Path(__file__).resolve().parent / "results" / "predict"
    for name in a.names or list(PREDICTIONS):
        res = run_prediction(name, quick=False, seed=a.seed, progress=sys.stderr.isatty())
        made_by = provenance("analysis/predict_all.py", None if argv is None else ["analysis/predict_all.py", *argv])
        write_json({**res.to_json(), "provenance": made_by}, results / f"{name}.json")
        if a.out:
            write_prediction(res, Path(a.out) / name)
        print(res.summary())


if __name__ == "__main__":
    main()
