"""Full-size runs of the experimental predictions; each writes analysis/results/predict/NAME.json.

Usage: python analysis/predict_all.py [NAME ...] [--out DIR]
  NAME: one or more of the registered predictions (default: all; see `bci-credit predict --list`).
  --out DIR: also write each prediction's tables, figures and NWB into DIR/NAME.
"""

import argparse
import sys
from pathlib import Path

from bci_credit.outputs import versions, write_json
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
        write_json({**res.to_json(), "provenance": {"script": "analysis/predict_all.py", "argv": sys.argv,
                                                    "versions": versions()}}, results / f"{name}.json")
        if a.out:
            write_prediction(res, Path(a.out) / name)
        print(res.summary())


if __name__ == "__main__":
    main()
