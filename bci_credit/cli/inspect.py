"""``bci-credit inspect FILE.nwb``: a first look at any NWB file."""

from __future__ import annotations

import argparse

from . import CLIError

EPILOG = """\
Shows the units (spike count and mean rate of each), trials, other interval tables, time series
and tables of an NWB file (--json adds the processing modules), plus warnings about anything unusual (units outside
/units, unsorted spikes, binned counts instead of spike times, NaN interval ends, dates without a
timezone). Nothing is loaded beyond what the summary needs, and the file is opened read-only.

rate_hz = n_spikes / duration_s, where duration_s spans every time stored in the file.

examples:
  bci-credit inspect session.nwb
  bci-credit inspect session.nwb --json > summary.json
  bci-credit inspect sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb --max-units 200
  bci-credit inspect file.nwb --units-path processing/ecephys/units
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="summarise an NWB file: units, spike counts, rates, trials, time series",
        description="Summarise an NWB file (any writer): units, spike counts and rates, trials, "
        "time series and interval tables.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE.nwb", help="the NWB (HDF5) file")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (keys include n_units, n_spikes, duration_s, n_trials, units, "
                        "warnings) instead of text")
    p.add_argument("--max-units", type=int, default=20, metavar="N",
                   help="units listed in the text output (default 20; --json lists all)")
    p.add_argument("--units-path", default=None, metavar="PATH",
                   help="read the units from this table or binned-count TimeSeries instead of searching")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..io import nwb
    from ..io.remote import open_nwb_source
    from ..outputs import to_jsonable

    try:
        with open_nwb_source(args.file) as src:
            summary = nwb.inspect(src, units_path=args.units_path)
    except (OSError, ImportError, ValueError) as err:  # ValueError: a malformed dandi:// or s3:// address
        raise CLIError(str(err)) from None
    except nwb.NWBFormatError as err:
        raise CLIError(str(err)) from None
    if args.json:
        print(json.dumps(to_jsonable(summary), indent=2))
    else:
        print(nwb.format_summary(summary, max_units=max(0, args.max_units)))
    return 0
