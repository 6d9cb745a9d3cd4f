"""Window-level estimators of each neuron's causal effect on reward (``rdd_model.md`` §2).

Pure functions over per-window arrays, vectorised over neurons and replicates:

* ``Z`` (drive) shaped ``(..., windows, neurons)``: the maximum input drive per window;
* ``R`` (reward) shaped ``(..., windows)``: the reward at each window's end.

``H`` (spiked) is not needed: in the LIF model ``H = 1`` exactly when ``Z > theta`` (a sharp
design). Estimators return ``(..., neurons)``; a neuron with no windows on one side gets NaN.

* :func:`rdd_constant` — difference of mean rewards just above and just below threshold
  (``theta < Z < theta + p`` vs ``theta - p < Z < theta``, strict);
* :func:`rdd_linear` — separate least-squares lines ``R = a + b (Z - theta)`` on each side, the jump
  of their intercepts (removes the first-order bias of the constant estimator);
* ``one_sided=True`` — every super-threshold window on the upper side (supplementary Fig. S2);
* :func:`observed_dependence` — the constant (or linear) estimator with ``p = 1``: the naive,
  confounded ``E[R | H=1] - E[R | H=0]``.

These are the paper's estimators; the general local-polynomial RD with bandwidth selection and
robust inference is :mod:`bci_credit.analysis.rd`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rdd_constant", "rdd_linear", "observed_dependence", "rdd_constant_se", "band_counts"]


def _masks(z, p, theta, one_sided):
    d = np.asarray(z, dtype=float) - theta
    above = (d > 0) & ((d < p) | one_sided)
    below = (d < 0) & (d > -p)
    return d, above, below


def _side_mean(r, mask):
    n = mask.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("...w,...wn->...n", r, mask) / n, n


def rdd_constant(z, r, p: float, theta: float = 1.0, *, one_sided: bool = False) -> np.ndarray:
    """Constant (local-mean) RDD estimate of beta per neuron."""
    r = np.asarray(r, dtype=float)
    _, above, below = _masks(z, p, theta, one_sided)
    ma, _ = _side_mean(r, above.astype(float))
    mb, _ = _side_mean(r, below.astype(float))
    return ma - mb


def rdd_constant_se(z, r, p: float, theta: float = 1.0, *, one_sided: bool = False) -> np.ndarray:
    """Standard error of :func:`rdd_constant` (independent windows): ``sqrt(var_a/n_a + var_b/n_b)``."""
    r = np.asarray(r, dtype=float)
    _, above, below = _masks(z, p, theta, one_sided)
    out = 0.0
    for m in (above.astype(float), below.astype(float)):
        mean, n = _side_mean(r, m)
        with np.errstate(invalid="ignore", divide="ignore"):
            ss = np.einsum("...w,...wn->...n", r**2, m) - n * mean**2
            out = out + ss / (n - 1) / n
    return np.sqrt(out)


def _side_intercept(d, r, mask):
    m = mask.astype(float)
    n = m.sum(axis=-2)
    sx = np.einsum("...wn,...wn->...n", m, d)
    sxx = np.einsum("...wn,...wn->...n", m, d * d)
    sy = np.einsum("...w,...wn->...n", r, m)
    sxy = np.einsum("...w,...wn->...n", r, m * d)
    den = n * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (sy * sxx - sx * sxy) / den
    return np.where(n >= 2, a, np.nan)


def rdd_linear(z, r, p: float, theta: float = 1.0, *, one_sided: bool = False) -> np.ndarray:
    """Local-linear RDD estimate: jump between the two sides' least-squares lines at threshold."""
    r = np.asarray(r, dtype=float)
    d, above, below = _masks(z, p, theta, one_sided)
    return _side_intercept(d, r, above) - _side_intercept(d, r, below)


def observed_dependence(z, r, theta: float = 1.0, *, linear: bool = False, p: float = 1.0) -> np.ndarray:
    """Observed dependence: the RD estimator over (essentially) all windows, ``p = 1``."""
    return (rdd_linear if linear else rdd_constant)(z, r, p, theta)


def band_counts(z, p: float, theta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Number of windows just above and just below threshold per neuron."""
    _, above, below = _masks(z, p, theta, False)
    return above.sum(axis=-2), below.sum(axis=-2)
