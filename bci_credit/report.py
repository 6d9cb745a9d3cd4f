"""Report folders: what a simulated or analysed session leaves on disk.

:func:`write_session_outputs` writes a Recording's tables (units, windows), its NWB file and an
overview figure into an output folder, atomically. Commands add ``run.json`` themselves
(:func:`bci_credit.outputs.write_run_json`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .outputs import save_figure, write_csv
from .recording import Recording, interval_pairs

__all__ = ["write_session_outputs", "windows_frame"]


def windows_frame(rec: Recording) -> pd.DataFrame:
    """The windows table with one ``Z_<unit>`` and ``H_<unit>`` column per unit (when known)."""
    if rec.windows is None:
        return pd.DataFrame()
    df = rec.windows.copy()
    for k, uid in enumerate(rec.units.index):
        if rec.drive is not None:
            df[f"Z_{uid}"] = rec.drive[:, k]
        if rec.spiked is not None:
            df[f"H_{uid}"] = rec.spiked[:, k].astype(int)
    return df


def write_session_outputs(rec: Recording, out_dir, *, nwb: bool = True, figure: bool = True,
                          stem: str = "session") -> list[Path]:
    """Write ``units.csv``, ``windows.csv``, ``<stem>.nwb`` and ``overview.png``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    units = rec.units.copy()
    if "obs_intervals" in units.columns:  # (k, 2) arrays -> "start-stop;start-stop" (one line per unit)
        units["obs_intervals"] = [";".join(f"{a:g}-{b:g}" for a, b in interval_pairs(iv))
                                  for iv in units["obs_intervals"]]
    files = [write_csv(units, out / "units.csv")]
    if rec.windows is not None:
        files.append(write_csv(windows_frame(rec), out / "windows.csv", index=False))
    if nwb:
        from .io.nwb import write

        files.append(write(rec, out / f"{stem}.nwb"))
    if figure:
        from .plotting.session import plot_session

        files.append(save_figure(plot_session(rec), out / "overview.png"))
    return [Path(f) for f in files]
