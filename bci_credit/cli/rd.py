"""``bci-credit rd``: local-polynomial regression discontinuity estimate from a CSV file."""

from __future__ import annotations

import argparse

from . import CLIError

EPILOG = """\
examples:
  bci-credit rd data.csv --y reward --x drive
  bci-credit rd data.csv --y y --x score --cutoff 0.5 --kernel uniform --bwselect msetwo --vce hc1
  bci-credit rd data.csv --y y --x score --fuzzy treated --covs age,income --cluster site --json

With --json one JSON object is printed with the keys tau_cl, tau_bc, se_cl, se_rb, ci_cl, ci_rb,
pv_cl, pv_rb, h, b, n, n_h, kernel, bwselect, vce, p, q (pairs are [left, right]). Rows with missing
or infinite values are dropped (their number is reported).
"""


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
    p.add_argument("--kernel", default="triangular", choices=["triangular", "epanechnikov", "uniform"])
    p.add_argument("--bwselect", default="mserd", metavar="NAME",
                   help="mserd (default), msetwo, msesum, msecomb1, msecomb2, cerrd, certwo, cersum, cercomb1, cercomb2")
    p.add_argument("--vce", default="nn", choices=["nn", "hc0", "hc1", "hc2", "hc3"],
                   help="variance estimator (default nn; cr1 is used with --cluster)")
    p.add_argument("--h", type=float, nargs="+", metavar="H", help="main bandwidth (one, or left right)")
    p.add_argument("--b", type=float, nargs="+", metavar="B", help="bias bandwidth (one, or left right)")
    p.add_argument("--level", type=float, default=95.0, help="confidence level in percent (default 95)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary table")
    p.set_defaults(func=run)


def _read_csv(path: str):
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path} is empty: it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CLIError(f"cannot read {path} as CSV: {str(err).splitlines()[0]}") from None
    except IsADirectoryError:
        raise CLIError(f"{path} is a directory, not a CSV file") from None


def run(args) -> int:
    import json

    df = _read_csv(args.data)
    if len(df) == 0:
        raise CLIError(f"{args.data} has a header but no data rows")
    cols = [args.y, args.x] + [c for c in (args.fuzzy, args.cluster, args.weights) if c]
    covs = [c.strip() for c in args.covs.split(",") if c.strip()] if args.covs else None
    missing = [c for c in cols + (covs or []) if c not in df.columns]
    if missing:
        raise CLIError(f"column(s) {', '.join(map(repr, missing))} not in {args.data}; "
                       f"columns are {', '.join(map(str, df.columns))}")
    from ..analysis.rd import RD

    try:
        res = RD(args.y, args.x, args.cutoff, data=df, fuzzy=args.fuzzy, covs=covs, cluster=args.cluster,
                 weights=args.weights, p=args.p, q=args.q, deriv=args.deriv, h=args.h, b=args.b,
                 kernel=args.kernel, bwselect=args.bwselect, vce="cr1" if args.cluster else args.vce,
                 level=args.level).fit()
    except ValueError as err:
        raise CLIError(str(err).splitlines()[0]) from None
    if args.json:
        from ..outputs import to_jsonable

        print(json.dumps(to_jsonable(res.to_dict())))
    else:
        print(res.summary())
    return 0
