"""Names and pure helpers shared by the NWB writer and reader (no pynwb import here).

The layout itself is documented in :mod:`bci_credit.io.nwb`.
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np

logger = logging.getLogger("bci_credit")

#: Version of the bci_credit layout stored in ``/processing/misc/bci_credit_meta``.
FORMAT_VERSION = 2  # 2: series clocks of the 'steps' formula (stored as clock_steps)
META_TABLE = "bci_credit_meta"
DECODER_TABLE = "bci_decoder"
WEIGHTS_NAME = "weights"
WINDOWS_NAME = "windows"
#: 2-D columns of the windows table holding Z and H (column j = row j of the units table).
DRIVE_COLUMN = "drive"
SPIKED_COLUMN = "spiked"
#: Column holding the original unit ids when they are not integers (NWB ids must be integers).
UNIT_LABEL_COLUMN = "unit_label"

#: Columns with a fixed meaning in NWB tables; a Recording column of that name cannot be written as is.
RESERVED_UNITS = frozenset(
    {"id", "spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean", "waveform_sd", "waveforms"}
)
RESERVED_INTERVALS = frozenset({"id", "start_time", "stop_time", "tags", "timeseries"})


class NWBFormatError(ValueError):
    """The input is not a readable NWB file (missing, not HDF5, not NWB, truncated or corrupt)."""


class NWBReadWarning(UserWarning):
    """Something in an NWB file was unusual and was handled (the message says how)."""


class Notes:
    """Collects the warnings of one read/inspect call (returned to the caller, optionally warned)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def warn(self, msg: str) -> None:
        if msg not in self.messages:
            self.messages.append(msg)
            logger.info("NWB: %s", msg)

    def emit(self, stacklevel: int = 3) -> None:
        for msg in self.messages:
            warnings.warn(msg, NWBReadWarning, stacklevel=stacklevel)


# ---------------------------------------------------------------------------- column names
def interval_col_to_nwb(name: str) -> str:
    """``start_s`` -> ``start_time``, ``stop_s`` -> ``stop_time``, ``reward_time_s`` -> ``reward_time``."""
    if name == "start_s":
        return "start_time"
    if name == "stop_s":
        return "stop_time"
    if name.endswith("_time_s"):
        return name[:-2]
    return name


def interval_col_from_nwb(name: str) -> str:
    """Inverse of :func:`interval_col_to_nwb` for files without a bci_credit layout."""
    if name == "start_time":
        return "start_s"
    if name == "stop_time":
        return "stop_s"
    if name.endswith("_time"):
        return name + "_s"
    return name


# ---------------------------------------------------------------------------- meta as key/value rows
def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def flatten(obj: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested dicts into ``(json_pointer, json_value)`` rows.

    Non-empty dicts are descended into (RFC 6901 pointers: ``/config/population/n_units``);
    everything else (numbers, strings, lists, empty dicts) is a JSON leaf. One row per leaf keeps
    the table readable in any NWB viewer and avoids JSON objects in table cells.
    """
    rows: list[tuple[str, str]] = []
    for key, value in obj.items():
        ptr = f"{prefix}/{_escape(str(key))}"
        if isinstance(value, dict) and value:
            rows += flatten(value, ptr)
        else:
            rows.append((ptr, json.dumps(value, allow_nan=False, default=str)))
    return rows


def unflatten(rows) -> dict:
    """Inverse of :func:`flatten`."""
    out: dict = {}
    for ptr, text in rows:
        tokens = [_unescape(t) for t in str(ptr).split("/")[1:]]
        if not tokens:
            continue
        node = out
        for t in tokens[:-1]:
            nxt = node.get(t)
            if not isinstance(nxt, dict):
                nxt = node[t] = {}
            node = nxt
        node[tokens[-1]] = json.loads(text)
    return out


def dtype_name(values: np.ndarray) -> str:
    """A short dtype tag used to restore column types on read (``bool``, ``int64``, ``str``, ...)."""
    kind = values.dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iuf":
        return values.dtype.name
    if kind in "OUS":
        return "str"
    return values.dtype.name


def restore_dtype(values: np.ndarray, tag: str | None) -> np.ndarray:
    """Cast a column read from HDF5 back to the dtype recorded by the writer."""
    if tag is None:
        return values
    if tag == "str":
        return np.asarray(values, dtype=object)
    if tag == "object":
        return values
    try:
        return np.asarray(values).astype(tag, copy=False)
    except (TypeError, ValueError):
        return values


# ---------------------------------------------------------------------------- regular clocks
def clock_times(n: int, clock: dict) -> np.ndarray:
    """Sample times of a regular clock recorded by :func:`find_clock` (bit-exact re-creation)."""
    idx = np.arange(n)
    formula = clock.get("formula")
    if formula == "rate":
        return idx / float(clock["rate"]) + float(clock["t0"])
    if formula == "mul":
        return float(clock["t0"]) + idx * float(clock["dt"])
    if formula == "mul_k":
        return (idx + int(clock["k0"])) * float(clock["dt"])
    if formula == "steps":  # a whole number of simulation steps per sample (window edges)
        return (idx * int(clock["m"]) + int(clock["k0"])) * float(clock["dt"])
    raise ValueError(f"unknown clock formula {formula!r}")


def find_clock(t: np.ndarray, dt_hint: float | None = None) -> dict | None:
    """A regular clock that reproduces ``t`` exactly, or None.

    Tried: ``arange(n) / rate + t0`` (the NWB formula), ``t0 + arange(n) * dt`` and
    ``(arange(n) + k0) * dt``, with ``dt`` from the first gap, the mean gap (also rounded to 12 digits) and ``dt_hint``;
    and, with ``dt_hint`` the simulation step, ``(arange(n) * m + k0) * dt_hint`` (``m`` steps per sample).
    A file then stores ``starting_time`` + ``rate`` (what other NWB tools use) and the layout
    records the formula so bci_credit reads the times back bit for bit.
    """
    t = np.asarray(t, dtype=float)
    n = t.size
    if n < 3 or not np.all(np.isfinite(t)) or t[-1] <= t[0]:
        return None
    gaps = np.diff(t)
    mean_gap = (t[-1] - t[0]) / (n - 1)
    if np.max(np.abs(gaps - mean_gap)) > 1e-6 * mean_gap:
        return None
    dts = [float(gaps[0]), float(mean_gap), float(f"{mean_gap:.12g}")] + ([float(dt_hint)] if dt_hint else [])
    for dt in dict.fromkeys(dts):
        if not dt > 0:
            continue
        candidates = [{"formula": "rate", "t0": float(t[0]), "rate": r} for r in dict.fromkeys((1.0 / dt, float(round(1.0 / dt)))) if r > 0]
        candidates.append({"formula": "mul", "t0": float(t[0]), "dt": dt})
        candidates.append({"formula": "mul_k", "k0": int(round(t[0] / dt)), "dt": dt})
        for clock in candidates:
            if np.array_equal(clock_times(n, clock), t):
                return clock
    if dt_hint and dt_hint > 0 and round(mean_gap / dt_hint) >= 1:
        clock = {"formula": "steps", "k0": int(round(t[0] / dt_hint)), "m": int(round(mean_gap / dt_hint)),
                 "dt": float(dt_hint)}
        if np.array_equal(clock_times(n, clock), t):
            return clock
    return None
