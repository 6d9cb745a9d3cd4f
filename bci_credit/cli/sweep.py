"""``bci-credit sweep CONFIG --grid KEY=V1,V2 ...``: a resumable parameter sweep."""

from __future__ import annotations

import argparse
import sys

from . import CLIError, run_folder, warnings_as_lines

EPILOG = """\
Runs every grid point x replicate as one task (each with its own seed spawned from one root seed,
so results do not depend on --n-jobs or on the scheduler) and writes into the output folder:
  tasks.jsonl   one line per finished task, written as each task ends (the journal)
  results.csv   one row per task: parameters, seed, status, metrics
  summary.csv   mean and standard error per grid point;  sweep.png  a figure of them
  sweep.json, run.json   what was run (config, grid, root seed, versions, argv)
Interrupted (Ctrl-C, a killed job)? Run the same command again: finished tasks are kept and only
the rest run. Grid keys: c (population.c), p (learning.p), any dotted key (model.sigma,
run.duration_s), or a field name found in one table only. Values are TOML literals separated by
commas; START:STOP:NUM is a linspace.

Default metrics: per-unit rate, mean reward, true direct effect, and (no learning) constant-RD
estimate with window p and observed dependence, or (learning) final weights and final mean cost.

examples:
  bci-credit sweep paper_2neuron_estimation --grid 'c=0,0.5,0.99' --grid 'p=0.01,0.05,0.2' \\
      --replicates 10 --out out/sweep_c_p --n-jobs 2
  bci-credit sweep my.toml --grid 'sigma=5:15:5' --duration 20 --out out/sigma
  bci-credit sweep paper_2neuron_banana --grid c=0.1,0.9 --replicates 4 --out out/learn \\
      --scheduler tcp://10.0.0.5:8786          # same tasks on an existing Dask cluster
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a resumable parameter sweep (grid x replicates) in parallel",
        description="Run a parameter sweep: every grid point x replicate is a task; one results row per task.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="preset name or path to a TOML config")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept parameter and its values (repeatable; the grid is their product)")
    p.add_argument("--replicates", type=int, default=1, metavar="N", help="runs per grid point (default 1)")
    p.add_argument("--out", required=True, help="output folder (an existing sweep there is resumed)")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a base config value (repeatable)")
    p.add_argument("--duration", type=float, help="simulated seconds per task (overrides run.duration_s)")
    p.add_argument("--seed", type=int, help="root seed (default: the config's run.seed)")
    p.add_argument("--n-jobs", type=int, default=None, metavar="N",
                   help="local worker processes (-1 = all cores; default $BCI_CREDIT_N_JOBS or 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the tasks on this Dask scheduler (tcp://host:port; default $BCI_CREDIT_SCHEDULER; "
                        "needs the 'distributed' extra)")
    p.add_argument("--metrics", default=None, metavar="MODULE:FUNCTION",
                   help="per-task metric function metrics(rec, config) -> dict (default: bci_credit.sweep:default_metrics)")
    p.add_argument("--overwrite", action="store_true", help="discard a sweep already in --out instead of resuming")
    p.add_argument("--no-figure", action="store_true", help="skip sweep.png")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _load_metrics(spec: str):
    import importlib

    if ":" not in spec:
        raise CLIError(f"--metrics {spec!r}: write MODULE:FUNCTION, e.g. mypackage.metrics:summarise")
    mod_name, attr = spec.split(":", 1)
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as err:
        raise CLIError(f"--metrics {spec!r}: cannot import {mod_name!r} ({err})") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CLIError(f"--metrics {spec!r}: {mod_name} has no {attr!r}")
    if not callable(obj):
        raise CLIError(f"--metrics {spec!r} is not callable")
    return obj


def _refuse_settings_a_rule_grid_drops(sets: list, grid: list) -> None:
    """``--set learning.X`` would be dropped wherever ``--grid learning.rule=...`` switches the rule (a new rule
    starts from its own defaults): refuse it and say how to keep it."""
    def key(item: str) -> str:
        return item.split("=", 1)[0].strip()

    rule_grid = any(key(g) in ("learning.rule", "rule") for g in grid)
    learning = [key(s) for s in sets if key(s).startswith("learning.") and key(s) != "learning.rule"]
    if rule_grid and learning:
        raise CLIError(f"--set {', '.join(learning)} would be dropped at the grid points that switch learning.rule "
                       f"(a switched-in rule starts from its own defaults); give it as a grid key instead, e.g. "
                       f"--grid {learning[0]}=VALUE")


def run(args) -> int:
    from ..config import ConfigError
    from .simulate import load_with_overrides

    if args.replicates < 1:
        raise CLIError(f"--replicates must be >= 1, got {args.replicates}")
    with warnings_as_lines("sweep"):  # e.g. a rule switched by --set learning.rule=...
        cfg = load_with_overrides(args.config, args.set, args.duration, None)
    _refuse_settings_a_rule_grid_drops(args.set, args.grid)
    metrics = _load_metrics(args.metrics) if args.metrics else None
    from ..sweep import run_sweep

    try:
        with run_folder(args.out, "sweep") as out, warnings_as_lines("sweep"):  # a bad --out fails now
            res = run_sweep(cfg, args.grid, replicates=args.replicates, out=out, seed=args.seed, metrics=metrics,
                            n_jobs=args.n_jobs, scheduler=args.scheduler,
                            progress=not args.no_progress and sys.stderr.isatty(), overwrite=args.overwrite,
                            figure=not args.no_figure, argv=["bci-credit", *sys.argv[1:]])
    except ConfigError as err:
        raise CLIError(str(err)) from None
    except (ValueError, RuntimeError, ConnectionError, ImportError) as err:
        raise CLIError(str(err)) from None
    except KeyboardInterrupt:
        print(f"sweep interrupted: finished tasks are saved in {args.out}/; run the same command again to resume",
              file=sys.stderr)
        raise
    n = len(res.results)
    print(f"{n} tasks ({res.n_resumed} resumed, {res.n_run} run now): {n - res.n_failed} ok, {res.n_failed} failed")
    if res.n_failed:
        first = res.results[res.results["status"] != "ok"].iloc[0]
        print(f"first failure (task {first['task_id']}): {first['reason']}; rerun the command to retry failed tasks",
              file=sys.stderr)
    print(f"wrote {', '.join(f.name for f in res.files)} to {out}/")
    return 1 if res.n_failed else 0
