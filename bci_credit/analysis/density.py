"""Manipulation (density continuity) test at an RD cutoff: local-polynomial density estimation.

Cattaneo, Jansson & Ma (2020), "Simple local polynomial density estimators", *JASA* 115, and
(2018) "Manipulation testing based on density discontinuity", *Stata Journal* 18. The empirical
distribution function F_n(x_i) = (rank_i)/(n - 1) is regressed on a polynomial in ``x - c`` on each
side of the cutoff with kernel weights; the slope at the cutoff estimates the density on that side.
The test statistic compares the two sides with a jackknife (default) or plug-in standard error.
Numbers equal rddensity 3.0 (``tests/test_density.py``); written from the papers, not from GPL code.

    >>> res = RDDensity(x, cutoff=0.0).fit()   # doctest: +SKIP
    >>> res.pvalue, res.f_left, res.f_right     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
from numpy.polynomial import Polynomial
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["RDDensity", "RDDensityResults"]

logger = logging.getLogger("bci_credit")

_KERNELS = {"triangular": "triangular", "tri": "triangular", "epanechnikov": "epanechnikov", "epa": "epanechnikov",
            "uniform": "uniform", "uni": "uniform"}
#: constants of the Gaussian-reference pilot bandwidths (CJM 2020, supplement), indexed by p = 1..7:
#: for the (p+1)-th derivative (``_CB``) and for the density (``_CC``)
_CB = (25884.444444494150957, 3430865.4551236177795, 845007948.04262602329, 330631733667.03808594,
       187774809656037.3125, 145729502641999264.0, 146013502974449876992.0)
_CC = (4.8000000000000246914, 548.57142857155463389, 100800.00000020420703, 29558225.458100609481,
       12896196859.612621307, 7890871468221.609375, 6467911284037581.0)


# ----------------------------------------------------------------------------- kernel constants
def _kpoly(kernel: str) -> Polynomial:
    """The kernel on [0, 1] as a polynomial."""
    return {"triangular": Polynomial([1.0, -1.0]), "epanechnikov": Polynomial([0.75, 0.0, -0.75]),
            "uniform": Polynomial([0.5])}[kernel]


def _mono(m: int) -> Polynomial:
    return Polynomial([0.0] * m + [1.0])


@lru_cache(maxsize=None)
def _S(p: int, kernel: str) -> np.ndarray:
    """S_ij = int_0^1 K(u) u^(i+j) du, i, j = 0..p."""
    K = _kpoly(kernel)
    S = np.empty((p + 1, p + 1))
    for i in range(p + 1):
        for j in range(p + 1):
            P = (K * _mono(i + j)).integ()
            S[i, j] = P(1.0) - P(0.0)
    return S


@lru_cache(maxsize=None)
def _C(k: int, p: int, kernel: str) -> np.ndarray:
    """C_i = int_0^1 K(u) u^(i+k) du, i = 0..p (column vector)."""
    K = _kpoly(kernel)
    out = np.empty((p + 1, 1))
    for i in range(p + 1):
        P = (K * _mono(i + k)).integ()
        out[i, 0] = P(1.0) - P(0.0)
    return out


@lru_cache(maxsize=None)
def _G(p: int, kernel: str) -> np.ndarray:
    """Variance kernel constant of the distribution-function regression on [0, 1]:
    G_ij = int int_{x<y} x^(i+1) y^j K(x)K(y) + int int_{x>y} x^i y^(j+1) K(x)K(y), i, j = 0..p."""
    K = _kpoly(kernel)
    G = np.empty((p + 1, p + 1))
    for i in range(p + 1):
        for j in range(p + 1):
            inner1 = (_mono(i + 1) * K).integ()          # int_0^y
            a = inner1 - inner1(0.0)
            t1 = (a * _mono(j) * K).integ()
            inner2 = (_mono(i) * K).integ()              # int_y^1
            b = inner2(1.0) - inner2
            t2 = (b * _mono(j + 1) * K).integ()
            G[i, j] = (t1(1.0) - t1(0.0)) + (t2(1.0) - t2(0.0))
    return G


def _insert_zero(M: np.ndarray, pos: int = 1) -> np.ndarray:
    out = np.insert(M, pos, 0.0, axis=0)
    if M.shape[1] > 1:
        out = np.insert(out, pos, 0.0, axis=1)
    return out


def _psi(p: int) -> np.ndarray:
    d = [1.0, 0.0, 0.0] + [(-1.0) ** j for j in range(2, p + 1)]
    P = np.diag(d)
    P[1, 2] = P[2, 1] = -1.0
    return P


def _hermite(x: float, p: int) -> float:
    """Probabilists' Hermite polynomial He_p(x)."""
    return float(np.polynomial.hermite_e.hermeval(x, [0] * p + [1]))


# ----------------------------------------------------------------------------- the local fit
def _fit(Y, X, n, nlh, hl, hr, p, s, kernel, fitselect, vce, mass):
    """Local-polynomial fit of the distribution function on both sides.

    ``X`` sorted and centred at the cutoff, restricted to [-hl, hr]; ``Y`` the empirical CDF there.
    Returns a (4, 4) array: rows left, right, diff, sum; columns estimate of the first derivative
    (density), jackknife variance, plug-in variance, estimate of the ``s``-th coefficient.
    """
    out = np.full((4, 4), np.nan)
    nh = X.size
    if nh == 0:
        return out
    left = np.arange(nh) < nlh
    ul = X / hl
    ur = X / hr
    if kernel == "uniform":
        W = np.where(left, 1 / (2 * hl), 1 / (2 * hr))
    elif kernel == "triangular":
        W = np.where(left, (1 + ul) / hl, (1 - ur) / hr)
    else:
        W = np.where(left, 0.75 * (1 - ul ** 2) / hl, 0.75 * (1 - ur ** 2) / hr)
    if fitselect == "restricted":
        Xp = np.zeros((nh, p + 2))
        Xp[:, 0] = 1.0
        Xp[left, 1] = ul[left]
        Xp[~left, 2] = ur[~left]
        for j in range(3, p + 2):
            Xp[:, j] = np.where(left, ul ** (j - 1), ur ** (j - 1))
        v = np.array([0, 1, 1] + list(range(2, p + 1)), dtype=float)
        hp = hl ** v
    else:
        Xp = np.zeros((nh, 2 * p + 2))
        hp = np.empty(2 * p + 2)
        for pw in range(p + 1):
            Xp[left, 2 * pw] = ul[left] ** pw
            Xp[~left, 2 * pw + 1] = ur[~left] ** pw
            hp[2 * pw] = hl ** pw
            hp[2 * pw + 1] = hr ** pw
    XpW = Xp * W[:, None]
    try:
        Sinv = np.linalg.inv(XpW.T @ Xp)
    except np.linalg.LinAlgError:
        return out
    b = (Sinv @ (XpW.T @ Y)) / hp
    if fitselect == "restricted":
        out[:, 0] = [b[1], b[2], b[2] - b[1], b[2] + b[1]]
        out[:, 3] = [b[s + 1], b[s + 1], 0.0, 2 * b[s + 1]]
        i1, i2 = 1, 2
    else:
        out[:, 0] = [b[2], b[3], b[3] - b[2], b[3] + b[2]]
        out[:, 3] = [b[2 * s], b[2 * s + 1], b[2 * s + 1] - b[2 * s], b[2 * s + 1] + b[2 * s]]
        i1, i2 = 2, 3
    if vce == "jackknife":
        # leave-one-out influence: L_i = sum_{k > i} XpW_k / (n - 1) (tie blocks share their first value)
        tail = np.cumsum(XpW[::-1], axis=0)[::-1]
        L = np.vstack([tail[1:], np.zeros((1, XpW.shape[1]))]) / (n - 1)
        if mass:
            first = np.r_[True, X[1:] != X[:-1]]
            starts = np.flatnonzero(first)
            L = np.repeat(L[starts], np.diff(np.r_[starts, nh]), axis=0)
        V = (Sinv @ (L.T @ L) @ Sinv) / np.outer(hp, hp)
        out[:, 1] = [V[i1, i1], V[i2, i2], V[i1, i1] + V[i2, i2] - 2 * V[i1, i2],
                     V[i1, i1] + V[i2, i2] + 2 * V[i1, i2]]
    else:
        if fitselect == "unrestricted":
            Sk = np.linalg.inv(_S(p, kernel))
            V = Sk @ _G(p, kernel) @ Sk
            vl = out[0, 0] * V[1, 1] / (n * hl)
            vr = out[1, 0] * V[1, 1] / (n * hr)
            out[:, 2] = [vl, vr, vl + vr, vl + vr]
        else:
            S = _insert_zero(_S(p, kernel))
            G = _insert_zero(_G(p, kernel))
            Psi = _psi(p)
            Sm, Gm = Psi @ S @ Psi, Psi @ G @ Psi
            A = np.linalg.inv(out[0, 0] * Sm + out[1, 0] * S)
            V = A @ (out[0, 0] ** 3 * Gm + out[1, 0] ** 3 * G) @ A
            out[:, 2] = np.array([V[1, 1], V[2, 2], V[1, 1] + V[2, 2] - 2 * V[1, 2],
                                  V[1, 1] + V[2, 2] + 2 * V[1, 2]]) / (n * hl)
    neg = out[:, 1:3] < 0
    out[:, 1:3][neg] = np.nan
    return out


# ----------------------------------------------------------------------------- results / model
@dataclass
class RDDensityResults:
    """Results of :class:`RDDensity`.

    ``f_left``/``f_right``: density estimates on each side of the cutoff (standard errors
    ``se_left``/``se_right``); ``diff = f_right - f_left``; ``se`` the standard error of ``diff``
    from the chosen ``vce``; ``t``, ``pvalue`` the test of ``diff == 0``; ``h``, ``n``, ``n_h``:
    bandwidths, observations and observations within the bandwidth (left, right); the other fields
    are the settings used.
    """

    f_left: float
    f_right: float
    diff: float
    se_left: float
    se_right: float
    se: float
    t: float
    pvalue: float
    h: np.ndarray
    n: np.ndarray
    n_h: np.ndarray
    cutoff: float
    p: int
    q: int
    kernel: str
    fitselect: str
    vce: str
    bwselect: str
    mass_points: bool
    n_dropped: int = 0

    def to_frame(self) -> pd.DataFrame:
        """Left/right/difference rows with estimate and standard error; the test in the last row."""
        return pd.DataFrame({"estimate": [self.f_left, self.f_right, self.diff],
                             "se": [self.se_left, self.se_right, self.se],
                             "t": [np.nan, np.nan, self.t], "pvalue": [np.nan, np.nan, self.pvalue]},
                            index=pd.Index(["density left", "density right", "difference"], name="quantity"))

    def to_dict(self) -> dict:
        """JSON-friendly summary."""
        return {"f_left": self.f_left, "f_right": self.f_right, "diff": self.diff, "se": self.se, "t": self.t,
                "pvalue": self.pvalue, "h": self.h.tolist(), "n": [int(v) for v in self.n],
                "n_h": [int(v) for v in self.n_h], "cutoff": self.cutoff, "p": self.p, "q": self.q,
                "kernel": self.kernel, "fitselect": self.fitselect, "vce": self.vce, "bwselect": self.bwselect}

    def summary(self) -> str:
        """Readable text table of the manipulation test."""
        lines = [f"Density (manipulation) test at cutoff {self.cutoff:g} (Cattaneo-Jansson-Ma)", "=" * 70,
                 f"{'Observations':<28}{int(self.n.sum()):>14d}", f"{'Model':<28}{self.fitselect:>14}",
                 f"{'Kernel':<28}{self.kernel:>14}", f"{'Variance':<28}{self.vce:>14}",
                 f"{'Bandwidth selection':<28}{self.bwselect:>14}", f"{'Order p (bandwidth), q (fit)':<28}"
                 f"{f'{self.p}, {self.q}':>14}", "",
                 f"{'':<28}{'Left':>14}{'Right':>14}", "-" * 56,
                 f"{'Observations':<28}{int(self.n[0]):>14d}{int(self.n[1]):>14d}",
                 f"{'Effective obs':<28}{int(self.n_h[0]):>14d}{int(self.n_h[1]):>14d}",
                 f"{'Bandwidth':<28}{self.h[0]:>14.4g}{self.h[1]:>14.4g}",
                 f"{'Density':<28}{self.f_left:>14.4g}{self.f_right:>14.4g}",
                 f"{'Std. error':<28}{self.se_left:>14.4g}{self.se_right:>14.4g}", "",
                 f"Difference {self.diff:.4g} (se {self.se:.4g}): T = {self.t:.4f}, p = {self.pvalue:.4g}"]
        if self.mass_points:
            lines.append("Repeated values in x: estimates adjusted for mass points.")
        lines.append("=" * 70)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class RDDensity:
    """Local-polynomial density discontinuity (manipulation) test at a cutoff.

    Parameters
    ----------
    x : array-like
        Running variable (NaN/inf dropped with a count).
    cutoff : float
        Cutoff c (must lie within the range of x).
    p : int
        Polynomial order for the bandwidth (1..7, default 2).
    q : int, optional
        Polynomial order of the density estimate (default ``p + 1``; at least ``p``).
    kernel : {"triangular", "epanechnikov", "uniform"}
    fitselect : {"unrestricted", "restricted"}
        Separate fits on each side, or a fit that shares the higher-order terms.
    vce : {"jackknife", "plugin"}
    h : float or (float, float), optional
        Fixed bandwidths (left, right); otherwise chosen by ``bwselect``.
    bwselect : {"comb", "each", "diff", "sum"}
        MSE-optimal bandwidth for each density, for their difference, for their sum, or a
        combination (median of each/diff/sum per side; min(diff, sum) when restricted).
    regularize : bool
        Keep bandwidths within the data and with at least ``n_local_min`` observations and
        ``n_unique_min`` distinct values on each side.
    n_local_min, n_unique_min : int, optional
        Those minimums (default 20 + p + 1).
    mass_points : bool
        Adjust for repeated values of x.
    """

    def __init__(self, x: ArrayLike, cutoff: float = 0.0, *, p: int = 2, q: int | None = None,
                 kernel: str = "triangular", fitselect: str = "unrestricted", vce: str = "jackknife",
                 h: float | Sequence[float] | None = None, bwselect: str = "comb",
                 regularize: bool = True, n_local_min: int | None = None, n_unique_min: int | None = None,
                 mass_points: bool = True):
        arr = np.asarray(x)
        if arr.ndim != 1:
            arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
        if arr.ndim != 1:
            raise ValueError(f"x must be one-dimensional, got shape {np.shape(x)}")
        if arr.size == 0:
            raise ValueError("x is empty: no observations for the density test")
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            raise ValueError("x (running variable) must be numeric") from None
        good = np.isfinite(arr)
        self.n_dropped = int((~good).sum())
        if self.n_dropped:
            logger.warning("RDDensity: dropped %d non-finite values", self.n_dropped)
        self._x = np.sort(arr[good])
        if self._x.size < 2:
            raise ValueError("the density test needs at least two finite observations")
        if not np.isfinite(cutoff):
            raise ValueError(f"cutoff must be a finite number, got {cutoff!r}")
        self.cutoff = float(cutoff)
        if not (self._x[0] <= self.cutoff <= self._x[-1]):
            raise ValueError(f"cutoff {cutoff:g} is outside the range of x [{self._x[0]:g}, {self._x[-1]:g}]")
        if not (isinstance(p, (int, np.integer)) and 1 <= p <= 7):
            raise ValueError(f"p must be an integer between 1 and 7, got {p!r}")
        self.p = int(p)
        self.q = self.p + 1 if q in (None, 0) else int(q)
        if self.q < self.p:
            raise ValueError(f"q ({q}) cannot be smaller than p ({p})")
        k = _KERNELS.get(str(kernel).lower())
        if k is None:
            raise ValueError(f"kernel must be triangular, epanechnikov or uniform; got {kernel!r}")
        self.kernel = k
        if fitselect not in ("unrestricted", "restricted"):
            raise ValueError(f"fitselect must be 'unrestricted' or 'restricted', got {fitselect!r}")
        self.fitselect = fitselect
        if vce not in ("jackknife", "plugin"):
            raise ValueError(f"vce must be 'jackknife' or 'plugin', got {vce!r}")
        self.vce = vce
        if bwselect not in ("comb", "each", "diff", "sum"):
            raise ValueError(f"bwselect must be comb, each, diff or sum; got {bwselect!r}")
        if fitselect == "restricted" and bwselect == "each":
            raise ValueError("bwselect='each' is not available with fitselect='restricted' (use diff, sum or comb)")
        self.bwselect = bwselect
        self.h = None
        if h is not None:
            hh = np.asarray(h, dtype=float).reshape(-1)
            if hh.size not in (1, 2) or np.any(~np.isfinite(hh)) or np.any(hh <= 0):
                raise ValueError(f"h must be one or two positive numbers, got {h!r}")
            self.h = np.array([hh[0], hh[-1]])
        self.regularize = bool(regularize)
        self.n_local_min = 20 + self.p + 1 if n_local_min is None else int(math.ceil(n_local_min))
        self.n_unique_min = 20 + self.p + 1 if n_unique_min is None else int(math.ceil(n_unique_min))
        self.mass_points = bool(mass_points)

    # -- pieces shared by bandwidth selection and estimation --------------------------
    def _prep(self):
        X = self._x
        n = X.size
        c = self.cutoff
        nl = int(np.searchsorted(X, c, side="left"))
        last = np.r_[X[1:] != X[:-1], True]
        U = X[last]
        mass = self.mass_points and U.size != n
        Y = np.arange(n) / (n - 1)
        if mass:
            idx_last = np.flatnonzero(last)
            Y = np.repeat(Y[idx_last], np.diff(np.r_[-1, idx_last]))
        return X - c, U - c, Y, n, nl, mass

    def bandwidths(self) -> pd.DataFrame:
        """MSE-optimal bandwidths.

        Returns
        -------
        DataFrame
            Rows left, right, diff, sum; columns bw, variance, biassq.
        """
        Xc, Uc, Y, n, nl, mass = self._prep()
        p = self.p
        mu = float(np.mean(Xc))
        sd = float(np.std(Xc, ddof=1))
        z = mu / sd
        fb = 1 / (_hermite(z, p + 2) ** 2 * stats.norm.pdf(z))
        fc = 1 / (_hermite(z, p) ** 2 * stats.norm.pdf(z))
        bn = ((2 * p + 1) / 4 * fb * _CB[p - 1] / n) ** (1 / (2 * p + 5)) * sd
        cn = (1 / (2 * p) * fc * _CC[p - 1] / n) ** (1 / (2 * p + 1)) * sd
        absl = np.sort(np.abs(Xc[Xc < 0]))
        xr = Xc[Xc >= 0]
        absul = np.sort(np.abs(Uc[Uc < 0]))
        ur = Uc[Uc >= 0]

        def kth(a, k):
            return a[min(k, a.size) - 1] if a.size else np.nan

        if self.regularize:
            bn = min(bn, np.max(np.abs(Uc)))
            cn = min(cn, np.max(np.abs(Uc)))
            if self.n_local_min > 0:
                bn = max(bn, kth(absl, 20 + p + 3), kth(xr, 20 + p + 3))
                cn = max(cn, kth(absl, 20 + p + 1), kth(xr, 20 + p + 1))
            if self.n_unique_min > 0:
                bn = max(bn, kth(absul, 20 + p + 3), kth(ur, 20 + p + 3))
                cn = max(cn, kth(absul, 20 + p + 1), kth(ur, 20 + p + 1))

        def local(bw, order, s):
            m = np.abs(Xc) <= bw
            Xm = Xc[m]
            return _fit(Y[m], Xm, n, int(np.sum(Xm < 0)), bw, bw, order, s, self.kernel, self.fitselect, self.vce,
                        mass)

        fb_ = local(bn, p + 2, p + 1)
        fc_ = local(cn, p, 1)
        hn = np.zeros((4, 3))
        hn[:, 1] = n * cn * fc_[:, 2 if self.vce == "plugin" else 1]
        if self.fitselect == "unrestricted":
            bc = (np.linalg.inv(_S(p, self.kernel)) @ _C(p + 1, p, self.kernel))[1, 0]
            bl = fb_[0, 3] * bc * (-1) ** p
            br = fb_[1, 3] * bc
        else:
            Sp = _insert_zero(_S(p, self.kernel))
            Cp = _insert_zero(_C(p + 1, p, self.kernel))
            Psi = _psi(p)
            Sinv = np.linalg.inv(fc_[1, 0] * Sp + fc_[0, 0] * Psi @ Sp @ Psi)
            Cm = fb_[0, 3] * (fc_[1, 0] * Cp + (-1) ** (p + 1) * fc_[0, 0] * Psi @ Cp)
            tmp = Sinv @ Cm
            bl, br = tmp[1, 0], tmp[2, 0]
        hn[:, 2] = np.array([bl, br, br - bl, br + bl]) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            hn[:, 0] = (1 / (2 * p) * hn[:, 1] / hn[:, 2] / n) ** (1 / (2 * p + 1))
        for i in range(4):
            if hn[i, 1] < 0:
                hn[i, 0] = 0.0
                hn[i, 1] = np.nan
            if np.isnan(hn[i, 0]):
                hn[i, 0] = 0.0
        if self.regularize:
            lr, rr = abs(Uc[0]), Uc[-1]
            hn[0, 0] = min(hn[0, 0], lr)
            hn[1, 0] = min(hn[1, 0], rr)
            hn[2, 0] = min(hn[2, 0], max(lr, rr))
            hn[3, 0] = min(hn[3, 0], max(lr, rr))
            for arr_l, arr_r, kmin in ((absl, xr, self.n_local_min), (absul, ur, self.n_unique_min)):
                if kmin > 0:
                    hl, hr = kth(arr_l, kmin), kth(arr_r, kmin)
                    hn[0, 0] = max(hn[0, 0], hl)
                    hn[1, 0] = max(hn[1, 0], hr)
                    hn[2, 0] = max(hn[2, 0], hl, hr)
                    hn[3, 0] = max(hn[3, 0], hl, hr)
        return pd.DataFrame(hn, columns=["bw", "variance", "biassq"], index=["left", "right", "diff", "sum"])

    def fit(self) -> RDDensityResults:
        """Estimate both densities and test their equality.

        Returns
        -------
        RDDensityResults
            Densities on each side, their difference, its standard error and p-value.
        """
        Xc, _, Y, n, nl, mass = self._prep()
        if nl == 0 or nl == n:
            raise ValueError("the density test needs observations on both sides of the cutoff")
        if self.h is not None:
            hl, hr = self.h
            bws = "manual"
        else:
            bw = self.bandwidths()["bw"].to_numpy()
            bws = self.bwselect
            if self.fitselect == "unrestricted":
                pick = {"each": (bw[0], bw[1]), "diff": (bw[2], bw[2]), "sum": (bw[3], bw[3]),
                        "comb": (float(np.median([bw[0], bw[2], bw[3]])), float(np.median([bw[1], bw[2], bw[3]])))}
            else:
                m = min(bw[2], bw[3])
                pick = {"diff": (bw[2], bw[2]), "sum": (bw[3], bw[3]), "comb": (m, m)}
            hl, hr = pick[self.bwselect]
            if not (hl > 0 and hr > 0):
                raise ValueError("density bandwidth selection failed (too few distinct values near the cutoff)")
        m = (Xc >= -hl) & (Xc <= hr)
        Xh, Yh = Xc[m], Y[m]
        nlh = int(np.sum(Xh < 0))
        res = _fit(Yh, Xh, n, nlh, hl, hr, self.q, 1, self.kernel, self.fitselect, self.vce, mass)
        col = 1 if self.vce == "jackknife" else 2
        se = np.sqrt(res[:, col])
        t = res[2, 0] / se[2]
        pv = 2 * (1 - stats.norm.cdf(abs(t)))
        return RDDensityResults(
            f_left=float(res[0, 0]), f_right=float(res[1, 0]), diff=float(res[2, 0]), se_left=float(se[0]),
            se_right=float(se[1]), se=float(se[2]), t=float(t), pvalue=float(pv), h=np.array([hl, hr], dtype=float),
            n=np.array([nl, n - nl]), n_h=np.array([nlh, Xh.size - nlh]), cutoff=self.cutoff, p=self.p, q=self.q,
            kernel=self.kernel, fitselect=self.fitselect, vce=self.vce, bwselect=bws, mass_points=bool(mass),
            n_dropped=self.n_dropped)
