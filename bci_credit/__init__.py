"""bci_credit: which neurons caused the reward?

Simulate single-unit brain-computer-interface (BCI) experiments with spiking LIF populations,
train them with local learning rules (regression-discontinuity "spike discontinuity" learning,
observed dependence, node perturbation / REINFORCE, ...), and estimate causal effects of units
on reward with regression discontinuity designs, on simulated data and on NWB recordings.

The flow: ``config -> sim/tasks/learning -> Recording -> io.nwb / analysis -> plotting/report``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .recording import Recording, TimeSeries, WeightTrace  # noqa: E402

__all__ = ["Recording", "TimeSeries", "WeightTrace", "__version__"]
