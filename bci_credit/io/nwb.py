"""NWB in and out: :func:`write` a Recording, :func:`read` any NWB file into one, :func:`inspect` a file.

Layout written by :func:`write`
-------------------------------
================================================  ==========================================================
``/units``                                         ``spike_times`` (+ ``spike_times_index``, ``resolution`` =
                                                   ``meta['dt_s']`` when <= 0.01 s), one column per column of
                                                   ``Recording.units`` (``is_control`` bool, ``threshold``,
                                                   ``true_direct_effect``/``true_total_effect`` for simulations,
                                                   any other). Integer unit ids are the NWB ids; other ids are
                                                   kept as text in ``unit_label``. A units column
                                                   ``obs_intervals`` ((k, 2) [start, stop] s per unit) is
                                                   written as NWB's ragged n x 2 ``obs_intervals`` column.
``/intervals/windows``                             one row per analysis window: ``start_time``, ``stop_time``,
                                                   ``reward``, extra columns, and the 2-D columns ``drive`` (Z)
                                                   and ``spiked`` (H), shape (n_windows, n_units), column j
                                                   belonging to row j of ``/units``. A simulated file can thus
                                                   be re-analysed with the true running variable.
``/intervals/trials``                              ``start_s`` -> ``start_time``, ``stop_s`` -> ``stop_time``,
                                                   ``X_time_s`` -> ``X_time`` (``reward_time``, NaN if none),
                                                   other columns as they are (bool, str, numbers, lists).
``/intervals/epochs``                              task blocks (one row per block of a BCI session): ``tags``
                                                   (the block's name, a list per row) and extra columns.
``/processing/behavior/BehavioralEvents/<name>``   series of kind ``"events"`` (e.g. ``reward``): timestamps +
                                                   amounts (read back from here; an EventsTable in another
                                                   lab's file is read too, see below).
``/processing/behavior/BehavioralTimeSeries/<n>``  continuous series (``decoder_output``, ``cursor``); a regular
                                                   clock is stored as ``starting_time`` + ``rate`` when that
                                                   reproduces the times exactly, else as ``timestamps``.
``/processing/misc/weights``                       the weight trace (TimeSeries, n_times x n_units).
``/processing/misc/bci_decoder``                   decoder parameters (one row) when ``meta['decoder']`` is a dict.
``/processing/misc/bci_credit_meta``               key/value table: ``key`` a JSON pointer (``/meta/config/...``,
                                                   ``/layout/...``), ``value`` JSON. Holds ``Recording.meta``
                                                   (config, seed, versions, dt_s, source, ...) and the layout
                                                   (original column names and dtypes), so a read gives back
                                                   the same Recording.
``/general/subject``, ``experimenter`` ...         from ``meta['subject']``, ``meta['experimenter']``, ...; for
                                                   simulations a documented simulated macaque subject.
================================================  ==========================================================

``Recording.meta`` goes through JSON: tuples and arrays come back as lists, NaN/inf as None, other
objects as their ``str``; keys become text (``meta[5]`` comes back as ``meta['5']``), and two keys
with the same text (``5`` and ``'5'``) are refused by :func:`write`. Non-integer unit ids are kept
as text, so ids with the same text (``'1'`` and ``1``) are refused by :func:`write` too. Text cells
that were missing (None/NaN) are written as empty strings.

A series with more channels than samples (which NWB tools flag as wrongly oriented) is stored as a
table ``/processing/misc/series_<name>`` (columns ``timestamp``, ``data``) instead; the weight trace in
that case as the table ``/processing/misc/weights``.

Reading other files
-------------------
:func:`read` and :func:`inspect` use h5py directly on the NWB 2 layout, never ``pynwb.validate``, and
open files read-only. Real-world cases handled (each with a warning in ``meta['warnings']`` /
``summary['warnings']`` and a :class:`NWBReadWarning`):

* no ``/units``: a Units-typed table elsewhere (e.g. ``processing/ecephys``) is read; without any,
  a TimeSeries of binned spike counts (named like ``spike_counts``, ``binned_spikes``,
  ``ThresholdCrossings``; n_bins x n_units whole numbers, as in DANDI 000404) becomes units whose spike
  times are *approximate*: the ``c`` spikes of a bin starting at ``t`` with width ``w`` are placed at
  ``t + (j + 0.5) w / c`` (``meta['spike_times_approximate'] = True``, ``meta['bin_width_s']``); without
  either, a Recording with 0 units (but a file written by bci_credit that has lost its ``/units``
  while its weight trace names units is refused with :class:`NWBFormatError`);
* unsorted spike times are sorted, NaN and infinite spike times dropped; units with 0 or 1 spikes are kept;
* NaN ``start_time``/``stop_time`` are kept as NaN; event columns that look relative to the trial start
  are reported; ``X_time`` columns become ``X_time_s``; analysis windows with ``stop_time < start_time``
  are refused (:class:`NWBFormatError` naming the rows), as are repeated unit ids;
* missing ``resolution`` (``meta['resolution_s'] = None``) or ``obs_intervals`` is fine; a Units table's
  ``obs_intervals`` become the units column ``obs_intervals``: per unit a float array of shape (k, 2), the
  [start, stop] seconds in which the unit was observed (shape (0, 2) when its entry is empty); the column
  is absent when the file has none. :func:`inspect` gives each such unit's rate over its observed time
  (``observed_s``, the time its intervals cover) instead of the whole duration;
* spike times reaching far beyond the span of the file's trials, intervals, time series and events
  (margin 1 s or 1 %) are reported by :func:`read` and :func:`inspect` alike; when the spikes span more
  than 100 times the behaviour, the warning says they may be in milliseconds (divide by 1000). :func:`read`
  always puts the facts in ``meta``: ``spike_span_s`` (first to last spike, None without spikes),
  ``behaviour_span_s`` (first to last time of the trials, intervals, series and events, None without
  them) and ``spike_time_scale_suspect`` (True in the millisecond case); ``analyze`` refuses such
  spike times by its own test on the recording, which covers recordings built in Python too;
* timezone-less or anonymised (1900) session dates are kept and reported;
* TimeSeries stored (channels, time) are transposed; mismatched timestamps are cut to the data;
  NaN or infinite timestamps are dropped with their samples, timestamps out of order are sorted
  (with the samples), and NaN samples are counted in a warning;
* large or image series (raw acquisition) are not loaded unless named in ``series=``;
* the epochs table (``/intervals/epochs``, task blocks named by their ``tags``) becomes
  ``Recording.epochs`` (``tags`` a list of names per row; the ``timeseries`` column is not read), which
  ``analyze --blocks NAME`` cuts by;
* pynwb 4 EventsTables (``/events/<name>``, or typed ``EventsTable`` elsewhere; not in pynwb 3 files)
  become ``Recording.series[<name>]`` of kind ``"events"``: times from the ``timestamp`` column (sorted, NaN
  times dropped with a note), values from the table's one amount column (a number or bool column named
  ``value``, ``amount``, ``volume``, ``size``, ``reward*``, ``*_ml``, ...) when it has exactly one, else
  ones; ``duration`` and other columns are not kept. A note says what was taken; a name already used by a
  time series becomes ``events/<name>`` (noted). ``series=False`` skips them, a list of names selects them;
* other tables (electrodes, ...) are listed by :func:`inspect` (rows and columns) but not loaded into the
  Recording, which has no place for them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..recording import Recording
from ._nwb_layout import NWBFormatError, NWBReadWarning, Notes
from ._nwb_read import MAX_SERIES_ELEMENTS

__all__ = ["write", "read", "inspect", "format_summary", "NWBFormatError", "NWBReadWarning"]


def write(recording: Recording, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write a Recording to an NWB file (atomically: a temp file renamed onto ``path``).

    Parameters
    ----------
    recording : Recording
        What to write. ``meta`` supplies the session facts: ``source`` (``"simulation"`` gives a
        simulated subject), ``session_start_time`` (timezone-aware; naive is taken as UTC, missing is
        now), ``subject`` (dict), ``experimenter``, ``institution``, ``dt_s`` (spike-time resolution),
        ``decoder`` (dict, also stored as ``processing/misc/bci_decoder``).
    path : path-like
        Output file (``.nwb``). Parent folders are created.
    overwrite : bool, default True
        If False, an existing ``path`` raises ``FileExistsError``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        The recording is inconsistent (:meth:`Recording.validate`), two unit ids are the same as
        text (``'1'`` and ``1``), or two keys of ``meta`` are (``5`` and ``'5'``): the file would
        not read back as written. Nothing is written then.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> from bci_credit.io import nwb                      # doctest: +SKIP
    >>> nwb.write(recording, "out/session.nwb")            # doctest: +SKIP
    >>> nwb.read("out/session.nwb").equals(recording)      # doctest: +SKIP
    True
    """
    from ._nwb_write import write as _write

    return _write(recording, path, overwrite=overwrite)


def _run(source: Any, fn, **kwargs):
    from ._nwb_h5 import _short, open_source

    with open_source(source) as (f, label):
        try:
            return fn(f, label, **kwargs)
        except NWBFormatError as err:
            if str(err).startswith(label):
                raise
            raise NWBFormatError(f"{label}: {err}") from err
        except FileNotFoundError:
            raise
        except Exception as err:
            if isinstance(err, OSError) or _raised_in_h5py(err):  # h5py errors deep inside a damaged file
                hint = "the file may be truncated or corrupt"
            else:  # the HDF5 objects read fine; their content is not what the NWB layout should hold
                hint = "the file is readable HDF5 but its NWB content is not laid out as expected"
            raise NWBFormatError(f"{label}: reading failed ({type(err).__name__}: {_short(err)}); {hint}") from err


def _raised_in_h5py(err: BaseException) -> bool:
    """True when ``err`` was raised inside h5py (a low-level read failure, not a content problem)."""
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    name = last.tb_frame.f_globals.get("__name__", "")
    return name == "h5py" or name.startswith("h5py.")


def read(source: str | os.PathLike | Any, *, units_path: str | None = None,
         series: bool | Sequence[str] = True, max_series_elements: int = MAX_SERIES_ELEMENTS,
         control_units: Sequence | None = None, warn: bool = True) -> Recording:
    """Read an NWB file into a :class:`~bci_credit.recording.Recording`.

    Files written by :func:`write` come back exactly (``Recording.equals``). Other files are read
    by their NWB layout (see the module docstring for the edge cases handled).

    Parameters
    ----------
    source : path, h5py.File or binary file-like object
        The file. An open ``h5py.File`` or file object (e.g. from ``remfile``/``fsspec``) is used as
        it is and left open.
    units_path : str, optional
        Take the units from this table or binned-count TimeSeries (e.g.
        ``"processing/ecephys/units"``) instead of searching.
    series : bool or list of str, default True
        Which time series to load: True = those in ``/processing`` and ``/acquisition`` up to
        ``max_series_elements`` values each; False = none; a list of names or paths = exactly these.
    max_series_elements : int
        Size limit for automatic series loading (raw voltage traces are skipped).
    control_units : sequence, optional
        Unit ids to flag ``is_control`` (real files rarely say which unit drove the BCI).
    warn : bool, default True
        Emit each reading note as a :class:`NWBReadWarning` (they are always in ``meta['warnings']``).

    Returns
    -------
    Recording
        With ``meta['source']``, ``meta['nwb_path']``, ``meta['session_start_time']``,
        ``meta['duration_s']`` (span of everything timed in the file), ``meta['spike_span_s']``,
        ``meta['behaviour_span_s']``, ``meta['spike_time_scale_suspect']`` (see the module docstring) and
        ``meta['warnings']``.

    Raises
    ------
    FileNotFoundError
        No such file.
    NWBFormatError
        Not HDF5, not NWB 2, truncated or corrupt (one clear line).
    """
    from ._nwb_read import read_recording

    notes = Notes()
    rec = _run(source, read_recording, units_path=units_path, series=series,
               max_series_elements=max_series_elements, notes=notes)
    if control_units is not None:
        missing = [u for u in control_units if u not in rec.units.index]
        if missing:
            raise KeyError(f"control unit(s) {missing} are not in the file (unit ids: {list(rec.units.index[:10])}"
                           f"{' ...' if rec.n_units > 10 else ''})")
        rec.units["is_control"] = rec.units.index.isin(list(control_units))
    if warn:
        notes.emit(stacklevel=3)
    return rec


def inspect(source: str | os.PathLike | Any, *, units_path: str | None = None) -> dict[str, Any]:
    """Summarise an NWB file without loading it: units, spike counts, rates, trials, series, intervals.

    Parameters
    ----------
    source : path, h5py.File or binary file-like object
        The file (an object passed in is left open).
    units_path : str, optional
        As in :func:`read`.

    Returns
    -------
    dict
        JSON-ready. Keys include ``n_units``, ``n_spikes``, ``duration_s`` (span of all times in the file),
        ``n_trials``, ``units`` (list of ``{"id", "n_spikes", "rate_hz", ...}``, rate = n_spikes /
        duration_s, or n_spikes / observed_s for a unit with ``obs_intervals``, ``observed_s`` being the time
        they cover; None for a unit without), ``has_obs_intervals``, ``units_source`` (``table``/``binned``/``none``), ``units_path``, ``intervals``,
        ``time_series``, ``tables``, ``processing``, ``subject``, ``session_start_time`` and ``warnings``.
    """
    from ._nwb_inspect import summarize

    return _run(source, summarize, units_path=units_path, notes=Notes())


def format_summary(summary: dict[str, Any], max_units: int = 20) -> str:
    """Readable text for a summary returned by :func:`inspect`.

    Parameters
    ----------
    summary : dict
        The summary.
    max_units : int
        Units listed one per line (the rest are counted).

    Returns
    -------
    str
        The text.
    """
    from ._nwb_inspect import format_summary as _fmt

    return _fmt(summary, max_units=max_units)
