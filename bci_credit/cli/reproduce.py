"""``bci-credit reproduce``: run the paper-figure recipes (JSON numbers + PNG figure per recipe)."""

from __future__ import annotations

import argparse

from . import CLIError, out_dir

EXAMPLE = """\
Reproduce a figure of Lansdell & Kording (spiking RDD) or the RDD / OD / node-perturbation
learning comparison. Each recipe writes NAME.json (its numbers, seed, configuration and the
acceptance checks with the measured values) and NAME.png into the output folder, plus run.json.
--quick runs a reduced version in seconds; results are reproducible from --seed and do not
depend on --n-jobs.

examples:
  bci-credit reproduce --list
  bci-credit reproduce fig3a --quick --out out/repro
  bci-credit reproduce fig4dg learning_compare --n-jobs 2 --out out/repro
  bci-credit reproduce all --out out/repro_full
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce", help="reproduce a paper figure (or 'all'): JSON numbers + PNG figure",
        description="Run reproduction recipes of the spiking-RDD paper and write their numbers and figures.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="recipe name(s), or 'all' (see --list)")
    p.add_argument("--quick", action="store_true", help="reduced version (seconds; used by the tests)")
    p.add_argument("--out", default="out/reproduce", help="output folder (default: out/reproduce)")
    p.add_argument("--n-jobs", type=int, default=1, help="tasks run at once (1 = this process; -1 = every core)")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: the recipes' default, 2024)")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from ..outputs import write_run_json
    from ..reproduce import DEFAULT_SEED, RECIPES, list_recipes, run_recipe

    if args.list:
        for name, doc in list_recipes().items():
            print(f"  {name:<17} {doc}")
        return 0
    if not args.names:
        raise CLIError("give a recipe name or 'all' (see --list)")
    names = list(RECIPES) if args.names == ["all"] else list(dict.fromkeys(args.names))  # each recipe once
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise CLIError(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)} or 'all'")
    if args.n_jobs == 0:
        raise CLIError("--n-jobs must be a non-zero integer (1 = no parallelism, -1 = every core)")
    seed = DEFAULT_SEED if args.seed is None else args.seed
    if seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {seed}")
    out = out_dir(args.out, "reproduce")  # a bad --out fails now, not after the recipes
    summary = {}
    for name in names:
        t0 = time.perf_counter()
        res = run_recipe(name, out, quick=args.quick, seed=seed, n_jobs=args.n_jobs)
        checks = res["acceptance"]
        n_pass = sum(c["passed"] for c in checks.values())
        elapsed = time.perf_counter() - t0
        summary[name] = {"elapsed_s": round(elapsed, 2), "checks_passed": n_pass, "checks": len(checks)}
        failed = [k for k, c in checks.items() if not c["passed"]]
        print(f"{name:<17} {elapsed:7.1f} s  {n_pass}/{len(checks)} checks passed"
              + (f"  (failed: {', '.join(failed)})" if failed else ""))
    write_run_json(out, command="reproduce", seed=seed,
                   config={"recipes": names, "quick": args.quick, "n_jobs": args.n_jobs},
                   extra={"summary": summary, "files": [f"{n}.{e}" for n in names for e in ("json", "png")]})
    print(f"wrote {2 * len(names) + 1} files to {out}/")
    if args.quick and any(v["checks_passed"] < v["checks"] for v in summary.values()):
        print("note: --quick runs a reduced size (fewer runs, shorter simulations), too small for some of the paper's "
              "criteria; the checks are decided by the full-size run (without --quick). Each check's criterion and "
              "measured value are in the recipe's JSON.")
    return 0
