"""Window-level estimators of each neuron's causal effect on reward (``rdd_model.md`` §2).

Pure functions over per-window arrays, vectorised over neurons and replicates:

* ``Z`` (drive) shaped ``(..., windows, neurons)``: the maximum input drive per window;
* ``R`` (reward) shaped ``(..., windows)``: the reward at each window's end.

The leading (replicate) axes of ``Z`` and ``R`` broadcast against each other, so one reward
series ``(windows,)`` can be shared by many drive arrays ``(replicates, windows, neurons)``.
A single neuron's drive is still 2-D: pass ``Z[:, None]``.

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

Bad shapes, a non-finite or non-positive ``p`` and a non-finite ``theta`` raise ``ValueError``
naming the argument. Array *values* are not scanned (these functions sit in hot loops):

* a window whose drive is NaN falls in neither band, so it is simply left out of that neuron's
  estimate (by design: it is neither just above nor just below threshold);
* a NaN reward is **not** dropped: it propagates, and every neuron's estimate of that replicate
  becomes NaN, even when the window lies outside the band (a loud NaN rather than a quietly
  different sample). Drop such windows first, e.g.
  ``ok = np.isfinite(R); rdd_constant(Z[ok], R[ok], p)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["rdd_constant", "rdd_linear", "observed_dependence", "rdd_constant_se", "band_counts"]


def _check_scalar(value, name: str, where: str, *, positive: bool) -> None:
    """``value`` (a number, or an array of them) must be finite, and > 0 when ``positive``."""
    if type(value) is float:  # the common case, no numpy round trip
        ok = math.isfinite(value) and (value > 0 or not positive)
    else:
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            a = np.asarray(value, dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None
        ok = bool(np.isfinite(a).all()) and (not positive or bool((a > 0).all()))
    if not ok:
        what = "a finite number > 0" if positive else "a finite number"
        hint = " (the half-width of the band around threshold, in drive units, e.g. p=0.1)" if name == "p" else ""
        raise ValueError(f"{where}: {name} must be {what}{hint}, got {value!r}")


def _check_inputs(z, r, p, theta, where: str):
    """Validate the estimators' inputs (shapes and scalars only: values are not scanned).

    ``z`` (drive) must be ``(..., windows, units)`` and ``r`` (reward) ``(..., windows)`` with the
    same number of windows and broadcastable leading (replicate) axes; ``p`` one number or one per
    unit. Returns ``z`` and ``r`` as float arrays and ``p`` as a float or a float array of shape (units,).
    """
    z = np.asarray(z, dtype=float)
    if z.ndim < 2:
        raise ValueError(
            f"{where}: z (drive) must be shaped (..., windows, units), got shape {z.shape}; "
            f"for a single unit pass z[:, None] (or z.reshape(-1, 1))")
    if r is not None:
        r = np.asarray(r, dtype=float)
        if r.ndim < 1 or r.shape[-1] != z.shape[-2] or (
                r.shape[:-1] != z.shape[:-2] and not _broadcastable(r.shape[:-1], z.shape[:-2])):
            hint = ""
            if r.ndim >= 2 and r.shape[-1] == 1 and r.shape[-2] == z.shape[-2]:
                hint = "; a column of rewards must be flattened: pass r[..., 0]"
            raise ValueError(
                f"{where}: r (reward) must be shaped (..., windows) with one value per window of z: "
                f"z has shape {z.shape} ({z.shape[-2]} windows, {z.shape[-1]} units) but r has shape "
                f"{r.shape}; pass r with shape {z.shape[:-1]}{hint}")
    if p is not None:
        _check_scalar(p, "p", where, positive=True)
        if type(p) is not float:
            p = np.asarray(p, dtype=float)
            if p.ndim == 0:
                p = float(p)
            elif p.shape != (z.shape[-1],):
                raise ValueError(f"{where}: p must be one number or one per unit ({z.shape[-1]} units), "
                                 f"got shape {p.shape}")
    _check_scalar(theta, "theta", where, positive=False)
    return z, r, p


def _broadcastable(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


def _masks(z, p, theta, one_sided):
    d = np.asarray(z, dtype=float) - theta
    above = (d > 0) & ((d < p) | one_sided)
    below = (d < 0) & (d > -p)
    return d, above, below


def _side_mean(r, mask):
    n = mask.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("...w,...wn->...n", r, mask) / n, n


def rdd_constant(z: ArrayLike, r: ArrayLike, p: float | ArrayLike, theta: float = 1.0, *,
                 one_sided: bool = False) -> np.ndarray:
    """Constant (local-mean) RDD estimate of beta per neuron.

    See the module docstring for NaN handling.

    Parameters
    ----------
    z : array_like, shape (..., windows, units)
        Drive Z.
    r : array_like, shape (..., windows)
        Reward R (leading axes broadcast against those of ``z``).
    p : float or array_like
        Band half-width, > 0 (one number, or one per unit).
    theta : float
        Threshold.
    one_sided : bool
        Use every window above threshold on the upper side (no upper band limit).

    Returns
    -------
    ndarray, shape (..., units)
        Mean reward just above minus just below threshold (NaN for an empty side).
    """
    z, r, p = _check_inputs(z, r, p, theta, "rdd_constant")
    return _rdd_constant(z, r, p, theta, one_sided)


def _rdd_constant(z, r, p, theta, one_sided):
    _, above, below = _masks(z, p, theta, one_sided)
    ma, _ = _side_mean(r, above.astype(float))
    mb, _ = _side_mean(r, below.astype(float))
    return ma - mb


def rdd_constant_se(z, r, p: float, theta: float = 1.0, *, one_sided: bool = False) -> np.ndarray:
    """Standard error of :func:`rdd_constant` (independent windows): ``sqrt(var_a/n_a + var_b/n_b)``."""
    z, r, p = _check_inputs(z, r, p, theta, "rdd_constant_se")
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
    d = np.where(mask, d, 0.0)  # a NaN drive outside the mask must not reach the sums (0 * NaN = NaN)
    n = m.sum(axis=-2)
    sx = np.einsum("...wn,...wn->...n", m, d)
    sxx = np.einsum("...wn,...wn->...n", m, d * d)
    sy = np.einsum("...w,...wn->...n", r, m)
    sxy = np.einsum("...w,...wn->...n", r, m * d)
    den = n * sxx - sx * sx  # n^2 times the variance of the drives (rounding leaves a residue when all are equal)
    spread = np.where(mask, d, -np.inf).max(axis=-2) > np.where(mask, d, np.inf).min(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (sy * sxx - sx * sxy) / den
    return np.where((n >= 2) & spread & (den > 0), a, np.nan)


def rdd_linear(z: ArrayLike, r: ArrayLike, p: float | ArrayLike, theta: float = 1.0, *,
               one_sided: bool = False) -> np.ndarray:
    """Local-linear RDD estimate: jump between the two sides' least-squares lines at threshold.

    Parameters
    ----------
    z, r, p, theta, one_sided
        As in :func:`rdd_constant`.

    Returns
    -------
    ndarray, shape (..., units)
        The jump of the intercepts; a side with fewer than 2 windows, or whose drives are all
        equal (no line through them), gives NaN.
    """
    z, r, p = _check_inputs(z, r, p, theta, "rdd_linear")
    return _rdd_linear(z, r, p, theta, one_sided)


def _rdd_linear(z, r, p, theta, one_sided):
    d, above, below = _masks(z, p, theta, one_sided)
    return _side_intercept(d, r, above) - _side_intercept(d, r, below)


def observed_dependence(z: ArrayLike, r: ArrayLike, theta: float = 1.0, *, linear: bool = False,
                        p: float | ArrayLike = 1.0) -> np.ndarray:
    """Observed dependence: the RD estimator over (essentially) all windows, ``p = 1``.

    Parameters
    ----------
    z, r, theta
        As in :func:`rdd_constant`.
    linear : bool
        Use :func:`rdd_linear` instead of :func:`rdd_constant`.
    p : float or array_like
        Band half-width.

    Returns
    -------
    ndarray, shape (..., units)
        The estimate per unit.
    """
    z, r, p = _check_inputs(z, r, p, theta, "observed_dependence")
    return (_rdd_linear if linear else _rdd_constant)(z, r, p, theta, False)


def band_counts(z, p: float, theta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Number of windows just above and just below threshold per neuron (``z``: (..., windows, units))."""
    z, _, p = _check_inputs(z, None, p, theta, "band_counts")
    _, above, below = _masks(z, p, theta, False)
    return above.sum(axis=-2), below.sum(axis=-2)
