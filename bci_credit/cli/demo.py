"""``bci-credit demo``: the main job end to end on an embedded default (what ``make demo`` runs)."""

from __future__ import annotations

import argparse

from . import CLIError, out_dir

EXAMPLE = """\
Simulate a default single-unit BCI session with RDD learning, write it as NWB, read the file back
as if it were a recording, estimate every unit's causal effect on reward with regression
discontinuity, and write a report folder (NWB, run.json, CSV tables, figures, summary.md).

examples:
  bci-credit demo --out demo_out
  bci-credit demo --rule spike_injection --out demo_injection   # another learner, its default parameters
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="simulate a BCI session -> NWB -> RD analysis -> report folder",
        description="Run the whole pipeline on the embedded default session.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="demo_out", help="report folder (default: demo_out)")
    p.add_argument("--seed", type=int, default=2023, help="root seed (default: 2023)")
    p.add_argument("--duration", type=float, default=None, help="simulated seconds (default: the session's own)")
    p.add_argument("--quick", action="store_true", help="a short session (for tests)")
    # the names are checked in run(): importing the simulator here would slow every command's start
    p.add_argument("--rule", default="rdd", metavar="RULE",
                   help="learning rule of the session, with its default parameters: rdd (default), od, reinforce, "
                        "node_perturbation, spike_injection, rstdp, oracle or none")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    import time

    from ..pipeline import check_demo_duration, run_demo

    if args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    try:
        check_demo_duration(args.duration, "--duration")
    except ValueError as err:
        raise CLIError(str(err)) from None
    from ..tasks.protocols import RULE_NAMES

    if args.rule not in RULE_NAMES:
        raise CLIError(f"--rule must be one of {', '.join(RULE_NAMES)}; got {args.rule!r}")
    out_dir(args.out, "demo")  # a bad --out fails now, not after the simulation
    t0 = time.time()
    summary = run_demo(args.out, seed=args.seed, duration_s=args.duration, quick=args.quick, rule=args.rule,
                       progress=sys.stderr.isatty())
    print(summary)
    print(f"report written to {args.out}/ in {time.time() - t0:.0f} s")
    return 0
