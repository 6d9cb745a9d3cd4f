"""Data preparation for the causal designs: per-window tables from a Recording, and design checks.

Private helpers of :mod:`bci_credit.analysis.causal`. A Recording from a simulation carries a
windows table with drive Z, spike indicator H and reward; a Recording read from a real NWB file
usually has only spike times, trials and time series. :func:`window_data` turns either into the
same per-window arrays (spike counts, spike indicator, reward, drive when known), and
:func:`design_requirements` says which designs the recording can support and why not.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..recording import Recording, TimeSeries, interval_pairs, tag_list

logger = logging.getLogger("bci_credit")

#: Designs of :mod:`bci_credit.analysis.causal`, by CLI name.
DESIGNS = ("spike", "reward-threshold", "fuzzy", "naive")

#: Default window for recordings without a windows table (s).
DEFAULT_WINDOW_S = 0.05

#: Spike times within this tolerance (s) of a window edge count for the window that starts there
#: (spike times written as ``step * dt_s`` differ from ``k * window_s`` by rounding only).
EDGE_TOL_S = 1e-9
#: A continuous series is unobserved where its last sample is more than this many (median) sampling
#: intervals old: a hole in its timestamps (dropped frames of one or two intervals are not holes).
HOLE_INTERVALS = 5

#: Names tried, in order, for the decoder output series.
DECODER_NAMES = ("decoder_output", "decoder", "control_signal", "bci_output")

#: Keys of ``meta['decoder']`` (in NWB ``processing/misc/bci_decoder``) tried, in order, for the reward
#: threshold; ``theta_hz`` is what :mod:`bci_credit.tasks.bci` (and so ``bci-credit predict``) writes.
DECODER_THRESHOLD_KEYS = ("threshold", "reward_threshold", "theta", "theta_hz")


class DesignUnavailable(ValueError):
    """The recording lacks what a design needs.

    The message names what is missing and which designs can run instead; the attributes carry the
    same facts for programs.

    Attributes
    ----------
    design : str
        The design asked for.
    missing : str
        What the recording lacks.
    alternatives : list of str
        Designs that can run on this recording.
    """

    def __init__(self, design: str, missing: str, alternatives: Sequence[str] = (), source: str | None = None):
        self.design = design
        self.missing = missing
        self.alternatives = list(alternatives)
        self.source = source
        alt = (f"designs that can run on it: {', '.join(self.alternatives)}" if self.alternatives
               else "no design can run on it")
        where = f"{source}: " if source else ""
        if design == "auto":  # ``missing`` says what each design lacks
            super().__init__(f"{where}no design can run on this recording: {missing}")
        else:
            super().__init__(f"{where}the {design!r} design needs {missing}; {alt}")

    @classmethod
    def for_all(cls, requirements: Mapping[str, str | None], source: str | None = None) -> "DesignUnavailable":
        """The error of ``design='auto'`` when no design can run: what each one lacks."""
        missing = "; ".join(f"{d!r} needs {why}" for d, why in requirements.items() if why is not None)
        return cls("auto", missing, [], source)


@dataclass
class WindowData:
    """Per-window arrays shared by the designs (``n_windows`` rows, ``n_units`` columns).

    Attributes
    ----------
    start_s, stop_s : ndarray (n_windows,)
        Window bounds in seconds.
    reward : ndarray (n_windows,) or None
        Outcome per window (None when the recording has no reward signal).
    reward_source : str
        Where ``reward`` came from (``"windows['reward']"``, ``"series 'reward' (events, summed)"``, ...).
    counts : ndarray of int (n_windows, n_units) or None
        Spikes of each unit in each window (None without spike times).
    spiked : ndarray of bool (n_windows, n_units) or None
        Treatment H (the recording's own ``spiked`` when present, else ``counts > 0``).
    drive : ndarray (n_windows, n_units) or None
        Running variable Z when the recording has it.
    unit_ids : ndarray
        Unit ids, column order.
    window_s : float
        Median window length.
    from_recording : bool
        True when the windows are the recording's own table.
    notes : list of str
        What was assumed while building the arrays.
    laid : slice or None
        For laid windows, the part of the grid of :func:`make_windows` that is kept (see
        :func:`window_data`); None for the recording's own windows.
    n_laid : int
        Length of that grid (``n_windows`` for the recording's own windows).
    observed : ndarray of bool (n_windows, n_units) or None
        Whether each unit was observed (sorted) over each whole window, from the units'
        ``obs_intervals``; None when the recording has none (every unit observed throughout).
        Counts of a unit in windows where it was not observed are 0 but mean "unknown".
    """

    start_s: np.ndarray
    stop_s: np.ndarray
    reward: np.ndarray | None
    reward_source: str
    counts: np.ndarray | None
    spiked: np.ndarray | None
    drive: np.ndarray | None
    unit_ids: np.ndarray
    window_s: float
    from_recording: bool
    notes: list = field(default_factory=list)
    laid: slice | None = None
    n_laid: int = 0
    observed: np.ndarray | None = None

    @property
    def n_windows(self) -> int:
        return int(self.start_s.size)


# ----------------------------------------------------------------------------- spikes per window
def count_spikes(spike_times: Sequence[np.ndarray], start_s: np.ndarray, stop_s: np.ndarray) -> np.ndarray:
    """Spike counts per window and unit, shape (n_windows, n_units); windows are ``[start, stop)``."""
    lo = np.asarray(start_s, dtype=float) - EDGE_TOL_S
    hi = np.asarray(stop_s, dtype=float) - EDGE_TOL_S
    out = np.zeros((lo.size, len(spike_times)), dtype=np.int64)
    for j, st in enumerate(spike_times):
        if st.size:
            out[:, j] = np.searchsorted(st, hi, side="left") - np.searchsorted(st, lo, side="left")
    return out


def has_spikes(rec: Recording) -> bool:
    """True when the recording has at least one unit with at least one spike."""
    return rec.n_units > 0 and int(rec.n_spikes.sum()) > 0


# ----------------------------------------------------------------------------- reward signals
def series_per_window(ts: TimeSeries, start_s: np.ndarray, stop_s: np.ndarray, *, channel: int = 0) -> np.ndarray:
    """A time series summarised per window.

    Events (``kind="events"``): the sum of the event values (amounts) in ``[start, stop)``; events
    without a numeric value count 1. Continuous signals: the last sample at or before ``stop``;
    NaN before the first sample, for windows that end more than one sampling interval (the median)
    after the last sample, and for windows that end more than :data:`HOLE_INTERVALS` sampling
    intervals after the sample before them (a hole in the timestamps): where the signal was not
    observed, it is not held at its last value.
    """
    vals = np.asarray(ts.values)
    if vals.ndim > 1:
        vals = vals[:, channel]
    t = ts.t_s
    if ts.kind == "events":
        try:
            amount = vals.astype(float)
        except (TypeError, ValueError):
            amount = np.ones(t.size)
        amount = np.where(np.isfinite(amount), amount, 1.0) if amount.size else amount
        csum = np.concatenate([[0.0], np.cumsum(amount)])
        i0 = np.searchsorted(t, np.asarray(start_s) - EDGE_TOL_S, side="left")
        i1 = np.searchsorted(t, np.asarray(stop_s) - EDGE_TOL_S, side="left")
        return csum[i1] - csum[i0]
    vals = vals.astype(float)
    stop = np.asarray(stop_s)
    idx = np.searchsorted(t, stop + EDGE_TOL_S, side="right") - 1
    out = np.full(idx.size, np.nan)
    ok = idx >= 0
    if t.size:
        ok &= stop <= observed_until(ts) + EDGE_TOL_S
        if t.size > 1:  # inside a hole in the timestamps the signal was not observed either
            ok &= stop - t[np.maximum(idx, 0)] <= HOLE_INTERVALS * float(np.median(np.diff(t))) + EDGE_TOL_S
    out[ok] = vals[idx[ok]]
    return out


def observed_until(ts: TimeSeries) -> float:
    """The end of a continuous series' observation: its last sample plus one (median) sampling interval."""
    t = ts.t_s
    return float(t[-1]) + (max(float(np.median(np.diff(t))), 0.0) if t.size > 1 else 0.0)


def event_times_from_trials(rec: Recording, column: str = "reward_time_s", *,
                            relative: bool = False) -> tuple[np.ndarray | None, str | None]:
    """Event times (session seconds, sorted) from a trials column, and why not when it cannot hold them.

    ``relative``: the column holds times from each trial's start, which is added to them.

    A row's value is one time or a list of times (NaN = no event). Times of a trial's events lie
    inside the trial: from its ``start_s`` to its ``stop_s`` or the next trial's start, whichever is
    later, plus half the median trial length (the last trial: open-ended). A column where fewer than
    90 % of the values do is not taken for event times (``(None, why)``): it holds True/False,
    amounts, codes or durations, or times relative to each trial's start (the why says which).
    ``(None, None)``: no such column.
    """
    column = _trials_column(rec, column)
    if column is None:
        return None, None
    tr = rec.trials
    col = tr[column]
    where = f"trials[{column!r}]" + (" + the trial's start_s" if relative else "")
    fix = "name a column of event times in session seconds (e.g. reward_time) with reward=NAME (--reward NAME)"
    cells = col.to_numpy(dtype=object)
    if pd.api.types.is_bool_dtype(col) or any(isinstance(v, (bool, np.bool_)) for v in cells):
        return None, f"{where} holds True/False, not event times; {fix}"
    times, row = [], []
    for i, v in enumerate(cells):
        parts = np.ravel(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]
        for x in parts:
            try:
                x = float(x)
            except (TypeError, ValueError):
                return None, f"{where} holds values that are not numbers (e.g. {x!r}), not event times; {fix}"
            if np.isfinite(x):
                t0 = float(tr["start_s"].iloc[i]) if relative else 0.0
                if np.isfinite(t0):  # relative: a trial without a start gives no session time (counted by the caller)
                    times.append(x + t0)
                    row.append(i)
    t = np.asarray(times, dtype=float)
    if not t.size:
        return t, None
    start = tr["start_s"].to_numpy(float)
    stop = tr["stop_s"].to_numpy(float)
    order = np.argsort(start, kind="stable")
    nxt = np.full(start.size, np.inf)
    nxt[order[:-1]] = start[order[1:]]
    end = np.fmax(np.where(np.isfinite(stop), stop, -np.inf), nxt)
    dur = stop - start
    if np.isfinite(dur).any():  # an event logged just after its trial, when the next one starts at once
        end = end + 0.5 * float(np.nanmedian(dur))
    rows = np.asarray(row)
    inside = (t >= start[rows] - EDGE_TOL_S) & (t <= end[rows] + EDGE_TOL_S)
    inside |= ~np.isfinite(start[rows])  # a trial without a start cannot be checked
    if inside.mean() >= 0.9:
        return np.sort(t), None
    longest = float(np.nanmax(dur)) if np.isfinite(dur).any() else np.inf
    if t.min() >= 0 and t.max() <= longest + EDGE_TOL_S and np.nanmedian(start) > t.max():
        what = (f"they look like amounts, durations or times relative to each trial's start (all within {t.min():g}-"
                f"{t.max():g} s, trials up to {longest:g} s long, starting up to {np.nanmax(start):g} s); if they "
                f"are times from the trial's start, name the outcome relative:{column} (the trials' start_s is "
                "added)")
    else:
        what = f"e.g. amounts, codes or durations (values {', '.join(f'{x:g}' for x in t[:3])}, ...)"
    return None, (f"{where} does not hold event times: only {int(inside.sum())} of {t.size} values lie inside their "
                  f"trial; {what}; {fix}")


def _trials_column(rec: Recording, name: str) -> str | None:
    """The trials column ``name``, or ``name_s`` (the file's ``X_time`` is the reader's ``X_time_s``);
    None when the recording has neither."""
    if rec.trials is None:
        return None
    return next((c for c in (name, f"{name}_s") if c in rec.trials.columns), None)


def _n_times(cell: Any) -> int:
    """Finite numbers in one trials cell (a number or a list)."""
    try:
        vals = np.asarray(cell if isinstance(cell, (list, tuple, np.ndarray)) else [cell], dtype=float)
    except (TypeError, ValueError):
        return 0
    return int(np.isfinite(vals).sum())


def _no_events(rec: Recording, column: str) -> str:
    name = _trials_column(rec, column)
    return (f"trials[{name!r}] has no event time in any of the {len(rec.trials)} trials (all NaN: no trial was "
            "rewarded?); name another outcome with reward=NAME (--reward NAME)")


def reward_event_series(rec: Recording) -> str | None:
    """The recording's reward events series: ``reward`` when it holds events, else the one events
    series named like reward deliveries (``rewards``, ``reward_events``, ``reward_delivery``,
    ``juice_reward`` ...; a pynwb 4 EventsTable such as ``reward_events``); None when there is none,
    or several."""
    if "reward" in rec.series:
        return "reward" if rec.series["reward"].kind == "events" else None
    named = [k for k, ts in rec.series.items() if ts.kind == "events" and _REWARD_EVENTS.fullmatch(str(k).strip())]
    return named[0] if len(named) == 1 else None


#: Names of a series of reward deliveries (not e.g. ``reward_cue``, ``unrewarded``, ``reward_omission``).
_REWARD_EVENTS = re.compile(r"(?i)(juice_|water_)?rewards?([ _-]?(events?|deliver(y|ies)|times?|given|ttl))?")


def reward_candidates(rec: Recording) -> list[str]:
    """Names a ``reward=`` argument can take on this recording (windows columns, series, trials columns
    of event times)."""
    names = []
    if rec.windows is not None:
        names += [f"windows:{c}" for c in rec.windows.columns if c not in ("start_s", "stop_s")]
    names += [f"series:{k}" for k in rec.series]
    if rec.trials is not None:
        for c in rec.trials.columns:
            if str(c).endswith("_time_s"):
                ev, why = event_times_from_trials(rec, c)
                if why is None and ev is not None and ev.size:
                    names.append(f"trials:{c}")
    return names


def resolve_reward(rec: Recording, start_s: np.ndarray, stop_s: np.ndarray, reward: str | None,
                   use_windows: bool) -> tuple[np.ndarray | None, str]:
    """The outcome per window and where it came from; ``(None, why)`` when there is none.

    ``reward`` may be a windows column, a series name, a trials column of event times
    (``reward_time_s``), or ``kind:name`` with kind in ``windows``, ``series``, ``trials``, or
    ``events`` (a series read as events, its samples summed per window, whatever its stored kind),
    or ``relative`` (a trials column of times from each trial's start, to which it is added). The
    default tries ``windows['reward']``, then a series ``reward``, then the one events series whose
    name contains "reward" (if there is exactly one), then trials ``reward_time_s``.
    """
    if reward is not None:
        kind, _, name = reward.partition(":") if ":" in reward else ("", "", reward)
        if kind and kind not in ("windows", "series", "events", "trials", "relative"):
            raise ValueError(f"reward={reward!r}: write NAME or windows:NAME, series:NAME, events:NAME, trials:NAME, "
                             "relative:NAME")
        if kind == "relative":  # a trials column of times from each trial's start
            ev, why = event_times_from_trials(rec, name, relative=True)
            if ev is None and why is None:
                raise ValueError(f"reward={reward!r}: no trials column {name!r}")
            if why and event_times_from_trials(rec, name)[1] is None:
                why = (f"trials[{name!r}] holds session times already (they lie inside their trials): name it "
                       f"without relative:, as {name}")
            if why or not ev.size:
                raise ValueError(f"reward={reward!r}: {why or _no_events(rec, name)}")
            cells = rec.trials[_trials_column(rec, name)].to_numpy(dtype=object)
            no_start = sum(_n_times(v) for v, s0 in zip(cells, rec.trials["start_s"].to_numpy(float))
                           if not np.isfinite(s0))
            ts = TimeSeries(ev, np.ones(ev.size), kind="events")
            return series_per_window(ts, start_s, stop_s), (
                f"trials[{name!r}] + the trial's start_s (reward events counted per window"
                + (f"; {int(no_start)} event(s) of trials without a start_s left out" if no_start else "") + ")")
        name, channel = _channel(name)
        if channel is not None and name not in rec.series:
            raise ValueError(f"reward={reward!r}: a channel [k] is read from a series; series: "
                             f"{', '.join(rec.series) or 'none'}")
        if kind == "events":  # a series whose samples are deliveries (amounts), whatever the file said
            if name not in rec.series:
                raise ValueError(f"reward={reward!r}: no series {name!r}; series: {', '.join(rec.series) or 'none'}")
            return _series_outcome(rec, name, start_s, stop_s, channel=channel, as_events=True)
        if channel is None and kind in ("", "windows") and use_windows and rec.windows is not None \
                and name in rec.windows.columns:
            return pd.to_numeric(rec.windows[name], errors="coerce").to_numpy(float), f"windows[{name!r}]"
        if kind == "windows" and not use_windows and rec.windows is not None and name in rec.windows.columns:
            raise ValueError(f"reward={reward!r}: a column of the windows table is read per window as it is; it cannot "
                             "be shifted by a reward lag or re-windowed: name a series or trials column instead")
        if kind in ("", "series") and name in rec.series:
            return _series_outcome(rec, name, start_s, stop_s, channel=channel)
        if kind in ("", "trials"):
            ev, why = event_times_from_trials(rec, name)
            if why or (ev is not None and not ev.size):
                raise ValueError(f"reward={reward!r}: {why or _no_events(rec, name)}")
            if ev is not None:
                ts = TimeSeries(ev, np.ones(ev.size), kind="events")
                return series_per_window(ts, start_s, stop_s), f"trials[{name!r}] (reward events counted per window)"
        raise ValueError(f"reward={reward!r} is not in this recording; candidates: {reward_candidates(rec) or 'none'}")
    if use_windows and rec.windows is not None and "reward" in rec.windows.columns:
        y = pd.to_numeric(rec.windows["reward"], errors="coerce").to_numpy(float)
        if y.size and not np.isfinite(y).any():
            return None, ("the windows table's 'reward' column is missing or has no finite value; name the "
                          "outcome with reward=NAME (--reward NAME on the command line); candidates: "
                          f"{[c for c in reward_candidates(rec) if c != 'windows:reward'] or 'none'}")
        return y, "windows['reward']"
    if "reward" in rec.series:
        return _series_outcome(rec, "reward", start_s, stop_s)
    named = reward_event_series(rec)
    if named is not None:  # e.g. a pynwb 4 EventsTable 'reward_events'
        y, src = _series_outcome(rec, named, start_s, stop_s)
        return y, src + (" (the recording's one reward event series)" if y is not None else "")
    ev, why = event_times_from_trials(rec, "reward_time_s")
    if why or (ev is not None and not ev.size):
        return None, why or _no_events(rec, "reward_time_s")
    if ev is not None and ev.size:
        ts = TimeSeries(ev, np.ones(ev.size), kind="events")
        return series_per_window(ts, start_s, stop_s), "trials['reward_time_s'] (reward events counted per window)"
    return None, ("no reward signal (no windows 'reward' column, no 'reward' series, no trials 'reward_time_s'; "
                  "name the outcome with reward=NAME, --reward NAME on the command line; candidates: "
                  f"{', '.join(reward_candidates(rec)) or 'none'})")


def is_event_channel(ts: TimeSeries) -> bool:
    """True for a series stored as continuous whose samples all hold the same non-zero number at
    irregular times (fewer than 90 % of its gaps within 1 % of the median gap, as a clock's are):
    one sample per delivery (a TTL or pump channel written as a plain TimeSeries). Held between
    samples, it would be a constant outcome; its samples are events. (A signal on a regular clock,
    or held at 0, stays continuous.)"""
    vals = np.asarray(ts.values)
    if ts.kind == "events" or vals.ndim != 1 or vals.size < 2 or vals.dtype.kind not in "biuf":
        return False
    vals = vals.astype(float)
    if not (np.isfinite(vals).all() and np.ptp(vals) == 0 and vals[0] != 0):
        return False
    dt = np.diff(ts.t_s)
    med = max(float(np.median(dt)), EDGE_TOL_S)
    return bool(np.mean(np.abs(dt - med) <= 0.01 * med) < 0.9)  # a clock (even with dropped frames) has equal gaps


def _channel(name: str) -> tuple[str, int | None]:
    """``"NAME[k]"`` -> ``("NAME", k)``; a name without a channel -> ``(name, None)``."""
    m = re.fullmatch(r"(.+)\[(\d+)\]", name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


def _series_outcome(rec: Recording, name: str, start_s: np.ndarray, stop_s: np.ndarray, *,
                    channel: int | None = None, as_events: bool = False) -> tuple[np.ndarray | None, str]:
    """A series (one channel of it) as the outcome per window; ``(None, why)`` when it has no finite
    value in any window. ``as_events``: its samples are deliveries, summed per window."""
    ts = rec.series[name]
    n_ch = 1 if np.asarray(ts.values).ndim < 2 else np.asarray(ts.values).shape[1]
    if channel is not None and not 0 <= channel < n_ch:
        raise ValueError(f"reward: series {name!r} has {n_ch} channel(s); name one as {name}[0] ... {name}[{n_ch - 1}]")
    ch = 0 if channel is None else channel
    label = f"series {name!r}" + (f" channel {ch} of {n_ch}" if n_ch > 1 else "")
    if n_ch > 1:
        ts = dataclasses.replace(ts, values=np.asarray(ts.values)[:, ch])
    how = "events, summed per window" if ts.kind == "events" else "last sample in each window"
    if as_events:
        ts = dataclasses.replace(ts, kind="events")
        how = "read as events: amounts summed per window"
    elif is_event_channel(ts):
        ts = dataclasses.replace(ts, kind="events")
        how = (f"a plain series with the same value ({float(ts.values[0]):g}) at every sample, read as events: "
               "summed per window")
    if n_ch > 1 and channel is None:
        how += f"; name another channel as {name}[k]"
    y = series_per_window(ts, start_s, stop_s)
    if y.size and not np.isfinite(y).any():
        others = [c for c in reward_candidates(rec) if c != f"series:{name}"]
        return None, (f"series {name!r} has no finite value in any window (NaN throughout, or outside the windows); "
                      "name another outcome with reward=NAME (--reward NAME); candidates: "
                      f"{', '.join(others) or 'none'}")
    return y, f"{label} ({how})"


# ----------------------------------------------------------------------------- windows
def make_windows(rec: Recording, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous windows of ``window_s`` seconds over the recording's time span, on the grid of whole
    multiples of ``window_s`` from time 0 (the session's reference time, to which an online BCI's
    bins are aligned), not from the first spike or sample."""
    if not (np.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
    lo = rec.t_start_s
    hi = lo + rec.duration_s
    k0 = math.floor(lo / window_s + 1e-9)
    n = int(math.floor(hi / window_s + 1e-9)) - k0
    if n < 1:
        raise ValueError(f"the recording spans {hi - lo:.3g} s, shorter than one window of {window_s:g} s")
    start = window_s * np.arange(k0, k0 + n)
    return start, start + window_s


def finite_number(value: Any, what: str) -> float:
    """``value`` as a float; ``ValueError("<what> must be a finite number..., got <value>")`` otherwise."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = np.nan
    if not np.isfinite(out):
        raise ValueError(f"{what}, got {value!r}")
    return out


def check_reward_lag(reward_lag_s: Any) -> float:
    """``reward_lag_s`` as a float; a clear error when it is not a finite number of seconds."""
    return finite_number(reward_lag_s, "reward_lag_s (--reward-lag) must be a finite number of seconds")


def check_time_scales(rec: Recording, factor: float = 100.0) -> None:
    """Refuse a recording whose spike times span ``factor`` times the behaviour (windows, trials,
    epochs, series) or more: spike times in milliseconds, over which laid windows would be mostly
    empty. (The reader's warning, ``meta['spike_time_scale_suspect']``, is the same test with a
    margin; behaviour much longer than the spikes is normal, e.g. units sorted for part of it.)
    """
    trains = [st for st in rec.spike_times if st.size]
    if not trains:
        return
    s_lo, s_hi = min(st[0] for st in trains), max(st[-1] for st in trains)
    lo, hi = rec.behaviour_bounds()
    if not (np.isfinite(lo) and hi > lo and s_hi > s_lo):
        return
    ratio = (s_hi - s_lo) / (hi - lo)
    spans = f"spike times span {s_lo:g}-{s_hi:g} s, the behaviour (windows, trials, epochs, series) {lo:g}-{hi:g} s"
    if ratio >= factor:
        raise ValueError(f"{spans}, {ratio:.0f} times longer: are the spike times in milliseconds? Give them in "
                         "seconds (divide by 1000), or check the file's units")


def window_data(rec: Recording, *, window_s: float | None = None, reward: str | None = None,
                reward_lag_s: float = 0.0) -> WindowData:
    """Per-window arrays of a recording (its own windows table, or windows of ``window_s`` seconds).

    The recording's windows table (and its drive Z and spike indicator H) is used when it exists
    and ``window_s`` is None; otherwise contiguous windows of ``window_s`` (default
    :data:`DEFAULT_WINDOW_S`) are laid over the recording, H is ``counts > 0``, and only the laid
    windows where both the outcome and the spikes were observed are kept (:func:`_observed_span`;
    what is left out is said in ``notes``).

    With ``reward_lag_s`` (seconds), each window's outcome is taken over the window shifted by the
    lag, ``[start + lag, stop + lag)``: reward delivered that long after the spikes that earned it
    (pump or processing latency) falls in their window. It applies to outcomes from series and
    trials; a windows table's own outcome column cannot be shifted and is not used.
    """
    notes: list[str] = []
    check_time_scales(rec)
    lag = check_reward_lag(reward_lag_s)
    use_own = rec.windows is not None and window_s is None
    if use_own:
        start = rec.windows["start_s"].to_numpy(float)
        stop = rec.windows["stop_s"].to_numpy(float)
        drive = None if rec.drive is None else np.asarray(rec.drive, dtype=float)
        own_spiked = None if rec.spiked is None else np.asarray(rec.spiked, dtype=bool)
    else:
        ws = DEFAULT_WINDOW_S if window_s is None else float(window_s)
        start, stop = make_windows(rec, ws)
        drive = own_spiked = None
        notes.append(f"windows: {start.size} contiguous windows of {ws:g} s laid over the recording, "
                     f"{start[0]:g}-{stop[-1]:g} s (on whole multiples of {ws:g} s from time 0)")
    y, src = resolve_reward(rec, start + lag, stop + lag, reward, use_windows=use_own and not lag)
    if lag and y is not None:
        src += f", lagged by {lag:g} s"
        notes.append(f"outcome: each window's outcome is taken {lag:g} s later, over [start + {lag:g}, stop + {lag:g}) s")
        # outcome windows shifted beyond the recording were not observed
        t0 = rec.t_start_s
        t1 = t0 + rec.duration_s
        beyond = (start + lag < t0 - EDGE_TOL_S) | (stop + lag > t1 + EDGE_TOL_S)
        if beyond.all():
            raise ValueError(f"reward_lag_s = {lag:g} s moves every window's outcome outside the recording "
                             f"({t0:g}-{t1:g} s); give a lag shorter than the recording, e.g. the reward latency "
                             "(tens of ms)")
        if beyond.any():
            y = np.where(beyond, np.nan, y)
            notes.append(f"outcome: the {int(beyond.sum())} windows whose lagged outcome falls outside the recording "
                         f"({t0:g}-{t1:g} s) are left out")
        if lag < 0:
            notes.append("outcome: a negative lag takes the outcome before the spikes (a placebo check: no unit should "
                         "have an effect)")
    n_laid, keep = start.size, None
    if not use_own and y is not None:
        keep = _observed_span(rec, start, stop, y, src, notes)
        if lag:
            ok = np.flatnonzero(np.isfinite(y[keep]))
            keep = slice(keep.start + int(ok[0]), keep.start + int(ok[-1]) + 1) if ok.size else slice(0, 0)
        start, stop, y = start[keep], stop[keep], y[keep]
        if y.size and not np.isfinite(y).all():
            notes.append(f"outcome: {src} has no value in {int((~np.isfinite(y)).sum())} of the {y.size} windows (a "
                         "hole in its timestamps, or NaN samples); those windows are left out")
    elif use_own and y is not None and (src.startswith("series") or lag) and not np.isfinite(y).all():
        notes.append(f"outcome: {src} has no value in {int((~np.isfinite(y)).sum())} of the {y.size} windows (outside "
                     "the series' span or NaN there); those windows are left out")
    counts = count_spikes(rec.spike_times, start, stop) if has_spikes(rec) else None
    if own_spiked is not None:
        spiked = own_spiked
    else:
        spiked = None if counts is None else counts > 0
    widths = stop - start
    observed = observed_windows(rec, start, stop)
    if observed is not None and not observed.all():
        part = [(u, observed[:, j].mean()) for j, u in enumerate(rec.unit_ids) if not observed[:, j].all()]
        listed = ", ".join(f"unit {u}: {100 * f:.0f}%" for u, f in part[:6]) + (", ..." if len(part) > 6 else "")
        notes.append(f"obs_intervals: {len(part)} unit(s) were not observed over all the windows ({listed} of the "
                     "windows); a unit's windows outside its intervals are left out of its own estimates")
    return WindowData(start_s=start, stop_s=stop, reward=y, reward_source=src, counts=counts, spiked=spiked,
                      drive=drive, unit_ids=rec.unit_ids, window_s=float(np.median(widths)) if widths.size else np.nan,
                      from_recording=use_own, notes=notes, laid=keep, n_laid=n_laid, observed=observed)


def observed_windows(rec: Recording, start_s: np.ndarray, stop_s: np.ndarray) -> np.ndarray | None:
    """Whether each unit was observed over each whole window, from ``units['obs_intervals']`` (per
    unit an (k, 2) array of [start, stop] seconds; an empty or missing entry: observed throughout).
    None when the units table has no ``obs_intervals`` column."""
    if "obs_intervals" not in rec.units.columns:
        return None
    out = np.ones((start_s.size, rec.n_units), dtype=bool)
    for j, iv in enumerate(rec.units["obs_intervals"].to_numpy(dtype=object)):
        try:
            iv = interval_pairs(iv)
        except ValueError:
            continue  # not [start, stop] pairs: the reader and writer refuse these; treat as observed
        iv = iv[np.all(np.isfinite(iv), axis=1)]
        if iv.size:
            out[:, j] = np.any((start_s[:, None] >= iv[None, :, 0] - EDGE_TOL_S)
                               & (stop_s[:, None] <= iv[None, :, 1] + EDGE_TOL_S), axis=1)
    return out


def block_spans(rec: Recording) -> tuple[dict[str, list[tuple[float, float]]], str]:
    """The recording's named task blocks as time spans, and the table they come from.

    From the epochs table (NWB's ``/intervals/epochs``: each of a row's ``tags``, and its ``block``
    column if it has one, names the row's span) or, without named epochs, from the trials table's
    ``block`` column (each run of consecutive trials of one block spans its first start to its last
    stop). ``({}, "")`` when the recording has neither.
    """
    spans: dict[str, list[tuple[float, float]]] = {}

    def add(name: Any, a: float, b: float) -> None:
        name = str(name)
        if name not in ("", "nan", "None") and np.isfinite(a) and np.isfinite(b):
            spans.setdefault(name, []).append((float(a), float(b)))

    ep = rec.epochs
    if ep is not None and len(ep):
        for i in range(len(ep)):
            a, b = float(ep["start_s"].iloc[i]), float(ep["stop_s"].iloc[i])
            for name in (tag_list(ep["tags"].iloc[i]) if "tags" in ep.columns else []):
                add(name, a, b)
            if "block" in ep.columns:
                add(ep["block"].iloc[i], a, b)
        if spans:
            return spans, "epochs"
    tr = rec.trials
    if tr is not None and "block" in tr.columns and len(tr):
        tr = tr.sort_values("start_s", kind="stable")
        labels = tr["block"].astype(str).to_numpy()
        start, stop = tr["start_s"].to_numpy(float), tr["stop_s"].to_numpy(float)
        edges = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, labels.size]):
            bounds = np.r_[start[lo:hi], stop[lo:hi]]
            if np.isfinite(bounds).any():
                add(labels[lo], np.nanmin(bounds), np.nanmax(bounds))
        if spans:
            return spans, "trials"
    return {}, ""


def select_blocks(rec: Recording, blocks: str | Sequence[str], *, window_s: float | None = None,
                  reward: str | None = None, reward_lag_s: float = 0.0) -> tuple[Recording, str, bool]:
    """The recording cut to the windows of the named task blocks; returns it, a note saying what was
    kept, and whether its windows' ``reward`` column is the outcome already resolved (laid windows:
    ``reward`` and ``reward_lag_s`` are applied here, and the designs read that column).

    The blocks come from the windows table's ``block`` column when it has one (BCI sessions and
    the NWB files bci_credit writes): its rows, and the drive Z and spike indicator H of those rows,
    are kept. Otherwise from the spans of :func:`block_spans` (an epochs table with tags, or the
    trials' ``block`` column, as recordings from other labs have them): the recording's own windows
    that lie inside the spans are kept, or, without a windows table (or with ``window_s``), windows
    of ``window_s`` seconds laid as :func:`window_data` lays them, those inside the spans, with the
    outcome ``reward`` per window. Spikes and series stay whole (the windows decide what is
    analysed). A simulation's ``true_*`` unit columns average over the whole session, not over the
    kept blocks, so they are left out rather than compared with the block's estimates.

    Raises
    ------
    ValueError
        No blocks in the recording, no block named, a name the recording does not have (the message
        lists the recording's blocks), a window length with a windows ``block`` column, or no outcome.
    """

    if isinstance(blocks, str):
        blocks = blocks.split(",") if "," in blocks else [blocks]  # "a,b" as on the command line
    elif not isinstance(blocks, Sequence):
        blocks = [blocks]
    names = [str(b) for b in blocks]
    own_blocks = rec.windows is not None and "block" in rec.windows.columns
    if own_blocks:
        labels = rec.windows["block"].astype(str)
        have = [b for b in dict.fromkeys(labels) if b not in ("", "nan", "None")]
        source = "the windows table's block column"
    else:
        spans, source = block_spans(rec)
        have = list(spans)
        source = {"epochs": "the epochs table", "trials": "the trials table's block column"}.get(source, "")
        if not have:
            raise ValueError("blocks: this recording names no task blocks (no 'block' column in its windows or trials, "
                             "no epochs table with tags); analyse it whole, or add an epochs table naming the blocks")
    # a name matches its block exactly, else ignoring case and surrounding spaces when that is unambiguous
    folded = {}
    for b in have:
        folded.setdefault(b.strip().casefold(), []).append(b)
    names = [b if b in have or len(folded.get(b.strip().casefold(), [])) != 1 else folded[b.strip().casefold()][0]
             for b in names]
    unknown = [b for b in names if b not in have]
    if not names or unknown:
        raise ValueError(f"blocks: {', '.join(map(repr, unknown)) if unknown else 'none given'}; this recording's "
                         f"blocks are {', '.join(map(repr, have))} (from {source})")
    truth = [c for c in rec.units.columns if str(c).startswith("true_")]
    extra = ""
    laid = False
    if own_blocks:
        if window_s is not None:
            raise ValueError("blocks: the blocks are cut from the recording's own windows; give no window length "
                             "(window_s / --window) with them")
        keep = labels.isin(names).to_numpy()
    else:
        def block_of(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
            """The named block each window lies inside ("" for none)."""
            block = np.full(start.size, "", dtype=object)
            for name in names:
                for a, b in spans[name]:
                    block[(start >= a - EDGE_TOL_S) & (stop <= b + EDGE_TOL_S) & (block == "")] = name
            return block.astype(str)

        if rec.windows is not None and window_s is None:
            block = block_of(rec.windows["start_s"].to_numpy(float), rec.windows["stop_s"].to_numpy(float))
            keep = block != ""
        else:
            wd = window_data(rec, window_s=window_s, reward=reward, reward_lag_s=reward_lag_s)
            if wd.reward is None:
                raise ValueError(f"blocks: {wd.reward_source}")
            block = block_of(wd.start_s, wd.stop_s)
            keep = block != ""
            kept = pd.DataFrame({"start_s": wd.start_s[keep], "stop_s": wd.stop_s[keep], "reward": wd.reward[keep]})
            drive = spiked = None
            laid = True
            what = f"windows of {wd.window_s:g} s laid over the recording"
            extra = f"; outcome: {wd.reward_source}" + "".join(
                f"; {n}" for n in wd.notes if not n.startswith(("windows:", "obs_intervals:")))
    if not laid:  # the recording's own windows, with their drive Z and spike indicator H
        kept = rec.windows.loc[keep].reset_index(drop=True)
        drive = None if rec.drive is None else np.asarray(rec.drive)[keep]
        spiked = None if rec.spiked is None else np.asarray(rec.spiked)[keep]
        what = "windows"
    if not own_blocks:
        kept["block"] = block[keep]
    if not len(kept):
        raise ValueError(f"blocks: no analysis window lies inside block(s) {', '.join(names)} (from {source}); check "
                         "the blocks' times against the recording's")
    start, stop = kept["start_s"].to_numpy(float), kept["stop_s"].to_numpy(float)
    gaps = int(np.sum(~np.isclose(start[1:], stop[:-1]))) if start.size > 1 else 0
    cut = dataclasses.replace(rec, windows=kept, drive=drive, spiked=spiked, units=rec.units.drop(columns=truth))
    n_of = "" if laid else f" of {keep.size}"
    note = (f"blocks: {int(keep.sum())}{n_of} {what} analysed, those of block(s) {', '.join(names)} (from {source})"
            + extra
            + ("; the simulation's true effects average over the whole session, so they are left out" if truth
               else "")
            + (f"; the kept windows have {gaps} gap(s) in time, which the fuzzy design's lagged proxy features "
               f"cross" if gaps else ""))
    if "reward" in kept.columns and kept["reward"].nunique(dropna=True) <= 1:
        note += "; the windows' reward is constant in these blocks (none delivered?): there is no effect to estimate"
    return cut, note, laid


def _behaviour_span(rec: Recording, y: np.ndarray, start: np.ndarray, stop: np.ndarray,
                    events: bool) -> tuple[tuple[float, float] | None, str]:
    """Where the outcome was observed (seconds), judged from the recording's data other than spikes,
    and what that judgement rests on.

    A continuous outcome (``"outcome"``): from its first to its last finite window. An outcome of
    events (reward times, absent where nothing happened): the span of the trials and epochs tables
    and of the continuous series (``"behaviour"``), or, when the recording has none of them, of the
    events themselves (``"events"``).
    """
    if not events:
        finite = np.flatnonzero(np.isfinite(y))
        return ((float(start[finite[0]]), float(stop[finite[-1]])) if finite.size else None), "outcome"
    spans = []
    for table in (rec.trials, rec.epochs):  # the task's trials and blocks span the session's behaviour
        if table is not None and len(table):
            a, b = table["start_s"].to_numpy(float), table["stop_s"].to_numpy(float)
            if np.isfinite(a).any() and np.isfinite(b).any():
                spans.append((float(np.nanmin(a)), float(np.nanmax(b))))
    for ts in rec.series.values():
        if ts.kind == "continuous" and ts.t_s.size and not is_event_channel(ts):
            spans.append((float(ts.t_s[0]), observed_until(ts)))
    if spans:
        return (min(s[0] for s in spans), max(s[1] for s in spans)), "behaviour"
    hit = np.flatnonzero(y > 0)
    return ((float(start[hit[0]]), float(stop[hit[-1]])) if hit.size else None), "events"


def _observed_span(rec: Recording, start: np.ndarray, stop: np.ndarray, y: np.ndarray, src: str,
                   notes: list) -> slice:
    """The laid windows where both the outcome and the spikes were observed, with notes on what is left out.

    Windows are laid from the first to the last time of anything in the recording, so a stray spike
    time far from the rest, or an outcome series longer than the spike trains, would stretch them
    over stretches where nothing was observed. Kept: the windows inside the outcome's observed span
    (:func:`_behaviour_span`): all of a continuous outcome's; for reward events, the span of the
    trials and continuous series when more than 1 % of the windows lie outside it, or, with nothing
    but the events to go by, their first-to-last span only when most windows lie outside it (a first
    reward some way into a session is normal; a stray spike an hour later is not). Then the windows
    inside the span of all spike times (when more than 1 % lie outside: a short silent edge is
    normal). Spike times beyond the outcome's span are counted in a note.
    """
    n = start.size
    events = "events" in src  # resolve_reward's description of an outcome of events
    lo, hi = 0, n
    span, basis = _behaviour_span(rec, y, start, stop, events)
    if span is not None:
        b_lo = int(np.searchsorted(stop, span[0] + EDGE_TOL_S, side="right"))  # windows ending by its start
        b_hi = int(np.searchsorted(start, span[1] - EDGE_TOL_S, side="left"))  # windows starting before its end
        outside = n - (b_hi - b_lo)
        limit = {"outcome": 0, "behaviour": max(1, 0.01 * n), "events": b_hi - b_lo}[basis]
        if b_hi > b_lo and outside > limit:
            notes.append(f"outcome: {src} is observed from {start[b_lo]:g} to {stop[b_hi - 1]:g} s only (windows were "
                         f"laid over {start[0]:g}-{stop[-1]:g} s); the {outside} windows outside are left out")
            lo, hi = b_lo, b_hi
        elif basis == "events":
            span = None  # the events' own span was not used: no note on spikes beyond it
    trains = [st for st in rec.spike_times if st.size]
    if trains and hi > lo:
        first, last = min(st[0] for st in trains), max(st[-1] for st in trains)
        # windows wholly before the first or after the last spike of any unit (count_spikes' edge rule)
        s_lo = max(lo, int(np.searchsorted(stop, first + EDGE_TOL_S, side="right")))
        s_hi = min(hi, int(np.searchsorted(start, last + EDGE_TOL_S, side="right")))
        if s_hi > s_lo and (s_lo - lo) + (hi - s_hi) > max(1, 0.01 * (hi - lo)):  # a short silent edge is normal
            edges = ([f"before {start[s_lo]:g} s"] if s_lo > lo else []) + ([f"after {stop[s_hi - 1]:g} s"]
                                                                            if s_hi < hi else [])
            notes.append(f"spikes: no unit spikes {' or '.join(edges)}; the {(s_lo - lo) + (hi - s_hi)} windows of "
                         "outcome there are left out")
            lo, hi = s_lo, s_hi
    if span is not None and hi > lo:  # spikes outside the kept windows: strays, or a longer recording
        a, b = start[lo] - EDGE_TOL_S, stop[hi - 1] - EDGE_TOL_S  # count_spikes' edge rule
        outside = {str(u): int((st < a).sum() + (st >= b).sum()) for u, st in zip(rec.unit_ids, rec.spike_times)}
        outside = {u: k for u, k in outside.items() if k}
        width = float(np.median(stop - start))  # a spike within a window of the edge is normal
        if outside and (min(st[0] for st in trains) < a - width or max(st[-1] for st in trains) >= b + width):
            listed = ", ".join(f"unit {u}: {k}" for u, k in list(outside.items())[:5])
            notes.append(f"spikes: {sum(outside.values())} spike time(s) of {len(outside)} unit(s) lie outside the "
                         f"analysed windows, {start[lo]:g}-{stop[hi - 1]:g} s (the outcome was observed over "
                         f"{span[0]:g}-{span[1]:g} s), and are not used ({listed}{', ...' if len(outside) > 5 else ''}"
                         "); check them if the spikes should not extend beyond the behaviour")
    return slice(lo, hi)


# ----------------------------------------------------------------------------- decoder
def find_decoder(rec: Recording, name: str | None = None) -> str | None:
    """Name of the decoder-output series (``name`` if given and present)."""
    if name is not None:
        return name if name in rec.series else None
    for cand in DECODER_NAMES:
        if cand in rec.series and rec.series[cand].kind == "continuous":
            return cand
    return None


def decoder_threshold(rec: Recording, threshold: float | None = None) -> float | None:
    """The reward threshold of the decoder: the argument, else the first finite value of
    ``meta['decoder'][key]`` for key in :data:`DECODER_THRESHOLD_KEYS` (``theta_hz`` is the key this
    package's BCI task writes)."""
    if threshold is not None:
        return finite_number(threshold, "threshold must be a finite number (the decoder's reward threshold)")
    dec = rec.meta.get("decoder") if isinstance(rec.meta, Mapping) else None
    if isinstance(dec, Mapping):
        for key in DECODER_THRESHOLD_KEYS:
            v = dec.get(key)
            if v is not None:
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    continue
                if np.isfinite(v):
                    return v
    return None


# ----------------------------------------------------------------------------- requirements
def design_requirements(rec: Recording, *, reward: str | None = None, decoder: str | None = None,
                        threshold: float | None = None) -> dict[str, str | None]:
    """For every design, None when the recording supports it, else what it lacks (one phrase)."""
    spikes = has_spikes(rec)
    has_windows = rec.windows is not None
    try:
        if has_windows:
            y, why = resolve_reward(rec, rec.windows["start_s"].to_numpy(float),
                                    rec.windows["stop_s"].to_numpy(float), reward, use_windows=True)
        else:
            start, stop = make_windows(rec, DEFAULT_WINDOW_S)
            y, why = resolve_reward(rec, start, stop, reward, use_windows=False)
    except ValueError as err:
        y, why = None, str(err)
    no_reward = None if y is not None else f"a reward signal ({why})"
    out: dict[str, str | None] = {}
    # spike-discontinuity RD
    if rec.n_units == 0:
        out["spike"] = ("units (the recording has 0 units: no Units table and no binned spike counts, e.g. "
                        "no /units in the NWB file)")
    elif rec.drive is None or not has_windows:
        out["spike"] = ("the per-window drive Z of each unit (Recording.drive; in NWB the 'drive' column of "
                        "/intervals/windows, stored by simulations and intracellular recordings)")
    else:
        out["spike"] = no_reward
    # reward-threshold RD
    dec = find_decoder(rec, decoder)
    if dec is None:
        where = f"a series named {decoder!r}" if decoder else f"a continuous series named one of {list(DECODER_NAMES)}"
        out["reward-threshold"] = f"the decoder output ({where}; in NWB processing/behavior/BehavioralTimeSeries)"
    elif decoder_threshold(rec, threshold) is None:
        out["reward-threshold"] = ("the decoder's reward threshold (meta['decoder'] key "
                                   f"{' / '.join(DECODER_THRESHOLD_KEYS)}, in NWB processing/misc/bci_decoder; "
                                   "or give it: --threshold VALUE on the command line, threshold= in Python)")
    elif not spikes:
        out["reward-threshold"] = "spike times (the outcome is each unit's change in firing)"
    else:
        out["reward-threshold"] = None
    # fuzzy RD and naive comparison
    if not spikes and rec.spiked is None:
        out["fuzzy"] = "spike times (no units or no spikes in the recording)"
        out["naive"] = "spike times (no units or no spikes in the recording)"
    else:
        out["fuzzy"] = no_reward if spikes else "spike times (the drive proxy is fitted to spike counts)"
        if out["fuzzy"] is None and rec.n_units < 2:
            out["fuzzy"] = "at least two units (the drive proxy of a unit is fitted to the other units' activity)"
        out["naive"] = no_reward
    return out


def check_design(rec: Recording, design: str, *, source: str | None = None, **kw) -> None:
    """Raise :class:`DesignUnavailable` when ``rec`` cannot support ``design``."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
    req = design_requirements(rec, **kw)
    if req[design] is not None:
        alternatives = [d for d in DESIGNS if d != design and req[d] is None]
        if source is None:
            src = rec.meta.get("nwb_path") or rec.meta.get("source")
            source = str(src) if src and src != "simulation" else None
        raise DesignUnavailable(design, req[design], alternatives, source=source)


# ----------------------------------------------------------------------------- thresholds
def unit_thresholds(rec: Recording, threshold: Any = None) -> np.ndarray:
    """Per-unit spike threshold: ``threshold`` (number, sequence, or mapping unit -> value) or the
    units table's ``threshold`` column (NaN where unknown)."""
    n = rec.n_units
    if threshold is None:
        return rec.units["threshold"].to_numpy(dtype=float).copy()
    if isinstance(threshold, Mapping):
        base = rec.units["threshold"].to_numpy(dtype=float).copy()
        for uid, v in threshold.items():
            base[rec.unit_position(uid)] = float(v)
        return base
    arr = np.asarray(threshold, dtype=float)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"threshold must be one number, one per unit ({n}) or a mapping unit -> value; "
                         f"got shape {arr.shape}")
    return arr.copy()


# ----------------------------------------------------------------------------- density test
_DENSITY_NOTE = "density test unavailable (bci_credit.analysis.density not installed)"


def density_pvalues(x: np.ndarray, cutoffs: np.ndarray, labels: Sequence) -> tuple[np.ndarray, list[str]]:
    """Manipulation-test p-value of the running variable at the cutoff, per column of ``x``.

    Uses :class:`bci_credit.analysis.density.RDDensity` (Cattaneo-Jansson-Ma local-polynomial
    density test); a column that cannot be tested gets NaN and a note, and the batch goes on.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    out = np.full(x.shape[1], np.nan)
    notes: list[str] = []
    try:
        from .density import RDDensity
    except ImportError:
        return out, [_DENSITY_NOTE]
    for j in range(x.shape[1]):
        col = x[:, j]
        col = col[np.isfinite(col)]
        try:
            with np.errstate(all="ignore"):
                res = RDDensity(col, cutoff=float(cutoffs[j])).fit()
            out[j] = float(_density_p(res))
        except Exception as err:  # a batch never crashes on one unit
            notes.append(f"unit {labels[j]}: density test failed ({type(err).__name__}: {err})")
    return out, notes


def _density_p(res) -> float:
    for name in ("pvalue", "p_value", "pv", "pvalues"):
        v = getattr(res, name, None)
        if v is not None:
            v = np.asarray(v, dtype=float).ravel()
            return float(v[-1] if v.size > 1 else v[0])
    raise AttributeError("density results have no p-value attribute")
