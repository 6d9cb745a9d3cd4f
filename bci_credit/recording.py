"""The one in-memory data model in the middle of the package.

A simulated experiment (:func:`bci_credit.experiment.run`) and an NWB file read from disk
(:func:`bci_credit.io.nwb.read`) both become a :class:`Recording`, so every analysis runs on
both without knowing where the data came from. A Recording holds data, not behaviour: I/O lives
in :mod:`bci_credit.io`, estimation in :mod:`bci_credit.analysis`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = ["Recording", "TimeSeries", "WeightTrace", "UNIT_COLUMNS", "WINDOW_COLUMNS"]

#: Columns every units table has (others, e.g. from a real file, are kept as they are).
UNIT_COLUMNS = ("is_control", "threshold")
#: Columns every windows table has.
WINDOW_COLUMNS = ("start_s", "stop_s", "reward")


@dataclass
class TimeSeries:
    """A sampled signal: decoder output, cursor position, reward events, ...

    Parameters
    ----------
    t_s : ndarray, shape (n_samples,)
        Sample (or event) times in seconds, non-decreasing.
    values : ndarray, shape (n_samples,) or (n_samples, n_channels)
        The samples.
    unit : str
        Physical unit of ``values`` (``"a.u."`` when unknown).
    description : str
        One line saying what the signal is.
    kind : {"continuous", "events"}
        ``"events"`` for point events (reward times with amounts), ``"continuous"`` otherwise.
    """

    t_s: np.ndarray
    values: np.ndarray
    unit: str = "a.u."
    description: str = ""
    kind: str = "continuous"

    def __post_init__(self) -> None:
        self.t_s = np.asarray(self.t_s, dtype=float)
        self.values = np.asarray(self.values)
        if self.t_s.ndim != 1:
            raise ValueError(f"TimeSeries.t_s must be 1-D, got shape {self.t_s.shape}")
        if self.values.shape[:1] != self.t_s.shape:
            raise ValueError(
                f"TimeSeries.values has {self.values.shape[0] if self.values.ndim else 0} samples "
                f"but t_s has {self.t_s.size}; they must match along the first axis"
            )
        if self.kind not in ("continuous", "events"):
            raise ValueError(f"TimeSeries.kind must be 'continuous' or 'events', got {self.kind!r}")
        if not np.isfinite(self.t_s).all():
            raise ValueError(f"TimeSeries.t_s has {int((~np.isfinite(self.t_s)).sum())} NaN or infinite time(s); "
                             "drop those samples first")
        if self.t_s.size > 1 and np.any(np.diff(self.t_s) < 0):
            raise ValueError("TimeSeries.t_s must be non-decreasing (sorted by time); sort the samples by time first "
                             "(e.g. order = np.argsort(t_s, kind='stable'))")


@dataclass
class WeightTrace:
    """Synaptic weights over time (simulations with learning).

    Parameters
    ----------
    t_s : array_like, shape (n_times,)
        Sample times (s).
    values : array_like, shape (n_times, n_units)
        ``values[k, i]`` is unit i's weight (or input gain) at time ``t_s[k]``.
    description : str
        What the values are.
    """

    t_s: np.ndarray
    values: np.ndarray
    description: str = "input gain w_i of each unit"

    def __post_init__(self) -> None:
        self.t_s = np.asarray(self.t_s, dtype=float)
        self.values = np.asarray(self.values, dtype=float)
        if self.values.ndim != 2 or self.values.shape[0] != self.t_s.size:
            raise ValueError(
                f"WeightTrace.values must have shape (n_times, n_units) with n_times={self.t_s.size}, "
                f"got {self.values.shape}"
            )


@dataclass
class Recording:
    """Spikes, windows, trials and signals of one session, simulated or recorded.

    Parameters
    ----------
    units : DataFrame
        One row per unit, indexed by unit id (unique). Always has ``is_control`` (bool; given as
        True/False or 0/1, anything else is refused) and ``threshold`` (float, NaN if unknown);
        simulations add ``true_direct_effect`` / ``true_total_effect``. Other columns from a source
        file are kept. ``obs_intervals`` (optional; NWB's column of that name): per unit a float array of
        shape (k, 2), the [start, stop] seconds in which the unit was observed (isolated and recorded),
        shape (0, 2) when unknown; outside them a unit's missing spikes are unobserved, not silence.
    spike_times : list of ndarray, or dict of unit id to ndarray
        Sorted, finite spike times in seconds, one float array per unit, in the order of ``units``
        (a dict keyed by unit id, with one entry per unit, is put in that order). NaN and infinite
        times are refused: drop them first (``t[np.isfinite(t)]``).
    windows : DataFrame, optional
        One row per analysis window: ``start_s``, ``stop_s``, ``reward`` (+ any extra columns).
    drive : ndarray, shape (n_windows, n_units), optional
        Running variable Z (numbers): the maximum input drive of each unit in each window.
    spiked : ndarray of bool, shape (n_windows, n_units), optional
        Treatment H: whether each unit spiked in each window (bool, or 0/1 numbers).
    trials : DataFrame, optional
        ``start_s``, ``stop_s`` and task columns (``block``, ``success``, ``reward_time_s``, ...).
    series : dict of str to TimeSeries
        Named signals: ``decoder_output``, ``cursor``, ``reward`` (events), ...
    weights : WeightTrace, optional
        Weight trace of a simulation with learning, shape (n_times, n_units).
    meta : dict
        Provenance: ``source`` (``"simulation"`` or a file path), ``config``, ``seed``,
        ``versions``, ``session_start_time``, ``warnings`` ...
    epochs : DataFrame, optional
        Task blocks or other named periods of the session (NWB's ``/intervals/epochs``): ``start_s``,
        ``stop_s`` and ``tags`` (a list of names per row, e.g. ``["conditioning"]``) + any extra columns.
    """

    units: pd.DataFrame
    spike_times: list
    windows: pd.DataFrame | None = None
    drive: np.ndarray | None = None
    spiked: np.ndarray | None = None
    trials: pd.DataFrame | None = None
    series: dict = field(default_factory=dict)
    weights: WeightTrace | None = None
    meta: dict = field(default_factory=dict)
    epochs: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.units, pd.DataFrame):
            raise TypeError(
                f"Recording.units must be a pandas DataFrame, one row per unit indexed by unit id, got "
                f"{type(self.units).__name__}; build one with bci_credit.recording.make_units_table(n_units)"
            )
        self.units = self.units.copy()
        for col, default in (("is_control", False), ("threshold", np.nan)):
            if col not in self.units.columns:
                self.units[col] = default
        self.units["is_control"] = _bool_flags(self.units["is_control"], "Recording.units['is_control']",
                                               self.units.index)
        try:
            self.units["threshold"] = self.units["threshold"].astype(float)
        except (TypeError, ValueError):
            bad = _non_numbers(self.units["threshold"], self.units.index, "unit")
            raise ValueError(
                f"Recording.units['threshold'] must be numbers (NaN if unknown); not numbers: {bad}"
            ) from None
        self.spike_times = self._spike_trains(self.spike_times)
        for name in ("windows", "trials", "epochs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, pd.DataFrame):
                raise TypeError(f"Recording.{name} must be a pandas DataFrame or None, got {type(value).__name__}")
        for name in ("drive", "spiked"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, np.ndarray):
                if isinstance(value, (str, bytes, Mapping)):
                    raise TypeError(f"Recording.{name} must be an array of shape (n_windows, n_units), got "
                                    f"{type(value).__name__}")
                setattr(self, name, np.asarray(value))
        if self.series is None:
            self.series = {}
        if not isinstance(self.series, Mapping):
            raise TypeError(f"Recording.series must be a dict of name -> TimeSeries, got {type(self.series).__name__}")
        if self.weights is not None and not isinstance(self.weights, WeightTrace):
            raise TypeError(f"Recording.weights must be a WeightTrace or None, got {type(self.weights).__name__}")
        if self.meta is None:
            self.meta = {}
        if not isinstance(self.meta, dict):
            raise TypeError(f"Recording.meta must be a dict (source, seed, config, ...), got "
                            f"{type(self.meta).__name__}")
        self.validate()

    def _spike_trains(self, spike_times: Any) -> list:
        """``spike_times`` as a list of float arrays in the order of ``units`` (a dict is keyed by unit id)."""
        if isinstance(spike_times, (str, bytes)) or not hasattr(spike_times, "__iter__"):
            raise TypeError(f"Recording.spike_times must be a list of spike-time arrays, one per unit, got "
                            f"{type(spike_times).__name__}")
        if isinstance(spike_times, Mapping):  # keyed by unit id: put in the order of units
            ids = list(self.units.index)
            known = set(ids)
            missing = [u for u in ids if u not in spike_times]
            extra = [k for k in spike_times if k not in known] if not missing else []
            if missing or extra:
                what = (f"no spike times for unit(s) {missing[:10]}" if missing
                        else f"key(s) {extra[:10]} are not unit ids")
                raise ValueError(f"Recording.spike_times is a dict keyed by unit id but {what} (unit ids: "
                                 f"{ids[:10]}{' ...' if len(ids) > 10 else ''}); give one entry per unit")
            spike_times = [spike_times[u] for u in ids]
        trains = list(spike_times)
        out = []
        ids = self.units.index
        for k, s in enumerate(trains):
            uid = ids[k] if k < len(ids) else k
            if isinstance(s, (str, bytes)):
                raise TypeError(f"spike times of unit {uid!r} must be numbers (seconds), got text {s!r}")
            try:
                out.append(np.asarray(s, dtype=float))
            except (TypeError, ValueError) as err:
                raise ValueError(f"spike times of unit {uid!r} must be numbers (seconds): {err}") from None
        return out

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check that the parts fit together; raise ``ValueError`` naming what does not."""
        n = len(self.units)
        if len(self.spike_times) != n:
            raise ValueError(
                f"Recording has {n} units but {len(self.spike_times)} spike trains; give one per unit"
            )
        if not self.units.index.is_unique:
            dup = self.units.index[self.units.index.duplicated()].unique()
            raise ValueError(f"Recording.units index (unit ids) must be unique; repeated: {dup[:10].tolist()}")
        for uid, st in zip(self.units.index, self.spike_times):
            if st.ndim != 1:
                raise ValueError(f"spike times of unit {uid} must be 1-D")
            finite = np.isfinite(st)
            if not finite.all():
                n_nan = int(np.isnan(st).sum())
                n_inf = int(st.size - finite.sum()) - n_nan
                what = " and ".join(t for t in (f"{n_nan} NaN" if n_nan else "",
                                                f"{n_inf} infinite" if n_inf else "") if t)
                raise ValueError(
                    f"spike times of unit {uid!r} include {what} value(s); every spike time must be a finite "
                    f"number of seconds: drop them first, e.g. t = t[np.isfinite(t)]"
                )
            if st.size > 1 and np.any(np.diff(st) < 0):
                raise ValueError(f"spike times of unit {uid} are not sorted; sort them first")
        if self.windows is not None:
            missing = [c for c in WINDOW_COLUMNS if c not in self.windows.columns]
            if missing:
                raise ValueError(f"Recording.windows lacks column(s) {missing}")
            nw = len(self.windows)
            try:
                start = self.windows["start_s"].to_numpy(dtype=float)
                stop = self.windows["stop_s"].to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise ValueError("Recording.windows start_s/stop_s must be numbers (seconds)") from None
            try:
                self.windows["reward"].to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError):
                bad = _non_numbers(self.windows["reward"], self.windows.index, "row")
                raise ValueError(f"Recording.windows['reward'] must be numbers (NaN if none); not numbers: "
                                 f"{bad}") from None
            reversed_rows = np.flatnonzero(stop < start)  # NaN bounds (open intervals) are allowed
            if reversed_rows.size:
                rows = reversed_rows[:10].tolist()
                raise ValueError(
                    f"Recording.windows has {reversed_rows.size} window(s) with stop_s < start_s (rows {rows}"
                    f"{' ...' if reversed_rows.size > 10 else ''}; e.g. row {rows[0]}: start_s="
                    f"{start[rows[0]]:g}, stop_s={stop[rows[0]]:g}); every window needs start_s <= stop_s"
                )
            for name in ("drive", "spiked"):
                arr = getattr(self, name)
                if arr is None:
                    continue
                arr = np.asarray(arr)
                if arr.shape != (nw, n):
                    raise ValueError(
                        f"Recording.{name} must have shape (n_windows, n_units) = {(nw, n)}, got {arr.shape}"
                    )
                if name == "drive" and arr.dtype.kind not in "biuf":
                    raise ValueError(f"Recording.drive must hold numbers (the running variable Z), got dtype "
                                     f"{arr.dtype}; convert it, e.g. drive.astype(float)")
                if name == "spiked":
                    if arr.dtype.kind not in "biuf":
                        raise ValueError(f"Recording.spiked must hold True/False (or 0/1), got dtype {arr.dtype}")
                    if arr.dtype.kind != "b" and not np.isin(arr, (0, 1)).all():
                        bad = arr[~np.isin(arr, (0, 1))]
                        raise ValueError(
                            f"Recording.spiked must hold True/False (or 0/1): whether each unit spiked in each "
                            f"window; {bad.size} value(s) are neither (e.g. {bad.ravel()[0].item()!r}); give e.g. "
                            "counts > 0"
                        )
        elif self.drive is not None or self.spiked is not None:
            raise ValueError("Recording.drive/spiked need a windows table")
        if self.trials is not None:
            for c in ("start_s", "stop_s"):
                if c not in self.trials.columns:
                    raise ValueError(f"Recording.trials lacks column {c!r}")
        if self.epochs is not None:
            _check_epochs(self.epochs)
        for name, ts in self.series.items():
            if not isinstance(ts, TimeSeries):
                raise TypeError(f"Recording.series[{name!r}] must be a TimeSeries")
        if self.weights is not None:
            shape = self.weights.values.shape
            if shape[1] != n:
                raise ValueError(
                    f"Recording.weights has {shape[1]} column(s) but the recording has {n} unit(s); the weight "
                    f"trace must have shape (n_times, n_units), column i for unit i"
                )

    # ------------------------------------------------------------------ views
    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.units)

    @property
    def unit_ids(self) -> np.ndarray:
        """Unit ids, in the order of ``spike_times``."""
        return self.units.index.to_numpy()

    @property
    def n_spikes(self) -> np.ndarray:
        """Spike count of every unit."""
        return np.array([s.size for s in self.spike_times], dtype=int)

    @property
    def t_start_s(self) -> float:
        """Start of the recording: the earliest spike, window, trial or sample time."""
        return self._time_bounds()[0]

    @property
    def duration_s(self) -> float:
        """Duration of the recording in seconds (``meta['duration_s']`` when known)."""
        if "duration_s" in self.meta and self.meta["duration_s"] is not None:
            return float(self.meta["duration_s"])
        lo, hi = self._time_bounds()
        return float(hi - lo) if np.isfinite(hi - lo) else 0.0

    def behaviour_bounds(self) -> tuple[float, float]:
        """Earliest and latest time of everything but the spikes: windows, trials, epochs and series
        (``(inf, -inf)`` when the recording has none)."""
        lo, hi = np.inf, -np.inf
        for df in (self.windows, self.trials, self.epochs):
            if df is not None and len(df):
                a, b = df["start_s"].to_numpy(float), df["stop_s"].to_numpy(float)
                a, b = a[np.isfinite(a)], b[np.isfinite(b)]
                lo, hi = min(lo, a.min(initial=np.inf)), max(hi, b.max(initial=-np.inf))
        for ts in self.series.values():
            if ts.t_s.size:
                lo, hi = min(lo, ts.t_s[0]), max(hi, ts.t_s[-1])
        return float(lo), float(hi)

    def _time_bounds(self) -> tuple[float, float]:
        lo, hi = self.behaviour_bounds()
        for s in self.spike_times:
            if s.size:
                lo, hi = min(lo, s[0]), max(hi, s[-1])
        if not np.isfinite(lo):
            return 0.0, 0.0
        return float(lo), float(hi)

    @property
    def outcome_kind(self) -> str:
        """What ``windows["reward"]`` holds: ``"cost"`` when ``meta['reward_kind']`` says so (a task whose
        learning minimises a cost), else ``"reward"``."""
        return "cost" if self.meta.get("reward_kind") == "cost" else "reward"

    def rates_hz(self) -> np.ndarray:
        """Mean firing rate of every unit over the recording (NaN when the duration is 0)."""
        d = self.duration_s
        return self.n_spikes / d if d > 0 else np.full(self.n_units, np.nan)

    def control_units(self) -> np.ndarray:
        """Ids of the units flagged ``is_control``."""
        return self.units.index[self.units["is_control"].to_numpy(bool)].to_numpy()

    def unit_position(self, unit_id: Any) -> int:
        """Row position of ``unit_id``; a clear ``KeyError`` lists valid ids when it is absent.

        Parameters
        ----------
        unit_id : hashable
            A unit id (an index value of ``units``).

        Returns
        -------
        int
            Its row in ``units`` (and column in ``drive``/``spiked``).
        """
        try:
            return int(self.units.index.get_loc(unit_id))
        except KeyError:
            ids = list(self.units.index[:10])
            raise KeyError(f"unit {unit_id!r} is not in this recording (ids: {ids}{' ...' if self.n_units > 10 else ''})") from None

    def select_units(self, ids: Any) -> "Recording":
        """A new Recording restricted to the units ``ids``.

        Parameters
        ----------
        ids : list, array or hashable
            Unit ids (each once), or a single unit id.

        Returns
        -------
        Recording
            The units in the order of ``ids``; ``spike_times`` and the unit columns of ``drive``,
            ``spiked`` and the weight trace sliced to match (windows, trials, epochs and series kept).
        """
        if not pd.api.types.is_list_like(ids) or isinstance(ids, tuple) and ids in self.units.index:
            ids = [ids]  # one id (a tuple only when it is itself an id of a MultiIndex)
        ids = list(ids)
        pos = [self.unit_position(i) for i in ids]
        if len(set(pos)) != len(pos):
            seen: set = set()
            dup = [i for i, p in zip(ids, pos) if p in seen or seen.add(p)]
            raise ValueError(f"select_units got unit(s) {dup[:10]} more than once; give each unit id once")
        return dataclasses.replace(
            self,
            units=self.units.iloc[pos],
            spike_times=[self.spike_times[p] for p in pos],
            drive=None if self.drive is None else self.drive[:, pos],
            spiked=None if self.spiked is None else self.spiked[:, pos],
            weights=None
            if self.weights is None
            else WeightTrace(self.weights.t_s, self.weights.values[:, pos], self.weights.description),
        )

    def summary(self) -> str:
        """A few lines describing the recording."""
        lines = [
            f"Recording from {self.meta.get('source', 'unknown source')}",
            f"  units: {self.n_units} ({int(self.units['is_control'].sum())} control), "
            f"spikes: {int(self.n_spikes.sum())}, duration: {self.duration_s:.3f} s",
        ]
        if self.windows is not None:
            lines.append(
                f"  windows: {len(self.windows)}"
                + (" with drive Z" if self.drive is not None else "")
                + (" and spike indicator H" if self.spiked is not None else "")
            )
        if self.trials is not None:
            lines.append(f"  trials: {len(self.trials)}")
        if self.epochs is not None:
            names = list(dict.fromkeys(t for tags in self.epochs.get("tags", []) for t in tag_list(tags)))
            listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            lines.append(f"  epochs: {len(self.epochs)}" + (f" ({listed})" if names else ""))
        if self.series:
            lines.append("  series: " + ", ".join(sorted(self.series)))
        if self.weights is not None:
            lines.append(f"  weight trace: {self.weights.values.shape[0]} samples")
        if "seed" in self.meta:
            lines.append(f"  seed: {self.meta['seed']}")
        return "\n".join(lines)

    def __repr__(self) -> str:  # dataclass repr would print every array
        return f"<Recording: {self.n_units} units, {int(self.n_spikes.sum())} spikes, {self.duration_s:.3g} s>"

    # ------------------------------------------------------------------ comparison
    def equals(self, other: "Recording", *, check_meta: bool = False) -> bool:
        """True when ``other`` holds the same data (used by the NWB round-trip tests).

        Parameters
        ----------
        other : Recording
            The recording to compare with.
        check_meta : bool
            Also compare ``meta``.

        Returns
        -------
        bool
            True when :meth:`differences` is empty.
        """
        return not self.differences(other, check_meta=check_meta)

    def differences(self, other: "Recording", *, check_meta: bool = False) -> list[str]:
        """List what differs between two recordings.

        Parameters
        ----------
        other : Recording
            The recording to compare with.
        check_meta : bool
            Also compare ``meta``.

        Returns
        -------
        list of str
            One line per difference (empty when equal).
        """
        out: list[str] = []
        if list(self.units.index) != list(other.units.index):
            out.append("unit ids differ")
            return out
        for col in self.units.columns:
            if col not in other.units.columns:
                out.append(f"units column {col!r} missing")
            elif not _series_equal(self.units[col], other.units[col]):
                out.append(f"units column {col!r} differs")
        for uid, a, b in zip(self.units.index, self.spike_times, other.spike_times):
            if a.shape != b.shape or not np.array_equal(a, b):
                out.append(f"spike times of unit {uid} differ")
        out += _frame_diff("windows", self.windows, other.windows)
        out += _frame_diff("trials", self.trials, other.trials)
        out += _frame_diff("epochs", self.epochs, other.epochs)
        for name in ("drive", "spiked"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                out.append(f"{name} differs")
        if set(self.series) != set(other.series):
            out.append(f"series names differ: {sorted(self.series)} vs {sorted(other.series)}")
        else:
            for k, ts in self.series.items():
                o = other.series[k]
                if not (np.array_equal(ts.t_s, o.t_s) and np.array_equal(ts.values, o.values)):
                    out.append(f"series {k!r} differs")
        if (self.weights is None) != (other.weights is None):
            out.append("weight trace present in only one")
        elif self.weights is not None and not (
            np.array_equal(self.weights.t_s, other.weights.t_s)
            and np.array_equal(self.weights.values, other.weights.values)
        ):
            out.append("weight trace differs")
        if check_meta and self.meta != other.meta:
            out.append("meta differs")
        return out


def _is_flag(x: Any) -> bool:
    """True for True/False and the numbers 0 and 1 (not NaN, not text)."""
    if isinstance(x, (bool, np.bool_)):
        return True
    if isinstance(x, (int, float, np.integer, np.floating)):
        return x == 0 or x == 1
    return False


def _bool_flags(col: pd.Series, where: str, index: pd.Index) -> pd.Series:
    """``col`` as bool; only True/False and 0/1 are accepted (``astype(bool)`` would make 'no' True)."""
    if col.dtype == bool:
        return col
    values = col.to_numpy(dtype=object)
    ok = np.fromiter((_is_flag(x) for x in values), dtype=bool, count=values.size)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        shown = ", ".join(f"unit {index[i]!r}: {values[i]!r}" for i in bad[:5])
        raise ValueError(
            f"{where} must be True/False (or 0/1); {bad.size} value(s) are not ({shown}"
            f"{' ...' if bad.size > 5 else ''}); convert them first, e.g. units['is_control'] == 'yes'"
        )
    return col.astype(bool)


def _non_numbers(col: pd.Series, index: pd.Index, what: str, limit: int = 5) -> str:
    """A few ``row: value`` pairs of ``col`` that are not numbers, for an error message."""
    out = []
    for key, x in zip(index, col.to_numpy(dtype=object)):
        try:
            float(x)
        except (TypeError, ValueError):
            out.append(f"{what} {key!r}: {x!r}")
            if len(out) >= limit:
                out.append("...")
                break
    return ", ".join(out) or "(values of a non-numeric type)"


def _series_equal(a: pd.Series, b: pd.Series) -> bool:
    av, bv = a.to_numpy(), b.to_numpy()
    if av.dtype.kind in "fc" or bv.dtype.kind in "fc":
        try:
            return np.array_equal(av.astype(float), bv.astype(float), equal_nan=True)
        except (TypeError, ValueError):
            return False
    return [str(x) for x in av] == [str(x) for x in bv]


def tag_list(tags: Any) -> list[str]:
    """One epoch's ``tags`` cell as a list of names (a list, an array, or one name; missing -> [])."""
    if tags is None or isinstance(tags, float) and np.isnan(tags):
        return []
    if isinstance(tags, (str, bytes)):
        tags = [tags]
    return [t.decode() if isinstance(t, bytes) else str(t) for t in np.ravel(np.asarray(tags, dtype=object))
            if str(t) != ""]


def interval_pairs(cell: Any) -> np.ndarray:
    """One unit's ``obs_intervals`` cell as a float array of shape (k, 2) of [start, stop] seconds
    (None, NaN or empty -> shape (0, 2); one pair -> shape (1, 2)); ``ValueError`` for anything else."""
    if cell is None or isinstance(cell, float) and np.isnan(cell):
        return np.zeros((0, 2))
    try:
        arr = np.asarray(cell, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"not numbers ({err})") from None
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"shape {arr.shape}, not (k, 2)")
    return arr


def _check_epochs(epochs: pd.DataFrame) -> None:
    missing = [c for c in ("start_s", "stop_s") if c not in epochs.columns]
    if missing:
        raise ValueError(f"Recording.epochs lacks column(s) {missing}: give start_s and stop_s (seconds) per epoch")
    try:
        start = epochs["start_s"].to_numpy(dtype=float)
        stop = epochs["stop_s"].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError("Recording.epochs start_s/stop_s must be numbers (seconds)") from None
    reversed_rows = np.flatnonzero(stop < start)
    if reversed_rows.size:
        r = int(reversed_rows[0])
        raise ValueError(f"Recording.epochs has {reversed_rows.size} epoch(s) with stop_s < start_s (e.g. row {r}: "
                         f"start_s={start[r]:g}, stop_s={stop[r]:g}); every epoch needs start_s <= stop_s")


def _frame_diff(name: str, a: pd.DataFrame | None, b: pd.DataFrame | None) -> list[str]:
    if a is None and b is None:
        return []
    if (a is None) != (b is None):
        return [f"{name} present in only one"]
    if len(a) != len(b):
        return [f"{name} have {len(a)} vs {len(b)} rows"]
    out = []
    for col in a.columns:
        if col not in b.columns:
            out.append(f"{name} column {col!r} missing")
        elif not _series_equal(a[col].reset_index(drop=True), b[col].reset_index(drop=True)):
            out.append(f"{name} column {col!r} differs")
    return out


def make_units_table(n_units: int, *, control: Mapping[int, bool] | None = None, **columns) -> pd.DataFrame:
    """Build a units table with ids ``0..n_units-1`` and the standard columns.

    ``columns`` are extra per-unit arrays (``threshold=...``, ``true_direct_effect=...``).
    """
    df = pd.DataFrame(index=pd.RangeIndex(n_units, name="unit_id"))
    df["is_control"] = False
    if control:
        for k, v in control.items():
            df.loc[k, "is_control"] = bool(v)
    df["threshold"] = np.nan
    for k, v in columns.items():
        df[k] = np.broadcast_to(np.asarray(v), (n_units,)).copy()
    return df
