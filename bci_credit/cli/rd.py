"""``bci-credit rd``: local-polynomial regression discontinuity estimate from a CSV file."""

from __future__ import annotations

import argparse
import sys

from . import CLIError

EPILOG = """\
examples:
  bci-credit rd data.csv --y reward --x drive
  bci-credit rd data.csv --y y --x score --cutoff 0.5 --kernel uniform --bwselect msetwo --vce hc1
  bci-credit rd data.csv --y y --x score --fuzzy treated --covs age,income --cluster site --json

With --json one JSON object is printed with the keys tau_cl, tau_bc, se_cl, se_rb, ci_cl, ci_rb,
pv_cl, pv_rb, h, b, n, n_h, kernel, bwselect, vce, p, q, deriv, cutoff, level (pairs are [left,
right]), the design (fuzzy, first_stage, covs, coef_covs, n_clusters, mass_points, n_dropped) and
the input (data, columns). Rows with missing or infinite values are dropped (their number is
reported). The CSV may be compressed (.gz, .bz2, .xz, .zip, .zst).
"""

KERNELS = ("triangular", "epanechnikov", "uniform", "tri", "epa", "uni")
VCES = ("nn", "hc0", "hc1", "hc2", "hc3", "cr1")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rd", help="regression-discontinuity estimate (robust bias-corrected) from a CSV file",
        description="Estimate a sharp, fuzzy or kink regression discontinuity with local polynomials: "
                    "conventional, bias-corrected and robust bias-corrected inference (rdrobust-equivalent).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA.csv", help="CSV file with a header row")
    p.add_argument("--y", required=True, metavar="COL", help="outcome column")
    p.add_argument("--x", required=True, metavar="COL", help="running-variable column")
    p.add_argument("--cutoff", type=float, default=0.0, metavar="C", help="cutoff (default 0)")
    p.add_argument("--p", type=int, default=None, metavar="P", help="polynomial order (default 1, or deriv+1)")
    p.add_argument("--q", type=int, default=None, metavar="Q", help="bias-correction order (default p+1)")
    p.add_argument("--deriv", type=int, default=0, metavar="D", help="derivative: 0 jump (default), 1 kink")
    p.add_argument("--fuzzy", metavar="COL", help="treatment-received column (fuzzy RD)")
    p.add_argument("--covs", metavar="COL,...", help="comma-separated covariate columns")
    p.add_argument("--cluster", metavar="COL", help="cluster-id column (cluster-robust CR1)")
    p.add_argument("--weights", metavar="COL", help="non-negative weights column")
    p.add_argument("--kernel", default="triangular", type=str.lower, choices=KERNELS,
                   help="triangular (default, or tri), epanechnikov (epa), uniform (uni)")
    p.add_argument("--bwselect", default="mserd", metavar="NAME",
                   help="mserd (default), msetwo, msesum, msecomb1, msecomb2, cerrd, certwo, cersum, cercomb1, cercomb2")
    p.add_argument("--vce", default=None, type=str.lower, choices=VCES,
                   help="variance estimator (default nn; with --cluster, cr1)")
    p.add_argument("--h", type=float, nargs="+", metavar="H", help="main bandwidth (one, or left right)")
    p.add_argument("--b", type=float, nargs="+", metavar="B", help="bias bandwidth (one, or left right)")
    p.add_argument("--level", type=float, default=95.0, help="confidence level in percent (default 95)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary table")
    p.set_defaults(func=run)


def _read_csv(path: str):
    """The CSV file as a DataFrame; every way it can fail is a one-line :class:`CLIError`."""
    import os

    import pandas as pd

    if "://" in path:
        raise CLIError(f"{path} is a URL; rd reads a local CSV file: download it first")
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory, not a CSV file")
    if not os.path.exists(path):
        raise CLIError(f"no such file: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except PermissionError:
        raise CLIError(f"cannot read {path}: permission denied") from None
    except OSError as err:
        raise CLIError(f"cannot read {path}: {err.strerror or err}") from None
    if head.startswith(b"\x89HDF"):
        raise CLIError(f"{path} is an HDF5 file, not a CSV file; for an NWB recording use 'bci-credit analyze'")
    try:
        # the header row as written (pandas renames repeated names "a", "a.1" in the frame)
        raw = pd.read_csv(path, nrows=1, header=None, dtype=str).iloc[0].tolist()
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path} is empty: it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CLIError(f"cannot read {path} as CSV: {str(err).splitlines()[0]}") from None
    except Exception as err:  # compression errors (gzip, bz2, xz, zip), I/O errors
        raise CLIError(f"cannot read {path} as CSV: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
                       ) from None
    repeated = sorted({str(c) for c in raw if raw.count(c) > 1})
    if repeated:
        raise CLIError(f"{path} repeats the column name(s) {', '.join(map(repr, repeated))} in its header; "
                       "give every column its own name")
    return df


def _column_error(path: str, missing: list[str], columns) -> CLIError:
    names = [str(c) for c in columns]
    hint = ""
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        hint = " (the file does not look comma-separated: rd reads comma-separated values)"
    else:
        near = [n for n in names if n.strip() in missing and n not in missing]
        if near:
            hint = f" (note the spaces in {', '.join(map(repr, near))})"
    return CLIError(f"column(s) {', '.join(map(repr, missing))} not in {path}; columns are "
                    f"{', '.join(map(repr, names))}{hint}")


def _cli_words(message: str) -> str:
    """The API's argument names in a message, as the CLI's options."""
    return message.replace("vce=", "--vce ").replace("cluster=...", "--cluster COL")


def run(args) -> int:
    import json
    import warnings

    if not 0 < args.level < 100:
        raise CLIError(f"--level is a confidence level in percent, in (0, 100) (e.g. 95); got {args.level:g}")
    if args.level < 1:
        raise CLIError(f"--level is a percentage: for a {100 * args.level:g} % interval use --level "
                       f"{100 * args.level:g}, got {args.level:g}")
    df = _read_csv(args.data)
    if len(df) == 0:
        raise CLIError(f"{args.data} has a header but no data rows")
    cols = [args.y, args.x] + [c for c in (args.fuzzy, args.cluster, args.weights) if c]
    covs = [c.strip() for c in args.covs.split(",") if c.strip()] if args.covs else None
    missing = [c for c in cols + (covs or []) if c not in df.columns]
    if missing:
        raise _column_error(args.data, missing, df.columns)
    from ..analysis.rd import RD

    vce = args.vce or ("cr1" if args.cluster else "nn")
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = RD(args.y, args.x, args.cutoff, data=df, fuzzy=args.fuzzy, covs=covs, cluster=args.cluster,
                     weights=args.weights, p=args.p, q=args.q, deriv=args.deriv, h=args.h, b=args.b,
                     kernel=args.kernel, bwselect=args.bwselect, vce=vce, level=args.level).fit()
    except ValueError as err:
        raise CLIError(_cli_words(str(err).splitlines()[0])) from None
    finally:
        for w in caught:
            print(f"bci-credit rd: warning: {_cli_words(str(w.message))}", file=sys.stderr)
    if args.json:
        from ..outputs import to_jsonable

        record = res.to_dict()
        record.update(data=args.data, columns={"y": args.y, "x": args.x, "fuzzy": args.fuzzy, "covs": covs,
                                               "cluster": args.cluster, "weights": args.weights})
        print(json.dumps(to_jsonable(record)))
    else:
        print(res.summary())
    return 0
