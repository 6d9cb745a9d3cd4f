"""One-off timing of the RDD rules' update, window construction included (not part of `make bench`).

Run from the code to time (e.g. two worktrees, old and new, alternated a few times), best of 5 per
process: ``PYTHONPATH=WORKTREE python benchmarks/time_rule_update.py``. Prints microseconds per window
for RDDRule(step="decay") and RepoRDDRule(), 50 replicates x 2 neurons, 3000 windows.
"""
import time

import numpy as np

from bci_credit.learning import RDDRule, RepoRDDRule, WindowContext, WindowData


def main() -> None:
    ctx = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.full(50, 10.0))
    rng = np.random.default_rng(0)
    n = 3000
    Z, R, S = rng.uniform(0.5, 1.5, size=(n, 50, 2)), rng.normal(size=(n, 50)), rng.random((n, 50, 2))
    out = {}
    for name, make in (("RDDRule", lambda: RDDRule(step="decay", gain=1e-3)), ("RepoRDDRule", lambda: RepoRDDRule(gain=1e-3))):
        best = np.inf
        for _ in range(5):
            rule = make()
            rule.initialize(np.full((50, 2), 10.0), ctx)
            t = time.perf_counter()
            for k in range(n):
                z = Z[k]
                rule.update(WindowData(drive=z, spiked=z > 1.0, counts=(z > 1.0).astype(float), reward=R[k],
                                       s_end=S[k], index=k))
            best = min(best, (time.perf_counter() - t) / n * 1e6)
        out[name] = best
    print(" ".join(f"{k}={v:.1f}" for k, v in out.items()))


if __name__ == "__main__":
    main()
