"""Low-level NWB reading with h5py: opening, scanning, tables, time series, spike index.

The reader follows the NWB 2 storage layout directly (groups with a ``neurodata_type`` attribute,
DynamicTable columns with ``*_index`` datasets for ragged data, TimeSeries with ``data`` and
``timestamps`` or ``starting_time``/``rate``). It does not build pynwb objects, so files whose cached
namespaces are broken (MatNWB), that fail ``pynwb.validate``, or use unknown extensions are still read.
Everything is opened read-only.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._nwb_layout import NWBFormatError, Notes

_CHUNK = 1 << 20
#: Names of TimeSeries that hold binned spike counts (000404 ``spike_counts``, FALCON ``binned_spikes``,
#: LINK ``ThresholdCrossings``).
BINNED_NAME = re.compile(r"spike_?count|binned_?spike|threshold_?crossing|spikecount|^counts?$|_counts?$", re.I)


# ---------------------------------------------------------------------------- opening
def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) < 200 else text[:197] + "..."


def _describe_non_hdf5(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "the file is empty"
    if head.startswith(b"\x89HDF"):
        return "HDF5 signature found but the file cannot be read"
    try:
        head.decode("utf-8")
        return "it looks like a text file"
    except UnicodeDecodeError:
        return "unknown binary format"


@contextmanager
def open_source(source: Any) -> Iterator[tuple[Any, str]]:
    """Open ``source`` (path, open ``h5py.File``/``Group`` or binary file-like object) read-only.

    Yields ``(h5py.File, label)``. A file opened here is closed on exit; an object passed in is
    left open. Raises ``FileNotFoundError`` or :class:`NWBFormatError` with one clear line.
    """
    import h5py

    if isinstance(source, h5py.Group):
        yield source.file, str(source.file.filename)
        return
    if hasattr(source, "read") and hasattr(source, "seek"):
        label = str(getattr(source, "name", None) or "<file-like object>")
        try:
            f = h5py.File(source, "r")
        except Exception as err:  # h5py raises OSError/ValueError depending on the object
            raise NWBFormatError(f"{label}: not a readable HDF5/NWB file ({_short(err)})") from err
        try:
            yield f, label
        finally:
            f.close()
        return
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"expected a path, an open h5py.File or a binary file-like object, got {type(source).__name__}"
        )
    text = os.fspath(source)
    if isinstance(text, str) and re.match(r"^(https?|s3)://", text):
        raise NWBFormatError(
            f"{text}: remote URLs are not opened directly; open it with remfile or fsspec "
            "(pip install 'bci_credit[remote]') and pass the file object"
        )
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise NWBFormatError(f"{path} is a directory, not an NWB file (NWB Zarr stores are not supported)")
    if not h5py.is_hdf5(path):
        raise NWBFormatError(f"{path}: not an HDF5 file ({_describe_non_hdf5(path)}); NWB files are HDF5 (.nwb)")
    try:
        f = h5py.File(path, "r")
    except Exception as err:
        raise NWBFormatError(
            f"{path}: the HDF5 file cannot be opened ({_short(err)}); it may be truncated or corrupt"
        ) from err
    try:
        yield f, str(path)
    finally:
        f.close()


def check_nwb(f, label: str) -> str:
    """Return the NWB version of an open file, or raise :class:`NWBFormatError` if it is not NWB 2."""
    version = attr_str(f, "nwb_version")
    if version is None and attr_str(f, "neurodata_type") == "NWBFile":
        version = "unknown"
    if version is None:
        if "nwb_version" in f:
            raise NWBFormatError(
                f"{label}: an NWB 1.x file (nwb_version {text_scalar(f['nwb_version'])!r}); only NWB 2 is "
                "supported — convert it to NWB 2 first"
            )
        top = sorted(f.keys())[:8]
        raise NWBFormatError(
            f"{label}: an HDF5 file but not an NWB file (no 'nwb_version' attribute; top-level entries: {top})"
        )
    if not version.startswith("2") and version != "unknown":
        raise NWBFormatError(f"{label}: NWB version {version!r} is not supported (NWB 2.x only)")
    return version


# ---------------------------------------------------------------------------- values
def _decode(x: Any) -> Any:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else x


def attr_str(obj, name: str, default: str | None = None) -> str | None:
    """A string attribute (bytes decoded), or ``default``."""
    try:
        value = obj.attrs.get(name)
    except Exception:
        return default
    if value is None:
        return default
    if isinstance(value, np.ndarray):
        value = value.tolist()
        if isinstance(value, list):
            value = value[0] if value else default
    return str(_decode(value)) if value is not None else default


def attr_float(obj, name: str, default: float | None = None) -> float | None:
    try:
        value = obj.attrs.get(name)
        return default if value is None else float(np.asarray(value).ravel()[0])
    except Exception:
        return default


def text_scalar(ds) -> str:
    value = ds[()]
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    return str(_decode(value))


def read_values(ds, sel=()) -> np.ndarray:
    """Read a dataset (or a selection), decoding text to ``str`` objects."""
    import h5py

    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.asarray(ds.asstr(errors="replace")[sel], dtype=object)
    arr = np.asarray(ds[sel])
    if arr.dtype.kind == "S":
        return np.asarray([x.decode("utf-8", "replace") for x in arr.ravel()], dtype=object).reshape(arr.shape)
    if arr.dtype.kind == "O":
        return np.asarray([_decode(x) for x in arr.ravel()], dtype=object).reshape(arr.shape)
    return arr


def is_dataset(obj) -> bool:
    import h5py

    return isinstance(obj, h5py.Dataset)


# ---------------------------------------------------------------------------- scanning
@dataclass
class Scan:
    """Paths of the objects of interest, found in one walk over the file."""

    units: list = field(default_factory=list)  # Units tables (or groups with spike_times + index)
    intervals: list = field(default_factory=list)  # TimeIntervals tables
    series: list = field(default_factory=list)  # (path, neurodata_type, parent neurodata_type)
    tables: list = field(default_factory=list)  # other DynamicTables (processing, general, ...)
    broken: list = field(default_factory=list)  # paths that could not be opened


def scan_file(f) -> Scan:
    """Walk the file once (hard links only, ``/specifications`` skipped) and classify groups."""
    import h5py

    scan = Scan()

    def visit(group, parent_type: str | None) -> None:
        for name in list(group.keys()):
            path = f"{group.name.rstrip('/')}/{name}"
            if path == "/specifications":
                continue
            try:
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    continue
                obj = group[name]
            except Exception:
                scan.broken.append(path)
                continue
            if not isinstance(obj, h5py.Group):
                continue
            ntype = attr_str(obj, "neurodata_type", "") or ""
            if ntype == "Units" or ("spike_times" in obj and is_dataset(obj["spike_times"])):
                scan.units.append(path)
            elif ntype == "TimeIntervals" or (
                path.startswith("/intervals/") and "start_time" in obj and "stop_time" in obj
            ):
                scan.intervals.append(path)
            elif "data" in obj and ("timestamps" in obj or "starting_time" in obj) and is_dataset(obj["data"]):
                scan.series.append((path, ntype, parent_type))
            elif "id" in obj and is_dataset(obj["id"]) and ("colnames" in obj.attrs or "Table" in ntype):
                scan.tables.append(path)
            else:
                visit(obj, ntype)

    visit(f, None)
    return scan


# ---------------------------------------------------------------------------- tables
def table_columns(g) -> list[str]:
    """Column names of a DynamicTable group: the ``colnames`` attribute, else its datasets."""
    names: list[str] = []
    raw = g.attrs.get("colnames") if "colnames" in g.attrs else None
    if raw is not None:
        names = [str(_decode(x)) for x in np.asarray(raw).ravel().tolist() if str(_decode(x))]
        names = [n for n in names if n in g]
    if not names:  # hdmf writes an empty colnames for tables without rows; MatNWB may omit it
        names = sorted(k for k in g.keys() if k != "id" and not k.endswith("_index") and is_dataset(g[k]))
    return names


def table_ids(g) -> np.ndarray:
    if "id" in g:
        return np.asarray(g["id"][()]).astype(np.int64, copy=False)
    cols = table_columns(g)
    n = g[cols[0]].shape[0] if cols else 0
    return np.arange(n, dtype=np.int64)


def read_column(g, name: str, n_rows: int) -> tuple[str, Any]:
    """Read one column: ``(kind, value)`` with kind ``scalar`` (1-D array), ``ragged`` (list of arrays),
    ``multi`` (n-D array, first axis rows), ``ref`` (object references) or ``skip`` (unknown type)."""
    import h5py

    ds = g[name]
    if ds.dtype.names is not None:  # compound (TimeSeriesReferenceVectorData, old region refs)
        return "skip", None
    if h5py.check_ref_dtype(ds.dtype) is not None:
        return "ref", ds[()]
    indexes = []
    idx_name = f"{name}_index"
    while idx_name in g:
        indexes.append(idx_name)
        idx_name += "_index"
    values = read_values(ds)
    if indexes:
        parts: Any = values
        for idx in indexes:
            ends = np.asarray(g[idx][()], dtype=np.int64)
            parts = split_ragged(parts, ends, f"{g.name}/{idx}")
        return "ragged", parts
    if values.ndim == 0 or values.shape[0] != n_rows:
        return "skip", None
    if values.ndim > 1:
        return "multi", values
    return "scalar", values


def split_ragged(values, ends: np.ndarray, where: str) -> list:
    """Split ``values`` at VectorIndex end offsets ``ends`` (checked)."""
    total = len(values)
    if ends.size and (np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] > total):
        raise NWBFormatError(f"{where}: index is not a non-decreasing list of offsets within the data")
    if ends.size == 0:
        return []
    if isinstance(values, list):
        starts = np.concatenate([[0], ends[:-1]])
        return [values[a:b] for a, b in zip(starts, ends)]
    return np.split(values[: ends[-1]], ends[:-1])


def resolve_refs(f, refs) -> np.ndarray:
    """Object references -> the base name of the referenced object ('' when it cannot be resolved)."""
    out = []
    for r in np.asarray(refs).ravel():
        try:
            out.append(f[r].name.rsplit("/", 1)[-1] if r else "")
        except Exception:
            out.append("")
    return np.asarray(out, dtype=object)


# ---------------------------------------------------------------------------- spikes
def spike_index(g, where: str, notes: Notes | None = None) -> np.ndarray | None:
    """End offsets of each unit's spikes (one dataset read), or None if the table has no spike times."""
    if "spike_times" not in g:
        return None
    n = table_ids(g).size
    if "spike_times_index" in g:
        ends = np.asarray(g["spike_times_index"][()], dtype=np.int64)
    elif n == 1:  # a single unit needs no index
        ends = np.asarray([g["spike_times"].shape[0]], dtype=np.int64)
    else:
        raise NWBFormatError(f"{where}: has spike_times but no spike_times_index; cannot tell units apart")
    total = g["spike_times"].shape[0]
    if ends.size != n:
        raise NWBFormatError(f"{where}: spike_times_index has {ends.size} entries but the table has {n} rows")
    if ends.size and (np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] > total):
        raise NWBFormatError(f"{where}: spike_times_index is not a non-decreasing list of offsets (<= {total})")
    if notes is not None and ends.size and ends[-1] < total:
        notes.warn(f"{where}: spike_times has {total - int(ends[-1])} value(s) after the last unit's; ignored")
    return ends


@dataclass
class FlatStats:
    """Summary of a flat spike-time array: range (finite values), NaNs, infinities, unsorted units."""

    t_min: float = np.inf
    t_max: float = -np.inf
    n_nan: int = 0
    n_inf: int = 0
    unsorted_units: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def flat_stats(data, ends: np.ndarray) -> FlatStats:
    """One pass over a flat spike-time array (an h5py dataset read in chunks, or an ndarray)."""
    st = FlatStats()
    total = int(ends[-1]) if ends.size else 0
    starts = np.concatenate([[0], ends[:-1]]) if ends.size else np.zeros(0, dtype=np.int64)
    bad_pos: list[np.ndarray] = []
    prev = None
    for a in range(0, total, _CHUNK):
        chunk = np.asarray(data[a: min(a + _CHUNK, total)], dtype=float)
        nan = np.isnan(chunk)
        st.n_nan += int(nan.sum())
        finite = np.isfinite(chunk)
        st.n_inf += int(chunk.size - finite.sum()) - int(nan.sum())
        if finite.any():
            st.t_min = min(st.t_min, float(chunk[finite].min()))
            st.t_max = max(st.t_max, float(chunk[finite].max()))
        ordered = np.where(finite, chunk, np.nan)  # a non-finite time (dropped by read) is no disorder
        ext = ordered if prev is None else np.concatenate([[prev], ordered])
        pos = np.flatnonzero(np.diff(ext) < 0) + (a if prev is None else a - 1) + 1
        if pos.size:
            bad_pos.append(pos)
        prev = ordered[-1] if ordered.size else prev
    if bad_pos:
        pos = np.concatenate(bad_pos)
        pos = pos[~np.isin(pos, starts)]  # a drop at a unit boundary is not disorder
        st.unsorted_units = np.unique(np.searchsorted(ends, pos, side="right"))
    return st


# ---------------------------------------------------------------------------- time series
def series_info(g) -> dict:
    """Cheap facts about a TimeSeries group (no full read)."""
    data = g["data"]
    shape = tuple(int(s) for s in data.shape)
    n = shape[0] if shape else 0
    info: dict[str, Any] = {
        "shape": list(shape),
        "dtype": str(data.dtype),
        "unit": attr_str(data, "unit", "") or "",
        "n_samples": n,
        "rate_hz": None,
        "t_start_s": None,
        "t_stop_s": None,
    }
    try:
        if "timestamps" in g:
            ts = g["timestamps"]
            m = ts.shape[0] if ts.shape else 0
            if m:
                info["t_start_s"], info["t_stop_s"] = float(ts[0]), float(ts[m - 1])
        else:
            st = g["starting_time"]
            t0 = float(np.asarray(st[()]))
            rate = attr_float(st, "rate")
            info["rate_hz"] = rate
            info["t_start_s"] = t0
            if rate and rate > 0 and n:
                info["t_stop_s"] = t0 + (n - 1) / rate
    except Exception:
        pass
    return info


def clean_times(t: np.ndarray, values: np.ndarray, where: str, notes: Notes,
                what: str = "samples") -> tuple[np.ndarray, np.ndarray]:
    """Drop the samples (or events) whose time is NaN or infinite and sort the rest by time, with a note each."""
    bad_t = ~np.isfinite(t)
    if bad_t.any():
        notes.warn(f"{where}: {int(bad_t.sum())} timestamp(s) are NaN or infinite; those {what} are dropped")
        t, values = t[~bad_t], values[~bad_t]
    if t.size > 1 and np.any(np.diff(t) < 0):
        notes.warn(f"{where}: timestamps are not in increasing order ({int(np.sum(np.diff(t) < 0))} step(s) back); "
                   f"the {what} are sorted by time (check the file's timestamps)")
        order = np.argsort(t, kind="stable")
        t, values = t[order], values[order]
    return t, values


def read_series(g, notes: Notes, where: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Read a TimeSeries group: ``(t_s, values, unit, description)`` with conversion/offset applied."""
    data_ds = g["data"]
    values = read_values(data_ds)
    unit = attr_str(data_ds, "unit", "a.u.") or "a.u."
    conversion = attr_float(data_ds, "conversion", 1.0)
    offset = attr_float(data_ds, "offset", 0.0)
    if values.dtype.kind in "iuf" and (conversion != 1.0 or offset != 0.0):
        values = values * conversion + offset
    n = values.shape[0] if values.ndim else 0
    if "timestamps" in g:
        t = np.asarray(g["timestamps"][()], dtype=float)
    else:
        st = g["starting_time"]
        rate = attr_float(st, "rate")
        if not rate or rate <= 0:
            raise NWBFormatError(f"{where}: starting_time has no positive 'rate' attribute")
        t = np.arange(n) / rate + float(np.asarray(st[()]))
    if t.size != n:
        if values.ndim == 2 and values.shape[1] == t.size:
            notes.warn(f"{where}: data is stored (channels, time); transposed to (time, channels)")
            values = values.T
        else:
            m = min(t.size, n)
            notes.warn(f"{where}: {t.size} timestamps for {n} samples; kept the first {m}")
            t, values = t[:m], values[:m]
    t, values = clean_times(t, values, where, notes)
    if values.dtype.kind == "f" and values.size and not np.isfinite(values).all():
        rows = ~np.isfinite(values).reshape(values.shape[0], -1).all(axis=1)
        notes.warn(f"{where}: {int(rows.sum())} of {values.shape[0]} samples are NaN or infinite (kept as they are; "
                   "check whether the signal was recorded there)")
    description = attr_str(g, "description", "") or ""
    return t, values, unit, description


def binned_candidate(path: str, g) -> bool:
    """Does this TimeSeries look like binned spike counts (by name, shape and a sample of values)?"""
    name = path.rsplit("/", 1)[-1]
    if not BINNED_NAME.search(name):
        return False
    data = g["data"]
    if data.ndim not in (1, 2) or data.dtype.kind not in "iuf" or data.shape[0] == 0:
        return False
    sample = np.asarray(data[: min(1000, data.shape[0])], dtype=float)
    return bool(np.all(sample[np.isfinite(sample)] >= 0) and np.all(np.mod(sample[np.isfinite(sample)], 1) == 0))


def counts_to_spike_times(t: np.ndarray, counts: np.ndarray, where: str) -> tuple[list, float]:
    """Binned counts ``(n_bins, n_units)`` -> approximate spike times.

    Timestamps are taken as bin starts; a bin's width is the gap to the next timestamp (the median
    gap for the last bin). The ``c`` spikes of a bin are placed evenly inside it, at
    ``start + (j + 0.5) * width / c`` for ``j = 0..c-1``. Returns the trains and the median width.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim == 1:
        counts = counts[:, None]
    finite = np.isfinite(counts)
    if np.any(counts[finite] < 0) or np.any(np.mod(counts[finite], 1) != 0):
        raise NWBFormatError(f"{where}: values are not non-negative whole numbers, so they are not spike counts")
    counts = np.where(finite, counts, 0).astype(np.int64)
    t = np.asarray(t, dtype=float)
    gaps = np.diff(t)
    width = float(np.median(gaps)) if gaps.size else 1.0
    if not np.isfinite(width) or width <= 0:
        width = 1.0
    widths = np.append(gaps, width)
    trains = []
    for u in range(counts.shape[1]):
        c = counts[:, u]
        nz = np.flatnonzero(c)
        rep = np.repeat(nz, c[nz])
        first = np.repeat(np.cumsum(c[nz]) - c[nz], c[nz])
        j = np.arange(rep.size) - first
        trains.append(t[rep] + (j + 0.5) * widths[rep] / c[rep])
    return trains, width


# ---------------------------------------------------------------------------- session
def session_start(f, notes: Notes) -> str | None:
    """The session start time as an ISO string, with a warning when it has no timezone or looks anonymised."""
    if "session_start_time" in f:
        text = text_scalar(f["session_start_time"])
    else:
        text = attr_str(f, "session_start_time")
        if text is None:
            notes.warn("no session_start_time in the file")
            return None
    try:
        when = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        notes.warn(f"session_start_time {text!r} is not an ISO-8601 date; kept as text")
        return text
    if when.tzinfo is None:
        notes.warn(f"session_start_time {text!r} has no timezone; kept as a naive (local) time")
    if when.year <= 1900:
        notes.warn(f"session_start_time {text!r} looks anonymised (year {when.year}); times are relative to it")
    return when.isoformat()


def check_interval_columns(name: str, cols: dict, notes: Notes) -> None:
    """Warn about NaN starts/stops and event-time columns that look relative to the interval start."""
    start = cols.get("start_time")
    stop = cols.get("stop_time")
    if start is not None and np.isnan(np.asarray(start, dtype=float)).any():
        notes.warn(f"{name}: {int(np.isnan(np.asarray(start, float)).sum())} start_time value(s) are NaN; kept as NaN")
    if stop is not None and np.isnan(np.asarray(stop, dtype=float)).any():
        notes.warn(f"{name}: {int(np.isnan(np.asarray(stop, float)).sum())} stop_time value(s) are NaN "
                   "(open interval); kept as NaN")
    if start is None or stop is None or len(start) < 3:
        return
    start = np.asarray(start, dtype=float)
    dur = np.nanmax(np.asarray(stop, dtype=float) - start) if np.isfinite(np.asarray(stop, float) - start).any() else np.nan
    for cname, values in cols.items():
        if not cname.endswith("_time") or cname in ("start_time", "stop_time"):
            continue
        v = np.asarray(values)
        if v.dtype.kind != "f" or v.ndim != 1:
            continue
        ok = np.isfinite(v) & np.isfinite(start)
        if ok.sum() < 3 or not np.isfinite(dur):
            continue
        inside = (v[ok] >= 0) & (v[ok] <= dur + 1e-9)
        before = v[ok] < start[ok]
        if np.mean(inside & before) > 0.9 and np.nanmedian(start) > 2 * dur:
            notes.warn(f"{name}: column {cname!r} looks like a duration or a time relative to the interval start "
                       f"(values within [0, {dur:.3g}] s while intervals start later); kept as stored (as an outcome "
                       f"of relative times: analyze --reward relative:{cname})")
