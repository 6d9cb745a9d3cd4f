"""NWB file (h5py) -> Recording; also the units-source choice shared with ``inspect``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..recording import Recording, TimeSeries, WeightTrace, tag_list
from . import _nwb_h5 as H
from . import _nwb_layout as L
from ._nwb_layout import NWBFormatError, Notes

#: TimeSeries larger than this (elements) are not loaded unless named in ``series=``.
MAX_SERIES_ELEMENTS = 10_000_000
_UNIT_SKIP = {"spike_times", "obs_intervals", "electrodes", "waveform_mean", "waveform_sd", "waveforms"}
#: Spike times spanning more than this many times the behaviour's span are flagged as a wrong time unit (ms).
SPIKE_SCALE_RATIO = 100.0
#: Columns of an events table that hold an amount per event (``value``, ``reward_size``, ``volume_ml``, ...).
_AMOUNT_WORDS = {"value", "amount", "volume", "size", "magnitude", "ml", "ul"}


# ---------------------------------------------------------------------------- bci_credit metadata
def read_own_meta(f, notes: Notes) -> tuple[dict | None, dict | None]:
    """``(meta, layout)`` from ``/processing/misc/bci_credit_meta``, or ``(None, None)``."""
    path = f"/processing/misc/{L.META_TABLE}"
    if path not in f:
        return None, None
    try:
        g = f[path]
        keys = H.read_values(g["key"])
        values = H.read_values(g["value"])
        obj = L.unflatten(zip(keys, values))
    except Exception as err:  # a damaged table should not stop the generic reader
        notes.warn(f"{path} could not be read ({H._short(err)}); read the file as a generic NWB file")
        return None, None
    layout = obj.get("layout") or {}
    if layout.get("format") != "bci_credit":
        return None, None
    if int(layout.get("format_version", 0)) > L.FORMAT_VERSION:
        notes.warn(f"written by a newer bci_credit (layout version {layout.get('format_version')}); "
                   "some parts may not be read")
    return obj.get("meta") or {}, layout


# ---------------------------------------------------------------------------- units source
@dataclass
class UnitsSource:
    """Where the units come from: a Units table, a binned-count TimeSeries, or nothing."""

    kind: str  # "table", "binned" or "none"
    path: str | None = None


def choose_units(f, scan: H.Scan, units_path: str | None, notes: Notes) -> UnitsSource:
    """Pick the units source (explicit path, ``/units``, a Units table elsewhere, binned counts)."""
    series_paths = [p for p, _, _ in scan.series]
    if units_path is not None:
        p = "/" + units_path.strip("/")
        if p not in f:
            raise NWBFormatError(f"units_path {units_path!r} is not in the file; Units tables found: "
                                 f"{scan.units or 'none'}, time series: {series_paths[:10] or 'none'}")
        g = f[p]
        if "spike_times" in g or H.attr_str(g, "neurodata_type") == "Units":
            return UnitsSource("table", p)
        if "data" in g and ("timestamps" in g or "starting_time" in g):
            notes.warn(f"units built from binned spike counts in {p}: spike times are approximate "
                       "(spread evenly inside each bin)")
            return UnitsSource("binned", p)
        raise NWBFormatError(f"units_path {p!r} is neither a Units table nor a TimeSeries of spike counts")
    if "/units" in scan.units:
        others = [p for p in scan.units if p != "/units"]
        if others:
            notes.warn(f"read /units; other Units tables in the file: {others} (choose one with units_path=)")
        return UnitsSource("table", "/units")
    if scan.units:
        best = max(scan.units, key=lambda p: H.table_ids(f[p]).size)
        notes.warn(f"no /units table; read the Units table found at {best}"
                   + (f" (others: {[p for p in scan.units if p != best]})" if len(scan.units) > 1 else ""))
        return UnitsSource("table", best)
    binned = [p for p in series_paths if H.binned_candidate(p, f[p])]
    if binned:
        notes.warn(f"no Units table; units built from binned spike counts in {binned[0]}: spike times are "
                   "approximate (spread evenly inside each bin)"
                   + (f"; other count series: {binned[1:]}" if len(binned) > 1 else ""))
        return UnitsSource("binned", binned[0])
    notes.warn("no Units table and no binned spike counts in the file: 0 units")
    return UnitsSource("none")


def binned_units(f, path: str) -> tuple[pd.DataFrame, list, float, np.ndarray]:
    """Units table, approximate spike trains, bin width and total counts from a count TimeSeries."""
    scratch = Notes()
    t, counts, _, _ = H.read_series(f[path], scratch, path)
    trains, width = H.counts_to_spike_times(t, counts, path)
    units = pd.DataFrame(index=pd.RangeIndex(len(trains), name="unit_id"))
    units["is_control"] = False
    units["threshold"] = np.nan
    units["source_channel"] = np.arange(len(trains))
    return units, trains, width, np.array([s.size for s in trains])


def read_spike_trains(g, where: str, notes: Notes) -> tuple[list, H.FlatStats]:
    """All spike trains of a Units table in two dataset reads (flat times + end offsets)."""
    ends = H.spike_index(g, where, notes)  # read 1
    n = H.table_ids(g).size
    if ends is None:
        notes.warn(f"{where} has no spike_times column: every unit has 0 spikes")
        return [np.zeros(0) for _ in range(n)], H.FlatStats()
    flat = np.asarray(g["spike_times"][()], dtype=np.float64)  # read 2
    stats = H.flat_stats(flat, ends)
    trains = H.split_ragged(flat, ends, f"{where}/spike_times_index")
    if stats.n_nan or stats.n_inf:
        what = " and ".join(t for t in (f"{stats.n_nan} NaN" if stats.n_nan else "",
                                        f"{stats.n_inf} infinite" if stats.n_inf else "") if t)
        notes.warn(f"{where}: dropped {what} spike time(s)")
        trains = [s[np.isfinite(s)] for s in trains]
        stats.unsorted_units = np.asarray([i for i in stats.unsorted_units if np.any(np.diff(trains[i]) < 0)],
                                          dtype=np.int64)
    if stats.unsorted_units.size:
        ids = H.table_ids(g)[stats.unsorted_units]
        notes.warn(f"{where}: spike times of {ids.size} unit(s) were not sorted (ids {ids[:10].tolist()}"
                   f"{' ...' if ids.size > 10 else ''}); sorted them")
        for i in stats.unsorted_units:
            trains[i] = np.sort(trains[i], kind="stable")
    return trains, stats


# ---------------------------------------------------------------------------- tables -> DataFrames
def _restore(kind: str, value: Any, tag: str | None) -> Any:
    if tag and tag.startswith("ragged_"):
        container, _, elem = tag[len("ragged_"):].partition(":")
        parts = [L.restore_dtype(np.asarray(p), elem) for p in value]
        if container == "list":
            return [p.tolist() for p in parts]
        return _object_column(parts)  # e.g. obs_intervals: (k, 2) arrays, kept as they are
    if kind == "ragged":
        return list(value)
    if kind == "multi":
        return list(value)
    return L.restore_dtype(value, tag)


def _index(ids: np.ndarray, name: Any, labels: Any = None, dtype: str | None = None) -> pd.Index:
    if labels is not None:
        return pd.Index(L.restore_dtype(np.asarray(labels, dtype=object), dtype), name=name)
    if np.array_equal(ids, np.arange(ids.size)):
        return pd.RangeIndex(ids.size, name=name)
    return pd.Index(ids, name=name)


def own_frame(g, entry: dict, notes: Notes, where: str) -> pd.DataFrame:
    """A table written by bci_credit, with the original column names, order and dtypes."""
    ids = H.table_ids(g)
    data: dict[str, Any] = {}
    for df_name, nwb_name, tag in entry.get("columns", []):
        if nwb_name not in g:
            notes.warn(f"{where}: column {nwb_name!r} listed in the bci_credit layout is missing")
            continue
        kind, value = H.read_column(g, nwb_name, ids.size)
        if kind in ("skip", "ref"):
            notes.warn(f"{where}: column {nwb_name!r} could not be read")
            continue
        data[df_name] = _restore(kind, value, tag)
    index = _index(ids, entry.get("index_name"), entry.get("index_labels"))
    return pd.DataFrame(data, index=index)


def generic_frame(f, g, rename, skip: set, notes: Notes, where: str) -> tuple[pd.DataFrame, dict]:
    """A table from another writer: scalar, ragged and n-D columns (object references -> names)."""
    ids = H.table_ids(g)
    data: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for name in H.table_columns(g):
        if name in skip:
            continue
        try:
            kind, value = H.read_column(g, name, ids.size)
        except NWBFormatError:
            raise
        except Exception as err:
            notes.warn(f"{where}: column {name!r} could not be read ({H._short(err)}); skipped")
            continue
        if kind == "skip":
            continue
        if kind == "ref":
            value, kind, name = H.resolve_refs(f, value), "scalar", f"{name}_name"
        raw[name] = value
        data[rename(name)] = _restore(kind, value, None)
    return pd.DataFrame(data, index=_index(ids, None)), raw


def units_frame(f, g, where: str, layout_units: dict | None, notes: Notes) -> pd.DataFrame:
    if layout_units is not None:
        ids = H.table_ids(g)
        df = own_frame(g, layout_units, notes, where)
        label = layout_units.get("label_column")
        if label and label in g:
            labels = H.read_values(g[label])
            df.index = _index(ids, layout_units.get("index_name"), labels, layout_units.get("index_dtype"))
        else:
            df.index = pd.Index(ids, name=layout_units.get("index_name"))
        return df
    df, _ = generic_frame(f, g, lambda n: n, _UNIT_SKIP, notes, where)
    # keep one value per unit; ragged / n-D columns (electrodes, waveforms) stay in the file
    df = df[[c for c in df.columns if not (df[c].dtype == object and df[c].map(lambda x: isinstance(x, (list, np.ndarray))).any())]]
    df.index = pd.Index(H.table_ids(g), name="unit_id")
    if "obs_intervals" in g:
        iv = obs_intervals(g, where, notes)
        if iv is not None:
            df["obs_intervals"] = _object_column(iv)
    for col, cast in (("is_control", bool), ("threshold", float)):
        if col in df.columns:
            try:
                df[col] = df[col].astype(cast)
            except (TypeError, ValueError):
                notes.warn(f"{where}: column {col!r} is not {cast.__name__}; kept as {col}_source")
                df = df.rename(columns={col: f"{col}_source"})
    return df


def obs_intervals(g, where: str, notes: Notes) -> list[np.ndarray] | None:
    """The ``obs_intervals`` column of a Units table: per unit a float array of shape (k, 2) of [start, stop]
    seconds ((0, 2) when the unit has none); None (with a note) when the column is not laid out as NWB says."""
    n = H.table_ids(g).size
    try:
        kind, value = H.read_column(g, "obs_intervals", n)
        if kind == "multi" and value.ndim == 2 and value.shape[1] == 2:  # one interval per unit, no index
            value, kind = [row[None, :] for row in value], "ragged"
        if kind != "ragged":
            raise ValueError(f"not a ragged column of [start, stop] pairs ({kind})")
        return [np.asarray(p, dtype=float).reshape(-1, 2) for p in value]
    except (ValueError, TypeError, KeyError) as err:
        notes.warn(f"{where}/obs_intervals could not be read ({H._short(err)}); skipped")
        return None


def observed_seconds(intervals: np.ndarray) -> float | None:
    """Time covered by a unit's obs_intervals (overlaps counted once); None when it has no valid interval."""
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    iv = iv[np.isfinite(iv).all(axis=1) & (iv[:, 1] > iv[:, 0])]
    if not iv.size:
        return None
    total, end = 0.0, -np.inf
    for a, b in iv[np.argsort(iv[:, 0], kind="stable")]:
        if b > end:
            total += b - max(a, end)
            end = b
    return float(total)


def _object_column(items: list) -> np.ndarray:
    """A 1-D object array holding ``items`` as they are (arrays of equal shape are not stacked)."""
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def intervals_frame(f, path: str, layout_entry: dict | None, notes: Notes, skip=()) -> tuple[pd.DataFrame, dict]:
    g = f[path]
    if layout_entry is not None:
        df = own_frame(g, layout_entry, notes, path)
        raw = {c: H.read_values(g[c]) for c in ("start_time", "stop_time") if c in g}
    else:
        df, raw = generic_frame(f, g, L.interval_col_from_nwb, set(skip), notes, path)
        for col in ("start_s", "stop_s"):
            if col not in df.columns:
                notes.warn(f"{path} has no {L.interval_col_to_nwb(col)!r} column; filled with NaN")
                df[col] = np.nan
    H.check_interval_columns(path, raw, notes)
    return df, raw


# ---------------------------------------------------------------------------- series
def own_series(f, name: str, entry: dict, notes: Notes) -> tuple[np.ndarray, np.ndarray] | None:
    path = entry.get("path")
    if not path or path not in f:
        notes.warn(f"series {name!r}: {path} listed in the bci_credit layout is missing; skipped")
        return None
    g = f[path]
    if entry.get("storage") == "table":
        t = np.asarray(g["timestamp"][()], dtype=float)
        values = H.read_values(g["data"])
    else:
        t, values, _, _ = H.read_series(g, notes, path)
        clock = entry.get("clock") or entry.get("clock_steps")
        if clock:
            try:
                t = L.clock_times(t.size, clock)
            except (ValueError, KeyError, TypeError):  # a clock of a newer layout: the NWB timing is close
                notes.warn(f"series {name!r}: unknown clock {clock.get('formula')!r} in the bci_credit layout; "
                           "times from the file's starting_time and rate")
    return t, L.restore_dtype(values, entry.get("dtype"))


def event_tables(f, scan: H.Scan) -> list[str]:
    """Paths of pynwb 4 EventsTables (``/events/<name>``, or typed EventsTable elsewhere) with a timestamp column."""
    return [p for p in scan.tables if "timestamp" in f[p]
            and (p.startswith("/events/") or H.attr_str(f[p], "neurodata_type") == "EventsTable")]


def read_events_table(f, path: str, name: str, notes: Notes) -> TimeSeries:
    """An EventsTable as a TimeSeries of kind ``"events"``: times from ``timestamp``, values from its one
    amount column (``value``, ``amount``, ``volume``, ``size``, ``reward*``, ...) if it has exactly one, else ones."""
    g = f[path]
    n = H.table_ids(g).size
    t = np.asarray(g["timestamp"][()], dtype=float).ravel()
    others, amounts = [], []
    for col in H.table_columns(g):
        if col == "timestamp":
            continue
        others.append(col)
        ds = g[col]
        words = set(col.lower().split("_"))
        if (f"{col}_index" not in g and ds.ndim == 1 and ds.shape[0] == n and ds.dtype.kind in "biuf"
                and (words & _AMOUNT_WORDS or col.lower().startswith("reward"))):
            amounts.append(col)
    if len(amounts) == 1:
        values = np.asarray(g[amounts[0]][()], dtype=float)
        unit = H.attr_str(g[amounts[0]], "unit", "a.u.") or "a.u."
        how = f"values from its {amounts[0]!r} column"
    else:
        values, unit = np.ones(t.size), "a.u."
        how = ("values 1 per event (" + (f"more than one amount column: {amounts}" if amounts
                                          else "no amount column") + ")")
    m = min(t.size, values.size)
    t, values = t[:m], values[:m]
    t, values = H.clean_times(t, values, path, notes, "events")
    unused = [c for c in others if c not in amounts or len(amounts) > 1]
    notes.warn(f"read the events table {path} as series {name!r}: {t.size} events at its 'timestamp' times, {how}"
               + (f"; columns not used: {', '.join(unused)}" if unused else ""))
    return TimeSeries(t, values, unit=unit, description=H.attr_str(g, "description", "") or "", kind="events")


def generic_series(f, scan: H.Scan, series: bool | Sequence[str], max_elements: int, notes: Notes,
                   exclude: set) -> tuple[dict, list]:
    """TimeSeries from ``/processing`` (and small ones from ``/acquisition``) keyed by name, and the
    pynwb 4 EventsTables (``/events``) as event series named after the table."""
    if series is False:
        return {}, []
    wanted = None if series is True else {str(s).strip("/") for s in series}
    out: dict[str, TimeSeries] = {}
    skipped: list[str] = []
    candidates = [(p, t, pt) for p, t, pt in scan.series if p not in exclude]
    names = [p.rsplit("/", 1)[-1] for p, _, _ in candidates]
    for (path, _ntype, parent_type), base in zip(candidates, names):
        rel = path.split("/", 2)[-1] if path.count("/") >= 2 else path.strip("/")
        name = base if names.count(base) == 1 else rel
        if wanted is not None:
            if not {base, rel, path.strip("/"), name} & wanted:
                continue
        else:
            if not path.startswith(("/processing/", "/acquisition/")):
                continue
            g = f[path]
            size = int(np.prod(g["data"].shape)) if g["data"].shape else 0
            if size > max_elements or g["data"].ndim > 2:
                skipped.append(path)
                continue
        try:
            t, values, unit, description = H.read_series(f[path], notes, path)
            kind = "events" if parent_type == "BehavioralEvents" else "continuous"
            out[name] = TimeSeries(t, values, unit=unit, description=description, kind=kind)
        except Exception as err:  # one bad series never stops the read
            notes.warn(f"time series {path} could not be read ({H._short(err)}); skipped")
    tables = event_tables(f, scan)
    for path in tables:
        base = path.rsplit("/", 1)[-1]
        if wanted is not None and not {base, path.strip("/")} & wanted:
            continue
        if wanted is None and H.table_ids(f[path]).size > max_elements:
            skipped.append(path)
            continue
        name, k = (base if base not in out and base not in names else path.strip("/")), 1
        while name in out:
            k += 1
            name = f"{path.strip('/')}_{k}"
        if name != base:
            notes.warn(f"events table {path}: a time series is already named {base!r}; read as series {name!r}")
        try:
            out[name] = read_events_table(f, path, name, notes)
        except Exception as err:  # one bad table never stops the read
            notes.warn(f"events table {path} could not be read ({H._short(err)}); skipped")
    if wanted is not None:
        found = [p for p, _, _ in scan.series] + tables
        missing = wanted - {k.strip("/") for k in out} - {p.strip("/") for p in found}
        missing -= {p.rsplit("/", 1)[-1] for p in found}
        if missing:
            notes.warn(f"series not found: {sorted(missing)}")
    if skipped:
        notes.warn(f"did not load {len(skipped)} large or image time series ({', '.join(skipped[:5])}"
                   f"{' ...' if len(skipped) > 5 else ''}); name them in series= to load them")
    return out, skipped


# ---------------------------------------------------------------------------- time span
def file_time_span(f, scan: H.Scan, spike_range: tuple[float, float]) -> tuple[float, float]:
    """Earliest and latest time in the file: spikes, every TimeIntervals table, TimeSeries and EventsTable."""
    lo, hi = spike_range
    for path in event_tables(f, scan):
        v = np.asarray(f[path]["timestamp"][()], dtype=float).ravel()
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    for path in scan.intervals:
        g = f[path]
        for col, fn in (("start_time", np.nanmin), ("stop_time", np.nanmax)):
            if col in g and g[col].shape and g[col].shape[0]:
                v = np.asarray(g[col][()], dtype=float)
                if np.isfinite(v).any():
                    x = float(fn(v))
                    lo, hi = min(lo, x), max(hi, x)
    for path, _, _ in scan.series:
        try:
            info = H.series_info(f[path])
        except Exception:
            continue
        for key in ("t_start_s", "t_stop_s"):
            x = info[key]
            if x is not None and np.isfinite(x):
                lo, hi = min(lo, x), max(hi, x)
    return lo, hi


def check_spike_span(behaviour: tuple[float, float], spike_range: tuple[float, float], notes: Notes) -> dict:
    """Warn when the spike times reach far beyond the file's trials, intervals, time series and events (a stray
    spike time stretches the recording's duration and the units' mean rates; spike times ~1000x the behaviour's
    span were stored in ms). Returns the facts for ``meta``: ``spike_span_s``, ``behaviour_span_s`` (None when
    unknown) and ``spike_time_scale_suspect`` (the spikes span more than :data:`SPIKE_SCALE_RATIO` times the
    behaviour and reach beyond it)."""
    (b_lo, b_hi), (s_lo, s_hi) = behaviour, spike_range
    s_span = float(s_hi - s_lo) if np.isfinite(s_hi - s_lo) else None
    b_span = float(b_hi - b_lo) if np.isfinite(b_hi - b_lo) and b_hi > b_lo else None
    facts = {"spike_span_s": s_span, "behaviour_span_s": b_span, "spike_time_scale_suspect": False}
    if s_span is None or b_span is None:
        return facts
    margin = max(1.0, 0.01 * b_span)
    if s_lo < b_lo - margin or s_hi > b_hi + margin:
        facts["spike_time_scale_suspect"] = s_span > SPIKE_SCALE_RATIO * b_span
        hint = (f"the spikes span {s_span / b_span:.0f}x the behaviour: spike times may be in milliseconds: divide "
                "by 1000" if facts["spike_time_scale_suspect"] else "check for stray spike times")
        notes.warn(f"spike times run from {s_lo:g} to {s_hi:g} s, beyond {b_lo:g}-{b_hi:g} s, the span of the file's "
                   "trials, intervals, time series and events: the recording's duration and mean rates include that "
                   f"stretch; analyze uses only the span where the outcome was observed ({hint})")
    return facts


# ---------------------------------------------------------------------------- assembly
def read_recording(f, label: str, *, units_path: str | None = None, series: bool | Sequence[str] = True,
                   max_series_elements: int = MAX_SERIES_ELEMENTS, notes: Notes) -> Recording:
    version = H.check_nwb(f, label)
    own_meta, layout = read_own_meta(f, notes)
    own = layout is not None
    scan = H.scan_file(f)
    if scan.broken:
        notes.warn(f"could not open {len(scan.broken)} object(s): {scan.broken[:5]}")

    # units and spikes
    if own and units_path is None and "/units" in f:
        source = UnitsSource("table", "/units")
    else:
        source = choose_units(f, scan, units_path, notes)
    meta_extra: dict[str, Any] = {}
    if source.kind == "table":
        g = f[source.path]
        trains, stats = read_spike_trains(g, source.path, notes)
        units = units_frame(f, g, source.path, layout.get("units") if own and source.path == "/units" else None,
                            notes)
        meta_extra["units_path"] = source.path
        res = H.attr_float(g["spike_times"], "resolution") if "spike_times" in g else None
        meta_extra["resolution_s"] = res if res is not None and np.isfinite(res) and res > 0 else None
    elif source.kind == "binned":
        units, trains, width, _ = binned_units(f, source.path)
        meta_extra.update(units_path=source.path, spike_times_approximate=True, bin_width_s=width)
    else:
        units, trains = pd.DataFrame(index=pd.RangeIndex(0, name="unit_id")), []

    # windows (Z, H) and trials
    windows = drive = spiked = None
    wpath = f"/intervals/{L.WINDOWS_NAME}"
    wentry = layout.get("windows") if own else None
    if wpath in f and (own and wentry is not None or not own):
        skip = (L.DRIVE_COLUMN, L.SPIKED_COLUMN)
        windows, _ = intervals_frame(f, wpath, wentry, notes, skip=skip)
        if own and "reward" not in windows.columns:
            notes.warn(f"{wpath} has no 'reward' column; reward set to NaN (name the outcome with "
                       "reward=NAME, or --reward NAME on the command line)")
            windows["reward"] = np.nan
        if own or "reward" in windows.columns:
            g = f[wpath]
            arrs = {}
            for col in skip:
                if col in g and (not own or wentry.get(col)):
                    arr = H.read_values(g[col])
                    if arr.shape != (len(windows), len(trains)):
                        notes.warn(f"{wpath}/{col} has shape {arr.shape}, not (n_windows, n_units) = "
                                   f"{(len(windows), len(trains))}; not loaded")
                        continue
                    arrs[col] = L.restore_dtype(arr, wentry.get(f"{col}_dtype") if own else None)
            drive, spiked = arrs.get(L.DRIVE_COLUMN), arrs.get(L.SPIKED_COLUMN)
            if spiked is not None and spiked.dtype != bool:
                spiked = spiked.astype(bool)
        else:
            windows = None
    trials = None
    tpaths = [p for p in scan.intervals if p.rsplit("/", 1)[-1] == "trials"]
    if tpaths:
        tpath = "/intervals/trials" if "/intervals/trials" in tpaths else tpaths[0]
        trials, _ = intervals_frame(f, tpath, layout.get("trials") if own else None, notes)
    epochs = None
    if "/intervals/epochs" in f and (not own or layout.get("epochs")):
        epochs, _ = intervals_frame(f, "/intervals/epochs", layout.get("epochs") if own else None, notes,
                                    skip=("timeseries",))
        if "tags" in epochs.columns:
            epochs["tags"] = [tag_list(t) for t in epochs["tags"]]

    # series and weights
    series_out: dict[str, TimeSeries] = {}
    weights = None
    if own:
        for name, entry in (layout.get("series") or {}).items():
            got = own_series(f, name, entry, notes)
            if got is not None:
                series_out[name] = TimeSeries(got[0], got[1], unit=entry.get("unit", "a.u."),
                                              description=entry.get("description", ""),
                                              kind=entry.get("kind", "continuous"))
        if layout.get("weights"):
            got = own_series(f, L.WEIGHTS_NAME, layout["weights"], notes)
            if got is not None:
                weights = WeightTrace(got[0], got[1], layout["weights"].get("description", ""))
        skipped: list = []
    else:
        exclude = {source.path} if source.kind == "binned" else set()
        series_out, skipped = generic_series(f, scan, series, max_series_elements, notes, exclude)

    # metadata
    meta: dict[str, Any] = dict(own_meta or {})
    meta.setdefault("source", label)
    meta["nwb_path"] = label
    meta["nwb_version"] = version
    meta["identifier"] = H.text_scalar(f["identifier"]) if "identifier" in f else None
    meta["session_start_time"] = H.session_start(f, notes)
    if not own:
        meta.update(general_meta(f))
        if skipped:
            meta["skipped_series"] = skipped
        dec = decoder_meta(f)
        if dec:
            meta["decoder"] = dec
    meta.update({k: v for k, v in meta_extra.items() if k not in meta or not own})
    finite = [s for s in trains if s.size]
    spike_range = (min((s[0] for s in finite), default=np.inf), max((s[-1] for s in finite), default=-np.inf))
    behaviour = file_time_span(f, scan, (np.inf, -np.inf))
    meta.update(check_spike_span(behaviour, spike_range, notes))  # facts of this file, also for our own files
    if "duration_s" not in meta or meta["duration_s"] is None:
        lo, hi = min(behaviour[0], spike_range[0]), max(behaviour[1], spike_range[1])
        meta["duration_s"] = float(hi - lo) if np.isfinite(hi - lo) else 0.0
    meta["warnings"] = list(notes.messages)
    _check_unit_ids(units, source.path or "units")
    if own and not len(trains) and weights is not None and weights.values.ndim == 2 and weights.values.shape[1]:
        raise NWBFormatError(f"{label}: the file has no units table (/units), but its weight trace is for "
                             f"{weights.values.shape[1]} unit(s): the file written by bci_credit has lost its "
                             "/units group; write it again from the simulation, or read it with units_path= naming "
                             "another units table")
    try:
        return Recording(units=units, spike_times=trains, windows=windows, drive=drive, spiked=spiked,
                         trials=trials, series=series_out, weights=weights, meta=meta, epochs=epochs)
    except ValueError as err:  # the HDF5 read fine: the content is inconsistent, not the file damaged
        raise NWBFormatError(f"{label}: the file's content is inconsistent: {err}") from err


def _check_unit_ids(units: pd.DataFrame, where: str) -> None:
    """Unit ids must be unique: say which ids repeat (the file is readable, its units table is not)."""
    dup = units.index[units.index.duplicated()].unique()
    if len(dup):
        raise NWBFormatError(f"{where}: unit ids are not unique (repeated: {dup[:10].tolist()}"
                             f"{' ...' if len(dup) > 10 else ''}); each row of the units table needs its own id")


def general_meta(f) -> dict:
    """Session and subject facts of any NWB file (for meta and ``inspect``)."""
    out: dict[str, Any] = {}
    for key in ("session_description",):
        if key in f:
            out[key] = H.text_scalar(f[key])
    if "general" in f:
        g = f["general"]
        for key in ("experimenter", "institution", "lab", "session_id", "experiment_description"):
            if key in g and H.is_dataset(g[key]):
                v = H.read_values(g[key])
                out[key] = v.tolist() if np.ndim(v) else str(v)
        if "subject" in g:
            s = g["subject"]
            out["subject"] = {k: H.text_scalar(s[k]) for k in s.keys() if H.is_dataset(s[k]) and s[k].ndim == 0}
    return out


def decoder_meta(f) -> dict | None:
    path = f"/processing/misc/{L.DECODER_TABLE}"
    if path not in f:
        return None
    try:
        df, _ = generic_frame(f, f[path], lambda n: n, set(), Notes(), path)
    except Exception:
        return None
    if len(df) != 1:
        return {c: list(df[c]) for c in df.columns}
    row = df.iloc[0]
    return {c: (row[c].tolist() if isinstance(row[c], np.ndarray) else
                row[c].item() if hasattr(row[c], "item") else row[c]) for c in df.columns}
