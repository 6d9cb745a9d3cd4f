"""Reading and writing recordings.

:mod:`bci_credit.io.nwb` turns a :class:`~bci_credit.recording.Recording` into an NWB file and back,
and reads (or summarises) NWB files written by other software::

    from bci_credit.io import nwb
    nwb.write(recording, "session.nwb")
    rec = nwb.read("session.nwb")
    summary = nwb.inspect("someone_elses.nwb")

The submodule is imported on first use so that ``import bci_credit.io`` stays cheap (pynwb is
only imported when a file is written).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["nwb", "remote"]


def __getattr__(name: str) -> Any:  # PEP 562: lazy submodule access
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
