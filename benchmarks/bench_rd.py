"""Batch RD throughput: :func:`bci_credit.analysis.rd.fit_many` against rdrobust called per unit.

Setting (issue 5): 1000 units x 10,000 windows, triangular kernel, mserd bandwidths, nn variance
(p=1, q=2) on both sides; the running variable of unit i is its drive minus threshold, the outcome a
shared binary reward that depends on two units crossing threshold. rdrobust (GPL) is imported here
only, to time it and to check that the results are equal; it is called on a random subsample of the
units and its per-unit time is extrapolated to all units (said so in the output). Skipped with a note
when not installed.

Two comparisons, each timed in interleaved rounds so that a change of machine load affects both alike:

* one core: ``fit_many(n_jobs=1)`` against rdrobust in this process (CPU time and wall time);
* two cores: ``fit_many(n_jobs=2)`` (threads) against rdrobust spread over 2 worker processes
  (wall-clock throughput of both).

    .venv/bin/python benchmarks/bench_rd.py          # full size
    .venv/bin/python benchmarks/bench_rd.py --quick  # 200 units x 10,000 windows
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
import warnings

import numpy as np

OPTIONS = dict(kernel="triangular", bwselect="mserd", vce="nn")
#: compared numbers: estimate, bias-corrected estimate, conventional and robust SE, h and b (left)
COMPARED = ("estimate", "tau_bc", "se_cl", "se_rb", "h_left", "b_left")


def make_data(n_units: int, n_windows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Drive-minus-threshold matrix (n_windows, n_units) and a shared binary reward."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.3, (n_windows, 1))
    x = -0.4 + rng.normal(0, 0.15, (1, n_units)) + common + rng.normal(0, 0.5, (n_windows, n_units))
    p = 0.2 + 0.25 * (x[:, 0] >= 0) + 0.15 * (x[:, 1] >= 0) + 0.1 * np.tanh(x[:, 0])
    y = (rng.uniform(size=n_windows) < p).astype(float)
    return x, y


def _rdrobust_row(y, x):
    """rdrobust (same options as fit_many) on one unit: the :data:`COMPARED` numbers and N_h."""
    from rdrobust import rdrobust

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        r = rdrobust(y, x, c=0.0, kernel="tri", bwselect="mserd", vce="nn")
    return [r.coef.iloc[0, 0], r.coef.iloc[1, 0], r.se.iloc[0, 0], r.se.iloc[2, 0], r.bws.iloc[0, 0],
            r.bws.iloc[1, 0], r.N_h[0], r.N_h[1]]


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _agreement(df, pick, rows) -> dict:
    ref = np.array(rows, dtype=float)
    ours = df.iloc[pick][list(COMPARED) + ["n_h_left", "n_h_right"]].to_numpy(dtype=float)
    rel = np.abs(ours[:, :6] - ref[:, :6]) / np.maximum(np.abs(ref[:, :6]), 1e-300)
    return {"max_rel_diff": float(rel.max()),
            "max_rel_diff_by_column": {k: float(v) for k, v in zip(COMPARED, rel.max(axis=0))},
            "equal_effective_n": bool(np.array_equal(ours[:, 6:], ref[:, 6:]))}


def _one_core(x, y, pick, rounds, have_ref) -> dict:
    from bci_credit.analysis.rd import fit_many

    n_units = x.shape[1]
    unit_blocks = np.array_split(np.arange(n_units), rounds)
    ref_blocks = np.array_split(pick, rounds)
    t_batch = c_batch = t_ref = c_ref = 0.0
    frames, rows = [], []
    for ub, rb in zip(unit_blocks, ref_blocks):
        t0, c0 = time.perf_counter(), time.process_time()
        frames.append(fit_many(x[:, ub[0]:ub[-1] + 1], y, 0.0, n_jobs=1, **OPTIONS))  # a view, no copy
        t_batch += time.perf_counter() - t0
        c_batch += time.process_time() - c0
        if not have_ref:
            continue
        for j in rb:
            t0, c0 = time.perf_counter(), time.process_time()
            rows.append(_rdrobust_row(y, x[:, j]))
            t_ref += time.perf_counter() - t0
            c_ref += time.process_time() - c0
    import pandas as pd

    df = pd.concat(frames, ignore_index=True)
    out = {"fit_many_ms_per_unit": 1e3 * t_batch / n_units, "fit_many_cpu_ms_per_unit": 1e3 * c_batch / n_units,
           "n_failed": int(df["reason"].notna().sum())}
    if have_ref:
        out.update({
            "rdrobust_units_timed": int(len(pick)),
            "rdrobust_ms_per_unit": 1e3 * t_ref / len(pick),
            "rdrobust_cpu_ms_per_unit": 1e3 * c_ref / len(pick),
            "speedup": (t_ref / len(pick)) / (t_batch / n_units),
            "speedup_cpu": (c_ref / len(pick)) / (c_batch / n_units),
        })
        out.update(_agreement(df, pick, rows))
    return out


def _two_cores(x, y, pick, rounds, have_ref) -> dict:
    from joblib.externals.loky import get_reusable_executor

    from bci_credit.analysis.rd import fit_many

    n_units = x.shape[1]
    unit_blocks = np.array_split(np.arange(n_units), rounds)
    ref_blocks = np.array_split(pick, rounds)
    t_batch = t_ref = 0.0
    frames, rows = [], []
    pool = get_reusable_executor(max_workers=2) if have_ref else None
    if have_ref:  # start the workers and load rdrobust (and its JIT) there, untimed
        list(pool.map(_rdrobust_row, [y[:2000]] * 4, [x[:2000, j] for j in range(4)]))
    for ub, rb in zip(unit_blocks, ref_blocks):
        t0 = time.perf_counter()
        frames.append(fit_many(x[:, ub[0]:ub[-1] + 1], y, 0.0, n_jobs=2, **OPTIONS))
        t_batch += time.perf_counter() - t0
        if not have_ref:
            continue
        t0 = time.perf_counter()
        rows += list(pool.map(_rdrobust_row, [y] * len(rb), [x[:, j] for j in rb]))
        t_ref += time.perf_counter() - t0
    import pandas as pd

    df = pd.concat(frames, ignore_index=True)
    out = {"fit_many_units_per_s": n_units / t_batch, "fit_many_ms_per_unit": 1e3 * t_batch / n_units}
    if have_ref:
        out.update({"rdrobust_units_timed": int(len(pick)), "rdrobust_units_per_s": len(pick) / t_ref,
                    "rdrobust_ms_per_unit": 1e3 * t_ref / len(pick),
                    "speedup": (t_ref / len(pick)) / (t_batch / n_units)})
        out.update(_agreement(df, pick, rows))
    return out


def run(quick: bool = False, *, n_units: int | None = None, n_windows: int = 10_000, n_ref: int | None = None,
        rounds: int = 5, seed: int = 7, two_cores: bool = True) -> dict:
    """Time fit_many on all units and rdrobust on ``n_ref`` of them (one core, then two); return the
    numbers (per-unit times, ratios, agreement, load average before and after)."""
    from bci_credit.analysis.rd import fit_many

    n_units = n_units or (200 if quick else 1000)
    n_ref = n_ref or (10 if quick else 40)
    rounds = max(1, min(rounds, n_ref))
    x, y = make_data(n_units, n_windows, seed)
    fit_many(x[:2000, :4], y[:2000])  # compile/load the kernels outside the timing
    try:
        import rdrobust  # noqa: F401

        have_ref = True
        _rdrobust_row(y[:2000], x[:2000, 0])  # warm-up (its numba JIT)
    except ImportError:
        have_ref = False
    rng = np.random.default_rng(seed + 1)
    pick = np.sort(rng.choice(n_units, size=min(n_ref, n_units), replace=False))
    out = {"n_units": n_units, "n_windows": n_windows, "options": "triangular, mserd, nn, p=1, q=2",
           "cpu_count": os.cpu_count(), "load_before": _load()}
    out["one_core"] = _one_core(x, y, pick, rounds, have_ref)
    if two_cores and (os.cpu_count() or 1) >= 2:
        out["two_cores"] = _two_cores(x, y, pick, rounds, have_ref)
    out["load_after"] = _load()
    if not have_ref:
        out["rdrobust"] = "not installed: comparison skipped"
    else:
        out["note"] = (f"rdrobust 2.1.1 timed on {len(pick)} random units (interleaved with fit_many in {rounds} "
                       f"rounds) and extrapolated to {n_units}; two cores: fit_many with 2 threads vs rdrobust "
                       "in 2 worker processes (wall clock)")
    return out


def markdown(res: dict) -> str:
    """The BENCHMARKS.md section: per-unit times, ratios, agreement and load average."""
    lines = [f"{res['n_units']} units x {res['n_windows']} windows, {res['options']}; load average "
             f"{res.get('load_before', '?')} (before) / {res.get('load_after', '?')} (after).", ""]
    if "rdrobust" in res:
        o = res["one_core"]
        lines.append(f"fit_many: {o['fit_many_ms_per_unit']:.3f} ms/unit (rdrobust not installed: no comparison).")
        return "\n".join(lines)
    lines += ["| setting | fit_many ms/unit | rdrobust ms/unit | ratio | max rel. diff (estimates, SEs, h, b) "
              "| equal N_h |", "|---|---|---|---|---|---|"]
    o = res["one_core"]
    lines.append(f"| 1 core, CPU time | {o['fit_many_cpu_ms_per_unit']:.3f} | {o['rdrobust_cpu_ms_per_unit']:.2f} "
                 f"| **{o['speedup_cpu']:.0f}x** | {o['max_rel_diff']:.1e} | {o['equal_effective_n']} |")
    lines.append(f"| 1 core, wall clock | {o['fit_many_ms_per_unit']:.3f} | {o['rdrobust_ms_per_unit']:.2f} "
                 f"| {o['speedup']:.0f}x | | |")
    if "two_cores" in res:
        t = res["two_cores"]
        lines.append(f"| 2 cores (threads vs 2 processes), wall clock | {t['fit_many_ms_per_unit']:.3f} "
                     f"| {t['rdrobust_ms_per_unit']:.2f} | {t['speedup']:.0f}x | {t['max_rel_diff']:.1e} "
                     f"| {t['equal_effective_n']} |")
    lines += ["", res.get("note", "")]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 units instead of 1000")
    ap.add_argument("--one-core", action="store_true", help="skip the two-core comparison")
    args = ap.parse_args(argv)
    res = run(args.quick, two_cores=not args.one_core)
    print(json.dumps(res, indent=2))
    print(markdown(res))


if __name__ == "__main__":
    main()
