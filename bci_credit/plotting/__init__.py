"""Figures (matplotlib, imported lazily by each plotting function).

``bci_credit.plotting.rd``: :func:`~bci_credit.plotting.rd.rd_plot` (binned means and polynomial
fits on each side of an RD cutoff) and :func:`~bci_credit.plotting.rd.rd_bins`.
"""
