"""Figures (matplotlib, imported lazily by each plotting function).

``bci_credit.plotting.rd``: :func:`~bci_credit.plotting.rd.rd_plot` (binned means and polynomial
fits on each side of an RD cutoff) and :func:`~bci_credit.plotting.rd.rd_bins`.

Every plotting function gets ``matplotlib.pyplot`` from :func:`pyplot`, which picks the headless
Agg backend only when nobody has chosen one yet: commands and worker processes draw straight to
files, while a notebook or script that imported pyplot (or set ``MPLBACKEND``) keeps its backend,
so figures still show inline after a call that saved one.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

__all__ = ["pyplot"]


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, on the Agg backend unless a backend was chosen already."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
