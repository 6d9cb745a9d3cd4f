"""Write data/sample_session.nwb: a small simulated BCI session (preset bci_10neuron, 20 s, seed 2023).

The file is the package's own example recording: `bci-credit inspect data/sample_session.nwb`.
Usage: python analysis/make_sample_nwb.py [--duration 20]
"""

import argparse
from pathlib import Path

from bci_credit import experiment
from bci_credit.config import load_preset
from bci_credit.io import nwb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "sample_session.nwb"))
    a = ap.parse_args(argv)
    cfg = load_preset("bci_10neuron").with_overrides(**{"run.duration_s": a.duration, "run.seed": 2023})
    rec = experiment.run(cfg)
    nwb.write(rec, a.out)
    print(rec.summary())


if __name__ == "__main__":
    main()
