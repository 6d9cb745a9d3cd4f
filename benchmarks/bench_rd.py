"""Batch RD throughput: :func:`bci_credit.analysis.rd.fit_many` against rdrobust called per unit.

Setting (issue 5): 1000 units x 10,000 windows, triangular kernel, mserd bandwidths, nn variance;
the running variable of unit i is its drive minus threshold, the outcome a shared binary reward that
depends on two units crossing threshold. rdrobust (GPL) is imported here only, to time it and to
check that the results are equal; it is called on a random subsample of units and its per-unit time
is extrapolated to all units (said so in the output). Skipped with a note when not installed.

    .venv/bin/python benchmarks/bench_rd.py          # full size
    .venv/bin/python benchmarks/bench_rd.py --quick  # 200 units x 10,000 windows
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings

import numpy as np


def make_data(n_units: int, n_windows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Drive-minus-threshold matrix (n_windows, n_units) and a shared binary reward."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.3, (n_windows, 1))
    x = -0.4 + rng.normal(0, 0.15, (1, n_units)) + common + rng.normal(0, 0.5, (n_windows, n_units))
    p = 0.2 + 0.25 * (x[:, 0] >= 0) + 0.15 * (x[:, 1] >= 0) + 0.1 * np.tanh(x[:, 0])
    y = (rng.uniform(size=n_windows) < p).astype(float)
    return x, y


def run(quick: bool = False, *, n_units: int | None = None, n_windows: int = 10_000, n_ref: int | None = None,
        n_jobs: int = 1, rounds: int = 5, seed: int = 7) -> dict:
    """Time fit_many on all units and rdrobust on ``n_ref`` of them; return the numbers.

    The two are timed in ``rounds`` interleaved rounds (each round fits 1/rounds of the units with
    fit_many and 1/rounds of the reference units with rdrobust), so that a change of machine load
    during the run affects both alike. Wall-clock and CPU (process) times are both reported.
    """
    from bci_credit.analysis.rd import fit_many

    n_units = n_units or (200 if quick else 1000)
    n_ref = n_ref or (5 if quick else 20)
    rounds = max(1, min(rounds, n_ref))
    x, y = make_data(n_units, n_windows, seed)
    fit_many(x[:2000, :4], y[:2000])  # compile/load the kernels outside the timing
    try:
        from rdrobust import rdrobust
    except ImportError:
        rdrobust = None
    rng = np.random.default_rng(seed + 1)
    pick = np.sort(rng.choice(n_units, size=min(n_ref, n_units), replace=False))
    unit_blocks = np.array_split(np.arange(n_units), rounds)
    ref_blocks = np.array_split(pick, rounds)
    t_batch = c_batch = t_ref = c_ref = 0.0
    frames, rows = [], []
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if rdrobust is not None:
            rdrobust(y[:2000], x[:2000, 0])  # warm-up (numba JIT of its nn loop)
        for ub, rb in zip(unit_blocks, ref_blocks):
            t0, c0 = time.perf_counter(), time.process_time()
            frames.append(fit_many(x[:, ub], y, 0.0, kernel="triangular", bwselect="mserd", vce="nn",
                                   n_jobs=n_jobs))
            t_batch += time.perf_counter() - t0
            c_batch += time.process_time() - c0
            if rdrobust is None:
                continue
            for j in rb:
                t0, c0 = time.perf_counter(), time.process_time()
                r = rdrobust(y, x[:, j], c=0.0, kernel="tri", bwselect="mserd", vce="nn")
                t_ref += time.perf_counter() - t0
                c_ref += time.process_time() - c0
                rows.append([r.coef.iloc[0, 0], r.coef.iloc[1, 0], r.se.iloc[0, 0], r.se.iloc[2, 0],
                             r.bws.iloc[0, 0], r.bws.iloc[1, 0], r.N_h[0], r.N_h[1]])
    import pandas as pd

    df = pd.concat(frames, ignore_index=True)
    out = {
        "n_units": n_units, "n_windows": n_windows, "options": "triangular, mserd, nn, p=1, q=2",
        "n_jobs": n_jobs, "fit_many_s": t_batch, "fit_many_ms_per_unit": 1e3 * t_batch / n_units,
        "fit_many_cpu_ms_per_unit": 1e3 * c_batch / n_units, "n_failed": int(df["reason"].notna().sum()),
    }
    if rdrobust is None:
        out["rdrobust"] = "not installed: comparison skipped"
        return out
    ref = np.array(rows, dtype=float)
    ours = df.iloc[pick][["estimate", "tau_bc", "se_cl", "se_rb", "h_left", "b_left", "n_h_left",
                          "n_h_right"]].to_numpy(dtype=float)
    rel = np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-300)
    per_unit = t_ref / len(pick)
    out.update({
        "rdrobust_units_timed": int(len(pick)),
        "rdrobust_ms_per_unit": 1e3 * per_unit,
        "rdrobust_cpu_ms_per_unit": 1e3 * c_ref / len(pick),
        "rdrobust_s_extrapolated": per_unit * n_units,
        "speedup": per_unit * n_units / t_batch,
        "speedup_cpu": (c_ref / len(pick)) / (c_batch / n_units),
        "max_rel_diff": float(rel.max()),
        "equal_effective_n": bool(np.array_equal(ours[:, 6:], ref[:, 6:])),
        "note": f"rdrobust timed on {len(pick)} random units (interleaved with fit_many in {rounds} rounds) "
                f"and extrapolated to {n_units}",
    })
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 units instead of 1000")
    ap.add_argument("--n-jobs", type=int, default=1, help="threads for fit_many (-1: all cores)")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.quick, n_jobs=args.n_jobs), indent=2))


if __name__ == "__main__":
    main()
