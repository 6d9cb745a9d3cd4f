"""Timing of the RDD rules' update, window construction included (not part of ``make bench``).

Two uses:

* ``PYTHONPATH=WORKTREE python benchmarks/time_rule_update.py`` times the code on the path: best of
  5 per process, microseconds per window for ``RDDRule(step="decay")`` and ``RepoRDDRule()``, 50
  replicates x 2 neurons, 3000 windows, each window built as a ``WindowData`` and passed to ``update()``.
* ``python benchmarks/time_rule_update.py --compare OLD NEW [--rounds 4]`` times two checkouts (e.g.
  ``git worktree add /tmp/old COMMIT``) alternately in fresh processes, keeps the best of each, and
  writes ``benchmarks/results/rule_update.json`` (rendered into ``BENCHMARKS.md`` by
  ``python benchmarks/run.py --render-only``).

It is kept out of ``make bench`` because the comparison needs an older checkout of the code.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RULES = ("RDDRule", "RepoRDDRule")


def time_here() -> dict:
    """Best-of-5 microseconds per window of each rule, for the ``bci_credit`` on the import path."""
    from bci_credit.learning import RDDRule, RepoRDDRule, WindowContext, WindowData

    ctx = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.full(50, 10.0))
    rng = np.random.default_rng(0)
    n = 3000
    Z, R, S = rng.uniform(0.5, 1.5, size=(n, 50, 2)), rng.normal(size=(n, 50)), rng.random((n, 50, 2))
    makers = {"RDDRule": lambda: RDDRule(step="decay", gain=1e-3), "RepoRDDRule": lambda: RepoRDDRule(gain=1e-3)}
    out = {}
    for name in RULES:
        best = np.inf
        for _ in range(5):
            rule = makers[name]()
            rule.initialize(np.full((50, 2), 10.0), ctx)
            t = time.perf_counter()
            for k in range(n):
                z = Z[k]
                rule.update(WindowData(drive=z, spiked=z > 1.0, counts=(z > 1.0).astype(float), reward=R[k],
                                       s_end=S[k], index=k))
            best = min(best, (time.perf_counter() - t) / n * 1e6)
        out[name] = best
    return out


def _commit(tree: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(tree)


def compare(old: Path, new: Path, rounds: int, note: str = "") -> dict:
    """Time ``old`` and ``new`` alternately, ``rounds`` fresh processes each; best of each per rule."""
    if rounds < 1:
        raise SystemExit(f"--rounds must be at least 1, got {rounds}")
    for tree in (old, new):
        if not (tree / "bci_credit" / "__init__.py").is_file():
            raise SystemExit(f"{tree} is not a checkout of bci_credit (no bci_credit/__init__.py)")
    best = {"old": dict.fromkeys(RULES, np.inf), "new": dict.fromkeys(RULES, np.inf)}
    loads = []
    for _ in range(rounds):
        for label, tree in (("old", old), ("new", new)):
            env = dict(os.environ, PYTHONPATH=str(tree))
            loads.append(os.getloadavg()[0])
            res = subprocess.run([sys.executable, __file__, "--json"], env=env, cwd=tree, capture_output=True,
                                 text=True)
            if res.returncode:
                raise SystemExit(f"timing {tree} failed:\n{res.stderr}")
            out = json.loads(res.stdout)
            if not Path(out.pop("module")).resolve().is_relative_to(tree):  # not an installed copy elsewhere
                raise SystemExit(f"timing {tree} imported bci_credit from outside it; check PYTHONPATH")
            for k, v in out.items():
                best[label][k] = min(best[label][k], v)
    rows = {k: {"old_us": best["old"][k], "new_us": best["new"][k], "ratio": best["new"][k] / best["old"][k]}
            for k in RULES}
    commits = {"old": _commit(old), "new": _commit(new)}
    lines = [f"Learning-rule update per window (`benchmarks/time_rule_update.py --compare`, not run by `make bench`): "
             f"{commits['old']} (old) against {commits['new']} (new), alternated {rounds} times in fresh processes, "
             f"best of each; 3000 windows of 50 replicates x 2 neurons, each built as a `WindowData` and passed to "
             f"`update()`; load average {min(loads):.1f}-{max(loads):.1f}." + (f" {note}" if note else ""), "",
             "| rule | old us/window | new us/window | new/old |", "|---|---|---|---|"]
    lines += [f"| {k} | {r['old_us']:.1f} | {r['new_us']:.1f} | {r['ratio']:.2f}x |" for k, r in rows.items()]
    return {"benchmark": "rule_update", "commits": commits, "rounds": rounds, "rules": rows,
            "load_avg_1min": [min(loads), max(loads)], "note": note, "markdown": "\n".join(lines)}


def main(argv=None) -> int:
    """Command line: time this checkout, or compare two (``--compare OLD NEW``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), type=Path, help="two checkouts to time alternately")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--note", default="", help="what changed between the two checkouts (kept with the result)")
    ap.add_argument("--json", action="store_true", help="print this checkout's timings as JSON")
    a = ap.parse_args(argv)
    if a.compare:
        t0, load0 = time.time(), os.getloadavg()
        res = compare(a.compare[0].resolve(), a.compare[1].resolve(), a.rounds, a.note)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from bci_credit.outputs import versions, write_json

        load = " ".join(f"{x:.2f}" for x in load0) + " (start) / " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (end)"
        res["_meta"] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": False, "seconds": time.time() - t0,
                        "load": load, "versions": versions()}
        out = Path(__file__).resolve().parent / "results" / "rule_update.json"
        write_json(res, out)
        print(res["markdown"])
        print(f"wrote {out}")
        return 0
    res = time_here()
    if a.json:
        import bci_credit

        print(json.dumps({**res, "module": bci_credit.__file__}))
    else:
        print(" ".join(f"{k}={v:.1f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
