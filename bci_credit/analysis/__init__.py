"""Analyses of recordings: regression discontinuity (RD) estimates, density tests, diagnostics.

Submodules are imported lazily so that ``import bci_credit.analysis`` stays light:
``bci_credit.analysis.rd`` (:class:`RD`, :func:`fit_many`, :func:`fit_recording`),
``bci_credit.analysis.density`` (:class:`RDDensity`), ``bci_credit.analysis.rd_diagnostics``
(placebo cutoffs, bandwidth sensitivity), ``bci_credit.analysis.causal`` (designs on spike data:
spike-discontinuity, reward-threshold, fuzzy with a drive proxy, naive comparison) and
``bci_credit.analysis.spiking`` (the paper's window estimators).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "RD": "rd", "RDResults": "rd", "fit_many": "rd", "fit_recording": "rd",
    "RDDensity": "density", "RDDensityResults": "density",
    "placebo_cutoffs": "rd_diagnostics", "bandwidth_sensitivity": "rd_diagnostics",
    "SpikeDiscontinuity": "causal_spike", "RewardThreshold": "causal_reward", "FuzzySpikeRD": "causal_spike",
    "NaiveComparison": "causal_naive", "CausalResults": "causal_results", "analyze_recording": "causal",
    "analyze_file": "causal",
    "rdd_constant": "spiking", "rdd_linear": "spiking", "observed_dependence": "spiking",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        mod = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
