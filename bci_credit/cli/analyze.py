"""``bci-credit analyze FILE.nwb``: which units causally drive reward (regression discontinuity)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import CLIError, run_folder

EPILOG = """\
Estimates each unit's causal effect with a regression-discontinuity design and writes, into the
output folder: effects.csv (one row per unit: estimate, robust CI, bandwidth, effective N per
side, density-test p, design, reason; the naive comparisons follow as extra rows), density.csv,
summary.txt (which units drive the outcome: Holm-corrected over the units, and each unit's own
uncorrected CI), plots/ (one RD plot per unit) and run.json.

designs:
  spike             running variable = each unit's max drive Z minus its threshold, outcome =
                    reward (simulations and intracellular data: needs the per-window drive)
  reward-threshold  running variable = the BCI decoder output at its reward threshold, outcome =
                    each unit's change in firing after the epoch (effect of reward on activity;
                    works on real data with a decoder-output series and a known threshold)
  fuzzy             drive replaced by a Poisson-GLM proxy from the other units; refuses units
                    whose first stage (jump in spike probability at the cutoff) is weak. The slow
                    design: 5 GLM fits per unit, 3-8 s per unit for 300 units and an hour of
                    50-ms windows (15-40 min on one core; --n-jobs divides it; a progress bar shows)
  auto              the first of spike, reward-threshold, fuzzy that the file supports

Several inputs (files, folders, globs, list files) are analysed one task per file; a broken file
is skipped with its reason (files.csv) and the others go on; effects.csv then has a 'file' column
and each file's plots and summary go to a subfolder.

examples:
  bci-credit analyze session.nwb --out out/analysis
  bci-credit analyze session.nwb --design reward-threshold --threshold 25 --control-unit 3 --epoch 0.2
  bci-credit analyze data/ --design spike --n-jobs 2 --out out/all
  bci-credit analyze my_recordings/ --design fuzzy --reward reward --out out/fuzzy   (needs strong first stages)
  bci-credit analyze 'sessions/*.nwb' --design spike --no-plots
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="per-unit causal effects on reward by regression discontinuity (spike, reward-threshold, fuzzy)",
        description="Estimate which units causally drive reward in one or more NWB files, with "
        "regression-discontinuity designs, density tests, RD plots and the naive comparison side by side.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="FILE.nwb",
                   help="NWB file(s), folder(s), glob(s) or list file(s) (.txt: one path per line)")
    p.add_argument("--design", default="auto", choices=["auto", "spike", "reward-threshold", "fuzzy", "naive"],
                   help="the causal design (default: auto)")
    p.add_argument("--control-unit", action="append", default=None, metavar="ID",
                   help="flag this unit id as the BCI control unit (repeatable)")
    p.add_argument("--reward", default=None, metavar="SERIES",
                   help="outcome/reward signal: a windows column, series name or trials column of event times; "
                        "events:NAME reads a series as deliveries (summed per window), relative:NAME a trials column of "
                        "times from each trial's start (default: windows 'reward', "
                        "series 'reward', the one reward event series, trials 'reward_time_s')")
    p.add_argument("--reward-lag", type=float, default=0.0, metavar="SECONDS",
                   help="take each window's outcome this much later (reward latency, e.g. a pump's 0.03 s; spike, "
                        "fuzzy, naive designs; default 0)")
    p.add_argument("--decoder", default=None, metavar="SERIES",
                   help="decoder-output series for --design reward-threshold (default: decoder_output)")
    p.add_argument("--threshold", type=float, default=None,
                   help="reward threshold of the decoder (reward-threshold; default from the file's "
                        "bci_decoder table) or the units' spike threshold (spike; default from the units table)")
    p.add_argument("--epoch", type=float, default=None, metavar="SECONDS",
                   help="reward-threshold: epoch length (default 0.1 s)")
    p.add_argument("--horizon", type=float, default=None, metavar="SECONDS",
                   help="reward-threshold: outcome window after each epoch (default 0.3 s)")
    p.add_argument("--window", type=float, default=None, metavar="SECONDS",
                   help="window length for files without a windows table (fuzzy, naive; default 0.05)")
    p.add_argument("--units", default=None, metavar="ID,ID,...", help="analyse only these unit ids")
    p.add_argument("--blocks", default=None, metavar="NAME,NAME,...",
                   help="analyse only the windows of these task blocks, e.g. conditioning (the rewarded block of "
                        "the demo), named by the windows' or trials' 'block' column or the epochs' tags (spike, "
                        "fuzzy, naive designs)")
    p.add_argument("--level", type=float, default=95.0, help="confidence level in percent (default 95)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive comparison")
    p.add_argument("--no-density", action="store_true", help="skip the density (manipulation) tests")
    p.add_argument("--no-plots", action="store_true", help="skip the RD plots")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--max-plots", type=int, default=24, metavar="N", help="RD plots for at most N units (default 24)")
    p.add_argument("--out", default="out/analyze", metavar="DIR", help="output folder (default: out/analyze)")
    p.add_argument("--n-jobs", type=int, default=1, metavar="N",
                   help="parallel processes: files (several inputs) or GLM fits (one file); -1 = all cores")
    p.add_argument("--seed", type=int, default=0, help="root seed (recorded in run.json)")
    p.set_defaults(func=run)


def _kwargs(args) -> dict:
    units = None
    if args.units:
        units = [u.strip() for u in args.units.split(",") if u.strip()]
    blocks = None
    if args.blocks is not None:
        blocks = [b.strip() for b in args.blocks.split(",") if b.strip()]
        if not blocks:
            raise CLIError("--blocks is empty; give block names, e.g. --blocks conditioning")
    extra = {k: v for k, v in (("epoch_s", args.epoch), ("horizon_s", args.horizon)) if v is not None}
    if extra and args.design != "reward-threshold":
        raise CLIError("--epoch and --horizon apply to --design reward-threshold only")
    return dict(design=args.design, control_unit=args.control_unit, reward=args.reward, decoder=args.decoder,
                threshold=args.threshold, window_s=args.window, units=units, naive=not args.no_naive,
                density=not args.no_density, level=args.level, design_options=extra or None, blocks=blocks,
                reward_lag_s=args.reward_lag)


def _subdirs(files: list[str]) -> dict[str, str]:
    """One output subfolder name per file: its stem, made unique (``a``, ``a_2``, ...) against every
    name already given, so that ``x/a.nwb``, ``y/a.nwb`` and ``z/a_2.nwb`` get three folders."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for f in files:
        stem = Path(f).stem or "file"
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)
        name, k = stem, 1
        while name in taken:
            k += 1
            name = f"{stem}_{k}"
        taken.add(name)
        out[f] = name
    return out


def analyze_into(path: str, *, out_root: str, subdirs: dict, plots: bool, max_plots: int, **kwargs):
    """Per-file task of a multi-file run: analyse ``path`` and write its outputs to a subfolder."""
    from ..analysis.causal import analyze_file

    return analyze_file(path, out_dir=Path(out_root) / subdirs[path], plots=plots, max_plots=max_plots, **kwargs)


def _check_options(args) -> list[str]:
    """Reject bad numeric options before any file is read; return warnings to print."""
    import math
    import warnings

    from ..analysis.rd import check_level

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_level(args.level, name="--level")  # the check of RD(level=) and `bci-credit rd`
        except ValueError as err:
            raise CLIError(f"{err} (a percentage, e.g. 95)") from None
    if args.max_plots < 0:
        raise CLIError(f"--max-plots must be >= 0 (0 = no plots), got {args.max_plots}")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise CLIError(f"--threshold must be a finite number, got {args.threshold}")
    if args.seed < 0:  # as demo, predict and reproduce check it
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    return [str(w.message) for w in caught]


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    notes = _check_options(args)
    for note in notes:
        print(f"bci-credit analyze: warning: {note}", file=sys.stderr)
    with warnings.catch_warnings():
        if notes:  # said once above; not again from every fit
            warnings.filterwarnings("ignore", message=r"level=.* is a percentage", category=UserWarning)
        return _analyze(args)


def _analyze(args: argparse.Namespace) -> int:
    from ..parallel import effective_n_jobs, expand_inputs

    try:
        files = expand_inputs(args.inputs)
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    try:
        n_jobs = effective_n_jobs(args.n_jobs)
    except ValueError as err:
        raise CLIError(str(err)) from None
    kw = _kwargs(args)
    with run_folder(args.out, "analyze") as out:  # an input that cannot be read leaves no empty folder
        return _analyze_to(out, files, n_jobs, kw, args)


def _analyze_to(out, files: list, n_jobs: int, kw: dict, args: argparse.Namespace) -> int:
    from ..analysis.causal import DesignUnavailable, analyze_file
    from ..io.nwb import NWBFormatError
    from ..outputs import OutputPathError, write_csv, write_run_json
    from ..parallel import map_files

    config = {k: v for k, v in kw.items()}
    config.update(inputs=files, out=str(out), plots=not args.no_plots)
    if len(files) == 1:
        try:
            res = analyze_file(files[0], out_dir=out, plots=not args.no_plots, max_plots=args.max_plots,
                               n_jobs=n_jobs, progress=not args.no_progress and os.isatty(2), **kw)
        except (DesignUnavailable, OutputPathError) as err:
            raise CLIError(str(err)) from None
        except (OSError, ImportError, NWBFormatError, KeyError, ValueError) as err:
            # OSError covers a missing file and the remote errors of a URL (ConnectionError: no network or
            # server, OSError: no range requests); ImportError: the 'remote' extra is not installed
            msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise CLIError(f"{files[0]}: {msg}" if files[0] not in str(msg) else str(msg)) from None
        write_run_json(out, command="analyze", config=config, seed=args.seed,
                       extra={"design": res.design, "n_units": int(len(res.primary.table)),
                              "drivers": [str(u) for u in res.drivers()["unit"]],
                              "drivers_uncorrected": [str(u) for u in res.drivers(correction=None)["unit"]],
                              "read_notes": res.read_notes,
                              "notes": list(res.primary.notes)})
        print(res.summary())
        print(f"\nwrote {out / 'effects.csv'}, {out / 'summary.txt'}, {out / 'density.csv'}"
              + ("" if args.no_plots else f", {out / 'plots'}/") + f" and {out / 'run.json'}")
        return 0
    subdirs = _subdirs(files)
    result = map_files(analyze_into, files, n_jobs=n_jobs,
                       kwargs={"out_root": str(out), "subdirs": subdirs, "plots": not args.no_plots,
                               "max_plots": args.max_plots, **kw},
                       progress=not args.no_progress and os.isatty(2), keep_values=False, desc="analyze")
    status = result.status.copy()
    status["subfolder"] = status["file"].map(subdirs)
    write_csv(result.table, out / "effects.csv", index=False)
    write_csv(status, out / "files.csv", index=False)
    write_run_json(out, command="analyze", config=config, seed=args.seed,
                   extra={"n_files": len(files), "n_ok": result.n_ok,
                          "skipped": {r.file: r.reason for r in result.skipped.itertuples()}})
    for r in status.itertuples():
        line = f"{r.file}: {r.status}"
        if r.status != "ok":
            line += f" - {r.reason}"
        else:
            line += f" ({r.n_rows} rows) -> {out / r.subfolder}"
        print(line)
    if result.n_ok == 0:
        raise CLIError(f"no file could be analysed ({len(files)} skipped; reasons in {out / 'files.csv'})")
    t = result.table
    if len(t) and "ci_lo" in t.columns:
        naive = t["design"].astype(str).str.startswith("naive")
        alpha = 1.0 - args.level / 100.0

        def listed(rows, at_most=8):
            """Per design variant: the count, and the first units as file:unit."""
            parts = []
            for design, g in rows.groupby(rows["design"].astype(str), sort=False):
                names = ", ".join(f"{Path(f).name}:{u}" for f, u in zip(g["file"][:at_most], g["unit"][:at_most]))
                more = f", ... {len(g) - at_most} more" if len(g) > at_most else ""
                parts.append(f"{design} {len(g)} ({names}{more})")
            return f" - {'; '.join(parts)}" if parts else ""

        # a file analysed by the naive design alone reports associations; elsewhere the naive rows are the foil
        naive_only = naive.groupby(t["file"]).transform("all")
        for rows, what in ((t[~naive], "with an effect"), (t[naive & naive_only], "associated with the outcome "
                                                                                  "(naive design; not causal)")):
            if not len(rows):
                continue
            holm = rows[rows["pvalue_holm"] < alpha] if "pvalue_holm" in rows.columns else rows.iloc[:0]
            sig = rows[(rows["ci_lo"] > 0) | (rows["ci_hi"] < 0)]
            none = (" (no row has an estimate: see the reasons in effects.csv)"
                    if not rows["estimate"].astype(float).notna().any() else "")
            print(f"\nacross {rows['file'].nunique()} file(s), rows {what} after Holm's correction over the units of "
                  f"their file: {len(holm)}{listed(holm)}{none}\n  with their own {args.level:g}% CI excluding 0 "
                  f"(uncorrected): {len(sig)}{listed(sig)}")
    print(f"wrote {out / 'effects.csv'}, {out / 'files.csv'} and {out / 'run.json'}")
    return 0
