"""Recording -> NWB file (pynwb). The layout is documented in :mod:`bci_credit.io.nwb`."""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..outputs import atomic_path, to_jsonable, versions
from ..recording import Recording, interval_pairs
from . import _nwb_layout as L

logger = L.logger

#: Subject written for simulations (nwbinspector wants species, sex, ISO age and an id).
SIM_SUBJECT = {
    "subject_id": "simulated-1",
    "species": "Macaca mulatta",
    "sex": "U",
    "age": "P5Y",
    "description": "Simulated subject: a bci_credit simulation of a single-unit BCI experiment; no animal was recorded.",
}
SIM_EXPERIMENTER = "Simulation, bci_credit"
SIM_INSTITUTION = "bci_credit simulation (no institution)"
KEYWORDS = ["brain-computer interface", "single-unit BCI", "regression discontinuity", "credit assignment"]

_SUBJECT_KEYS = ("subject_id", "species", "sex", "age", "description", "genotype", "strain", "weight")
#: Arrays at least this large are written gzip-compressed (lossless).
_COMPRESS_MIN = 4096

_DESCRIPTIONS = {
    "units": {
        "is_control": "True for the unit(s) whose spikes control the BCI (drive the reward).",
        "threshold": "Spike threshold of the unit on the drive Z (same units as Z); NaN if unknown.",
        "true_direct_effect": "Simulation only: true causal effect of one spike of the unit on reward, "
        "all other units held fixed.",
        "true_total_effect": "Simulation only: true total causal effect of one spike of the unit on reward, "
        "including effects through other units.",
        "true_direct_effect_se": "Simulation only: standard error of true_direct_effect over the sampled windows.",
        "true_direct_effect_horizon": "Simulation only: true_direct_effect summed over the counterfactual horizon "
        "(the decoder has memory).",
        "true_total_effect_se": "Simulation only: standard error of true_total_effect over the sampled windows.",
        "true_marginal_effect": "Simulation only: true effect of one spike inserted at a random step, averaged over "
        "sampled windows with the drive near threshold (|Z - threshold| < near_p); a Monte Carlo estimate.",
        "true_marginal_effect_se": "Simulation only: Monte Carlo standard error of true_marginal_effect.",
        "true_marginal_n": "Simulation only: number of sampled near-threshold windows behind true_marginal_effect.",
        "true_removal_effect": "Simulation only: factual reward minus the reward with the unit silenced, over "
        "sampled windows in which it spiked.",
        "true_removal_marginal": "Simulation only: true_removal_effect over sampled windows just above threshold "
        "(threshold < Z < threshold + near_p).",
        "true_removal_marginal_se": "Simulation only: standard error of true_removal_marginal.",
        "true_removal_marginal_n": "Simulation only: number of sampled windows behind true_removal_marginal.",
        "baseline_rate_hz": "The unit's baseline firing rate (Hz); in a simulation, the rate its input was "
        "calibrated to before learning.",
        "w_initial": "Simulation only: the unit's input weight at the start of the session (a.u.).",
        "w_final": "Simulation only: the unit's input weight at the end of the session (a.u.).",
        "preferred_direction_rad": "The unit's preferred movement direction (rad).",
        "tuning_depth": "Depth of the unit's direction tuning: input drive per standard deviation of the wrist "
        "signal (a.u.).",
        "cluster": "Simulation only: the correlated-input cluster the unit belongs to.",
        "private_scale": "Simulation only: scale of the unit's private input noise (1 = the population's).",
        "obs_intervals": "Observation intervals of each unit: [start, stop] pairs (s) in which the unit was "
        "isolated and its spikes recorded.",
        L.UNIT_LABEL_COLUMN: "Original unit id (the bci_credit Recording index), as text.",
    },
    "windows": {
        "start_time": "Start of the analysis window (s).",
        "stop_time": "End of the analysis window (s).",
        "reward": "Outcome of the window: the reward received in it (for a task that records a cost, the cost; "
        "see reward_kind in the file's bci_credit metadata).",
        "cost": "Simulation only: cost the learning rule minimised in the window (for a reward task: minus the "
        "reward value).",
        "block": "Task block of the window.",
        L.DRIVE_COLUMN: "Running variable Z: maximum input drive of each unit in the window, shape "
        "(n_windows, n_units); column j belongs to row j of /units.",
        L.SPIKED_COLUMN: "Treatment H: whether each unit spiked in the window, shape (n_windows, n_units); "
        "column j belongs to row j of /units.",
    },
    "trials": {
        "start_time": "Start of the trial (s).",
        "stop_time": "End of the trial (s); NaN if unknown.",
        "block": "Task block of the trial.",
        "success": "True when the trial met the task's success criterion; in blocks without reward (e.g. "
        "baseline, extinction) a success delivers nothing (reward_time is NaN).",
        "reward_time": "Time of reward (s); NaN if none.",
    },
    "epochs": {
        "start_time": "Start of the task block (s).",
        "stop_time": "End of the task block (s).",
        "tags": "Name of the task block (baseline, conditioning, extinction, ...).",
        "rewarded": "Simulation only: whether the block delivered rewards.",
        "learning": "Simulation only: whether the learning rule updated the weights in the block.",
        "wrist": "Simulation only: whether the wrist moved (and tuned units felt it) in the block.",
        "control": "Simulation only: what drove the cursor in the block (brain, manual or dual).",
    },
}


def write(recording: Recording, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``recording`` to ``path`` atomically (temp file + rename). See :func:`bci_credit.io.nwb.write`."""
    from pynwb import NWBHDF5IO

    if not isinstance(recording, Recording):
        raise TypeError(f"write() needs a bci_credit Recording, got {type(recording).__name__}")
    recording.validate()
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or choose another path")
    nwbfile = build_nwbfile(recording)
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*BehavioralEvents is deprecated.*")
            with NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwbfile)
    logger.info("wrote %s (%d units, %d spikes)", path, recording.n_units, int(recording.n_spikes.sum()))
    return path


def build_nwbfile(recording: Recording):
    """Build the in-memory :class:`pynwb.NWBFile` for ``recording`` (used by :func:`write` and tests)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BehavioralEvents is deprecated.*")
        # hdmf: a column named like a table attribute ('name', 'description') is reachable only as table[col]
        warnings.filterwarnings("ignore", message=".*already exists on .* so this column cannot be accessed.*")
        return _build(recording)


# ---------------------------------------------------------------------------- the file
def _build(rec: Recording):
    from pynwb import NWBFile
    from pynwb.file import Subject

    _check_meta_keys(rec.meta)  # non-text keys are written as text (meta[5] -> meta['5']); clashes refused
    meta = dict(rec.meta)
    simulated = str(meta.get("source", "")) == "simulation"
    subject = dict(SIM_SUBJECT) if simulated else {"subject_id": "unknown", "species": "unknown", "sex": "U"}
    given = meta.get("subject")
    if isinstance(given, dict):
        subject.update({k: str(v) for k, v in given.items() if k in _SUBJECT_KEYS and v is not None})
    if not subject.get("age"):
        logger.warning("meta['subject'] has no 'age' (ISO 8601, e.g. 'P5Y'); NWB tools will flag the file. "
                       "Give meta['subject'] = {'subject_id', 'species', 'sex', 'age'} for recorded data, or "
                       "meta['source'] = 'simulation' for simulated data")
    experimenter = meta.get("experimenter") or ([SIM_EXPERIMENTER] if simulated else None)
    if isinstance(experimenter, str):
        experimenter = [experimenter]
    description = meta.get("session_description") or (
        "Simulated single-unit BCI experiment (bci_credit)." if simulated else "Recording written by bci_credit."
    )
    nwbfile = NWBFile(
        session_description=str(description),
        identifier=str(uuid.uuid4()),
        session_start_time=_session_start(meta.get("session_start_time")),
        experimenter=list(experimenter) if experimenter else None,
        institution=str(meta.get("institution") or (SIM_INSTITUTION if simulated else "")) or None,
        lab=str(meta["lab"]) if meta.get("lab") else None,
        session_id=str(meta["session_id"]).replace("/", "_") if meta.get("session_id") else None,
        experiment_description=str(
            meta.get("experiment_description")
            or "Single-unit brain-computer-interface session: which units causally drive reward "
            "(bci_credit; regression-discontinuity analysis of spikes near threshold)."
        ),
        keywords=KEYWORDS + (["simulation"] if simulated else []),
        subject=Subject(**subject),
    )
    layout: dict[str, Any] = {"format": "bci_credit", "format_version": L.FORMAT_VERSION}
    layout["units"] = _add_units(nwbfile, rec, meta)
    if rec.windows is not None:
        layout["windows"] = _add_windows(nwbfile, rec)
    if rec.trials is not None:
        layout["trials"] = _add_intervals(nwbfile, rec.trials, "trials", "Trials of the BCI task.")
    if rec.epochs is not None:
        layout["epochs"] = _add_intervals(nwbfile, rec.epochs, "epochs", "Task blocks of the session, named by "
                                          "their tags.", reserved=L.RESERVED_INTERVALS - {"tags"})
    modules: dict[str, Any] = {}
    series_layout: dict[str, Any] = {}
    used: set[str] = set()
    for name, ts in rec.series.items():
        series_layout[name] = _add_series(nwbfile, modules, used, name, ts.t_s, ts.values, ts.unit,
                                          ts.description, ts.kind, meta.get("dt_s"))
    if series_layout:
        layout["series"] = series_layout
    if rec.weights is not None:
        w = rec.weights
        layout["weights"] = _add_series(nwbfile, modules, used, L.WEIGHTS_NAME, w.t_s, w.values, "a.u.",
                                        w.description or "weights", "weights", meta.get("dt_s"))
    if isinstance(meta.get("decoder"), dict) and meta["decoder"]:
        _add_decoder(_module(nwbfile, modules, "misc"), meta["decoder"])
    stored_meta = to_jsonable(meta)
    layout["written_by"] = to_jsonable(versions())
    _add_meta_table(_module(nwbfile, modules, "misc"), {"meta": stored_meta, "layout": layout})
    return nwbfile


def _session_start(value: Any) -> _dt.datetime:
    if value is None or value == "":
        return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"meta['session_start_time'] = {value!r} is not an ISO-8601 date; give e.g. '2024-05-01T10:00:00+00:00'"
            ) from None
    elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"meta['session_start_time'] must be a datetime or ISO string, got {type(value).__name__}")
    if value.tzinfo is None:
        logger.warning("session_start_time %s has no timezone; written as UTC", value.isoformat())
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value


def _module(nwbfile, modules: dict, name: str):
    if name not in modules:
        desc = {
            "behavior": "Behaviour and BCI signals: reward events, decoder output, cursor.",
            "misc": "bci_credit metadata (configuration, seed, versions, layout), decoder parameters, weights.",
        }[name]
        modules[name] = nwbfile.create_processing_module(name=name, description=desc)
    return modules[name]


def _dataio(arr: np.ndarray):
    arr = np.asarray(arr)
    if arr.size >= _COMPRESS_MIN:
        from hdmf.backends.hdf5 import H5DataIO

        return H5DataIO(arr, compression="gzip", compression_opts=4)
    return arr


# ---------------------------------------------------------------------------- tables
def _column_values(col: pd.Series, where: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(data, ragged end offsets or None, dtype tag) for one DataFrame column."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return np.asarray(col.astype(str).to_numpy(), dtype=object), None, "str"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        logger.warning("%s is a datetime column; written as ISO text", where)
        return np.asarray([str(x) for x in col], dtype=object), None, "str"
    if isinstance(dtype, pd.StringDtype):
        return _text(col.to_numpy(dtype=object, na_value=None), where), None, "str"
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, np.dtype):
        if col.isna().any():
            logger.warning("%s has missing values; written as float with NaN", where)
            return col.to_numpy(dtype=float, na_value=np.nan), None, "float64"
        arr = col.to_numpy(dtype=dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else object)
        return (arr, None, L.dtype_name(arr)) if arr.dtype != object else (_text(arr, where), None, "str")
    arr = col.to_numpy()
    if arr.dtype.kind in "biuf":
        return arr, None, L.dtype_name(arr)
    if arr.dtype.kind in "US":
        return np.asarray(arr.astype(str), dtype=object), None, "str"
    # object column: text, booleans, numbers or lists (ragged)
    items = list(arr)
    if all(isinstance(x, (list, tuple, np.ndarray)) for x in items) and items:
        container = "array" if isinstance(items[0], np.ndarray) else "list"
        parts = [np.asarray(x) for x in items]
        flat = np.concatenate(parts) if any(p.size for p in parts) else np.zeros(0)
        if flat.dtype.kind in "OUS":
            flat = np.asarray([str(x) for x in flat], dtype=object)
        ends = np.cumsum([p.size for p in parts])
        return flat, ends, f"ragged_{container}:{L.dtype_name(flat)}"
    if items and all(isinstance(x, (bool, np.bool_)) for x in items):
        return np.asarray(items, dtype=bool), None, "bool"
    if items and all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) for x in items):
        return np.asarray(items, dtype=float), None, "float64"
    return _text(arr, where), None, "str"


def _text(arr: np.ndarray, where: str = "column") -> np.ndarray:
    out = []
    lossy = False
    for x in arr:
        if isinstance(x, str):
            out.append(x)
        elif x is None or (isinstance(x, float) and np.isnan(x)):
            out.append("")
            lossy = True
        else:
            out.append(str(x))
    if lossy:
        logger.warning("%s has missing text values; written as empty strings", where)
    return np.asarray(out, dtype=object)


def _table_ids(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """NWB ids (integers) and, when the index is not integer, its values as text labels."""
    idx = df.index
    if pd.api.types.is_integer_dtype(idx.dtype) and idx.is_unique:
        return np.asarray(idx, dtype=np.int64), None
    return np.arange(len(df), dtype=np.int64), np.asarray([str(x) for x in idx], dtype=object)


def _vector_columns(table: str, name: str, data, ends, description: str | None = None) -> list:
    from hdmf.common import VectorData, VectorIndex

    desc = description or _DESCRIPTIONS.get(table, {}).get(name) or f"Column {name!r} of the bci_credit {table} table."
    vd = VectorData(name=name, description=desc, data=_dataio(data))
    if ends is None:
        return [vd]
    return [vd, VectorIndex(name=f"{name}_index", data=np.asarray(ends, dtype=np.uint64), target=vd)]


def _frame_columns(df: pd.DataFrame, table: str, rename, reserved: frozenset, skip=()) -> tuple[list, list]:
    """hdmf columns for ``df`` and the layout entries ``[df_name, nwb_name, dtype_tag]``."""
    cols, entries = [], []
    for name in df.columns:
        if name in skip:
            continue
        nwb_name = rename(str(name))
        if nwb_name in reserved and nwb_name not in ("start_time", "stop_time"):
            nwb_name = f"{nwb_name}_"
            logger.warning("%s column %r has a reserved NWB name; stored as %r", table, name, nwb_name)
        data, ends, tag = _column_values(df[name], f"{table} column {name!r}")
        cols += _vector_columns(table, nwb_name, data, ends)
        entries.append([str(name), nwb_name, tag])
    return cols, entries


def _add_units(nwbfile, rec: Recording, meta: dict) -> dict:
    from hdmf.common import ElementIdentifiers
    from pynwb.misc import Units

    df = rec.units
    ids, labels = _table_ids(df)
    if labels is not None:
        _check_unique_labels(df.index, labels)
    flat = np.concatenate(rec.spike_times) if rec.n_units else np.zeros(0)
    ends = np.cumsum([s.size for s in rec.spike_times]).astype(np.uint64)
    cols = _vector_columns("units", "spike_times", flat.astype(np.float64), ends,
                           "Spike times of each unit, in seconds from session start.")
    extra, entries = _frame_columns(df, "units", lambda n: n, L.RESERVED_UNITS, skip=("obs_intervals",))
    cols += extra
    if "obs_intervals" in df.columns:  # NWB's own ragged n x 2 column, in the column's place in the layout
        parts = _obs_intervals(df["obs_intervals"])
        flat_iv = np.concatenate(parts) if parts else np.zeros((0, 2))
        cols += _vector_columns("units", "obs_intervals", flat_iv.astype(np.float64),
                                np.cumsum([p.shape[0] for p in parts]))
        entries.insert(list(df.columns).index("obs_intervals"), ["obs_intervals", "obs_intervals",
                                                                 "ragged_array:float64"])
    if labels is not None:
        cols += _vector_columns("units", L.UNIT_LABEL_COLUMN, labels, None)
    resolution = _resolution(meta)
    units = Units(
        name="units",
        description="Units (sorted or simulated neurons) of the bci_credit recording.",
        id=ElementIdentifiers(name="id", data=ids),
        columns=cols,
        resolution=resolution,
    )
    nwbfile.units = units
    return {
        "index_name": df.index.name,
        "index_dtype": L.dtype_name(np.asarray(df.index)),
        "label_column": L.UNIT_LABEL_COLUMN if labels is not None else None,
        "columns": entries,
    }


def _obs_intervals(col: pd.Series) -> list[np.ndarray]:
    """``units['obs_intervals']`` as one (k, 2) float array per unit (None/NaN/empty -> (0, 2)); refuses
    anything that is not [start, stop] pairs, naming the unit."""
    out = []
    for uid, cell in col.items():
        try:
            out.append(interval_pairs(cell))
        except ValueError as err:
            raise ValueError(f"units['obs_intervals'] of unit {uid!r} must be [start, stop] pairs in seconds, an "
                             f"array of shape (k, 2) ({err}); give e.g. np.array([[0.0, 600.0]])") from None
    return out


def _check_unique_labels(index: pd.Index, labels: np.ndarray) -> None:
    """Non-integer unit ids are stored as text: two ids with the same text (``"1"`` and ``1``) would
    come back as one repeated id, and the file could not be read. Refuse them here."""
    seen: dict[str, Any] = {}
    clashes = []
    for uid, text in zip(index, labels):
        if text in seen:
            clashes.append(f"{seen[text]!r} and {uid!r}")
        else:
            seen[text] = uid
    if clashes:
        raise ValueError(
            f"unit ids {', '.join(clashes[:5])}{' ...' if len(clashes) > 5 else ''} are the same as text, and NWB "
            "stores non-integer unit ids as text, so the file could not be read back; give every unit an id that "
            "differs as text (rename one of each pair)"
        )


def _check_meta_keys(obj: Any, where: str = "meta") -> None:
    """meta goes through JSON, whose keys are text: ``meta[5]`` is stored as ``meta['5']``. Two keys with
    the same text (``5`` and ``'5'``) would silently lose one value: refuse them."""
    if isinstance(obj, dict):
        seen: dict[str, Any] = {}
        for key, value in obj.items():
            text = str(key)
            if text in seen:
                other = key if not isinstance(key, str) else seen[text]
                raise ValueError(
                    f"{where} has the keys {seen[text]!r} and {key!r}, which are the same as text; NWB stores "
                    f"meta as JSON, whose keys are text ({other!r} is stored as {text!r}): rename one of them"
                )
            seen[text] = key
            _check_meta_keys(value, f"{where}[{text!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_meta_keys(value, f"{where}[{i}]")


def _resolution(meta: dict) -> float | None:
    for key in ("dt_s", "resolution_s"):
        value = meta.get(key)
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if 0 < value <= 0.01:
            return value
        logger.warning("meta[%r] = %s is not a valid spike-time resolution (0 < r <= 0.01 s); not written",
                       key, value)
    return None


def _add_intervals(nwbfile, df: pd.DataFrame, name: str, description: str, extra_cols=(), skip=(),
                   reserved: frozenset = L.RESERVED_INTERVALS) -> dict:
    from hdmf.common import ElementIdentifiers
    from pynwb.epoch import TimeIntervals

    ids, labels = _table_ids(df)
    cols, entries = _frame_columns(df, name, L.interval_col_to_nwb, reserved, skip=skip)
    # start_time and stop_time first, as NWB tools expect
    cols.sort(key=lambda c: {"start_time": 0, "stop_time": 1}.get(c.name, 2))
    cols += list(extra_cols)
    table = TimeIntervals(name=name, description=description, id=ElementIdentifiers(name="id", data=ids),
                          columns=cols)
    if name == "trials":
        nwbfile.trials = table
    elif name == "epochs":
        nwbfile.epochs = table
    else:
        nwbfile.add_time_intervals(table)
    return {"index_name": df.index.name, "index_labels": labels.tolist() if labels is not None else None,
            "columns": entries}


def _add_windows(nwbfile, rec: Recording) -> dict:
    extra = []
    for col, arr in ((L.DRIVE_COLUMN, rec.drive), (L.SPIKED_COLUMN, rec.spiked)):
        if arr is not None:
            extra += _vector_columns("windows", col, np.asarray(arr), None)
    entry = _add_intervals(
        nwbfile, rec.windows, L.WINDOWS_NAME,
        "Analysis windows of the single-unit BCI: reward per window, with drive Z and spike indicator H "
        "per unit (2-D columns).",
        extra_cols=extra,
        skip=(L.DRIVE_COLUMN, L.SPIKED_COLUMN),
    )
    entry["drive"] = rec.drive is not None
    entry["drive_dtype"] = None if rec.drive is None else L.dtype_name(np.asarray(rec.drive))
    entry["spiked"] = rec.spiked is not None
    entry["spiked_dtype"] = None if rec.spiked is None else L.dtype_name(np.asarray(rec.spiked))
    return entry


# ---------------------------------------------------------------------------- series
def _nwb_name(name: str, used: set) -> str:
    base = "".join("_" if ch in "/:" else ch for ch in str(name)) or "series"
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


def _add_series(nwbfile, modules, used, name, t, values, unit, description, kind, dt_hint=None) -> dict:
    from hdmf.common import DynamicTable, ElementIdentifiers
    from pynwb import TimeSeries as NWBTimeSeries
    from pynwb.behavior import BehavioralEvents, BehavioralTimeSeries

    t = np.asarray(t, dtype=float)
    values = np.asarray(values)
    description = description or f"{name} ({kind})"
    nwb_name = _nwb_name(name if kind != "weights" else L.WEIGHTS_NAME, used)
    entry: dict[str, Any] = {"kind": kind, "unit": unit, "description": description, "dtype": L.dtype_name(values)}
    if values.ndim >= 2 and any(d > values.shape[0] for d in values.shape[1:]):
        # More channels than samples: NWB tools flag a TimeSeries like this as wrongly oriented
        # (nwbinspector CRITICAL), so store it as a table, one row per sample.
        misc = _module(nwbfile, modules, "misc")
        tname = nwb_name if kind == "weights" else f"series_{nwb_name}"
        cols = _vector_columns("series", "timestamp", t, None, "Sample time (s).")
        cols += _vector_columns("series", "data", values, None,
                                f"Samples, one row per time ({unit}); {description}")
        misc.add(DynamicTable(name=tname, description=f"{description} [bci_credit series {name!r}, unit {unit}]",
                              id=ElementIdentifiers(name="id", data=np.arange(t.size)), columns=cols))
        entry.update(storage="table", path=f"/processing/misc/{tname}")
        return entry
    clock = L.find_clock(t, dt_hint)
    if clock is not None:
        rate = float(clock["rate"]) if "rate" in clock else 1.0 / (float(clock["dt"]) * int(clock.get("m", 1)))
        timing = {"starting_time": float(t[0]), "rate": rate}
        # a 'steps' clock under its own key: a reader of layout version 1 does not know the formula and
        # then takes the times from starting_time + rate (equal to within rounding)
        entry["clock_steps" if clock["formula"] == "steps" else "clock"] = clock
    else:
        timing = {"timestamps": _dataio(t)}
    ts = NWBTimeSeries(name=nwb_name, data=_dataio(values), unit=str(unit), description=description, **timing)
    if kind == "weights":
        _module(nwbfile, modules, "misc").add(ts)
        entry.update(storage="timeseries", path=f"/processing/misc/{nwb_name}")
        return entry
    behavior = _module(nwbfile, modules, "behavior")
    cname, ctype = ("BehavioralEvents", BehavioralEvents) if kind == "events" else (
        "BehavioralTimeSeries", BehavioralTimeSeries)
    container = behavior.data_interfaces.get(cname)
    if container is None:
        container = ctype(name=cname)
        behavior.add(container)
    container.add_timeseries(ts)
    entry.update(storage="timeseries", path=f"/processing/behavior/{cname}/{nwb_name}")
    return entry


# ---------------------------------------------------------------------------- misc tables
def _add_decoder(misc, decoder: dict) -> None:
    from hdmf.common import DynamicTable, ElementIdentifiers, VectorData

    cols = []
    for key, value in to_jsonable(decoder).items():
        if value is None:
            continue
        if isinstance(value, (bool, int, float, str)):
            data = np.asarray([value], dtype=object if isinstance(value, str) else None)
        elif isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        for v in value):
            data = np.asarray([value], dtype=float)
        else:
            data = np.asarray([json.dumps(value)], dtype=object)
        cols.append(VectorData(name=str(key).replace("/", "_"), description=f"decoder parameter {key}", data=data))
    if cols:
        misc.add(DynamicTable(name=L.DECODER_TABLE, description="BCI decoder parameters (one row).",
                              id=ElementIdentifiers(name="id", data=[0]), columns=cols))


def _add_meta_table(misc, obj: dict) -> None:
    from hdmf.common import DynamicTable, ElementIdentifiers, VectorData

    rows = L.flatten(obj)
    misc.add(DynamicTable(
        name=L.META_TABLE,
        description="bci_credit metadata, one row per value: 'key' is a JSON pointer into "
        "{'meta': Recording.meta, 'layout': how the Recording maps onto this file}, 'value' is JSON.",
        id=ElementIdentifiers(name="id", data=np.arange(len(rows))),
        columns=[
            VectorData(name="key", description="JSON pointer (RFC 6901) of the value.",
                       data=np.asarray([r[0] for r in rows], dtype=object)),
            VectorData(name="value", description="The value, as JSON text.",
                       data=np.asarray([r[1] for r in rows], dtype=object)),
        ],
    ))
