"""Regenerate data/gain_table_sigma10.json: dmu/dw of one LIF neuron (sigma = 10) on w = 2..20.

The original code pasted a 19x19 table of dmu/dw measured by simulation (rdd_model.md §3.1);
this script measures it with our own engine (2000 s per weight, one batched call) so the
lookup gain has a provenance. Usage: python analysis/make_gain_table.py [--duration 2000]
"""

import argparse
from pathlib import Path

import numpy as np

from bci_credit.learning.gain import gain_table
from bci_credit.outputs import write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=2000.0)
    ap.add_argument("--seed", type=int, default=20231)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "gain_table_sigma10.json"))
    a = ap.parse_args(argv)
    w, mu, g = gain_table(np.linspace(2, 20, 19), sigma=10.0, duration_s=a.duration, seed=a.seed)
    write_json({"description": "dmu/dw (spikes per 1-ms step per unit w) of one LIF neuron, sigma=10, x=0, "
                               "per-step noise, refractory 3 ms; central differences of simulated rates",
                "script": "analysis/make_gain_table.py", "duration_s": a.duration, "seed": a.seed,
                "w": w, "mu": mu, "dmu_dw": g}, a.out)
    print(np.round(g * 1e3, 4))


if __name__ == "__main__":
    main()
