"""Drive proxies: stand-ins for a unit's unobserved input drive Z, for the fuzzy spike RD.

Extracellular recordings do not observe the membrane drive whose threshold crossing makes a
spike. The fuzzy design of :mod:`bci_credit.analysis.causal` replaces it with a *proxy*:

* :func:`glm_drive_proxy` - the linear predictor (log rate) of a Poisson GLM of the unit's spike
  count per window on the other units' recent activity (counts at the lags given, lag 0 being the
  same window) and optional task covariates. It is **cross-fitted**: the value for a window comes
  from a model fitted on the other folds (contiguous blocks of windows), so a unit's own spike in a
  window never enters the proxy of that window. Fitted with scikit-learn's ``PoissonRegressor``
  (L2-penalised maximum likelihood on standardised features).
* :func:`noisy_drive_proxy` - the true drive plus Gaussian noise of a chosen standard deviation.
  Only simulations have it; it measures how fast proxy noise destroys identification (the
  validation figure of notebook 02).

A proxy is only useful if spiking jumps where the proxy crosses its cutoff. A GLM predictor is a
smooth summary of the population, so that jump (the *first stage* of the fuzzy RD) is usually
small; :class:`~bci_credit.analysis.causal.FuzzySpikeRD` reports it and refuses to estimate when it
is too weak.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..random import SeedLike, check_random_state

__all__ = ["DriveProxy", "glm_drive_proxy", "noisy_drive_proxy", "lagged_features"]

logger = logging.getLogger("bci_credit")


@dataclass
class DriveProxy:
    """A proxy of every unit's drive, window by window.

    Attributes
    ----------
    values : ndarray, shape (n_windows, n_units)
        The proxy (NaN where it is not defined, e.g. the first windows without lagged history).
    method : str
        ``"glm"`` or ``"noisy_drive"``.
    deviance_explained : ndarray, shape (n_units,)
        GLM only: held-out fraction of Poisson deviance explained (``1 - D_model / D_null``); NaN
        otherwise.
    params : dict
        Settings used (lags, folds, penalty, noise sd, seed ...).
    notes : list of str
        Units that could not be fitted and why.
    """

    values: np.ndarray
    method: str
    deviance_explained: np.ndarray
    params: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def noisy_drive_proxy(drive: np.ndarray, noise_sd: float, *, seed: SeedLike = None) -> DriveProxy:
    """The true drive plus independent Gaussian noise of standard deviation ``noise_sd``.

    Parameters
    ----------
    drive : ndarray, shape (n_windows, n_units)
        The true running variable Z (simulations only).
    noise_sd : float
        Noise standard deviation, in the units of Z (the LIF threshold is 1).
    seed : seed-like
        Noise generator seed.
    """
    z = np.asarray(drive, dtype=float)
    if not (np.isfinite(noise_sd) and noise_sd >= 0):
        raise ValueError(f"noise_sd must be a non-negative number, got {noise_sd!r}")
    rng = check_random_state(seed)
    vals = z + (noise_sd * rng.standard_normal(z.shape) if noise_sd > 0 else 0.0)
    n_units = z.shape[1] if z.ndim == 2 else 1
    return DriveProxy(values=vals, method="noisy_drive", deviance_explained=np.full(n_units, np.nan),
                      params={"noise_sd": float(noise_sd), "seed": None if seed is None else str(seed)})


def lagged_features(counts: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """Counts shifted by each lag: shape (n_windows, n_units * len(lags)); NaN where history is missing.

    Column block ``k`` holds ``counts[t - lags[k]]``.
    """
    c = np.asarray(counts, dtype=float)
    n, u = c.shape
    out = np.full((n, u * len(lags)), np.nan)
    for k, lag in enumerate(lags):
        lag = int(lag)
        if lag < 0:
            raise ValueError(f"lags must be >= 0 (0 = same window), got {lag}")
        out[lag:, k * u:(k + 1) * u] = c[:n - lag] if lag else c
    return out


def _fold_bounds(n: int, n_folds: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, n_folds + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    mu = np.clip(mu, 1e-12, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(term - (y - mu)))


def _fit_unit(j: int, counts: np.ndarray, lagged: np.ndarray, covariates: np.ndarray | None, n_lags: int,
              folds: list[tuple[int, int]], alpha: float, max_iter: int) -> tuple[np.ndarray, float, str | None]:
    import warnings

    from sklearn.linear_model import PoissonRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    n, u = counts.shape
    others = [k for k in range(u) if k != j]
    cols = [lag * u + k for lag in range(n_lags) for k in others]
    X = lagged[:, cols]
    if covariates is not None:
        X = np.column_stack([X, covariates])
    y = counts[:, j].astype(float)
    ok = np.isfinite(X).all(axis=1)
    eta = np.full(n, np.nan)
    if X.shape[1] == 0:
        return eta, np.nan, "no predictors (no other units and no covariates)"
    dev_model = dev_null = 0.0
    for a, b in folds:
        test = np.zeros(n, dtype=bool)
        test[a:b] = True
        train = ~test & ok
        test &= ok
        if not test.any():
            continue
        if y[train].sum() == 0:
            return np.full(n, np.nan), np.nan, "no spikes in a training fold"
        model = make_pipeline(StandardScaler(), PoissonRegressor(alpha=alpha, max_iter=max_iter))
        # one OpenMP thread: these fits are small, and sklearn's threaded loss is several times slower
        # on a busy machine; parallelism is across units (n_jobs)
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
            warnings.simplefilter("ignore")  # lbfgs convergence chatter; the held-out deviance says how it did
            model.fit(X[train], y[train])
        mu = model.predict(X[test])
        eta[test] = np.log(np.clip(mu, 1e-300, None))
        dev_model += _poisson_deviance(y[test], mu)
        dev_null += _poisson_deviance(y[test], np.full(test.sum(), y[train].mean()))
    d2 = 1.0 - dev_model / dev_null if dev_null > 0 else np.nan
    return eta, d2, None


def glm_drive_proxy(counts: np.ndarray, *, covariates: np.ndarray | None = None, lags: Sequence[int] = (0, 1),
                    n_folds: int = 5, alpha: float = 1e-3, max_iter: int = 300, units: Sequence[int] | None = None,
                    n_jobs: int | None = 1, unit_ids: Sequence | None = None, progress: bool = False) -> DriveProxy:
    """Cross-fitted Poisson-GLM linear predictor of each unit's spike count from the other units.

    Parameters
    ----------
    counts : ndarray of int, shape (n_windows, n_units)
        Spike counts per window.
    covariates : ndarray, shape (n_windows, n_covariates), optional
        Task covariates per window (cursor, target, decoder output ...), used at lag 0.
    lags : sequence of int
        Lags (in windows) of the other units' counts; 0 is the same window (shared input),
        1 the previous one. Windows without the full history get NaN.
    n_folds : int
        Contiguous folds for cross-fitting (>= 2).
    alpha : float
        L2 penalty of ``sklearn.linear_model.PoissonRegressor`` (features are standardised).
    max_iter : int
        lbfgs iterations.
    units : sequence of int, optional
        Column positions to fit (default all); the others get NaN.
    n_jobs : int
        Processes (one unit per task, through :func:`bci_credit.parallel.pmap`).
    unit_ids : sequence, optional
        The units' ids, one per column, to name them in the notes (default: "unit column j").
    progress : bool
        Show a progress bar over the units (each is ``n_folds`` GLM fits: about 1-2 s per fold
        for 300 units and 70 000 windows, so such a recording takes tens of minutes on one core).

    Returns
    -------
    DriveProxy
        ``values`` is the held-out linear predictor (log expected count).
    """
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must have shape (n_windows, n_units), got {counts.shape}")
    n, u = counts.shape
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2 (the proxy is cross-fitted), got {n_folds}")
    lags = tuple(int(v) for v in lags)
    if not lags:
        raise ValueError("lags must name at least one lag (0 = same window)")
    if covariates is not None:
        covariates = np.asarray(covariates, dtype=float)
        if covariates.ndim == 1:
            covariates = covariates[:, None]
        if covariates.shape[0] != n:
            raise ValueError(f"covariates has {covariates.shape[0]} rows but counts has {n} windows")
    lagged = lagged_features(counts, lags)
    folds = _fold_bounds(n, n_folds)
    todo = list(range(u)) if units is None else [int(j) for j in units]
    values = np.full((n, u), np.nan)
    d2 = np.full(u, np.nan)
    notes = []
    args = (counts, lagged, covariates, len(lags), folds, float(alpha), int(max_iter))
    from ..parallel import effective_n_jobs, pmap, progress_bar

    desc = "GLM drive proxy"
    if effective_n_jobs(n_jobs) > 1 and len(todo) > 1:
        results = pmap(_fit_unit_task, todo, n_jobs=n_jobs, kwargs={"args": args}, progress=progress, desc=desc)
    else:
        results = []
        with progress_bar(len(todo), enabled=progress, desc=desc, unit="unit") as bar:
            for j in todo:
                results.append(_fit_unit(j, *args))
                bar.update(1)
    for j, (eta, dev, why) in zip(todo, results):
        values[:, j] = eta
        d2[j] = dev
        if why:
            notes.append(f"unit {unit_ids[j]}: {why}" if unit_ids is not None else f"unit column {j}: {why}")
    params = {"lags": list(lags), "n_folds": int(n_folds), "alpha": float(alpha), "estimator": "sklearn PoissonRegressor",
              "n_covariates": 0 if covariates is None else int(covariates.shape[1])}
    return DriveProxy(values=values, method="glm", deviance_explained=d2, params=params, notes=notes)


def _fit_unit_task(j: int, args: tuple) -> tuple[np.ndarray, float, str | None]:
    return _fit_unit(j, *args)
