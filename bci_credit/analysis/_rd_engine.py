"""Batched local-polynomial RD engine: bandwidth selection, point estimates, variances.

One code path serves a single fit (:class:`bci_credit.analysis.rd.RD`, a batch of one) and
thousands of units (:func:`bci_credit.analysis.rd.fit_many`): every step works on arrays with a
leading unit axis, the per-observation loops run in the compiled kernels of :mod:`._rd_kernels`, and
small matrix algebra is done on stacks with numpy. Batches of the common design (sharp, no
covariates, prior weights or clusters, ``vce='nn'``; see :func:`fast_eligible`) go instead to the
fused per-unit kernel of :mod:`._rd_fast` (:func:`run_fast`), which computes the same quantities
about four times faster; ``tests/test_rd_fast.py`` checks that the two paths agree.

Written from the published method, not from any GPL source: Calonico, Cattaneo & Titiunik (2014,
Econometrica) for bias correction and robust inference; Calonico, Cattaneo & Farrell (2018 JASA,
2020 EJ) for the MSE- and CER-optimal bandwidths; Calonico, Cattaneo, Farrell & Titiunik (2019 REStat)
for covariates; the nearest-neighbour residuals of Abadie & Imbens (2006). Numerical conventions
(kernel constants, type-2 IQR, standardised pilot, per-side degrees-of-freedom factors, tie blocks in
the nearest-neighbour search, mass-point checks) follow the reference implementation's documented
behaviour, so that the numbers equal rdrobust 2.1.1 (see ``tests/results/make_rd_reference.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from . import _rd_kernels as K

__all__ = ["EngineOptions", "Batch", "Workspace", "run_engine", "run_fast", "fast_eligible", "BWSELECTS",
           "KERNEL_ALIASES", "VCE_CHOICES"]

BWSELECTS = ("mserd", "msetwo", "msesum", "msecomb1", "msecomb2",
             "cerrd", "certwo", "cersum", "cercomb1", "cercomb2")
KERNEL_ALIASES = {"tri": "triangular", "triangular": "triangular", "epa": "epanechnikov",
                  "epanechnikov": "epanechnikov", "uni": "uniform", "uniform": "uniform"}
VCE_CHOICES = ("nn", "hc0", "hc1", "hc2", "hc3", "cr1")
#: pilot-bandwidth constants of the kernels (rule of thumb for the pilot fits)
_C_K = {"triangular": 2.576, "epanechnikov": 2.34, "uniform": 1.843}
_SQEPS = float(np.sqrt(np.finfo(float).eps))
#: send eligible batches to the fused kernel of :mod:`._rd_fast` (False: always the general engine;
#: the tests compare the two)
USE_FAST = True


@dataclass(frozen=True)
class EngineOptions:
    """Validated options of a local-polynomial RD fit (see :class:`~bci_credit.analysis.rd.RD`)."""

    p: int = 1
    q: int = 2
    deriv: int = 0
    kernel: str = "triangular"
    bwselect: str = "mserd"
    vce: str = "nn"
    nnmatch: int = 3
    level: float = 95.0
    scalepar: float = 1.0
    scaleregul: float = 1.0
    masspoints: str = "adjust"
    bwcheck: int | None = None
    bwrestrict: bool = True
    sharpbw: bool = False
    rho: float | None = None
    fuzzy: bool = False
    n_covs: int = 0


@dataclass
class Batch:
    """Data of ``U`` units, each sorted by its running variable.

    ``X`` (U, n): running variable sorted ascending, valid values in ``[:nv[u]]``; ``D`` (U, n, k):
    outcome, then treatment (fuzzy), then covariates; ``FW`` (U, n) prior weights or None; ``CL``
    (U, n) int cluster codes in ``[0, ncl)`` or None; ``c`` (U,) cutoffs; ``h``/``b`` (U, 2) fixed
    bandwidths (left, right) or None.
    """

    X: np.ndarray
    D: np.ndarray
    nv: np.ndarray
    c: np.ndarray
    FW: np.ndarray | None = None
    CL: np.ndarray | None = None
    ncl: int = 0
    h: np.ndarray | None = None
    b: np.ndarray | None = None


class Workspace:
    """Reusable scratch buffers for successive chunks of a batch (one per worker thread).

    Large per-chunk arrays are taken from here instead of freshly allocated, so their memory pages
    are touched once per batch rather than once per chunk.
    """

    def __init__(self):
        self._bufs: dict = {}

    def get(self, name: str, shape, dtype=float) -> np.ndarray:
        """An uninitialised array of ``shape`` backed by the buffer ``name`` (grown when needed)."""
        size = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(max(size, 1), dtype=dtype)
            self._bufs[name] = buf
        return buf[:size].reshape(shape)


def _empty(ws: "Workspace | None", name: str, shape, dtype=float) -> np.ndarray:
    return ws.get(name, shape, dtype) if ws is not None else np.empty(shape, dtype=dtype)


# ----------------------------------------------------------------------------- small helpers
def _hankel(S: np.ndarray, o: int) -> np.ndarray:
    idx = np.add.outer(np.arange(o + 1), np.arange(o + 1))
    return S[:, idx]


def _inv(G: np.ndarray, active: np.ndarray, pinv_fallback: bool) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of a stack of symmetric matrices; ``bad`` flags units whose matrix is singular."""
    out = np.full(G.shape, np.nan)
    bad = np.zeros(G.shape[0], dtype=bool)
    idx = np.flatnonzero(active & np.isfinite(G).all(axis=(1, 2)))
    if idx.size:
        try:
            out[idx] = np.linalg.inv(G[idx])
        except np.linalg.LinAlgError:
            for u in idx:
                try:
                    out[u] = np.linalg.inv(G[u])
                except np.linalg.LinAlgError:
                    if pinv_fallback:
                        out[u] = np.linalg.pinv(G[u])
                    else:
                        bad[u] = True
    return out, bad


def _hankel_meat(H: np.ndarray, m1: int) -> np.ndarray:
    idx = np.add.outer(np.arange(m1), np.arange(m1))
    return H[:, :, :, idx]


def _sandwich(invG: np.ndarray, M: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``invG (sum_ab s_a s_b M_ab) invG`` for every unit."""
    Ms = np.einsum("ua,ub,uabjl->ujl", s, s, M)
    return invG @ Ms @ invG


class _Ctx:
    """Arrays shared by every kernel call of one batch."""

    def __init__(self, bt: Batch, opt: EngineOptions):
        self.bt = bt
        self.opt = opt
        U = bt.X.shape[0]
        self.U = U
        self.kern = K.KERNEL_CODES[opt.kernel]
        self.has_fw = bt.FW is not None
        self.FW = bt.FW if self.has_fw else np.ones((1, 1))
        self.has_cl = bt.CL is not None
        self.CL = bt.CL if self.has_cl else np.zeros((1, 1), dtype=np.int64)
        self.ncl = int(bt.ncl) if self.has_cl else 1
        self.vce_code = {"nn": 0, "hc0": 1, "hc1": 1, "hc2": 2, "hc3": 3, "cr1": 1}[opt.vce]
        self.dummy2 = np.zeros((U, 1))
        self.dummy3 = np.zeros((U, 1, 1))
        self.dummyE = np.zeros((1, 1, 1))
        self.dummyI = np.zeros((1, 1), dtype=np.int64)
        self.dummyR = np.zeros(1, dtype=np.int64)
        self.E = self.SP = None

    def nn_cache(self, nl, nv, active, ws=None):
        """Nearest-neighbour residuals of every point on its side (vce='nn'), computed once."""
        U, n = self.bt.X.shape
        k = self.bt.D.shape[2]
        self.E = _empty(ws, "nnE", (U, n, k))
        self.SP = np.zeros((U, 2), dtype=np.int64)
        K.nn_resid(self.bt.X, self.bt.D, nl, nv, self.opt.nnmatch, active, self.E, self.SP)

    def moments(self, D, side, lo, hi, xw, cw, bw, scale, nS, nT, want_dd, active, *, nn_m1=0, E=None,
                nn_range=None):
        """Kernel moments of one side; with ``nn_m1 > 0`` (vce='nn') also the nearest-neighbour meat
        of a fit with ``nn_m1`` coefficients, returned last as ``M`` (U, k, k, m1, m1)."""
        U = self.U
        k = D.shape[2]
        S = np.empty((U, nS))
        T = np.empty((U, max(nT, 1), k))
        DD = np.empty((U, k, k)) if want_dd else np.empty((U, 1, 1))
        wlo = np.empty(U, dtype=np.int64)
        whi = np.empty(U, dtype=np.int64)
        cnt = np.empty(U, dtype=np.int64)
        nd = np.empty(U, dtype=np.int64)
        nH = 2 * nn_m1 - 1 if nn_m1 > 0 else 0
        H = np.empty((U, k, k, max(nH, 1))) if nH > 0 else np.empty((1, 1, 1, 1))
        use_r = nn_range is not None
        nnlo, nnhi = nn_range if use_r else (self.dummyR, self.dummyR)
        K.moments(xw, D, self.FW, self.has_fw, lo, hi, side, cw,
                  np.ascontiguousarray(bw, dtype=float), self.kern, np.ascontiguousarray(scale, dtype=float),
                  nS, nT, want_dd, active, S, T, DD, wlo, whi, cnt, nd,
                  nH, self.dummyE if nH == 0 else (self.E if E is None else E),
                  self.dummyI if nH == 0 else self.SP,
                  self.opt.nnmatch, nnlo, nnhi, use_r, H)
        M = _hankel_meat(H, nn_m1) if nH > 0 else None
        return S, T, DD, wlo, whi, cnt, nd, M

    def meat(self, D, wlo, whi, side, xw, cw, scale, bw1, m1, active, *, use_q=False, bw2=None, g=None,
             L=None, m2=1, beta_r=None, bwr=None, invG_r=None, mr=1, resfac=None, E=None):
        U = self.U
        k = D.shape[2]
        M = np.empty((U, k, k, m1, m1))
        gcnt = np.empty(U, dtype=np.int64)
        f = np.ascontiguousarray
        K.meat(xw, D, self.FW, self.has_fw, self.CL, self.has_cl, self.ncl, wlo, whi, side, cw,
               f(scale, dtype=float), f(bw1, dtype=float), self.kern, m1, use_q,
               f(bw1 if bw2 is None else bw2, dtype=float),
               f(self.dummy2 if g is None else g), f(self.dummy2 if L is None else L), m2,
               self.vce_code, self.opt.nnmatch,
               self.dummyE if self.E is None else (self.E if E is None else E),
               self.dummyI if self.SP is None else self.SP,
               f(self.dummy3 if beta_r is None else beta_r), f(bw1 if bwr is None else bwr, dtype=float),
               f(self.dummy3 if invG_r is None else invG_r), mr,
               f(np.ones(U) if resfac is None else resfac, dtype=float), active, M, gcnt)
        return M, gcnt

    def resid_meat(self, D, wlo, whi, side, cnt, xw, cw, scale, bw1, m1, active, *, beta, invG, bwr, mr,
                   use_q=False, bw2=None, g=None, L=None, m2=1, M_nn=None, E=None):
        """Meat with the residuals chosen by ``vce`` (nn shares ``M_nn`` when given), including the
        per-side HC1 / CR1 degrees-of-freedom factors (``k = mr`` coefficients)."""
        vce = self.opt.vce
        n = cnt.astype(float)
        if vce == "nn":
            if M_nn is not None:
                return M_nn[..., :m1, :m1], None
            return self.meat(D, wlo, whi, side, xw, cw, scale, bw1, m1, active, use_q=use_q, bw2=bw2, g=g,
                             L=L, m2=m2, E=E)
        resfac = np.sqrt(n / (n - mr)) if vce == "hc1" else np.ones(self.U)
        M, gc = self.meat(D, wlo, whi, side, xw, cw, scale, bw1, m1, active, use_q=use_q, bw2=bw2, g=g, L=L,
                          m2=m2, beta_r=beta, bwr=bwr, invG_r=invG, mr=mr, resfac=resfac)
        if vce == "cr1":
            gf = gc.astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                w = ((n - 1) / (n - mr)) * np.where(gf > 1, gf / (gf - 1), np.nan)
            M = M * w[:, None, None, None, None]
        return M, gc


# ----------------------------------------------------------------------------- bandwidths
class _BW:
    """MSE/CER-optimal bandwidth selection for a batch (standardised running variable)."""

    def __init__(self, ctx: _Ctx, D: np.ndarray, dT: int, dZ: int, st: dict, active: np.ndarray,
                 bwcheck: np.ndarray, cols: list | None = None):
        self.ctx = ctx
        self.opt = opt = ctx.opt
        self.D = D
        self.E = None
        if ctx.E is not None and cols is not None:
            self.E = np.ascontiguousarray(ctx.E[:, :, cols])
        self.dT = dT
        self.dZ = dZ
        self.st = st
        self.active = active.copy()
        c = ctx.bt.c
        xsd = st["sd"]
        self.xsd = xsd
        self.c = c
        with np.errstate(all="ignore"):
            cs = c / xsd
        # working scale of the pilot: standardised running variable, as (x / sd) - (c / sd)
        self.xw = st["Xstd"] if ctx.bt is st["bt_stats"] else ctx.bt.X / xsd[:, None]
        self.cw = cs
        U = ctx.U
        nl, nv = st["nl_fit"], st["nv_fit"]
        self.ranges = ((np.zeros(U, dtype=np.int64), nl), (nl, nv))
        with np.errstate(all="ignore"):  # units already failed (sd = 0) carry NaN, never used
            self._setup(opt, st, c, xsd, cs, U, bwcheck)
        self._vfit_cache: dict = {}
        self._vmom: dict = {}

    def _setup(self, opt, st, c, xsd, cs, U, bwcheck):
        BWp = np.minimum(1.0, (st["iqr"] / xsd) / 1.349)
        if opt.masspoints == "adjust":
            Mtot = (st["Ml"] + st["Mr"]).astype(float)
        else:
            Mtot = (st["Nl"] + st["Nr"]).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            c_bw = _C_K[opt.kernel] * BWp * Mtot ** (-1 / 5)
        self.bw_max_l = np.abs(cs - st["xmin"] / xsd)
        self.bw_max_r = np.abs(cs - st["xmax"] / xsd)
        self.bw_max = np.maximum(self.bw_max_l, self.bw_max_r)
        if opt.bwrestrict:
            c_bw = np.minimum(c_bw, self.bw_max)
        self.has_check = bwcheck > 0
        self.bw_min_l = np.full(U, -np.inf)
        self.bw_min_r = np.full(U, -np.inf)
        if self.has_check.any():
            kl = np.where(self.has_check, np.minimum(bwcheck, st["Ml"]), 0).astype(np.int64)
            kr = np.where(self.has_check, np.minimum(bwcheck, st["Mr"]), 0).astype(np.int64)
            vals = np.empty((U, 2))
            K.kth_distinct(st["X_full"], st["Nl"], st["nv_full"], kl, kr, vals)
            bl = np.abs(vals[:, 0] / xsd - cs) * (1 + _SQEPS)
            br = np.abs(vals[:, 1] / xsd - cs) * (1 + _SQEPS)
            self.bw_min_l = np.where(self.has_check, bl, -np.inf)
            self.bw_min_r = np.where(self.has_check, br, -np.inf)
            c_bw = np.where(self.has_check, np.maximum(c_bw, np.maximum(bl, br)), c_bw)
        self.c_bw = c_bw
        self.range_l = np.abs(c - st["xmin"]) / xsd
        self.range_r = np.abs(c - st["xmax"]) / xsd

    # -- V-fit at the pilot bandwidth --------------------------------------------------
    def _vmoments(self, side):
        if side not in self._vmom:
            q = self.opt.q
            lo, hi = self.ranges[side]
            nn = self.opt.vce == "nn"
            self._vmom[side] = self.ctx.moments(self.D, side, lo, hi, self.xw, self.cw, self.c_bw, self.c_bw,
                                                2 * q + 4, q + 2, self.dZ > 0, self.active,
                                                nn_m1=q + 2 if nn else 0, E=self.E)
        return self._vmom[side]

    def _s_vector(self, beta_nu, T, DD, invG, o, nu):
        """The combination vector s of the outcome columns (sharp, fuzzy, covariates)."""
        dT, dZ = self.dT, self.dZ
        U = self.ctx.U
        fnu = math.factorial(nu)
        if dZ == 0:
            if dT == 0:
                return np.ones((U, 1))
            tY = fnu * beta_nu[:, 0]
            tT = fnu * beta_nu[:, 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.stack([1 / tT, -(tY / tT ** 2)], axis=1)
        gamma = _gamma(T[:, : o + 1, :], DD, invG, dT, dZ)
        if dT == 0:
            return np.concatenate([np.ones((U, 1)), -gamma[:, :, 0]], axis=1)
        colsZ = np.arange(1 + dT, 1 + dT + dZ)
        sY = np.concatenate([np.ones((U, 1)), -gamma[:, :, 0]], axis=1)
        sT = np.concatenate([np.ones((U, 1)), -gamma[:, :, 1]], axis=1)
        tY = fnu * np.einsum("ua,ua->u", sY, np.concatenate([beta_nu[:, :1], beta_nu[:, colsZ]], axis=1))
        tT = fnu * np.einsum("ua,ua->u", sT, np.concatenate([beta_nu[:, 1:2], beta_nu[:, colsZ]], axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.concatenate([(1 / tT)[:, None], (-(tY / tT ** 2))[:, None],
                                   -(1 / tT)[:, None] * gamma[:, :, 0] + (tY / tT ** 2)[:, None] * gamma[:, :, 1]],
                                  axis=1)

    def vfit(self, side, o, nu):
        key = (side, o, nu)
        if key in self._vfit_cache:
            return self._vfit_cache[key]
        S, T, DD, wlo, whi, cnt, nd, M_nn = self._vmoments(side)
        act = self.active & (nd >= o + 1)
        G = _hankel(S, o)
        invG, _ = _inv(G, act, pinv_fallback=True)
        beta = invG @ T[:, : o + 1, :]
        hV = self.c_bw
        beta_nu = beta[:, nu, :] / hV[:, None] ** nu
        s = self._s_vector(beta_nu, T, DD, invG, o, nu)
        M, _ = self.ctx.resid_meat(self.D, wlo, whi, side, cnt, self.xw, self.cw, hV, hV, o + 1, act, beta=beta,
                                   invG=invG, bwr=hV, mr=o + 1, M_nn=M_nn)
        Vz = _sandwich(invG, M, s)
        Vv = Vz[:, nu, nu] / hV ** (2 * nu)
        v = S[:, o + 1: 2 * o + 2]
        BConst = np.einsum("uj,uj->u", invG[:, nu, :], v)
        Vv = np.where(act, Vv, np.nan)
        out = (Vv, BConst, s)
        self._vfit_cache[key] = out
        return out

    # -- one bias/variance term (the "rdrobust_bw" building block) ----------------------
    def term(self, side, o, nu, oB, hB, scale):
        Vv, BConst, s = self.vfit(side, o, nu)
        hB = np.asarray(hB, dtype=float)
        act = self.active & np.isfinite(Vv) & np.isfinite(hB) & (hB > 0)
        lo, hi = self.ranges[side]
        hBs = np.where(act, hB, 1.0)
        nn = self.opt.vce == "nn" and scale > 0
        S, T, DD, wlo, whi, cnt, nd, M_nn = self.ctx.moments(self.D, side, lo, hi, self.xw, self.cw, hBs, hBs,
                                                              2 * oB + 1, oB + 1, False, act,
                                                              nn_m1=oB + 1 if nn else 0, E=self.E)
        act &= nd >= oB + 1
        G = _hankel(S, oB)
        invG, _ = _inv(G, act, pinv_fallback=True)
        beta = invG @ T[:, : oB + 1, :]
        top = beta[:, oB, :] / hBs[:, None] ** oB
        BWreg = np.zeros(self.ctx.U)
        if scale > 0:
            M, _ = self.ctx.resid_meat(self.D, wlo, whi, side, cnt, self.xw, self.cw, hBs, hBs, oB + 1, act,
                                       beta=beta, invG=invG, bwr=hBs, mr=oB + 1, M_nn=M_nn, E=self.E)
            Vz = _sandwich(invG, M, s)
            V_B = Vz[:, oB, oB] / hBs ** (2 * oB)
            BWreg = 3 * BConst ** 2 * V_B
        B = np.sqrt(2 * (o + 1 - nu)) * BConst * np.einsum("ua,ua->u", s, top)
        V = (2 * nu + 1) * self.c_bw ** (2 * nu + 1) * Vv
        R = scale * (2 * (o + 1 - nu)) * BWreg
        nan = np.nan
        return (np.where(act, V, nan), np.where(act, B, nan), np.where(act, R, nan), 1 / (2 * o + 3))

    # -- the selectors ---------------------------------------------------------------
    def select(self) -> tuple[np.ndarray, np.ndarray]:
        opt = self.opt
        p, q, deriv, sr = opt.p, opt.q, opt.deriv, opt.scaleregul
        sel = opt.bwselect
        chk = self.has_check
        Cd = [self.term(s, q + 1, q + 1, q + 2, rng * (1 + _SQEPS), 0)
              for s, rng in ((0, self.range_l), (1, self.range_r))]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            res = {}
            if sel in ("msetwo", "certwo", "msecomb2", "cercomb2"):
                hh, bb = [], []
                for s, bmax, bmin in ((0, self.bw_max_l, self.bw_min_l), (1, self.bw_max_r, self.bw_min_r)):
                    V, B, R, rate = Cd[s]
                    d = (V / B ** 2) ** rate
                    if opt.bwrestrict:
                        d = np.minimum(d, bmax)
                    d = np.where(chk, np.maximum(d, bmin), d)
                    V, B, R, rate = self.term(s, q, p + 1, q + 1, d, sr)
                    bw_b = (V / (B ** 2 + sr * R)) ** rate
                    if opt.bwrestrict:
                        bw_b = np.minimum(bw_b, bmax)
                    V, B, R, rate = self.term(s, p, deriv, q, bw_b, sr)
                    bw_h = (V / (B ** 2 + sr * R)) ** rate
                    if opt.bwrestrict:
                        bw_h = np.minimum(bw_h, bmax)
                    hh.append(self.xsd * bw_h)
                    bb.append(self.xsd * bw_b)
                res["two"] = (np.stack(hh, axis=1), np.stack(bb, axis=1))
            for name, sign in (("sum", 1.0), ("rd", -1.0)):
                need = {"sum": ("msesum", "cersum", "msecomb1", "msecomb2", "cercomb1", "cercomb2"),
                        "rd": ("mserd", "cerrd", "msecomb1", "msecomb2", "cercomb1", "cercomb2")}[name]
                if sel not in need:
                    continue
                (Vl, Bl, _, rate), (Vr, Br, _, _) = Cd
                d = ((Vl + Vr) / (Br + sign * Bl) ** 2) ** rate
                if opt.bwrestrict:
                    d = np.minimum(d, self.bw_max)
                d = np.where(chk, np.maximum(d, np.maximum(self.bw_min_l, self.bw_min_r)), d)
                (Vl, Bl, Rl, rate) = self.term(0, q, p + 1, q + 1, d, sr)
                (Vr, Br, Rr, _) = self.term(1, q, p + 1, q + 1, d, sr)
                bw_b = ((Vl + Vr) / ((Br + sign * Bl) ** 2 + sr * (Rr + Rl))) ** rate
                if opt.bwrestrict:
                    bw_b = np.minimum(bw_b, self.bw_max)
                (Vl, Bl, Rl, rate) = self.term(0, p, deriv, q, bw_b, sr)
                (Vr, Br, Rr, _) = self.term(1, p, deriv, q, bw_b, sr)
                bw_h = ((Vl + Vr) / ((Br + sign * Bl) ** 2 + sr * (Rr + Rl))) ** rate
                if opt.bwrestrict:
                    bw_h = np.minimum(bw_h, self.bw_max)
                hs, bs = self.xsd * bw_h, self.xsd * bw_b
                res[name] = (np.stack([hs, hs], axis=1), np.stack([bs, bs], axis=1))
        base = sel[3:]  # rd, two, sum, comb1, comb2
        if base == "comb1":
            h = np.where(np.isnan(res["rd"][0]) | np.isnan(res["sum"][0]), np.nan,
                         np.minimum(res["rd"][0], res["sum"][0]))
            b = np.where(np.isnan(res["rd"][1]) | np.isnan(res["sum"][1]), np.nan,
                         np.minimum(res["rd"][1], res["sum"][1]))
        elif base == "comb2":
            h = np.median(np.stack([res["rd"][0], res["sum"][0], res["two"][0]]), axis=0)
            b = np.median(np.stack([res["rd"][1], res["sum"][1], res["two"][1]]), axis=0)
        else:
            h, b = res[base]
        if sel.startswith("cer"):
            expo = -(p / ((3 + p) * (3 + 2 * p)))
            if self.ctx.has_cl:
                base_n = (self.st["g_l"] + self.st["g_r"]).astype(float)
            else:
                base_n = (self.st["Nl"] + self.st["Nr"]).astype(float)
            h = h * (base_n ** expo)[:, None]
        h = np.where(self.active[:, None], h, np.nan)
        b = np.where(self.active[:, None], b, np.nan)
        return h, b


def _gamma(T, DD, invG, dT, dZ):
    """Covariate coefficients from partialled-out cross products of one fit (pinv, as with a
    collinearity check)."""
    ZWZ, ZWY = _partial(T, DD, invG, dT, dZ)
    return np.linalg.pinv(ZWZ) @ ZWY


def _partial(T, DD, invG, dT, dZ):
    colsZ = np.arange(1 + dT, 1 + dT + dZ)
    UiGU = np.swapaxes(T[:, :, colsZ], 1, 2) @ invG @ T
    ZWD = DD[:, colsZ, :]
    ZWZ = ZWD[:, :, colsZ] - UiGU[:, :, colsZ]
    ZWY = ZWD[:, :, : 1 + dT] - UiGU[:, :, : 1 + dT]
    return ZWZ, ZWY


# ----------------------------------------------------------------------------- driver
def _side_stats(bt: Batch, opt: EngineOptions, ws=None) -> dict:
    U = bt.X.shape[0]
    oi = np.empty((U, 4), dtype=np.int64)
    of = np.empty((U, 5))
    Xstd = _empty(ws, "Xstd", bt.X.shape)
    K.unit_stats(bt.X, bt.nv, bt.c, oi, of, Xstd)
    st = dict(Xstd=Xstd, Nl=oi[:, 0].copy(), Ml=oi[:, 1].copy(), Mr=oi[:, 2].copy(), xmin=of[:, 0].copy(),
              xmax=of[:, 1].copy(), sd=of[:, 2].copy(), iqr=of[:, 4] - of[:, 3])
    st["Nr"] = bt.nv - st["Nl"]
    return st


def run_engine(bt: Batch, opt: EngineOptions, ws: Workspace | None = None) -> dict:
    """Fit every unit of ``bt``; return a dict of arrays with a leading unit axis.

    Units that cannot be estimated get NaN and a message in ``reason`` (None when fine). ``ws``
    supplies reusable scratch buffers (see :class:`Workspace`). Batches that :func:`fast_eligible`
    accepts go to the fused kernel (:func:`run_fast`), the others to the general path.
    """
    if USE_FAST and fast_eligible(opt, bt):
        return run_fast(bt.X, bt.D[:, :, 0], True, bt.nv, bt.c, opt, bt.h, bt.b)
    return _run_general(bt, opt, ws)


def _run_general(bt: Batch, opt: EngineOptions, ws: Workspace | None = None) -> dict:
    """:func:`run_engine` through the general (vectorised over units) path."""
    U, n = bt.X.shape
    q = opt.q
    k = bt.D.shape[2]
    dT = 1 if opt.fuzzy else 0
    dZ = opt.n_covs
    reason = np.full(U, None, dtype=object)
    ok = np.ones(U, dtype=bool)

    def fail(mask, msg):
        new = ok & np.asarray(mask, dtype=bool)
        if callable(msg):
            for u in np.flatnonzero(new):
                reason[u] = msg(u)
        else:
            reason[new] = msg
        ok[new] = False

    st = _side_stats(bt, opt, ws)
    Nl, Nr, Ml, Mr = st["Nl"], st["Nr"], st["Ml"], st["Mr"]
    c = bt.c
    fail(bt.nv == 0, _REASON[1])
    fail(bt.nv == 1, _REASON[2])
    fail(st["xmin"] == st["xmax"], _REASON[3])
    fail(~((c > st["xmin"]) & (c < st["xmax"])), lambda u: _REASON[4](c[u], st["xmin"][u], st["xmax"][u]))
    fail(Ml < q + 1, lambda u: _REASON[5](Ml[u], q))
    fail(Mr < q + 1, lambda u: _REASON[6](Mr[u], q))
    valid = np.arange(n)[None, :] < bt.nv[:, None]
    left = np.arange(n)[None, :] < Nl[:, None]
    if opt.fuzzy:
        T = bt.D[:, :, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mT_l, vT_l = _masked_mean_var(T, left)
            mT_r, vT_r = _masked_mean_var(T, valid & ~left)
        st["perfect"] = (vT_l == 0) | (vT_r == 0)
        fail((vT_l == 0) & (vT_r == 0) & (np.abs(mT_l - mT_r) < _SQEPS),
             "fuzzy first stage has no variation and no jump at the cutoff (not identified)")
    # mass points
    mass_on = opt.masspoints in ("check", "adjust")
    with np.errstate(divide="ignore", invalid="ignore"):
        mass = (1 - Ml / Nl >= 0.2) | (1 - Mr / Nr >= 0.2)
    bwcheck = np.full(U, opt.bwcheck or 0, dtype=np.int64)
    if mass_on and opt.bwcheck is None and opt.masspoints == "adjust":
        bwcheck = np.where(mass, 10, 0)
    st["mass"] = mass & mass_on
    if not (mass_on or opt.bwcheck is not None):
        st["Ml"], st["Mr"] = Nl.copy(), Nr.copy()
    st["X_full"] = bt.X
    st["bt_stats"] = bt
    st["nv_full"] = bt.nv
    # clusters per side (full sample)
    if bt.CL is not None:
        st["g_l"] = np.array([np.unique(bt.CL[u, : Nl[u]]).size for u in range(U)])
        st["g_r"] = np.array([np.unique(bt.CL[u, Nl[u]: bt.nv[u]]).size for u in range(U)])
    # zero prior weights: they count in N, M and the pilot, never in a fit -> compact them away
    fit_bt = bt
    st["nl_fit"], st["nv_fit"] = Nl.copy(), bt.nv.copy()
    if bt.FW is not None:
        zero = (bt.FW <= 0) & valid
        fail(~((bt.FW > 0) & valid).any(axis=1), "all weights are zero")
        if zero.any():
            fit_bt, nl_fit, nv_fit = _compact(bt, ~zero & valid, Nl)
            st["nl_fit"], st["nv_fit"] = nl_fit, nv_fit
            fail((nl_fit == 0) | (nv_fit - nl_fit == 0), "all positive weights are on one side of the cutoff")
    ctx = _Ctx(fit_bt, opt)
    if opt.vce == "nn":
        ctx.nn_cache(st["nl_fit"], st["nv_fit"], ok, ws)

    # ---- bandwidths
    h = np.full((U, 2), np.nan)
    b = np.full((U, 2), np.nan)
    rho = opt.rho
    if bt.h is not None:
        h[:] = bt.h
        if rho is not None:
            b = h / rho
        elif bt.b is not None:
            b[:] = bt.b
        else:
            b = h.copy()
    else:
        Ntot = Nl + Nr
        small = ok & (Ntot < 20)
        if small.any():
            hmax = np.maximum(np.abs(c - st["xmin"]), np.abs(st["xmax"] - c))
            h[small] = hmax[small, None]
            if rho is not None:
                b[small] = h[small] / rho
            elif bt.b is not None:
                b[small] = bt.b[small]
            else:
                b[small] = h[small]
        sel = ok & ~small
        if sel.any():
            # the pilot of a fuzzy design uses the treatment unless compliance is perfect on a side
            groups = [(sel, fit_bt.D, dT, None)]
            if opt.fuzzy:
                sharp_bw = sel & (st["perfect"] | opt.sharpbw)
                keep = [0] + list(range(2, k))
                groups = [(sel & ~sharp_bw, fit_bt.D, 1, None),
                          (sharp_bw, np.ascontiguousarray(fit_bt.D[:, :, keep]), 0, keep)]
            for act, Dg, dTg, cols in groups:
                if not act.any():
                    continue
                bw = _BW(ctx, Dg, dTg, dZ, st, act, bwcheck, cols)
                hg, bg = bw.select()
                h[act], b[act] = hg[act], bg[act]
                if rho is not None:
                    b[act] = h[act] / rho
            badbw = sel & ~(np.isfinite(h).all(axis=1) & np.isfinite(b).all(axis=1) & (h > 0).all(axis=1)
                            & (b > 0).all(axis=1))
            fail(badbw, _REASON[7])

    out = _estimate(ctx, opt, h, b, ok, fail, st, dT, dZ)
    out.update(h=np.where(ok[:, None], h, np.nan), b=np.where(ok[:, None], b, np.nan),
               N=np.stack([Nl, Nr], axis=1), M=np.stack([st["Ml"], st["Mr"]], axis=1), reason=reason,
               ok=ok.copy(), mass_points=st["mass"])
    return out


#: why a unit cannot be estimated, by failure code (shared with the fused path of :mod:`._rd_fast`)
_REASON = {
    1: "no valid observations",
    2: "only one valid observation",
    3: "the running variable is constant",
    4: lambda c, lo, hi: (f"cutoff {c:g} is outside the range of the running variable [{lo:g}, {hi:g}] "
                          "(all points on one side)"),
    5: lambda m, q: f"too few distinct values of the running variable below the cutoff ({m} < q+1 = {q + 1})",
    6: lambda m, q: f"too few distinct values of the running variable above the cutoff ({m} < q+1 = {q + 1})",
    7: ("bandwidth selection failed: the data near the cutoff do not determine a bandwidth (an outcome "
        "that does not vary, mass points or too few distinct values of the running variable?)"),
    8: ("too few distinct values of the running variable with positive kernel weight to fit the "
        "polynomials on each side (increase h or b)"),
    9: "singular local design matrix",
    10: "the estimate or its variance is not finite (degenerate data near the cutoff)",
}


def _rows(tau_cl, tau_bc, se_cl, se_rb, level):
    """The three inference rows (conventional, bias-corrected, robust): quantile, coef, se, z, pv, ci."""
    quant = -float(special.ndtri(abs((1 - level / 100) / 2)))  # the normal quantile (norm.ppf)
    coef = np.stack([tau_cl, tau_bc, tau_bc], axis=1)
    se = np.stack([se_cl, se_cl, se_rb], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = coef / se
    pv = 2 * special.ndtr(-np.abs(z))  # norm.cdf
    ci = np.stack([coef - quant * se, coef + quant * se], axis=2)
    return quant, coef, se, z, pv, ci


def fast_eligible(opt: EngineOptions, bt: Batch | None = None) -> bool:
    """Whether the fused path of :mod:`._rd_fast` fits these options (and this batch): sharp design,
    no covariates, prior weights or clusters, nearest-neighbour variance."""
    if opt.vce != "nn" or opt.fuzzy or opt.n_covs:
        return False
    return bt is None or (bt.FW is None and bt.CL is None and bt.D.shape[2] == 1)


def _flat(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D float view over the memory of the 2-D ``A`` and the element strides of its two axes
    (``A[u, i] == flat[u * st[0] + i * st[1]]``); a copy when ``A`` is not float64 with positive
    strides."""
    A = np.asarray(A)
    isz = 8
    if (A.dtype != np.float64 or A.ndim != 2 or A.size == 0
            or any(st <= 0 or st % isz for st, m in zip(A.strides, A.shape) if m > 1)):
        A = np.ascontiguousarray(A, dtype=np.float64).reshape(np.shape(A))
    st = np.array([A.strides[0] // isz if A.shape[0] > 1 else 0, A.strides[1] // isz if A.shape[1] > 1 else 1],
                  dtype=np.int64)
    span = 1 + (A.shape[0] - 1) * st[0] + (A.shape[1] - 1) * st[1]
    return np.lib.stride_tricks.as_strided(A, shape=(int(span),), strides=(isz,), writeable=False), st


def run_fast(X: np.ndarray, Y: np.ndarray, presorted: bool, nv: np.ndarray | None, c: np.ndarray,
             opt: EngineOptions, h: np.ndarray | None = None, b: np.ndarray | None = None) -> dict:
    """:func:`run_engine` for a batch that :func:`fast_eligible` accepts, through the fused kernel.

    ``X`` (U, n) running variable (sorted with ``nv`` valid values first when ``presorted``, raw
    otherwise); ``Y`` (1 or U, n) outcome aligned with it; ``c`` (U,) cutoffs; ``h``/``b`` (U, 2)
    fixed bandwidths or None. Returns the same dict as :func:`run_engine`.
    """
    from . import _rd_fast as F

    U, n = X.shape
    Xf, xst = _flat(X)
    Yf, yst = _flat(Y)
    if Y.shape[0] == 1:
        yst[0] = 0
    p = opt.p
    base = opt.bwselect[3:]
    opt_i = np.array([p, opt.q, opt.deriv, K.KERNEL_CODES[opt.kernel],
                      ("rd", "two", "sum", "comb1", "comb2").index(base), opt.bwselect.startswith("cer"),
                      opt.nnmatch, ("off", "check", "adjust").index(opt.masspoints), opt.bwcheck or 0,
                      opt.bwrestrict, opt.rho is not None, h is not None, b is not None], dtype=np.int64)
    opt_f = np.array([opt.scalepar, opt.scaleregul, np.nan if opt.rho is None else opt.rho, _C_K[opt.kernel]])
    hfix = np.zeros((U, 2)) if h is None else np.ascontiguousarray(np.broadcast_to(h, (U, 2)), dtype=float)
    bfix = np.zeros((U, 2)) if b is None else np.ascontiguousarray(np.broadcast_to(b, (U, 2)), dtype=float)
    oi = np.empty((U, len(F.OI)), dtype=np.int64)
    of = np.empty((U, len(F.OF)))
    BP = np.empty((U, 2, p + 1))
    VCL = np.empty((U, 2, p + 1, p + 1))
    VRB = np.empty((U, 2, p + 1, p + 1))
    nv_in = np.zeros(U, dtype=np.int64) if nv is None else np.ascontiguousarray(nv, dtype=np.int64)
    F.fit_units(Xf, xst, Yf, yst, n, bool(presorted), nv_in, np.ascontiguousarray(c, dtype=float), opt_i, opt_f,
                hfix, bfix, oi, of, BP, VCL, VRB)
    out = _fast_output(oi, of, BP, VCL, VRB, c, opt)
    redo = np.flatnonzero(oi[:, 0] == -1)
    if redo.size:
        _refit_general(out, redo, X, Y, presorted, nv, c, opt, h, b)
    return out


def _refit_general(out: dict, units: np.ndarray, X, Y, presorted, nv, c, opt, h, b) -> None:
    """Fit ``units`` of a :func:`run_fast` batch with the general path (one by one) into ``out``."""
    for u in units:
        x = np.asarray(X[u], dtype=float)
        y = np.asarray(Y[0 if Y.shape[0] == 1 else u], dtype=float)
        if presorted:
            x, y = x[: nv[u]], y[: nv[u]]
        else:
            keep = np.isfinite(x) & np.isfinite(y)
            x, y = x[keep], y[keep]
            order = np.argsort(x, kind="stable")
            x, y = x[order], y[order]
        bt = Batch(X=x[None, :], D=y[None, :, None], nv=np.array([x.size], dtype=np.int64),
                   c=np.array([c[u]], dtype=float), h=None if h is None else np.asarray(h, float)[u: u + 1],
                   b=None if b is None else np.asarray(b, float)[u: u + 1])
        one = _run_general(bt, opt)
        for key, val in out.items():
            if isinstance(val, np.ndarray) and val.ndim >= 1 and val.shape[0] == len(out["ok"]):
                val[u] = one[key][0]


def _fast_output(oi, of, BP, VCL, VRB, c, opt) -> dict:
    """The :func:`run_engine` dict from the outputs of :func:`._rd_fast.fit_units`."""
    from . import _rd_fast as F

    U = oi.shape[0]
    I = {k: oi[:, j] for j, k in enumerate(F.OI)}
    Fo = {k: of[:, j] for j, k in enumerate(F.OF)}
    code = I["code"]
    ok = code == 0
    reason = np.full(U, None, dtype=object)
    for u in np.flatnonzero(code > 0):
        msg = _REASON[int(code[u])]
        if code[u] == 4:
            msg = msg(c[u], Fo["xmin"][u], Fo["xmax"][u])
        elif code[u] in (5, 6):
            msg = msg(int(I["Ml" if code[u] == 5 else "Mr"][u]), opt.q)
        reason[u] = msg
    N = np.stack([I["Nl"], I["Nr"]], axis=1)
    if opt.masspoints in ("check", "adjust") or opt.bwcheck is not None:
        M = np.stack([I["Ml"], I["Mr"]], axis=1)
    else:
        M = N.copy()
    quant, coef, se, z, pv, ci = _rows(Fo["tau_cl"], Fo["tau_bc"], Fo["se_cl"], Fo["se_rb"], opt.level)
    bad = ~ok

    def nanify(a):
        a = np.array(a, dtype=float, copy=True)
        a[bad] = np.nan
        return a

    side_cl = np.stack([Fo["cl_l"], Fo["cl_r"]], axis=1)
    side_bc = np.stack([Fo["bc_l"], Fo["bc_r"]], axis=1)
    return dict(
        coef=nanify(coef), se=nanify(se), z=nanify(z), pv=nanify(pv), ci=nanify(ci),
        tau_cl=nanify(Fo["tau_cl"]), tau_bc=nanify(Fo["tau_bc"]), se_cl=nanify(Fo["se_cl"]),
        se_rb=nanify(Fo["se_rb"]),
        N_h=np.stack([I["Nh_l"], I["Nh_r"]], axis=1) * ok[:, None],
        N_b=np.stack([I["Nb_l"], I["Nb_r"]], axis=1) * ok[:, None],
        bias=nanify(side_cl - side_bc), tau_cl_sides=nanify(side_cl), tau_bc_sides=nanify(side_bc),
        beta_p_l=nanify(BP[:, 0, :, None]), beta_p_r=nanify(BP[:, 1, :, None]),
        V_cl_l=nanify(VCL[:, 0]), V_cl_r=nanify(VCL[:, 1]), V_rb_l=nanify(VRB[:, 0]), V_rb_r=nanify(VRB[:, 1]),
        gamma=None, quant=quant,
        h=nanify(np.stack([Fo["h_l"], Fo["h_r"]], axis=1)), b=nanify(np.stack([Fo["b_l"], Fo["b_r"]], axis=1)),
        N=N, M=M, reason=reason, ok=ok, mass_points=I["mass"].astype(bool),
    )


def _masked_mean_var(A, mask):
    cnt = mask.sum(axis=1)
    m = np.where(mask, A, 0.0).sum(axis=1) / cnt
    v = np.where(mask, (A - m[:, None]) ** 2, 0.0).sum(axis=1) / cnt
    return m, v


def _compact(bt: Batch, keep: np.ndarray, Nl: np.ndarray):
    U, n = bt.X.shape
    X = np.full_like(bt.X, np.nan)
    D = np.zeros_like(bt.D)
    FW = np.zeros_like(bt.FW)
    CL = None if bt.CL is None else np.zeros_like(bt.CL)
    nv = keep.sum(axis=1)
    nl = (keep & (np.arange(n)[None, :] < Nl[:, None])).sum(axis=1)
    for u in range(U):
        idx = np.flatnonzero(keep[u])
        X[u, : idx.size] = bt.X[u, idx]
        D[u, : idx.size] = bt.D[u, idx]
        FW[u, : idx.size] = bt.FW[u, idx]
        if CL is not None:
            CL[u, : idx.size] = bt.CL[u, idx]
    return Batch(X=X, D=D, nv=nv, c=bt.c, FW=FW, CL=CL, ncl=bt.ncl), nl, nv


def _estimate(ctx: _Ctx, opt: EngineOptions, h, b, ok, fail, st, dT, dZ) -> dict:
    U = ctx.U
    p, q, deriv = opt.p, opt.q, opt.deriv
    bt = ctx.bt
    D = bt.D
    X = bt.X
    c = bt.c
    nl, nv = st["nl_fit"], st["nv_fit"]
    ranges = ((np.zeros(U, dtype=np.int64), nl), (nl, nv))
    act = ok & np.isfinite(h).all(axis=1) & np.isfinite(b).all(axis=1)
    sides = []
    nn = opt.vce == "nn"
    for s in (0, 1):
        hs = np.where(act, h[:, s], 1.0)
        bs = np.where(act, b[:, s], 1.0)
        lo, hi = ranges[s]
        Sb, Tb, _, wlo_b, whi_b, cnt_b, nd_b, _ = ctx.moments(D, s, lo, hi, X, c, bs, hs, 2 * q + 1, q + 1,
                                                              False, act)
        wlo_h = np.empty(U, dtype=np.int64)
        whi_h = np.empty(U, dtype=np.int64)
        K.window_bounds(X, lo, hi, s, c, hs, ctx.kern, act, wlo_h, whi_h)
        wlo = np.where(hs > bs, wlo_h, wlo_b)
        whi = np.where(hs > bs, whi_h, whi_b)
        Sh, Th, DDh, _, _, cnt_h, nd_h, M_cl_nn = ctx.moments(D, s, lo, hi, X, c, hs, hs, 2 * p + 2, p + 1,
                                                              dZ > 0, act, nn_m1=p + 1 if nn else 0,
                                                              nn_range=(wlo, whi))
        sides.append(dict(side=s, hs=hs, bs=bs, Sh=Sh, Th=Th, DDh=DDh, Sb=Sb, Tb=Tb, N_h=cnt_h, N_b=cnt_b,
                          wlo=wlo, whi=whi, nd_h=nd_h, nd_b=nd_b, M_cl_nn=M_cl_nn))
    for s in sides:
        fail(act & ((s["nd_h"] < p + 1) | (s["nd_b"] < q + 1)), _REASON[8])
    act &= ok
    for s in sides:
        s["invGp"], bad_p = _inv(_hankel(s["Sh"], p), act, pinv_fallback=False)
        s["invGq"], bad_q = _inv(_hankel(s["Sb"], q), act, pinv_fallback=False)
        fail(bad_p | bad_q, _REASON[9])
    act &= ok
    for s in sides:
        invGp, invGq, Th, Tb = s["invGp"], s["invGq"], s["Th"], s["Tb"]
        Lz = s["Sh"][:, p + 1: 2 * p + 2]
        gq = invGq[:, p + 1, :]
        s["Lz"], s["gq"] = Lz, gq
        s["beta_p_z"] = invGp @ Th
        s["beta_q_z"] = invGq @ Tb
        gTb = np.einsum("uj,uja->ua", gq, Tb)
        s["beta_bc_z"] = invGp @ (Th - Lz[:, :, None] * gTb[:, None, :])
        scale = s["hs"][:, None] ** np.arange(p + 1)[None, :]
        s["pow"] = scale
        s["beta_p"] = s["beta_p_z"] / scale[:, :, None]
        s["beta_bc"] = s["beta_bc_z"] / scale[:, :, None]
        n_e = (s["whi"] - s["wlo"])
        s["n_e"] = n_e
        # meats: conventional (p-fit residuals, h-weights) and robust (q-fit residuals, Q score)
        M_cl, g_cl = ctx.resid_meat(D, s["wlo"], s["whi"], s["side"], n_e, X, c, s["hs"], s["hs"], p + 1, act,
                                    beta=s["beta_p_z"], invG=invGp, bwr=s["hs"], mr=p + 1, M_nn=s["M_cl_nn"])
        M_rb, _ = ctx.resid_meat(D, s["wlo"], s["whi"], s["side"], n_e, X, c, s["hs"], s["hs"], p + 1, act,
                              beta=s["beta_q_z"], invG=invGq, bwr=s["bs"], mr=q + 1, use_q=True,
                              bw2=s["bs"], g=gq, L=Lz, m2=q + 1)
        s["M_cl"], s["M_rb"] = M_cl, M_rb
        s["g"] = g_cl

    fac = math.factorial(deriv)
    sp = opt.scalepar
    bl, br = sides[0], sides[1]
    beta_p = br["beta_p"] - bl["beta_p"]
    beta_bc = br["beta_bc"] - bl["beta_bc"]
    gamma = None
    sV_T = None
    tau_T = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if dZ == 0:
            tY_cl, tY_bc = sp * fac * beta_p[:, deriv, 0], sp * fac * beta_bc[:, deriv, 0]
            side_cl = [sp * fac * s["beta_p"][:, deriv, 0] for s in sides]
            side_bc = [sp * fac * s["beta_bc"][:, deriv, 0] for s in sides]
            bias = [side_cl[i] - side_bc[i] for i in (0, 1)]
            if dT:
                tT_cl, tT_bc = fac * beta_p[:, deriv, 1], fac * beta_bc[:, deriv, 1]
                tau_cl = tY_cl / tT_cl
                sY = np.stack([1 / tT_cl, -(tY_cl / tT_cl ** 2)], axis=1)
                tau_bc = tau_cl - (sY[:, 0] * (tY_cl - tY_bc) + sY[:, 1] * (tT_cl - tT_bc))
                sV_T = np.tile(np.array([0.0, 1.0]), (U, 1))
                tT_side_cl = [fac * s["beta_p"][:, deriv, 1] for s in sides]
                tT_side_bc = [fac * s["beta_bc"][:, deriv, 1] for s in sides]
                bias = [sY[:, 0] * (side_cl[i] - side_bc[i]) + sY[:, 1] * (tT_side_cl[i] - tT_side_bc[i])
                        for i in (0, 1)]
                tau_T = (tT_cl, tT_bc)
            else:
                tau_cl, tau_bc = tY_cl, tY_bc
                sY = np.ones((U, 1))
        else:
            ZWZ = np.zeros((U, dZ, dZ))
            ZWY = np.zeros((U, dZ, 1 + dT))
            for s in sides:
                zz, zy = _partial(s["Th"], s["DDh"], s["invGp"], dT, dZ)
                ZWZ = ZWZ + zz
                ZWY = ZWY + zy
            ZWZ = np.where(act[:, None, None], ZWZ, 0.0)
            ZWY = np.where(act[:, None, None], ZWY, 0.0)
            gamma = np.linalg.pinv(ZWZ) @ ZWY
            sY = np.concatenate([np.ones((U, 1)), -gamma[:, :, 0]], axis=1)
            colsZ = np.arange(1 + dT, 1 + dT + dZ)
            if not dT:
                def lin(vec, bmat):
                    return sp * fac * np.einsum("ua,ua->u", vec, bmat[:, deriv, :])
                tau_cl, tau_bc = lin(sY, beta_p), lin(sY, beta_bc)
                side_cl = [lin(sY, s["beta_p"]) for s in sides]
                side_bc = [lin(sY, s["beta_bc"]) for s in sides]
                bias = [side_cl[i] - side_bc[i] for i in (0, 1)]
            else:
                sT = np.concatenate([np.ones((U, 1)), -gamma[:, :, 1]], axis=1)
                sV_T = np.concatenate([np.zeros((U, 1)), np.ones((U, 1)), -gamma[:, :, 1]], axis=1)

                def part(vec, bmat, col, scl):
                    bb = np.concatenate([bmat[:, deriv, col:col + 1], bmat[:, deriv, colsZ]], axis=1)
                    return scl * fac * np.einsum("ua,ua->u", vec, bb)
                tY_cl, tT_cl = part(sY, beta_p, 0, sp), part(sT, beta_p, 1, 1.0)
                tY_bc, tT_bc = part(sY, beta_bc, 0, sp), part(sT, beta_bc, 1, 1.0)
                sc = [(part(sY, s["beta_p"], 0, sp), part(sT, s["beta_p"], 1, 1.0),
                       part(sY, s["beta_bc"], 0, sp), part(sT, s["beta_bc"], 1, 1.0)) for s in sides]
                tau_cl = tY_cl / tT_cl
                s2 = np.stack([1 / tT_cl, -(tY_cl / tT_cl ** 2)], axis=1)
                tau_bc = tau_cl - (s2[:, 0] * (tY_cl - tY_bc) + s2[:, 1] * (tT_cl - tT_bc))
                bias = [s2[:, 0] * (a[0] - a[2]) + s2[:, 1] * (a[1] - a[3]) for a in sc]
                side_cl = [a[0] for a in sc]  # outcome side estimates, as in the sharp design
                side_bc = [a[2] for a in sc]
                sY = np.concatenate([s2, -(1 / tT_cl)[:, None] * gamma[:, :, 0]
                                     + (tY_cl / tT_cl ** 2)[:, None] * gamma[:, :, 1]], axis=1)
                tau_T = (tT_cl, tT_bc)

    def var(M_key, svec):
        tot = np.zeros(U)
        mats = []
        for s in sides:
            Vz = _sandwich(s["invGp"], s[M_key], svec)
            Vraw = Vz / (s["pow"][:, :, None] * s["pow"][:, None, :])
            mats.append(Vraw)
            tot = tot + Vraw[:, deriv, deriv]
        return tot, mats

    V_cl, Vcl_mats = var("M_cl", sY)
    V_rb, Vrb_mats = var("M_rb", sY)
    with np.errstate(invalid="ignore"):
        se_cl = np.sqrt(sp ** 2 * fac ** 2 * V_cl)
        se_rb = np.sqrt(sp ** 2 * fac ** 2 * V_rb)
    fail(act & ~(np.isfinite(se_cl) & np.isfinite(se_rb) & np.isfinite(tau_cl) & np.isfinite(tau_bc)),
         _REASON[10])
    quant, coef, se, z, pv, ci = _rows(tau_cl, tau_bc, se_cl, se_rb, opt.level)
    bad = ~ok

    def nanify(a):
        a = np.array(a, dtype=float, copy=True)
        a[bad] = np.nan
        return a

    out = dict(
        coef=nanify(coef), se=nanify(se), z=nanify(z), pv=nanify(pv), ci=nanify(ci),
        tau_cl=nanify(tau_cl), tau_bc=nanify(tau_bc), se_cl=nanify(se_cl), se_rb=nanify(se_rb),
        N_h=np.stack([bl["N_h"], br["N_h"]], axis=1) * ok[:, None],
        N_b=np.stack([bl["N_b"], br["N_b"]], axis=1) * ok[:, None],
        bias=nanify(np.stack(bias, axis=1)),
        tau_cl_sides=nanify(np.stack(side_cl, axis=1)), tau_bc_sides=nanify(np.stack(side_bc, axis=1)),
        beta_p_l=nanify(bl["beta_p"]), beta_p_r=nanify(br["beta_p"]),
        V_cl_l=nanify(Vcl_mats[0]), V_cl_r=nanify(Vcl_mats[1]),
        V_rb_l=nanify(Vrb_mats[0]), V_rb_r=nanify(Vrb_mats[1]),
        gamma=None if gamma is None else nanify(gamma),
        quant=quant,
    )
    if tau_T is not None:
        VT_cl, _ = var("M_cl", sV_T)
        VT_rb, _ = var("M_rb", sV_T)
        seT_cl = np.sqrt(fac ** 2 * VT_cl)
        seT_rb = np.sqrt(fac ** 2 * VT_rb)
        cT = np.stack([tau_T[0], tau_T[1], tau_T[1]], axis=1)
        sT_ = np.stack([seT_cl, seT_cl, seT_rb], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            zT = cT / sT_
        out.update(coef_T=nanify(cT), se_T=nanify(sT_), z_T=nanify(zT),
                   pv_T=nanify(2 * special.ndtr(-np.abs(zT))),
                   ci_T=nanify(np.stack([cT - quant * sT_, cT + quant * sT_], axis=2)))
    if ctx.has_cl:
        out["n_clusters"] = np.stack([bl["g"], br["g"]], axis=1) * ok[:, None]
        tot = np.zeros(U, dtype=np.int64)
        for u in np.flatnonzero(ok):
            tot[u] = np.unique(np.concatenate([bt.CL[u, bl["wlo"][u]:bl["whi"][u]],
                                               bt.CL[u, br["wlo"][u]:br["whi"][u]]])).size
        out["n_clusters_total"] = tot
    return out
