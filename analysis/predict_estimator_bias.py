"""Full-size run of the 'estimator_bias' prediction; writes analysis/results/predict/estimator_bias.json (numbers + checks).

Usage: python analysis/predict_estimator_bias.py [--out DIR]   (DIR also gets tables, figures and NWB)
"""

import sys
from pathlib import Path

from bci_credit.outputs import write_json
from bci_credit.predict import run_prediction, write_prediction

NAME = "estimator_bias"

if __name__ == "__main__":
    res = run_prediction(NAME, quick=False, seed=0, progress=sys.stderr.isatty())
    write_json(res.to_json(), Path(__file__).resolve().parent / "results" / "predict" / f"{NAME}.json")
    if "--out" in sys.argv:
        write_prediction(res, sys.argv[sys.argv.index("--out") + 1])
    print(res.summary())
