"""Local-polynomial regression discontinuity (RD): estimates, robust bias-corrected inference, batches.

The model follows the statsmodels Model -> Results split::

    >>> res = RD(y, x, cutoff=0.0).fit()          # doctest: +SKIP
    >>> print(res.summary())                        # doctest: +SKIP
    >>> res.tau_cl, res.se_rb, res.ci_rb, res.h     # doctest: +SKIP

and :func:`fit_many` estimates one RD per unit (thousands of neurons) in one vectorised call.

Method (written from the publications, not from GPL code): local polynomial of order ``p`` on each
side of the cutoff with kernel weights (Calonico, Cattaneo & Titiunik 2014, "Robust nonparametric
confidence intervals for regression-discontinuity designs", *Econometrica*); bias correction with a
local polynomial of order ``q`` and the robust variance that accounts for it; MSE- and CER-optimal
bandwidths (Calonico, Cattaneo & Farrell 2018 *JASA*, 2020 *Econometrics Journal*); covariate
adjustment (Calonico, Cattaneo, Farrell & Titiunik 2019 *REStat*); nearest-neighbour residuals
(Abadie & Imbens 2006). The numbers equal rdrobust 2.1.1 (checked to 1e-6 by
``tests/test_rd_reference.py`` against values stored by ``tests/results/make_rd_reference.py``).

The per-side conventional fit is an ordinary kernel-weighted least-squares regression; it is exposed
as a statsmodels ``WLS`` results object by :meth:`RDResults.local_fit`, whose HC0/HC2/HC3 and
cluster covariances equal the conventional variances reported here. What statsmodels does not
have - the nearest-neighbour variance, the robust variance of the bias-corrected estimator when
``h != b``, the bandwidth selectors and the batch over units - is written here (engine in
:mod:`bci_credit.analysis._rd_engine`, compiled loops in :mod:`bci_credit.analysis._rd_kernels`, and
the fused per-unit kernel of the common design, sharp with the nearest-neighbour variance, in
:mod:`bci_credit.analysis._rd_fast`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from . import _rd_engine as _engine
from ._rd_engine import (BWSELECTS, KERNEL_ALIASES, VCE_CHOICES, Batch, EngineOptions, Workspace, fast_eligible,
                         run_engine, run_fast)

if TYPE_CHECKING:
    from statsmodels.regression.linear_model import RegressionResultsWrapper

    from ..recording import Recording

__all__ = ["RD", "RDResults", "fit_many", "fit_recording", "BATCH_COLUMNS"]

logger = logging.getLogger("bci_credit")

_ROWS = ("Conventional", "Bias-corrected", "Robust")

#: columns of the DataFrame returned by :func:`fit_many`
BATCH_COLUMNS = ("unit", "estimate", "tau_bc", "se_cl", "se_rb", "ci_cl_lo", "ci_cl_hi", "ci_rb_lo",
                 "ci_rb_hi", "pv_cl", "pv_rb", "h_left", "h_right", "b_left", "b_right", "n_left",
                 "n_right", "n_h_left", "n_h_right", "cutoff", "reason")


# ----------------------------------------------------------------------------- input handling
def _column(value: Any, name: str, data: pd.DataFrame | None, n: int | None = None) -> np.ndarray:
    """Resolve an argument that may be an array or a column name of ``data`` into a 1-D array."""
    if isinstance(value, str):
        if data is None:
            raise ValueError(f"{name}={value!r} is a column name, but no data frame was given (pass data=...)")
        if value not in data.columns:
            raise ValueError(f"column {value!r} (for {name}) is not in the data; columns are {list(data.columns)}")
        value = data[value]
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} values but x has {n}; they must have the same length")
    return arr


def _check_aligned(**values) -> None:
    """Refuse pandas inputs whose indexes differ: RD pairs values by position, as numpy arrays."""
    indexed = [(name, v.index) for name, v in values.items() if isinstance(v, (pd.Series, pd.DataFrame))]
    for name, index in indexed[1:]:
        if not index.equals(indexed[0][1]):
            raise ValueError(f"{indexed[0][0]} and {name} are pandas objects with different indexes, but RD pairs "
                             f"values by position; align them first (e.g. {name}.loc[{indexed[0][0]}.index]) or "
                             f"pass data= with column names")


def _numeric(arr: np.ndarray, name: str) -> np.ndarray:
    """Float copy of ``arr``; a clear error when it is not numeric."""
    if arr.dtype == bool:
        return arr.astype(float)
    if arr.dtype.kind in "iuf":
        return arr.astype(float)
    try:
        out = pd.to_numeric(pd.Series(arr), errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        bad = next((v for v in arr if not _is_number(v)), None)
        raise ValueError(f"{name} must be numeric, but it holds non-numeric values such as {bad!r}") from None
    return out


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _covs_matrix(covs, data, n) -> tuple[np.ndarray | None, list[str]]:
    if covs is None:
        return None, []
    if isinstance(covs, str):
        covs = [c.strip() for c in covs.split(",")] if "," in covs else [covs]
    if isinstance(covs, (list, tuple)) and covs and all(isinstance(c, str) for c in covs):
        cols = [_numeric(_column(c, "covs", data, n), f"covariate {c!r}") for c in covs]
        return np.column_stack(cols), list(covs)
    if isinstance(covs, pd.Series):
        covs = covs.to_frame()
    if isinstance(covs, pd.DataFrame):
        names = [str(c) for c in covs.columns]
        mat = np.column_stack([_numeric(covs[c].to_numpy(), f"covariate {c!r}") for c in covs.columns])
    else:
        mat = np.asarray(covs)
        if mat.ndim == 1:
            mat = mat.reshape(-1, 1)
        if mat.ndim != 2:
            raise ValueError(f"covs must be a 2-D array (n, n_covs), got shape {mat.shape}")
        names = [f"z{i + 1}" for i in range(mat.shape[1])]
        mat = np.column_stack([_numeric(mat[:, i], f"covariate {names[i]}") for i in range(mat.shape[1])])
    if mat.shape[0] != n:
        raise ValueError(f"covs has {mat.shape[0]} rows but x has {n}; they must have the same length")
    if mat.shape[1] == 0:
        raise ValueError("covs has no columns; pass at least one covariate or covs=None")
    return mat, names


def _drop_collinear(Z: np.ndarray, names: list[str], tol: float = 1e-5) -> tuple[np.ndarray, list[str]]:
    """Drop collinear covariates (column-pivoted QR, |R_jj| <= tol), as a collinearity check does."""
    from scipy.linalg import qr

    r = np.linalg.qr(Z, mode="r")
    if np.all(np.abs(np.diagonal(r)) > tol):
        return Z, names
    _, r, piv = qr(Z, pivoting=True, mode="economic")
    keep = piv[np.abs(np.diagonal(r)) > tol]
    dropped = [names[i] for i in range(len(names)) if i not in set(keep)]
    logger.info("RD: dropping collinear covariate(s) %s", dropped)
    return Z[:, keep], [names[i] for i in keep]


def _bandwidth_pair(v, name) -> np.ndarray | None:
    if v is None:
        return None
    arr = np.asarray(v, dtype=float).reshape(-1)
    if arr.size not in (1, 2) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be one or two positive finite numbers (left, right), got {v!r}")
    return np.array([arr[0], arr[-1]])


def check_level(level, *, name: str = "level", stacklevel: int = 2) -> float:
    """Validate a confidence level given in percent; return it as a float.

    Raises ``ValueError`` outside (0, 100) (NaN included). A level in (0, 1) is almost always a
    fraction meant as a percentage (0.95 for 95 %): it is accepted as given, with a ``UserWarning``.
    """
    try:
        value = float(level) if np.isscalar(level) else np.nan
    except (TypeError, ValueError):
        value = np.nan
    if not 0 < value < 100:
        raise ValueError(f"{name} must be a number in (0, 100), got {level!r}")
    if value < 1:
        warnings.warn(f"{name}={value:g} is a percentage: {value:g} gives a {value:g} % confidence interval; "
                      f"for a {100 * value:g} % interval use {name}={100 * value:g}", UserWarning,
                      stacklevel=stacklevel)
    return value


def _check_options(p, q, deriv, kernel, bwselect, vce, nnmatch, level, masspoints, bwcheck, rho, has_cluster):
    if deriv is None:
        deriv = 0
    if not (isinstance(deriv, (int, np.integer)) and 0 <= deriv <= 20):
        raise ValueError(f"deriv must be a non-negative integer (0: jump, 1: kink), got {deriv!r}")
    if p is None:
        p = deriv + 1 if deriv else 1
    if not (isinstance(p, (int, np.integer)) and 0 <= p <= 20):
        raise ValueError(f"p (polynomial order) must be an integer in 0..20, got {p!r}")
    if q is None:
        q = p + 1
    if not (isinstance(q, (int, np.integer)) and q <= 20 and q > p):
        raise ValueError(f"q (bias-correction order) must be an integer > p = {p} (and <= 20), got {q!r}")
    if not (isinstance(deriv, (int, np.integer)) and 0 <= deriv <= p):
        raise ValueError(f"deriv must be an integer in 0..p = {p}, got {deriv!r}")
    kname = KERNEL_ALIASES.get(str(kernel).strip().lower())
    if kname is None:
        raise ValueError(f"kernel must be one of triangular, epanechnikov, uniform; got {kernel!r}")
    bws = str(bwselect).strip().lower()
    if bws not in BWSELECTS:
        raise ValueError(f"bwselect must be one of {', '.join(BWSELECTS)}; got {bwselect!r}")
    v = str(vce).strip().lower()
    if v not in VCE_CHOICES + ("cr2", "cr3"):
        raise ValueError(f"vce must be one of {', '.join(VCE_CHOICES)}; got {vce!r}")
    if has_cluster:
        if v in ("nn", "cr1"):
            v = "cr1"
        elif v in ("hc0", "hc1"):
            warnings.warn(f"vce={v!r} is not a cluster-robust option; using vce='cr1'", stacklevel=3)
            v = "cr1"
        else:
            raise ValueError(f"vce={v!r} with clusters (CR2/CR3) is not implemented; use vce='cr1'")
    else:
        if v == "cr1":
            warnings.warn("vce='cr1' needs cluster=...; using vce='hc1'", stacklevel=3)
            v = "hc1"
        elif v in ("cr2", "cr3"):
            raise ValueError(f"vce={v!r} needs cluster=... and is not implemented; use hc2/hc3 or cr1")
    if not (isinstance(nnmatch, (int, np.integer)) and nnmatch >= 1):
        raise ValueError(f"nnmatch must be a positive integer, got {nnmatch!r}")
    check_level(level, stacklevel=4)
    mp = "off" if masspoints in (None, False) else str(masspoints).strip().lower()
    if mp not in ("adjust", "check", "off"):
        raise ValueError(f"masspoints must be 'adjust', 'check' or 'off', got {masspoints!r}")
    if bwcheck is not None and not (isinstance(bwcheck, (int, np.integer)) and bwcheck >= 1):
        raise ValueError(f"bwcheck must be a positive integer, got {bwcheck!r}")
    if rho is not None and not (np.isscalar(rho) and np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be a positive number, got {rho!r}")
    return int(p), int(q), int(deriv), kname, bws, v, mp


# ----------------------------------------------------------------------------- results
@dataclass
class RDResults:
    """Results of a local-polynomial RD fit (see :class:`RD`).

    The three inference rows are *conventional* (``tau_cl`` with its standard error ``se_cl``),
    *bias-corrected* (``tau_bc`` with ``se_cl``) and *robust bias-corrected* (``tau_bc`` with the
    robust standard error ``se_rb``); the robust row is the one to report. Arrays ``coef``, ``se``,
    ``z``, ``pvalues`` (3,) and ``ci`` (3, 2) hold them in that order. Pairs are (left, right).
    """

    coef: np.ndarray
    se: np.ndarray
    z: np.ndarray
    pvalues: np.ndarray
    ci: np.ndarray
    h: np.ndarray
    b: np.ndarray
    n: np.ndarray
    n_h: np.ndarray
    n_b: np.ndarray
    n_unique: np.ndarray
    bias: np.ndarray
    tau_cl_sides: np.ndarray
    tau_bc_sides: np.ndarray
    beta_p_left: np.ndarray
    beta_p_right: np.ndarray
    V_cl_left: np.ndarray
    V_cl_right: np.ndarray
    V_rb_left: np.ndarray
    V_rb_right: np.ndarray
    cutoff: float
    p: int
    q: int
    deriv: int
    kernel: str
    bwselect: str
    vce: str
    level: float
    fuzzy: bool = False
    coef_covs: np.ndarray | None = None
    covs_names: list = field(default_factory=list)
    first_stage: dict | None = None
    n_clusters: np.ndarray | None = None
    n_clusters_total: int | None = None
    n_dropped: int = 0
    mass_points: bool = False
    model: Any = field(default=None, repr=False)

    # -- the numbers by name ------------------------------------------------------
    @property
    def tau_cl(self) -> float:
        """Conventional local-polynomial RD estimate."""
        return float(self.coef[0])

    @property
    def tau_bc(self) -> float:
        """Bias-corrected RD estimate."""
        return float(self.coef[1])

    @property
    def se_cl(self) -> float:
        """Conventional standard error."""
        return float(self.se[0])

    @property
    def se_rb(self) -> float:
        """Robust (bias-corrected) standard error."""
        return float(self.se[2])

    @property
    def ci_cl(self) -> np.ndarray:
        """Conventional confidence interval."""
        return self.ci[0].copy()

    @property
    def ci_bc(self) -> np.ndarray:
        """Bias-corrected interval with the conventional standard error."""
        return self.ci[1].copy()

    @property
    def ci_rb(self) -> np.ndarray:
        """Robust bias-corrected confidence interval (the one to report)."""
        return self.ci[2].copy()

    @property
    def pv_cl(self) -> float:
        """Conventional two-sided p-value."""
        return float(self.pvalues[0])

    @property
    def pv_rb(self) -> float:
        """Robust bias-corrected two-sided p-value."""
        return float(self.pvalues[2])

    @property
    def rho(self) -> np.ndarray:
        """h/b on each side."""
        return self.h / self.b

    # -- tables -------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The three inference rows as a DataFrame (coef, se, z, pvalue, ci_lower, ci_upper)."""
        return pd.DataFrame({"coef": self.coef, "se": self.se, "z": self.z, "pvalue": self.pvalues,
                             "ci_lower": self.ci[:, 0], "ci_upper": self.ci[:, 1]}, index=pd.Index(_ROWS, name="method"))

    def to_dict(self) -> dict:
        """Flat JSON-friendly summary (the keys of ``bci-credit rd --json``)."""
        return {
            "tau_cl": self.tau_cl, "tau_bc": self.tau_bc, "se_cl": self.se_cl, "se_rb": self.se_rb,
            "ci_cl": self.ci_cl.tolist(), "ci_rb": self.ci_rb.tolist(), "pv_cl": self.pv_cl, "pv_rb": self.pv_rb,
            "h": self.h.tolist(), "b": self.b.tolist(), "n": [int(v) for v in self.n],
            "n_h": [int(v) for v in self.n_h], "kernel": self.kernel, "bwselect": self.bwselect,
            "vce": self.vce, "p": self.p, "q": self.q, "deriv": self.deriv, "cutoff": self.cutoff,
            "level": self.level, "n_dropped": self.n_dropped, "fuzzy": self.fuzzy,
            "first_stage": None if self.first_stage is None else {
                "tau_cl": float(self.first_stage["coef"][0]), "tau_bc": float(self.first_stage["coef"][1]),
                "se_cl": float(self.first_stage["se"][0]), "se_rb": float(self.first_stage["se"][2]),
                "ci_rb": [float(v) for v in self.first_stage["ci"][2]],
                "pv_rb": float(self.first_stage["pvalues"][2])},
            "covs": list(self.covs_names),
            "coef_covs": None if self.coef_covs is None else [float(g) for g in self.coef_covs[:, 0]],
            "n_clusters": None if self.n_clusters is None else [int(v) for v in self.n_clusters],
            "mass_points": self.mass_points,
        }

    def summary(self) -> str:
        """A readable text table: sample, bandwidths and the three inference rows."""
        design = "Fuzzy" if self.fuzzy else "Sharp"
        kind = {0: "RD", 1: "kink RD"}.get(self.deriv, f"RD (derivative {self.deriv})")
        title = f"{design} {kind}" + (" with covariates" if self.coef_covs is not None else "")
        lines = [f"{title}: local polynomial regression at cutoff {self.cutoff:g}", "=" * 78]
        info = [("Observations", f"{int(self.n.sum())}"), ("Polynomial order p", f"{self.p}"),
                ("Bias-correction order q", f"{self.q}"), ("Kernel", self.kernel),
                ("Bandwidth selection", self.bwselect), ("Variance estimator", self.vce)]
        if self.n_dropped:
            info.append(("Rows dropped (NaN/inf)", f"{self.n_dropped}"))
        if self.mass_points:
            info.append(("Mass points in x", "yes (>= 20 % ties)"))
        lines += [f"{k:<28}{v:>20}" for k, v in info]
        lines.append("")
        lines.append(f"{'':<28}{'Left':>12}{'Right':>12}")
        lines.append("-" * 52)
        rows = [("Observations", self.n), ("Distinct values", self.n_unique), ("Effective obs (h)", self.n_h)]
        lines += [f"{k:<28}{int(a):>12d}{int(b_):>12d}" for k, (a, b_) in rows]
        lines += [f"{'Bandwidth h':<28}{self.h[0]:>12.4g}{self.h[1]:>12.4g}",
                  f"{'Bandwidth b':<28}{self.b[0]:>12.4g}{self.b[1]:>12.4g}",
                  f"{'rho (h/b)':<28}{self.rho[0]:>12.4g}{self.rho[1]:>12.4g}"]
        if self.n_clusters is not None:
            lines.append(f"{'Clusters':<28}{int(self.n_clusters[0]):>12d}{int(self.n_clusters[1]):>12d}")
        lines.append("")
        lev = f"{self.level:g}% CI"
        lines.append(f"{'Method':<16}{'Coef.':>11}{'Std. Err.':>11}{'z':>9}{'P>|z|':>10}{lev:>21}")
        lines.append("-" * 78)
        for i, name in enumerate(_ROWS):
            ci = f"[{self.ci[i, 0]:.4g}, {self.ci[i, 1]:.4g}]"
            lines.append(f"{name:<16}{self.coef[i]:>11.4g}{self.se[i]:>11.4g}{self.z[i]:>9.3f}"
                         f"{self.pvalues[i]:>10.3g} {ci:>20}")
        if self.first_stage is not None:
            fs = self.first_stage
            lines += ["", "First stage (treatment jump)", "-" * 78]
            for i, name in enumerate(_ROWS):
                ci = f"[{fs['ci'][i, 0]:.4g}, {fs['ci'][i, 1]:.4g}]"
                lines.append(f"{name:<16}{fs['coef'][i]:>11.4g}{fs['se'][i]:>11.4g}{fs['z'][i]:>9.3f}"
                             f"{fs['pvalues'][i]:>10.3g} {ci:>20}")
        if self.coef_covs is not None:
            lines += ["", "Covariate coefficients (common to both sides): "
                      + ", ".join(f"{n}={g:.4g}" for n, g in zip(self.covs_names, self.coef_covs[:, 0]))]
        lines.append("=" * 78)
        lines.append("Report the Robust row: bias-corrected estimate with robust standard error (CCT 2014).")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<RDResults tau_cl={self.tau_cl:.4g} tau_bc={self.tau_bc:.4g} se_rb={self.se_rb:.4g} "
                f"h=({self.h[0]:.3g}, {self.h[1]:.3g}) n_h=({self.n_h[0]}, {self.n_h[1]})>")

    # -- statsmodels view ---------------------------------------------------------
    def local_fit(self, side: str = "right") -> RegressionResultsWrapper:
        """The conventional local fit on one side as a statsmodels ``WLS`` results object.

        Regression of y on ``[1, (x-c), ..., (x-c)^p]`` with weights ``K((x-c)/h)/h`` (times the
        prior weights) on the points with positive weight. Its ``params`` equal ``beta_p_left`` /
        ``beta_p_right``; with ``vce`` hc0/hc2/hc3 (or cr1 with clusters) its covariance equals
        ``V_cl_left`` / ``V_cl_right``. With clusters (cr1) it differs from ``V_cl_*`` by a small-sample
        factor near 1 (1.0006 with 20 clusters and about 400 points per side): statsmodels' CR1
        correction counts degrees of freedom differently; the variances reported by RD are rdrobust's.
        Sharp designs without covariates only.

        Parameters
        ----------
        side : {"left", "right"}
            Side of the cutoff.

        Returns
        -------
        statsmodels RegressionResultsWrapper
            The fitted ``WLS`` results.
        """
        import statsmodels.api as sm

        m = self.model
        if m is None or self.fuzzy or self.coef_covs is not None:
            raise ValueError("local_fit is available for sharp designs without covariates fitted by RD.fit()")
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        s = 0 if side == "left" else 1
        x, y = m._x, m._y
        c = self.cutoff
        on = (x < c) if s == 0 else (x >= c)
        h = self.h[s]
        u = (x - c) / h
        kw = {"triangular": (1 - np.abs(u)), "epanechnikov": 0.75 * (1 - u ** 2),
              "uniform": np.full_like(u, 0.5)}[self.kernel] * (np.abs(u) <= 1) / h
        if m._w is not None:
            kw = m._w * kw
        sel = on & (kw > 0)
        X = np.vander(x[sel] - c, self.p + 1, increasing=True)
        cov = {"hc0": "HC0", "hc1": "HC1", "hc2": "HC2", "hc3": "HC3", "nn": "HC0", "cr1": "cluster"}[self.vce]
        kwargs = {}
        if cov == "cluster":
            kwargs = {"groups": pd.factorize(m._cl[sel])[0]}
        return sm.WLS(y[sel], X, weights=kw[sel]).fit(cov_type=cov, cov_kwds=kwargs or None)


# ----------------------------------------------------------------------------- model
class RD:
    """Local-polynomial regression discontinuity model (sharp, fuzzy, kink; covariates, clusters).

    Parameters
    ----------
    y, x : array-like or str
        Outcome and running variable (column names when ``data`` is given).
    cutoff : float
        The cutoff c; units with ``x >= c`` are treated (right side).
    fuzzy : array-like or str, optional
        Treatment actually received: fuzzy RD (ratio of the outcome jump to the treatment jump).
    covs : array-like, DataFrame, str or list of str, optional
        Covariates entering linearly with a common coefficient on both sides (CCFT 2019);
        collinear columns are dropped when ``covs_drop``.
    cluster : array-like or str, optional
        Cluster ids: cluster-robust (CR1) variances and bandwidths.
    weights : array-like or str, optional
        Non-negative prior weights, multiplying the kernel weights.
    p, q, deriv : int
        Polynomial order of the point estimate (default 1, or ``deriv + 1``), of the bias correction
        (default ``p + 1``) and the derivative to estimate (0: jump; 1: kink).
    h, b : float or (float, float), optional
        Fixed main and bias bandwidths (left, right). Without ``h`` both are chosen by ``bwselect``;
        with ``h`` alone ``b = h / rho`` (``rho`` defaults to 1).
    rho : float, optional
        Ratio h/b.
    kernel : {"triangular", "epanechnikov", "uniform"}
    bwselect : {"mserd", "msetwo", "msesum", "msecomb1", "msecomb2", "cerrd", "certwo", "cersum", "cercomb1", "cercomb2"}
        MSE-optimal (``mse*``) or coverage-error-optimal (``cer*``) bandwidths: one common (``rd``),
        one per side (``two``), for the sum (``sum``), min(rd, sum) (``comb1``) or the median of
        (rd, sum, two) per side (``comb2``).
    vce : {"nn", "hc0", "hc1", "hc2", "hc3", "cr1"}
        Variance: nearest-neighbour residuals (``nnmatch`` neighbours, default), heteroskedasticity-
        robust plug-in residuals, or cluster-robust (the default when ``cluster`` is given).
    nnmatch : int
        Neighbours of the nearest-neighbour residuals (``vce="nn"``).
    level : float
        Confidence level in percent.
    masspoints : {"adjust", "check", "off"}
        With "adjust", a running variable with many repeated values (>= 20 % ties on a side) makes
        the pilot bandwidths hold at least ``bwcheck`` (default 10) distinct values.
    bwcheck : int, optional
        Minimum number of distinct x values inside the pilot bandwidths.
    bwrestrict : bool
        Cap the bandwidths at the range of x.
    scalepar, scaleregul : float
        Scale of the estimand (e.g. a kink design's known factor) and of the regularisation term
        of the bandwidth selectors.
    sharpbw : bool
        Fuzzy designs: choose the bandwidths as for the sharp design of the outcome.
    covs_drop : bool
        Drop collinear covariates (column-pivoted QR) before fitting.
    data : DataFrame, optional
        Source of the columns named in the other arguments.

    Notes
    -----
    Rows with NaN or infinite values in any used variable are dropped (their number is in
    ``RDResults.n_dropped``). Bandwidth selection works on the standardised running variable and is
    scale-equivariant.
    """

    def __init__(self, y: ArrayLike | str, x: ArrayLike | str, cutoff: float = 0.0, *,
                 fuzzy: ArrayLike | str | None = None, covs: ArrayLike | str | Sequence[str] | None = None,
                 cluster: ArrayLike | str | None = None, weights: ArrayLike | str | None = None,
                 p: int | None = None, q: int | None = None, deriv: int | None = None,
                 h: float | Sequence[float] | None = None, b: float | Sequence[float] | None = None,
                 rho: float | None = None, kernel: str = "triangular", bwselect: str = "mserd", vce: str = "nn",
                 nnmatch: int = 3, level: float = 95.0, scalepar: float = 1.0, scaleregul: float = 1.0,
                 sharpbw: bool = False, masspoints: str = "adjust", bwcheck: int | None = None,
                 bwrestrict: bool = True, covs_drop: bool = True, data: pd.DataFrame | None = None):
        _check_aligned(x=x, y=y, fuzzy=fuzzy, covs=covs, cluster=cluster, weights=weights)
        xs = _column(x, "x", data)
        n0 = xs.size
        if n0 == 0:
            raise ValueError("x is empty: no observations to fit")
        x_arr = _numeric(xs, "x (running variable)" if not isinstance(x, str) else f"running variable {x!r}")
        y_arr = _numeric(_column(y, "y", data, n0), "y (outcome)" if not isinstance(y, str) else f"outcome {y!r}")
        t_arr = None if fuzzy is None else _numeric(_column(fuzzy, "fuzzy", data, n0), "fuzzy (treatment)")
        w_arr = None if weights is None else _numeric(_column(weights, "weights", data, n0), "weights")
        cl_raw = None if cluster is None else _column(cluster, "cluster", data, n0)
        Z, znames = _covs_matrix(covs, data, n0)
        if not np.isscalar(cutoff) or not np.isfinite(float(cutoff)):
            raise ValueError(f"cutoff must be one finite number, got {cutoff!r}")
        self.cutoff = float(cutoff)
        (self.p, self.q, self.deriv, self.kernel, self.bwselect, self.vce,
         self.masspoints) = _check_options(p, q, deriv, kernel, bwselect, vce, nnmatch, level, masspoints,
                                           bwcheck, rho, cl_raw is not None)
        self.h = _bandwidth_pair(h, "h")
        self.b = _bandwidth_pair(b, "b")
        if self.b is not None and self.h is None:
            raise ValueError("b (bias bandwidth) was given without h; give h too, or neither to select both")
        if w_arr is not None and np.any(w_arr[np.isfinite(w_arr)] < 0):
            raise ValueError(f"weights must be non-negative; {int(np.sum(w_arr < 0))} negative value(s) found")
        # drop rows with NaN/inf in any variable used
        good = np.isfinite(x_arr) & np.isfinite(y_arr)
        for a in (t_arr, w_arr):
            if a is not None:
                good &= np.isfinite(a)
        if Z is not None:
            good &= np.isfinite(Z).all(axis=1)
        if cl_raw is not None:
            good &= ~pd.isna(pd.Series(cl_raw)).to_numpy()
        self.n_dropped = int(n0 - good.sum())
        if self.n_dropped:
            logger.warning("RD: dropped %d of %d rows with NaN or infinite values", self.n_dropped, n0)
        if not good.any():
            inputs = {"x": x_arr, "y": y_arr, "fuzzy": t_arr, "weights": w_arr}
            inputs.update({f"covariate {nm!r}": Z[:, j] for j, nm in enumerate(znames)} if Z is not None else {})
            empty = [nm for nm, a in inputs.items() if a is not None and not np.isfinite(a).any()]
            if cl_raw is not None and pd.isna(pd.Series(cl_raw)).all():
                empty.append("cluster")
            which = (f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no finite value" if empty
                     else "every row has a NaN or infinite value in x, y or another input")
            raise ValueError(f"no usable rows in {n0}: {which}")
        self._x, self._y = x_arr[good], y_arr[good]
        self._t = None if t_arr is None else t_arr[good]
        self._w = None if w_arr is None else w_arr[good]
        self._cl = None if cl_raw is None else np.asarray(cl_raw)[good]
        if self._cl is not None:
            sides = [pd.unique(self._cl[self._x < self.cutoff]).size, pd.unique(self._cl[self._x >= self.cutoff]).size]
            if min(sides) < 2 and (self._x < self.cutoff).any() and (self._x >= self.cutoff).any():
                raise ValueError(f"cluster-robust variances need at least 2 clusters on each side of the cutoff; "
                                 f"found {sides[0]} below and {sides[1]} at or above it")
        if self._w is not None and not (self._w > 0).any():
            raise ValueError("weights must include at least one positive value")
        self.covs_names = []
        self._Z = None
        if Z is not None:
            Z = Z[good]
            order = np.argsort([len(nm) for nm in znames], kind="stable")
            Z, znames = Z[:, order], [znames[i] for i in order]
            if covs_drop:
                Z, znames = _drop_collinear(Z, znames)
            self._Z, self.covs_names = Z, znames
        self.options = EngineOptions(p=self.p, q=self.q, deriv=self.deriv, kernel=self.kernel, bwselect=self.bwselect,
                                     vce=self.vce, nnmatch=int(nnmatch), level=float(level), scalepar=float(scalepar),
                                     scaleregul=float(scaleregul), masspoints=self.masspoints, bwcheck=bwcheck,
                                     bwrestrict=bool(bwrestrict), sharpbw=bool(sharpbw), rho=rho,
                                     fuzzy=self._t is not None, n_covs=0 if self._Z is None else self._Z.shape[1])

    @property
    def nobs(self) -> int:
        """Number of rows used (after dropping NaN/inf)."""
        return int(self._x.size)

    def _batch(self) -> Batch:
        order = np.argsort(self._x, kind="stable")
        cols = [self._y]
        if self._t is not None:
            cols.append(self._t)
        if self._Z is not None:
            cols += [self._Z[:, j] for j in range(self._Z.shape[1])]
        D = np.column_stack(cols)[order]
        CL, ncl = None, 0
        if self._cl is not None:
            codes, uniq = pd.factorize(self._cl[order])
            CL, ncl = codes.astype(np.int64)[None, :], len(uniq)
        return Batch(X=np.ascontiguousarray(self._x[order][None, :]), D=np.ascontiguousarray(D[None, :, :]),
                     nv=np.array([self._x.size], dtype=np.int64), c=np.array([self.cutoff]),
                     FW=None if self._w is None else np.ascontiguousarray(self._w[order][None, :]),
                     CL=CL, ncl=ncl,
                     h=None if self.h is None else self.h[None, :], b=None if self.b is None else self.b[None, :])

    def fit(self) -> RDResults:
        """Estimate; raise ``ValueError`` with the reason when the data cannot identify the RD.

        Returns
        -------
        RDResults
            Estimates, standard errors, intervals and bandwidths.
        """
        out = run_engine(self._batch(), self.options)
        if not out["ok"][0]:
            raise ValueError(f"RD cannot be estimated: {out['reason'][0]}")
        if out["mass_points"][0]:
            logger.info("RD: mass points detected in the running variable (>= 20 % repeated values on a side)")
        return _results_from(out, 0, self)


def _results_from(out: dict, u: int, model: RD | None, opt: EngineOptions | None = None,
                  cutoff: float | None = None) -> RDResults:
    opt = model.options if model is not None else opt
    fs = None
    if "coef_T" in out:
        fs = {k: out[k + "_T"][u] for k in ("coef", "se", "z", "pv", "ci")}
        fs["pvalues"] = fs.pop("pv")
    return RDResults(
        coef=out["coef"][u], se=out["se"][u], z=out["z"][u], pvalues=out["pv"][u], ci=out["ci"][u],
        h=out["h"][u], b=out["b"][u], n=out["N"][u], n_h=out["N_h"][u], n_b=out["N_b"][u], n_unique=out["M"][u],
        bias=out["bias"][u], tau_cl_sides=out["tau_cl_sides"][u], tau_bc_sides=out["tau_bc_sides"][u],
        beta_p_left=out["beta_p_l"][u][:, 0], beta_p_right=out["beta_p_r"][u][:, 0],
        V_cl_left=out["V_cl_l"][u], V_cl_right=out["V_cl_r"][u], V_rb_left=out["V_rb_l"][u],
        V_rb_right=out["V_rb_r"][u],
        cutoff=float(model.cutoff if model is not None else cutoff), p=opt.p, q=opt.q, deriv=opt.deriv,
        kernel=opt.kernel, bwselect=("manual" if (model is not None and model.h is not None) else opt.bwselect),
        vce=opt.vce, level=opt.level, fuzzy=opt.fuzzy,
        coef_covs=None if out["gamma"] is None else out["gamma"][u],
        covs_names=list(model.covs_names) if model is not None else [],
        first_stage=fs,
        n_clusters=out["n_clusters"][u] if "n_clusters" in out else None,
        n_clusters_total=int(out["n_clusters_total"][u]) if "n_clusters_total" in out else None,
        n_dropped=model.n_dropped if model is not None else 0, mass_points=bool(out["mass_points"][u]),
        model=model,
    )


# ----------------------------------------------------------------------------- batches
def _unit_matrix(a, name: str, n_obs: int, n_units: int, allow_shared: bool = True) -> tuple[np.ndarray, bool]:
    arr = np.asarray(a)
    if arr.ndim == 1:
        if not allow_shared:
            raise ValueError(f"{name} must have shape (n_obs, n_units)")
        if arr.size != n_obs:
            raise ValueError(f"{name} has {arr.size} values but x has {n_obs} rows")
        return arr, True
    if arr.ndim == 2 and arr.shape == (n_obs, n_units):
        return arr, False
    raise ValueError(f"{name} must have shape ({n_obs},) or ({n_obs}, {n_units}), got {arr.shape}")


def fit_many(x: ArrayLike, y: ArrayLike, cutoff: float | ArrayLike = 0.0, *, units: Sequence | None = None,
             fuzzy: ArrayLike | None = None, weights: ArrayLike | None = None, cluster: ArrayLike | None = None,
             covs: ArrayLike | None = None, p: int | None = None, q: int | None = None, deriv: int | None = None,
             h: float | Sequence[float] | None = None, b: float | Sequence[float] | None = None,
             rho: float | None = None, kernel: str = "triangular", bwselect: str = "mserd", vce: str = "nn",
             nnmatch: int = 3, level: float = 95.0, masspoints: str = "adjust", bwcheck: int | None = None,
             bwrestrict: bool = True, scalepar: float = 1.0, scaleregul: float = 1.0, sharpbw: bool = False,
             n_jobs: int = 1, chunk_size: int = 64, progress: bool = False) -> pd.DataFrame:
    """One RD per unit, vectorised over units.

    Parameters
    ----------
    x : array-like, shape (n_obs, n_units)
        Running variable of every unit (column j is unit j); NaN/inf entries are dropped per unit.
    y : array-like, shape (n_obs,) or (n_obs, n_units)
        Outcome, shared by all units or one column per unit.
    cutoff : float or array-like of shape (n_units,)
        Cutoff of every unit.
    units : sequence, optional
        Unit labels (default ``0..n_units-1``).
    fuzzy : array-like, shape (n_obs,) or (n_obs, n_units), optional
        Treatment received (fuzzy RD).
    weights, cluster : array-like, shape (n_obs,), optional
        Prior weights and cluster ids shared by all units.
    covs : array-like, optional
        Covariates (n_obs, n_covs), shared. Units are then fitted one by one with :class:`RD`
        (in ``n_jobs`` processes) instead of vectorised.
    n_jobs : int
        Threads (vectorised path) or processes (covariates) to use; -1 for all cores. Every unit is
        computed on its own, so the results do not depend on ``n_jobs`` or ``chunk_size``.
    chunk_size : int
        Units per chunk. The common design (sharp, no weights or clusters, ``vce='nn'``) runs in a
        fused compiled kernel that reads the columns of ``x`` in place and needs about
        ``200 * n_obs`` bytes of scratch per thread; other designs run vectorised over a chunk and
        need about ``48 * n_obs * chunk_size`` bytes.
    progress : bool
        Show a tqdm progress bar over chunks.

    Other Parameters
    ----------------
    p, q, deriv, h, b, rho, kernel, bwselect, vce
        As in :class:`RD`.
    nnmatch, level, masspoints, bwcheck, bwrestrict, scalepar, scaleregul, sharpbw
        As in :class:`RD`.

    Returns
    -------
    DataFrame
        One row per unit with :data:`BATCH_COLUMNS` (``estimate`` is the conventional estimate
        ``tau_cl``; ``ci_rb_*`` and ``pv_rb`` are robust bias-corrected). A unit that cannot be
        estimated (too few points or distinct values on a side, constant running variable, cutoff
        outside its data, ...) gets NaN and a ``reason``; the batch goes on.
    """
    X = np.asarray(x)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise ValueError(f"x must have shape (n_obs, n_units), got {np.shape(x)}")
    n_obs, n_units = X.shape
    if n_obs == 0 or n_units == 0:
        raise ValueError(f"x is empty (shape {X.shape}); nothing to fit")
    if X.dtype.kind not in "iufb":
        raise ValueError(f"x must be numeric, got dtype {X.dtype}")
    X = X.astype(float, copy=False)
    Y, y_shared = _unit_matrix(y, "y", n_obs, n_units)
    if Y.dtype.kind not in "iufb":
        raise ValueError(f"y must be numeric, got dtype {Y.dtype}")
    Y = Y.astype(float, copy=False)
    cut = np.broadcast_to(np.asarray(cutoff, dtype=float), (n_units,)).copy() if np.ndim(cutoff) == 0 else \
        np.asarray(cutoff, dtype=float)
    if cut.shape != (n_units,):
        raise ValueError(f"cutoff must be a number or have one value per unit ({n_units}), got shape {cut.shape}")
    labels = list(range(n_units)) if units is None else list(units)
    if len(labels) != n_units:
        raise ValueError(f"units has {len(labels)} labels but x has {n_units} columns")
    has_cl = cluster is not None
    p_, q_, d_, kname, bws, v, mp = _check_options(p, q, deriv, kernel, bwselect, vce, nnmatch, level, masspoints,
                                                  bwcheck, rho, has_cl)
    hh = _bandwidth_pair(h, "h")
    bb = _bandwidth_pair(b, "b")
    if bb is not None and hh is None:
        raise ValueError("b (bias bandwidth) was given without h; give h too, or neither to select both")
    common = dict(p=p_, q=q_, deriv=d_, kernel=kname, bwselect=bws, vce=v, level=float(level), masspoints=mp,
                  bwcheck=bwcheck, bwrestrict=bool(bwrestrict), scalepar=float(scalepar),
                  scaleregul=float(scaleregul), sharpbw=bool(sharpbw), rho=rho, nnmatch=int(nnmatch))
    if n_jobs is None or n_jobs == 0:
        n_jobs = 1
    if n_jobs < 0:
        import os
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)

    if covs is not None:
        return _fit_many_loop(X, Y, y_shared, cut, labels, fuzzy, weights, cluster, covs, hh, bb, common, n_jobs,
                              progress)

    T = None
    t_shared = True
    if fuzzy is not None:
        T, t_shared = _unit_matrix(fuzzy, "fuzzy", n_obs, n_units)
        T = T.astype(float)
    W = None
    if weights is not None:
        W = np.asarray(weights, dtype=float).reshape(-1)
        if W.size != n_obs:
            raise ValueError(f"weights has {W.size} values but x has {n_obs} rows")
        if np.any(W[np.isfinite(W)] < 0):
            raise ValueError("weights must be non-negative")
    codes, ncl = None, 0
    if has_cl:
        cl = np.asarray(cluster).reshape(-1)
        if cl.size != n_obs:
            raise ValueError(f"cluster has {cl.size} values but x has {n_obs} rows")
        codes, uniq = pd.factorize(cl)  # NaN -> -1
        ncl = len(uniq)
    opt = EngineOptions(fuzzy=T is not None, n_covs=0, **{k: common[k] for k in common})

    # the common design goes to the fused kernel with the raw columns (it drops NaN rows and sorts)
    fast = _engine.USE_FAST and fast_eligible(opt) and W is None and codes is None and T is None
    if n_jobs > 1:  # at least one chunk per worker; the fused path: four, of at least 16 units
        per = -(-n_units // n_jobs)
        if fast:
            per = max(-(-n_units // (4 * n_jobs)), min(16, per))
        chunk_size = max(1, min(chunk_size, per))
    chunks = [np.arange(s, min(s + chunk_size, n_units)) for s in range(0, n_units, chunk_size)]

    def run_chunk(idx):
        if fast:  # columns read in place
            sl = slice(int(idx[0]), int(idx[-1]) + 1)
            return idx, run_fast(X[:, sl].T, Y[None, :] if y_shared else Y[:, sl].T, False, None, cut[idx], opt,
                                 hh, bb)
        ws = _take_workspace()
        try:
            bt = _chunk_batch(X, Y, y_shared, T, t_shared, W, codes, ncl, cut, idx, hh, bb, ws)
            return idx, run_engine(bt, opt, ws)
        finally:
            _give_workspace(ws)

    results = []
    if n_jobs > 1 and len(chunks) > 1:  # the compiled kernels release the GIL: threads
        it = _thread_pool(n_jobs).map(run_chunk, chunks)
        for r in _progress(it, len(chunks), progress):
            results.append(r)
    else:
        for c in _progress(chunks, len(chunks), progress):
            results.append(run_chunk(c))
    return _batch_frame(results, labels, cut)


_WS_LOCK = threading.Lock()
_POOL: list = []  # [(threads, ThreadPoolExecutor)] shared by the calls of fit_many with n_jobs > 1


def _thread_pool(n: int):
    """A process-wide pool of at least ``n`` threads (created once: no start-up cost per call)."""
    from concurrent.futures import ThreadPoolExecutor

    with _WS_LOCK:
        if not _POOL or _POOL[0][0] < n:
            if _POOL:
                _POOL.pop()[1].shutdown(wait=False)
            _POOL.append((n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="bci_credit-rd")))
        return _POOL[0][1]
_WS_FREE: list = []
_WS_KEEP_BYTES = 64 * 2 ** 20  # keep idle workspaces up to this size between calls


def _take_workspace() -> Workspace:
    with _WS_LOCK:
        return _WS_FREE.pop() if _WS_FREE else Workspace()


def _give_workspace(ws: Workspace) -> None:
    """Return a workspace to the pool (its pages stay mapped, so later chunks and calls do not pay
    first-touch page faults again); large ones and surplus ones are dropped."""
    if sum(b.nbytes for b in ws._bufs.values()) > _WS_KEEP_BYTES:
        return
    with _WS_LOCK:
        if len(_WS_FREE) < 4:
            _WS_FREE.append(ws)


def _progress(it, total, progress):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc="RD fits (chunks)")


def _chunk_batch(X, Y, y_shared, T, t_shared, W, codes, ncl, cut, idx, hh, bb, ws=None) -> Batch:
    from ._rd_kernels import sort_gather

    ws = ws if ws is not None else Workspace()
    U = len(idx)
    n = X.shape[0]
    sl = slice(int(idx[0]), int(idx[-1]) + 1)  # chunks are ranges of units
    Xc = ws.get("Xc", (U, n))
    np.copyto(Xc, X[:, sl].T)
    extra = np.zeros(n, dtype=bool)
    if W is not None:
        extra |= ~np.isfinite(W)
    if codes is not None:
        extra |= codes < 0
    has_bad = bool(extra.any())
    bad = extra[None, :]
    shared = y_shared and (T is None or t_shared)
    if shared:
        cols = [Y] + ([] if T is None else [T])
        Ysrc = np.ascontiguousarray(np.stack(cols, axis=1)[None, :, :])
    else:
        cols = [np.broadcast_to(Y[:, None], (n, U)) if y_shared else Y[:, idx]]
        if T is not None:
            cols.append(np.broadcast_to(T[:, None], (n, U)) if t_shared else T[:, idx])
        Ysrc = np.ascontiguousarray(np.stack(cols, axis=2).transpose(1, 0, 2))
    k = Ysrc.shape[2]
    Xs = ws.get("Xs", (U, n))
    D = ws.get("D", (U, n, k))
    FW = ws.get("FW", (U, n)) if W is not None else np.empty((1, 1))
    CL = ws.get("CL", (U, n), np.int64) if codes is not None else np.empty((1, 1), dtype=np.int64)
    nv = np.empty(U, dtype=np.int64)
    sort_gather(Xc, bad, has_bad, Ysrc, np.ascontiguousarray(W[None, :]) if W is not None else np.empty((1, 1)),
                W is not None, np.ascontiguousarray(codes[None, :].astype(np.int64)) if codes is not None
                else np.empty((1, 1), dtype=np.int64), codes is not None, Xs, D, FW, CL, nv)
    return Batch(X=Xs, D=D, nv=nv, c=np.ascontiguousarray(cut[idx]),
                 FW=FW if W is not None else None, CL=CL if codes is not None else None, ncl=ncl,
                 h=None if hh is None else np.tile(hh, (U, 1)), b=None if bb is None else np.tile(bb, (U, 1)))


def _batch_frame(results: list, labels, cut) -> pd.DataFrame:
    """One DataFrame (:data:`BATCH_COLUMNS`) from the ``(unit indices, engine output)`` of each chunk."""
    idx = np.concatenate([i for i, _ in results])

    def cat(key):
        parts = [o[key] for _, o in results]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    ci = cat("ci")
    pv = cat("pv")
    h, b, N, N_h = cat("h"), cat("b"), cat("N"), cat("N_h")
    reason = np.empty(idx.size, dtype=object)
    reason[:] = cat("reason")
    return pd.DataFrame({
        "unit": [labels[i] for i in idx],
        "estimate": cat("tau_cl"), "tau_bc": cat("tau_bc"), "se_cl": cat("se_cl"), "se_rb": cat("se_rb"),
        "ci_cl_lo": ci[:, 0, 0], "ci_cl_hi": ci[:, 0, 1], "ci_rb_lo": ci[:, 2, 0], "ci_rb_hi": ci[:, 2, 1],
        "pv_cl": pv[:, 0], "pv_rb": pv[:, 2],
        "h_left": h[:, 0], "h_right": h[:, 1], "b_left": b[:, 0], "b_right": b[:, 1],
        "n_left": N[:, 0], "n_right": N[:, 1], "n_h_left": N_h[:, 0], "n_h_right": N_h[:, 1],
        "cutoff": cut[idx], "reason": pd.Series(reason, dtype=object),  # None where fine (not NaN)
    })


def _fit_one_unit(j, X, Y, y_shared, T, t_shared, W, cl, covs, cut, hh, bb, common):
    y = Y if y_shared else Y[:, j]
    t = None if T is None else (T if t_shared else T[:, j])
    row = {"unit": j}
    try:
        kw = {k: common[k] for k in ("p", "q", "deriv", "kernel", "bwselect", "vce", "level", "masspoints",
                                     "bwcheck", "bwrestrict", "scalepar", "scaleregul", "sharpbw", "rho", "nnmatch")}
        if kw["vce"] == "cr1" and cl is None:
            kw["vce"] = "hc1"
        res = RD(y, X[:, j], cut[j], fuzzy=t, weights=W, cluster=cl, covs=covs, h=hh, b=bb, **kw).fit()
        row.update(estimate=res.tau_cl, tau_bc=res.tau_bc, se_cl=res.se_cl, se_rb=res.se_rb,
                   ci_cl_lo=res.ci_cl[0], ci_cl_hi=res.ci_cl[1], ci_rb_lo=res.ci_rb[0], ci_rb_hi=res.ci_rb[1],
                   pv_cl=res.pv_cl, pv_rb=res.pv_rb, h_left=res.h[0], h_right=res.h[1], b_left=res.b[0],
                   b_right=res.b[1], n_left=int(res.n[0]), n_right=int(res.n[1]), n_h_left=int(res.n_h[0]),
                   n_h_right=int(res.n_h[1]), reason=None)
    except ValueError as err:
        msg = str(err)
        row["reason"] = msg.replace("RD cannot be estimated: ", "")
    return row


def _fit_many_loop(X, Y, y_shared, cut, labels, fuzzy, weights, cluster, covs, hh, bb, common, n_jobs, progress):
    n_obs, n_units = X.shape
    T, t_shared = (None, True) if fuzzy is None else _unit_matrix(fuzzy, "fuzzy", n_obs, n_units)
    args = (X, Y, y_shared, T, t_shared, weights, cluster, covs, cut, hh, bb, common)
    if n_jobs > 1:
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=n_jobs)(delayed(_fit_one_unit)(j, *args) for j in range(n_units))
    else:
        rows = [_fit_one_unit(j, *args) for j in _progress(range(n_units), n_units, progress)]
    df = pd.DataFrame(rows).reindex(columns=[c for c in BATCH_COLUMNS if c != "cutoff"])
    df["unit"] = labels
    df.insert(len(df.columns) - 1, "cutoff", cut)
    df["reason"] = df["reason"].astype(object).where(df["reason"].notna(), None)
    return df


def fit_recording(recording: Recording, *, units: Sequence | None = None, default_threshold: float = 1.0,
                  outcome: str = "reward", **kwargs: Any) -> pd.DataFrame:
    """One RD per unit of a :class:`~bci_credit.recording.Recording`.

    The running variable of unit i is ``recording.drive[:, i] - threshold_i`` (threshold from the
    units table; ``default_threshold`` where it is NaN), the cutoff is 0 and the outcome is
    ``recording.windows[outcome]``.

    Parameters
    ----------
    recording : Recording
        Must have ``windows`` and ``drive``.
    units : sequence, optional
        Unit ids to fit (default all).
    default_threshold : float
        Threshold of units whose ``threshold`` is NaN.
    outcome : str
        Column of ``recording.windows``.
    **kwargs
        Passed to :func:`fit_many`.

    Returns
    -------
    DataFrame
        The :func:`fit_many` table, with the ``threshold`` used after ``unit``.
    """
    if recording.windows is None or recording.drive is None:
        raise ValueError("this recording has no windows/drive (running variable); simulate or load one with "
                         "windows and drive to fit RD estimates")
    if outcome not in recording.windows.columns:
        raise ValueError(f"recording.windows has no column {outcome!r}; columns are {list(recording.windows.columns)}")
    rec = recording if units is None else recording.select_units(units)
    thr = rec.units["threshold"].to_numpy(dtype=float)
    thr = np.where(np.isfinite(thr), thr, default_threshold)
    x = np.asarray(rec.drive, dtype=float) - thr[None, :]
    y = _numeric(rec.windows[outcome].to_numpy(), f"windows[{outcome!r}]")
    df = fit_many(x, y, 0.0, units=list(rec.units.index), **kwargs)
    df.insert(1, "threshold", thr)
    return df
