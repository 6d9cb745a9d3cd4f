"""Experimental predictions of the single-unit BCI model, each a reproducible recipe.

Every prediction is a module with ``NAME``, ``CLAIM``, ``FULL``/``QUICK`` settings and
``run(quick=False, seed=0, progress=False) -> PredictionResult``; ``bci-credit predict NAME --out DIR``
runs one and writes JSON, CSV tables, figures and NWB sessions (:func:`write_prediction`). The
quick forms are the seeded tests (``tests/test_predict*.py``).

=======================  ==================================================================
``conditioning``         1. conditioning raises the control rate, specificity index > 0
``estimator_bias``       2. naive estimates are biased by noise correlation, RD is not
``credit_leak``          3. REINFORCE/naive credit leaks to correlated units as c rises
``threshold_vs_windowed`` 4. windowed-rate reward is less specific than threshold reward
``private_variability``  5. learning depends on the control unit's private variability
``dual_tuning``          6. tuning and coupling changes in dual control
``plasticity``           RDD plasticity scales with near-threshold windows at matched rate (A9) + power
``special_neuron``       acceptance A6 of the LK model: RDD vs OD on the special-neuron task
=======================  ==================================================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._base import PredictionResult, write_prediction

__all__ = ["PREDICTIONS", "PredictionResult", "write_prediction", "run_prediction", "get_prediction", "list_predictions"]

#: Prediction names -> module (in this package).
PREDICTIONS = {
    "conditioning": "conditioning",
    "estimator_bias": "estimator_bias",
    "credit_leak": "credit_leak",
    "threshold_vs_windowed": "threshold_vs_windowed",
    "private_variability": "private_variability",
    "dual_tuning": "dual_tuning",
    "plasticity": "plasticity",
    "special_neuron": "special_neuron",
}


def get_prediction(name: str) -> ModuleType:
    """The module of prediction ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`PREDICTIONS`.

    Returns
    -------
    module
        Its ``NAME``, ``CLAIM``, ``FULL``/``QUICK`` settings and ``run``.
    """
    if name not in PREDICTIONS:
        raise ValueError(f"unknown prediction {name!r}; choose one of {', '.join(PREDICTIONS)}")
    return importlib.import_module(f"{__name__}.{PREDICTIONS[name]}")


def list_predictions() -> dict:
    """``{name: claim}`` of every prediction."""
    return {name: get_prediction(name).CLAIM for name in PREDICTIONS}


def run_prediction(name: str, *, quick: bool = False, seed: int = 0, progress: bool = False) -> PredictionResult:
    """Run prediction ``name`` (full size, or the quick form used by the tests).

    Parameters
    ----------
    name : str
        A key of :data:`PREDICTIONS`.
    quick : bool
        The quick (test-sized) form.
    seed : int
        Root seed.
    progress : bool
        Show progress bars.

    Returns
    -------
    PredictionResult
        Numbers, checks, tables and representative sessions.
    """
    return get_prediction(name).run(quick=quick, seed=seed, progress=progress)
