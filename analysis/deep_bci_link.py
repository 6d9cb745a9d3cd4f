"""The BCI link: how specifically BP, FA, NP and REINFORCE change the control unit of a rate network.

A thin driver over :func:`bci_credit.deep.bci_link.run_bci_link` for three settings: only the
input→hidden weights plastic (the recorded units change through their inputs), every layer plastic,
and a larger hidden population (REINFORCE's variance grows with the number of perturbed units).
Writes ``analysis/results/deep/bci_link.json`` and ``bci_link_<setting>.png``.

    python analysis/deep_bci_link.py [--steps 1500] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "analysis" / "results" / "deep"


def main():
    import torch

    from bci_credit.deep.bci_link import RateBCITask, plot_bci_link, run_bci_link
    from bci_credit.outputs import provenance, write_json

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    settings = {
        "hidden_plastic": dict(task=RateBCITask(), plastic="hidden"),
        "all_plastic": dict(task=RateBCITask(), plastic="all"),
        "hidden_plastic_200_units": dict(task=RateBCITask(n_hidden=200), plastic="hidden"),
    }
    cols = ["final_loss", "control_change", "others_mean_abs_change", "index", "energy_fraction",
            "index_at_matched", "steps_to_matched"]
    report = {"steps": a.steps, "seeds": a.seeds, "settings": {}}
    for name, kw in settings.items():
        per_seed = []
        for s in a.seeds:
            r = run_bci_link(n_steps=a.steps, seed=s, **kw)
            per_seed.append(r.summary[cols].astype(float))
            if s == a.seeds[0]:
                plot_bci_link(r, a.out / f"bci_link_{name}.png")
                settings_used = r.settings
        mean = sum(per_seed) / len(per_seed)
        report["settings"][name] = {"mean_over_seeds": {m: mean.loc[m].to_dict() for m in mean.index},
                                    "per_seed_index": {m: [float(p.loc[m, "index"]) for p in per_seed] for m in mean.index},
                                    "config": {k: v for k, v in settings_used.items() if k not in ("baseline_rates",)}}
        print(name)
        print(mean.to_string(float_format=lambda v: f"{v:.3g}"), flush=True)
    report["provenance"] = provenance("analysis/deep_bci_link.py")
    write_json(report, a.out / "bci_link.json")


if __name__ == "__main__":
    main()
