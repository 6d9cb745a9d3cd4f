"""A first look at any NWB file: units, spike counts, rates, trials, time series, intervals.

Reads only what a summary needs: the spike index (counts per unit), one chunked pass over the flat
spike times (range, order), table row counts and the first/last timestamp of each series.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..recording import tag_list
from . import _nwb_h5 as H
from . import _nwb_read as R
from ._nwb_layout import Notes


def summarize(f, label: str, *, units_path: str | None = None, notes: Notes) -> dict[str, Any]:
    version = H.check_nwb(f, label)
    own_meta, layout = R.read_own_meta(f, notes)
    scan = H.scan_file(f)
    if scan.broken:
        notes.warn(f"could not open {len(scan.broken)} object(s): {scan.broken[:5]}")
    out: dict[str, Any] = {
        "file": label,
        "nwb_version": version,
        "identifier": H.text_scalar(f["identifier"]) if "identifier" in f else None,
        "session_start_time": H.session_start(f, notes),
        "written_by_bci_credit": layout is not None,
    }
    out.update(R.general_meta(f))
    if own_meta is not None:
        out["bci_credit_meta"] = {k: own_meta[k] for k in ("source", "seed", "dt_s") if k in own_meta}

    # units
    source = R.choose_units(f, scan, units_path, notes)
    ids: np.ndarray = np.zeros(0, dtype=np.int64)
    counts: np.ndarray = np.zeros(0, dtype=np.int64)
    spike_range = (np.inf, -np.inf)
    unit_cols: list[str] = []
    extra: dict[str, np.ndarray] = {}
    observed: list | None = None  # per unit: seconds covered by its obs_intervals (None: none given)
    if source.kind == "table":
        g = f[source.path]
        ids = H.table_ids(g)
        unit_cols = H.table_columns(g)
        ends = H.spike_index(g, source.path, notes)
        if ends is None:
            notes.warn(f"{source.path} has no spike_times column: every unit has 0 spikes")
            counts = np.zeros(ids.size, dtype=np.int64)
        else:
            counts = np.diff(np.concatenate([[0], ends]))
            stats = H.flat_stats(g["spike_times"], ends)
            spike_range = (stats.t_min, stats.t_max)
            if stats.n_nan:
                notes.warn(f"{source.path}: {stats.n_nan} spike time(s) are NaN (read() drops them)")
            if stats.n_inf:
                notes.warn(f"{source.path}: {stats.n_inf} spike time(s) are infinite (read() drops them)")
            if stats.n_nan or stats.n_inf:
                counts = counts - _nonfinite_per_unit(g["spike_times"], ends)
            if stats.unsorted_units.size:
                notes.warn(f"{source.path}: spike times of {stats.unsorted_units.size} unit(s) are not sorted "
                           f"(ids {ids[stats.unsorted_units][:10].tolist()}); read() sorts them")
        for col in ("is_control", "heldout", "quality", "label"):
            if col in g and col in unit_cols:
                kind, value = H.read_column(g, col, ids.size)
                if kind == "scalar":
                    extra[col] = value
        out["resolution_s"] = H.attr_float(g["spike_times"], "resolution") if "spike_times" in g else None
        out["has_obs_intervals"] = "obs_intervals" in g
        if out["has_obs_intervals"]:
            iv = R.obs_intervals(g, source.path, notes)
            observed = None if iv is None else [R.observed_seconds(x) for x in iv]
    elif source.kind == "binned":
        _, trains, width, counts = R.binned_units(f, source.path)
        ids = np.arange(len(trains))
        finite = [s for s in trains if s.size]
        if finite:
            spike_range = (min(s[0] for s in finite), max(s[-1] for s in finite))
        out["bin_width_s"] = width
    behaviour = R.file_time_span(f, scan, (np.inf, -np.inf))  # trials, intervals and series
    lo, hi = min(behaviour[0], spike_range[0]), max(behaviour[1], spike_range[1])
    duration = float(hi - lo) if np.isfinite(hi - lo) else 0.0
    R.check_spike_span(behaviour, spike_range, notes)
    units = []
    for i, uid in enumerate(ids.tolist()):
        span = observed[i] if observed is not None else None
        span = span if span is not None and span > 0 else duration  # rate over the unit's observed time
        row: dict[str, Any] = {"id": uid, "n_spikes": int(counts[i]),
                               "rate_hz": float(counts[i] / span) if span > 0 else None}
        if observed is not None:
            row["observed_s"] = observed[i]
        for col, value in extra.items():
            v = value[i]
            row[col] = v.item() if hasattr(v, "item") else v
        units.append(row)
    out.update(
        units_source=source.kind,
        units_path=source.path,
        units_tables=scan.units,
        unit_columns=unit_cols,
        n_units=int(ids.size),
        n_spikes=int(counts.sum()),
        t_start_s=float(lo) if np.isfinite(lo) else None,
        t_stop_s=float(hi) if np.isfinite(hi) else None,
        duration_s=duration,
        units=units,
    )

    # intervals and trials
    intervals = []
    n_trials = 0
    trials_cols: list[str] = []
    for path in scan.intervals:
        g = f[path]
        rows = int(H.table_ids(g).size)
        cols = H.table_columns(g)
        entry = {"name": path.rsplit("/", 1)[-1], "path": path, "n_rows": rows, "columns": cols}
        if "tags" in cols:  # epochs name task blocks by their tags (analyze --blocks NAME)
            try:
                kind, value = H.read_column(g, "tags", rows)
                cells = value if kind == "ragged" else list(value) if kind == "scalar" else []
                entry["tags"] = list(dict.fromkeys(t for cell in cells for t in tag_list(cell)))
            except Exception as err:
                notes.warn(f"{path}/tags could not be read ({H._short(err)})")
        intervals.append(entry)
        raw = {c: H.read_values(g[c]) for c in ("start_time", "stop_time") if c in g and g[c].ndim == 1}
        for c in cols:
            if c.endswith("_time") and c not in raw and g[c].ndim == 1 and g[c].dtype.kind == "f" \
                    and f"{c}_index" not in g:
                raw[c] = g[c][()]
        H.check_interval_columns(path, raw, notes)
        _check_reversed(path, raw, notes)
        if path == "/intervals/trials" or (not n_trials and path.rsplit("/", 1)[-1] == "trials"):
            n_trials, trials_cols = rows, cols
    out.update(n_trials=n_trials, trial_columns=trials_cols, intervals=intervals)

    # time series and other tables
    series = []
    for path, ntype, parent in scan.series:
        try:
            info = H.series_info(f[path])
        except Exception as err:
            notes.warn(f"time series {path} could not be read ({H._short(err)})")
            continue
        series.append({"path": path, "name": path.rsplit("/", 1)[-1], "neurodata_type": ntype or None,
                       "container": parent or None, **info})
    out["time_series"] = series
    out["tables"] = [{"path": p, "n_rows": int(H.table_ids(f[p]).size), "columns": H.table_columns(f[p])}
                     for p in scan.tables]
    modules = {}
    if "processing" in f:
        for name in f["processing"].keys():
            try:
                modules[name] = sorted(f["processing"][name].keys())
            except Exception:
                modules[name] = []
    out["processing"] = modules
    out["warnings"] = list(notes.messages)
    return out


def _check_reversed(path: str, raw: dict, notes: Notes) -> None:
    """Warn about rows whose stop_time is before their start_time (read() rejects such windows)."""
    start, stop = raw.get("start_time"), raw.get("stop_time")
    if start is None or stop is None or np.shape(start) != np.shape(stop):
        return
    try:
        bad = np.flatnonzero(np.asarray(stop, dtype=float) < np.asarray(start, dtype=float))
    except (TypeError, ValueError):
        return
    if bad.size:
        notes.warn(f"{path}: {bad.size} row(s) have stop_time < start_time (rows {bad[:10].tolist()}"
                   f"{' ...' if bad.size > 10 else ''})")


def _nonfinite_per_unit(ds, ends: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(np.asarray(ds[: int(ends[-1]) if ends.size else 0], dtype=float))
    csum = np.concatenate([[0], np.cumsum(bad)])
    starts = np.concatenate([[0], ends[:-1]])
    return csum[ends] - csum[starts]


def _num(v: Any) -> str:
    """A number for the text summary; ``?`` when unknown (None, as a JSON summary stores NaN/inf)."""
    return "?" if v is None else f"{v:.6g}"


def format_summary(s: dict[str, Any], max_units: int = 20) -> str:
    """Human-readable text of a summary from :func:`bci_credit.io.nwb.inspect`."""
    lines = [f"{s['file']}  (NWB {s['nwb_version']}"
             + (", written by bci_credit" if s.get("written_by_bci_credit") else "") + ")"]
    if s.get("session_description"):
        lines.append(f"  session: {s['session_description']}")
    lines.append(f"  start: {s.get('session_start_time')}   identifier: {s.get('identifier')}")
    subj = s.get("subject") or {}
    if subj:
        lines.append("  subject: " + ", ".join(f"{k}={v}" for k, v in subj.items() if k != "description"))
    src = {"table": f"from {s['units_path']}", "binned": f"from binned counts in {s['units_path']} "
           f"(approximate spike times, bin {s.get('bin_width_s') or float('nan'):.4g} s)", "none": "(none found)"}[
        s["units_source"]]
    duration = s.get("duration_s")
    lines.append(f"units: {s['n_units']} {src}; spikes: {s['n_spikes']}; duration: "
                 + (f"{duration:.6g} s" if duration is not None else "unknown")
                 + (f" [{_num(s.get('t_start_s'))}, {_num(s.get('t_stop_s'))}]"
                    if s.get("t_start_s") is not None or s.get("t_stop_s") is not None else ""))
    if s["units"]:
        extra = [k for k in s["units"][0] if k not in ("id", "n_spikes", "rate_hz")]
        obs = "observed_s" in extra
        lines.append("  " + f"{'id':>8} {'n_spikes':>10} {'rate_hz*' if obs else 'rate_hz':>10}"
                     + "".join(f" {k:>10}" for k in extra))
        for u in s["units"][:max_units]:
            rate = "nan" if u["rate_hz"] is None else f"{u['rate_hz']:.4g}"
            lines.append("  " + f"{u['id']!s:>8} {u['n_spikes']:>10d} {rate:>10}"
                         + "".join(f" {'-' if u[k] is None else u[k]!s:>10}" for k in extra))
        if len(s["units"]) > max_units:
            lines.append(f"  ... {len(s['units']) - max_units} more units (--max-units N or --json for all)")
        if obs:
            lines.append("  * rate over the unit's observed time (observed_s, the time its obs_intervals cover); "
                         "units without obs_intervals: over the duration")
    lines.append(f"trials: {s['n_trials']}" + (f" (columns: {', '.join(s['trial_columns'])})" if s["trial_columns"] else ""))
    if s["intervals"]:
        lines.append("intervals:")
        for it in s["intervals"]:
            lines.append(f"  {it['path']}: {it['n_rows']} rows; columns: {', '.join(it['columns'])}"
                         + (f"; tags: {', '.join(it['tags'])}" if it.get("tags") else ""))
    if s["time_series"]:
        lines.append("time series:")
        for ts in s["time_series"]:
            timing = f"{ts['rate_hz']:.6g} Hz" if ts.get("rate_hz") else "timestamps"
            span = (f" [{ts['t_start_s']:.6g}, {ts['t_stop_s']:.6g}] s"
                    if ts.get("t_start_s") is not None and ts.get("t_stop_s") is not None else "")
            lines.append(f"  {ts['path']}: shape {tuple(ts['shape'])}, {ts['unit'] or 'no unit'}, {timing}{span}")
    if s["tables"]:
        lines.append("tables:")
        for t in s["tables"]:
            cols = t.get("columns") or []
            lines.append(f"  {t['path']}: {t['n_rows']} rows"
                         + (f"; columns: {', '.join(cols[:12])}{', ...' if len(cols) > 12 else ''}" if cols else ""))
    if s["warnings"]:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in s["warnings"]]
    return "\n".join(lines)
