"""Full-size run of the 'dual_tuning' prediction; writes analysis/results/predict/dual_tuning.json (numbers + checks).

Usage: python analysis/predict_dual_tuning.py [--out DIR]   (DIR also gets tables, figures and NWB)
"""

import sys
from pathlib import Path

from bci_credit.outputs import write_json
from bci_credit.predict import run_prediction, write_prediction

NAME = "dual_tuning"

if __name__ == "__main__":
    res = run_prediction(NAME, quick=False, seed=0, progress=sys.stderr.isatty())
    write_json(res.to_json(), Path(__file__).resolve().parent / "results" / "predict" / f"{NAME}.json")
    if "--out" in sys.argv:
        write_prediction(res, sys.argv[sys.argv.index("--out") + 1])
    print(res.summary())
