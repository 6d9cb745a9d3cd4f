"""Builders of NWB files for the NWB reader/writer tests (each test writes its own files in tmp_path).

The real-world shapes imitated here are described in reference/bci_nwb.md §B.6-B.7: MatNWB/DANDI files
with units outside /units, binned counts instead of spikes (DANDI 000404), unsorted spikes, NaN
interval ends, timezone-less dates, MC_Maze-like units with electrodes and obs_intervals.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from bci_credit.recording import Recording, TimeSeries, WeightTrace, make_units_table

START = dt.datetime(2023, 5, 1, 10, 30, tzinfo=dt.timezone.utc)


def sim_recording(seed: int = 0, n_units: int = 6, n_windows: int = 120) -> Recording:
    """A simulation-like Recording with every part filled and awkward values (0/1-spike units, bools,
    strings, int32, a ragged trial column, a regular clock, an event series, a weight trace)."""
    rng = np.random.default_rng(seed)
    units = make_units_table(n_units, control={0: True}, threshold=1.0,
                             true_direct_effect=rng.normal(size=n_units), true_total_effect=rng.normal(size=n_units))
    units["area"] = [f"M1-{i % 2}" for i in range(n_units)]
    units["depth_um"] = np.arange(n_units, dtype=np.int32) * 100
    counts = [40, 0, 1] + list(rng.integers(5, 300, size=n_units - 3))
    spikes = [np.sort(rng.uniform(0, 12.0, size=k)) for k in counts]
    dt_s = 0.001
    windows = pd.DataFrame({
        "start_s": np.arange(n_windows) * 0.1,
        "stop_s": np.arange(n_windows) * 0.1 + 0.1,
        "reward": rng.normal(size=n_windows),
        "trial": np.arange(n_windows) // 10,
    })
    drive = rng.normal(size=(n_windows, n_units))
    spiked = drive > 1.0
    n_trials = 4
    trials = pd.DataFrame({
        "start_s": np.arange(n_trials) * 3.0,
        "stop_s": np.arange(n_trials) * 3.0 + 2.5,
        "block": ["baseline", "conditioning", "conditioning", "extinction"],
        "success": [True, False, True, False],
        "reward_time_s": [2.4, np.nan, 8.4, np.nan],
        "target": np.array([1, 2, 1, 2], dtype=np.int16),
        "reward_times": [[2.4, 2.45], [], [8.4], []],
    })
    t = np.arange(1200) * 0.01  # a 100 Hz clock
    series = {
        "decoder_output": TimeSeries(t, rng.normal(size=t.size), "a.u.", "filtered rate of the control unit"),
        "cursor": TimeSeries(t, rng.normal(size=(t.size, 2)), "m", "cursor position (x, y)"),
        "reward": TimeSeries([2.4, 8.4], [1.0, 0.5], "ml", "juice reward", kind="events"),
    }
    weights = WeightTrace(np.arange(4) * 3.0, rng.normal(size=(4, n_units)))
    meta = {
        "source": "simulation",
        "seed": seed,
        "dt_s": dt_s,
        "session_start_time": START.isoformat(),
        "config": {"population": {"n_units": n_units, "tau_m_s": 0.02}, "odd/key~": [1, 2, 3], "empty": {}},
        "decoder": {"control_unit_id": 0, "gain": 2.5, "filter": "exponential", "taps": [0.5, 0.25]},
    }
    epochs = pd.DataFrame({"start_s": [0.0, 3.0, 9.0], "stop_s": [3.0, 9.0, 12.0],
                           "tags": [["baseline"], ["conditioning", "rewarded"], []], "gain": [0.0, 2.5, 0.0]})
    return Recording(units, spikes, windows, drive, spiked, trials, series, weights, meta, epochs=epochs)


def _nwbfile(**kwargs):
    from pynwb import NWBFile
    from pynwb.file import Subject

    return NWBFile(session_description="test file", identifier="test-" + str(kwargs.pop("ident", "0")),
                   session_start_time=START, subject=Subject(subject_id="m1", species="Macaca mulatta", sex="M",
                                                              age="P5Y"), **kwargs)


def _save(nwbfile, path: Path) -> Path:
    import warnings

    from pynwb import NWBHDF5IO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwbfile)
    return path


def _add_trials(nwbfile, starts, stops) -> None:
    for a, b in zip(starts, stops):
        nwbfile.add_trial(start_time=float(a), stop_time=float(b))


def no_units_file(path: Path) -> Path:
    nwb = _nwbfile()
    _add_trials(nwb, [0, 1, 2], [1, 2, 3])
    from pynwb import TimeSeries as NWBTimeSeries

    mod = nwb.create_processing_module("behavior", "behaviour")
    mod.add(NWBTimeSeries(name="cursor_pos", data=np.zeros((50, 2)), unit="m", rate=10.0, starting_time=0.0,
                          description="cursor"))
    return _save(nwb, path)


def units_outside_file(path: Path, spikes: list, plain_table: bool = False) -> Path:
    """A Units table in processing/ecephys instead of /units (as some MatNWB files do); with
    ``plain_table`` a generic DynamicTable with a ragged spike_times column instead of a Units table."""
    from hdmf.common import DynamicTable
    from pynwb.misc import Units

    nwb = _nwbfile()
    if plain_table:
        units = DynamicTable(name="sorted_units", description="spikes in a generic table")
        units.add_column("spike_times", "spike times (s)", index=True)
        for s in spikes:
            units.add_row(spike_times=list(s))
    else:
        units = Units(name="sorted_units", description="units kept in a processing module")
        for s in spikes:
            units.add_unit(spike_times=s)
    nwb.create_processing_module("ecephys", "sorted spikes").add(units)
    return _save(nwb, path)


def relative_events_file(path: Path) -> Path:
    """Trials whose go_cue_time is relative to the trial start (seen in some public files)."""
    nwb = _nwbfile()
    nwb.add_trial_column("go_cue_time", "go cue, relative to trial start (s)")
    for i in range(5):
        nwb.add_trial(start_time=100.0 + 10 * i, stop_time=102.0 + 10 * i, go_cue_time=0.5 + 0.1 * i)
    return _save(nwb, path)


def unsorted_file(path: Path, spikes: list) -> Path:
    nwb = _nwbfile()
    for s in spikes:
        nwb.add_unit(spike_times=list(s))
    return _save(nwb, path)


def nan_stop_file(path: Path) -> Path:
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 1.5])
    nwb.add_trial_column("reward_time", "reward time (s)")
    nwb.add_trial(start_time=0.0, stop_time=1.0, reward_time=0.9)
    nwb.add_trial(start_time=1.0, stop_time=float("nan"), reward_time=float("nan"))
    nwb.add_trial(start_time=2.0, stop_time=3.0, reward_time=2.5)
    return _save(nwb, path)


def binned_file(path: Path, counts: np.ndarray, rate_hz: float = 10.0) -> Path:
    """Binned counts (n_bins x n_units) as processing/behavior/spike_counts, like DANDI 000404; no Units."""
    from pynwb import TimeSeries as NWBTimeSeries

    nwb = _nwbfile()
    mod = nwb.create_processing_module("behavior", "BMI data")
    mod.add(NWBTimeSeries(name="spike_counts", data=counts, unit="spikes", rate=rate_hz, starting_time=0.0,
                          description="binned spike counts of the BMI units"))
    _add_trials(nwb, [0.0, 0.5], [0.5, 1.0])
    return _save(nwb, path)


def realistic_file(path: Path) -> Path:
    """MC_Maze-like: electrodes, electrode_group, obs_intervals, a custom bool column, no resolution;
    trials with *_time columns, a ragged column and a 2-D column."""
    nwb = _nwbfile()
    dev = nwb.create_device("array")
    grp = nwb.create_electrode_group("M1", description="Utah array", location="M1", device=dev)
    for _ in range(3):
        nwb.add_electrode(group=grp, location="M1")
    nwb.add_unit_column("heldout", "held out for evaluation")
    nwb.add_unit(spike_times=[0.1, 0.4, 2.0], electrodes=[0], electrode_group=grp, obs_intervals=[[0, 3]], heldout=False)
    nwb.add_unit(spike_times=[1.0], electrodes=[1, 2], electrode_group=grp, obs_intervals=[[0, 1.5], [2, 3]],
                 heldout=True)
    nwb.add_trial_column("go_cue_time", "go cue")
    nwb.add_trial_column("maze_id", "maze")
    nwb.add_trial_column("target_pos", "target positions", index=True)
    nwb.add_trial_column("hand_start", "start position (x, y)")
    for i in range(3):
        nwb.add_trial(start_time=i * 1.0, stop_time=i * 1.0 + 0.9, go_cue_time=i * 1.0 + 0.3, maze_id=i,
                      target_pos=[float(i)] * (i + 1), hand_start=[0.0, float(i)])
    return _save(nwb, path)


def set_session_start(path: Path, text: str) -> None:
    """Replace session_start_time by ``text`` (e.g. without timezone), as older writers stored it."""
    with h5py.File(path, "r+") as f:
        del f["session_start_time"]
        f.create_dataset("session_start_time", data=text, dtype=h5py.string_dtype())


def plain_hdf5_file(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.arange(10))
        f.attrs["title"] = "not NWB"
    return path
