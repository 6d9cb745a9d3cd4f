"""Compiled inner loops of the local-polynomial RD engine (numba, ``nogil``).

Written from the published method (Calonico, Cattaneo & Titiunik 2014; Calonico, Cattaneo & Farrell
2018/2020; the nearest-neighbour variance of Abadie & Imbens 2006 as used by CCT); see
``shared/reference/rd_methods.md`` §4. Every routine works on a *batch* of units at once: row ``u`` of
``X`` (shape ``(n_units, n_obs)``) holds one unit's running variable **sorted ascending**, valid values
first and padding after position ``nv[u]``; ``D[u, i, :]`` holds the outcome columns aligned with it
(outcome, then treatment for fuzzy designs, then covariates).

Local polynomial fits use the scaled basis ``z = (x - c)/scale`` (in the working scale of ``X``) so
that the Gram matrices stay well conditioned; the caller converts coefficients back with
``scale**j``. Which points get positive kernel weight is decided with the exact expression
``K((x - c)/bw) > 0`` (no reciprocal), so the estimation samples are the same as in rdrobust.

The kernels release the GIL, so the batch driver can run chunks of units in threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["sort_gather", "unit_stats", "kth_distinct", "nn_resid", "window_bounds", "moments", "meat",
           "KERNEL_CODES"]

#: kernel name -> code used by the compiled routines
KERNEL_CODES = {"triangular": 0, "epanechnikov": 1, "uniform": 2}

_FM = {"reassoc", "nsz", "contract"}  # allow vectorised reductions (summation order only)


@njit(cache=True, nogil=True, error_model="numpy")
def _kfun(u, kern):
    """Kernel value K(u) (without the 1/h factor)."""
    a = abs(u)
    inside = 1.0 if a <= 1.0 else 0.0
    if kern == 0:
        return (1.0 - a) * inside
    elif kern == 1:
        return 0.75 * (1.0 - u * u) * inside
    return 0.5 * inside


# ----------------------------------------------------------------------------- sorting
@njit(cache=True, nogil=True, error_model="numpy")
def _radix_argsort(keys, n, order, tmp_o, tmp_k):
    """Stable argsort of ``keys[:n]`` (uint64, permuted in place): LSD radix on the top 33 bits
    (three 11-bit digits), then an insertion pass that orders keys sharing those bits."""
    nb = 2048
    mask = np.uint64(nb - 1)
    cnt = np.zeros((3, nb), dtype=np.int64)
    for i in range(n):
        kv = keys[i]
        for d in range(3):
            cnt[d, (kv >> np.uint64(31 + 11 * d)) & mask] += 1
    for i in range(n):
        order[i] = i
    pos = np.empty(nb, dtype=np.int64)
    parity = 0
    for d in range(3):
        skip = False
        for j in range(nb):
            if cnt[d, j] != 0:
                skip = cnt[d, j] == n
                break
        if skip:
            continue
        acc = 0
        for j in range(nb):
            pos[j] = acc
            acc += cnt[d, j]
        sh = np.uint64(31 + 11 * d)
        if parity == 0:
            for i in range(n):
                kv = keys[i]
                dg = (kv >> sh) & mask
                p = pos[dg]
                pos[dg] = p + 1
                tmp_o[p] = order[i]
                tmp_k[p] = kv
        else:
            for i in range(n):
                kv = tmp_k[i]
                dg = (kv >> sh) & mask
                p = pos[dg]
                pos[dg] = p + 1
                order[p] = tmp_o[i]
                keys[p] = kv
        parity = 1 - parity
    if parity == 1:
        for i in range(n):
            order[i] = tmp_o[i]
            keys[i] = tmp_k[i]
    # insertion pass: only keys with equal top bits can be out of order (stable for ties)
    for i in range(1, n):
        kv = keys[i]
        if kv < keys[i - 1]:
            ov = order[i]
            j = i - 1
            while j >= 0 and keys[j] > kv:
                keys[j + 1] = keys[j]
                order[j + 1] = order[j]
                j -= 1
            keys[j + 1] = kv
            order[j + 1] = ov


@njit(cache=True, nogil=True, error_model="numpy")
def sort_gather(Xc, bad, has_bad, Ysrc, Wsrc, has_w, Csrc, has_c, X, D, FW, CL, nv):
    """Sort each unit's valid running-variable values and gather the aligned columns.

    ``Xc`` (U, n): raw running variable; ``bad`` (1 or U, n): rows to drop besides those with a
    non-finite x or outcome column (used when ``has_bad``); ``Ysrc`` (Uy, n, k) with ``Uy`` 1
    (shared by all units) or U; ``Wsrc`` / ``Csrc`` (1 or U, n) weights / cluster codes.
    Writes ``X`` (U, n) sorted (NaN padding), ``D`` (U, n, k), ``FW``, ``CL`` and ``nv``.
    """
    U, n = Xc.shape
    k = Ysrc.shape[2]
    keys = np.empty(n, dtype=np.uint64)
    tk = np.empty(n, dtype=np.uint64)
    idx = np.empty(n, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    to = np.empty(n, dtype=np.int64)
    xv = np.empty(n)
    sign = np.uint64(1) << np.uint64(63)
    for u in range(U):
        m = 0
        ub = u if bad.shape[0] > 1 else 0
        uy0 = u if Ysrc.shape[0] > 1 else 0
        for i in range(n):
            xi = Xc[u, i]
            if not np.isfinite(xi):
                continue
            if has_bad and bad[ub, i]:
                continue
            okr = True
            for a in range(k):
                if not np.isfinite(Ysrc[uy0, i, a]):
                    okr = False
            if not okr:
                continue
            idx[m] = i
            xv[m] = xi
            m += 1
        bits = xv.view(np.uint64)
        for i in range(m):
            b = bits[i]
            keys[i] = ~b if (b & sign) != 0 else (b | sign)
        _radix_argsort(keys, m, order, to, tk)
        uy = u if Ysrc.shape[0] > 1 else 0
        uw = u if Wsrc.shape[0] > 1 else 0
        uc = u if Csrc.shape[0] > 1 else 0
        for r in range(m):
            src = idx[order[r]]
            X[u, r] = Xc[u, src]
            for a in range(k):
                D[u, r, a] = Ysrc[uy, src, a]
            if has_w:
                FW[u, r] = Wsrc[uw, src]
            if has_c:
                CL[u, r] = Csrc[uc, src]
        for r in range(m, n):
            X[u, r] = np.nan
            for a in range(k):
                D[u, r, a] = 0.0
            if has_w:
                FW[u, r] = 0.0
            if has_c:
                CL[u, r] = 0
        nv[u] = m


# ----------------------------------------------------------------------------- summaries
@njit(cache=True, nogil=True, error_model="numpy")
def unit_stats(X, nv, c, out_i, out_f, Xstd):
    """Per-unit summaries of the sorted running variable.

    ``out_i[u] = (n_left, distinct_left, distinct_right, has_ties)`` and
    ``out_f[u] = (min, max, sd (ddof=1), q25, q75)`` with Hyndman-Fan type-2 quantiles;
    ``Xstd[u, i] = X[u, i] / sd`` (the working scale of the bandwidth selector).
    """
    U = X.shape[0]
    for u in range(U):
        n = nv[u]
        for j in range(4):
            out_i[u, j] = 0
        for j in range(5):
            out_f[u, j] = np.nan
        if n <= 0:
            continue
        nl = 0
        while nl < n and X[u, nl] < c[u]:
            nl += 1
        dl = 0
        dr = 0
        for i in range(n):
            if i == 0 or X[u, i] != X[u, i - 1]:
                if i < nl:
                    dl += 1
                else:
                    dr += 1
            elif i == nl:
                dr += 1
        out_i[u, 0] = nl
        out_i[u, 1] = dl
        out_i[u, 2] = dr
        out_i[u, 3] = 1 if dl + dr < n else 0
        out_f[u, 0] = X[u, 0]
        out_f[u, 1] = X[u, n - 1]
        m = 0.0
        for i in range(n):
            m += X[u, i]
        m /= n
        ss = 0.0
        for i in range(n):
            d = X[u, i] - m
            ss += d * d
        sd = np.sqrt(ss / (n - 1)) if n > 1 else np.nan
        out_f[u, 2] = sd
        for i in range(n):
            Xstd[u, i] = X[u, i] / sd
        for jq in range(2):
            prob = 0.25 if jq == 0 else 0.75
            hq = n * prob
            j = int(np.floor(hq))
            if hq == j:
                v = 0.5 * (X[u, j - 1] + X[u, j]) if j >= 1 else X[u, 0]
            else:
                v = X[u, j]
            out_f[u, 3 + jq] = v


@njit(cache=True, nogil=True, error_model="numpy")
def kth_distinct(X, nl, nv, kl, kr, out):
    """The ``kl``-th distinct value below the cutoff counting from the cutoff (``out[u, 0]``) and
    the ``kr``-th distinct value at/above it (``out[u, 1]``); NaN when ``k <= 0``."""
    U = X.shape[0]
    for u in range(U):
        out[u, 0] = np.nan
        out[u, 1] = np.nan
        k = kl[u]
        cnt = 0
        i = nl[u] - 1
        while k > 0 and i >= 0:
            if i == nl[u] - 1 or X[u, i] != X[u, i + 1]:
                cnt += 1
                if cnt == k:
                    out[u, 0] = X[u, i]
                    break
            i -= 1
        k = kr[u]
        cnt = 0
        i = nl[u]
        while k > 0 and i < nv[u]:
            if i == nl[u] or X[u, i] != X[u, i - 1]:
                cnt += 1
                if cnt == k:
                    out[u, 1] = X[u, i]
                    break
            i += 1


# ----------------------------------------------------------------------------- nearest neighbours
@njit(cache=True, nogil=True, error_model="numpy")
def _nn_window(x, i0, i1, a, b, cap):
    """Neighbour window ``[L, R)`` of the tie block ``[i0, i1)`` of the sorted 1-D ``x``, inside
    ``[a, b)``.

    Whole tie blocks enter at once; the nearer block enters first; blocks at equal distance
    (relative tolerance sqrt(eps)) enter together; stop once at least ``cap`` neighbours are in.
    """
    Lw = i0
    Rw = i1
    xp = x[i0]
    while Rw - Lw - 1 < cap:
        if Lw == a:
            go_r = True
            go_l = False
        elif Rw == b:
            go_r = False
            go_l = True
        else:
            dl = xp - x[Lw - 1]
            dr = x[Rw] - xp
            tol = (dl if dl > dr else dr) * 1.4901161193847656e-08
            go_r = not (dr - dl > tol)
            go_l = not (dl - dr > tol)
        if go_r:
            xr = x[Rw]
            Rw += 1
            while Rw < b and x[Rw] == xr:
                Rw += 1
        if go_l:
            xl = x[Lw - 1]
            Lw -= 1
            while Lw > a and x[Lw - 1] == xl:
                Lw -= 1
    return Lw, Rw


@njit(cache=True, nogil=True, error_model="numpy")
def _nn_side_noties(x, y, a, b, cap, e):
    """:func:`_nn_side` for one outcome column and no repeated x values (the common case)."""
    spl = 0
    spr = 0
    nt = 2 * cap + 3
    sq = np.empty(nt)
    inv = np.empty(nt)
    for J in range(1, nt):
        sq[J] = np.sqrt(J / (J + 1.0))
        inv[J] = 1.0 / J
    for i in range(a, b):
        Lw = i
        Rw = i + 1
        xi = x[i]
        while Rw - Lw - 1 < cap:
            if Lw == a:
                Rw += 1
            elif Rw == b:
                Lw -= 1
            else:
                dl = xi - x[Lw - 1]
                dr = x[Rw] - xi
                tol = (dl if dl > dr else dr) * 1.4901161193847656e-08
                if dl - dr > tol:
                    Rw += 1
                elif dr - dl > tol:
                    Lw -= 1
                else:
                    Rw += 1
                    Lw -= 1
        J = Rw - Lw - 1
        s = 0.0
        for j in range(Lw, Rw):
            s += y[j]
        if J < nt:
            e[i] = sq[J] * (y[i] - (s - y[i]) * inv[J])
        else:
            e[i] = np.sqrt(J / (J + 1.0)) * (y[i] - (s - y[i]) / J)
        if i - Lw > spl:
            spl = i - Lw
        if Rw - i > spr:
            spr = Rw - i
    return spl, spr


@njit(cache=True, nogil=True, error_model="numpy")
def _nn_side(x, Dm, a, b, cap, Em):
    """Nearest-neighbour residuals of the points ``[a, b)`` (1-D sorted ``x``, ``Dm`` (n, k)).

    Returns the largest extent of a neighbour window below (``i - L``) and above (``R - i``) a point.
    """
    k = Dm.shape[1]
    if k == 1:
        ties = False
        for i in range(a + 1, b):
            if x[i] == x[i - 1]:
                ties = True
                break
        if not ties:
            return _nn_side_noties(x, Dm[:, 0], a, b, cap, Em[:, 0])
    spl = 0
    spr = 0
    i = a
    while i < b:
        j = i + 1
        while j < b and x[j] == x[i]:
            j += 1
        Lw, Rw = _nn_window(x, i, j, a, b, cap)
        J = Rw - Lw - 1
        sf = np.sqrt(J / (J + 1.0))
        for col in range(k):
            s = 0.0
            for jj in range(Lw, Rw):
                s += Dm[jj, col]
            for ii in range(i, j):
                Em[ii, col] = sf * (Dm[ii, col] - (s - Dm[ii, col]) / J)
        if j - 1 - Lw > spl:
            spl = j - 1 - Lw
        if Rw - i > spr:
            spr = Rw - i
        i = j
    return spl, spr


@njit(cache=True, nogil=True, error_model="numpy")
def nn_resid(X, D, nl, nv, nnmatch, active, E, SP):
    """Nearest-neighbour residuals of every point, neighbours searched on its whole side.

    ``E[u, i, :]`` holds ``sqrt(J/(J+1)) (y_i - mean of the J neighbours)`` per outcome column;
    ``SP[u, 0]`` is the largest ``i - L`` over the left side and ``SP[u, 1]`` the largest ``R - i``
    over the right side (``[L, R)`` a point's neighbour window). A fit on a sub-window of a side
    that starts at the cutoff reuses ``E`` for the points whose window surely lies inside it (the
    search only depends on the points it looked at) and searches again for the few near its far
    edge.
    """
    U = X.shape[0]
    for u in range(U):
        if not active[u]:
            continue
        for side in range(2):
            a = 0 if side == 0 else nl[u]
            b = nl[u] if side == 0 else nv[u]
            n = b - a
            if n < 2:
                for ii in range(a, b):
                    for col in range(D.shape[2]):
                        E[u, ii, col] = np.nan
                SP[u, side] = 1 << 30
                continue
            cap = nnmatch if nnmatch < n - 1 else n - 1
            spl, spr = _nn_side(X[u], D[u], a, b, cap, E[u])
            SP[u, side] = spl if side == 0 else spr


# ----------------------------------------------------------------------------- weighted sums
@njit(cache=True, nogil=True, error_model="numpy")
def _window(X, u, a0, b0, side, cs, h, kern):
    """Number of points with K((x - c)/h) > 0, scanning from the cutoff (binary search)."""
    lo = 0
    hi = b0 - a0
    while lo < hi:
        mid = (lo + hi) // 2
        i = b0 - 1 - mid if side == 0 else a0 + mid
        if _kfun((X[u, i] - cs) / h, kern) > 0.0:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _powsums(v, z, n, nm, out, pw):
    """``out[m] = sum_i v_i z_i^m`` for ``m < nm`` (four powers per pass over the data)."""
    for i in range(n):
        pw[i] = v[i]
    m = 0
    while m < nm:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for i in range(n):
            zi = z[i]
            p0 = pw[i]
            p1 = p0 * zi
            p2 = p1 * zi
            p3 = p2 * zi
            s0 += p0
            s1 += p1
            s2 += p2
            s3 += p3
            pw[i] = p3 * zi
        out[m] = s0
        if m + 1 < nm:
            out[m + 1] = s1
        if m + 2 < nm:
            out[m + 2] = s2
        if m + 3 < nm:
            out[m + 3] = s3
        m += 4


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _dot(a, b, n):
    s = 0.0
    for i in range(n):
        s += a[i] * b[i]
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def window_bounds(X, lo, hi, side, cw, bw, kern, active, wlo, whi):
    """The window ``[wlo, whi)`` of points with ``K((x - cw)/bw) > 0`` on one side (exact test)."""
    U = X.shape[0]
    for u in range(U):
        wlo[u] = lo[u]
        whi[u] = lo[u]
        if not active[u] or hi[u] <= lo[u] or not (bw[u] > 0.0):
            continue
        m_in = _window(X, u, lo[u], hi[u], side, cw[u], bw[u], kern)
        wlo[u] = hi[u] - m_in if side == 0 else lo[u]
        whi[u] = hi[u] if side == 0 else lo[u] + m_in


@njit(cache=True, nogil=True, error_model="numpy")
def _nn_point(X, D, u, ii, a0, b0, nnmatch, e):
    """Nearest-neighbour residual of point ``ii`` with the neighbours searched inside ``[a0, b0)``."""
    k = D.shape[2]
    nw = b0 - a0
    cap = nnmatch if nnmatch < nw - 1 else nw - 1
    i0 = ii
    while i0 > a0 and X[u, i0 - 1] == X[u, ii]:
        i0 -= 1
    i1 = ii + 1
    while i1 < b0 and X[u, i1] == X[u, ii]:
        i1 += 1
    Lw, Rw = _nn_window(X[u], i0, i1, a0, b0, cap)
    J = Rw - Lw - 1
    sf = np.sqrt(J / (J + 1.0))
    for a in range(k):
        s = 0.0
        for jj in range(Lw, Rw):
            s += D[u, jj, a]
        e[a] = sf * (D[u, ii, a] - (s - D[u, ii, a]) / J)


@njit(cache=True, nogil=True, error_model="numpy")
def moments(X, D, FW, has_fw, lo, hi, side, cw, bw, kern, scale, nS, nT, want_dd, active,
            S, T, DD, wlo, whi, cnt, ndist,
            nH, E, SP, nnmatch, nnlo, nnhi, use_nnrange, H):
    """Kernel-weighted moments of one side of the cutoff for every unit (and, optionally, the
    nearest-neighbour "meat" of the same fit).

    For the points of ``X[u, lo[u]:hi[u]]`` with positive weight ``w = K(t/bw)/bw * fw`` (where
    ``t = X - cw`` in the working scale) and ``z = t/scale``: ``S[u, m] = sum w z^m`` (``m < nS``),
    ``T[u, m, a] = sum w z^m D[., a]`` (``m < nT``) and, when ``want_dd``, ``DD[u, a, b] =
    sum w D_a D_b``. ``[wlo, whi)`` is the window of positive weight (contiguous because ``X`` is
    sorted), ``cnt`` its size and ``ndist`` its number of distinct x values. ``side`` is 0 for the
    left side (the window ends at the cutoff) and 1 for the right side (it starts there).

    When ``nH > 0``: ``H[u, a, b, m] = sum (w e_a)(w e_b) z^m`` (``m < nH``) with the
    nearest-neighbour residuals ``e`` searched inside the window itself, or inside
    ``[nnlo, nnhi)`` when ``use_nnrange`` (the estimation sample of the final fit).
    """
    U, n = X.shape
    k = D.shape[2]
    w = np.empty(n)
    z = np.empty(n)
    v = np.empty(n)
    pw = np.empty(n)
    we = np.empty((k, n))
    e = np.empty(k)
    tmp = np.empty(max(max(nS, nT), max(nH, 1)))
    for u in range(U):
        for m in range(S.shape[1]):
            S[u, m] = 0.0
        for m in range(T.shape[1]):
            for a in range(k):
                T[u, m, a] = 0.0
        if want_dd:
            for a in range(k):
                for b in range(k):
                    DD[u, a, b] = 0.0
        if nH > 0:
            for a in range(k):
                for b in range(k):
                    for m in range(nH):
                        H[u, a, b, m] = 0.0
        cnt[u] = 0
        ndist[u] = 0
        wlo[u] = lo[u]
        whi[u] = lo[u]
        if not active[u]:
            continue
        a0 = lo[u]
        b0 = hi[u]
        h = bw[u]
        if b0 <= a0 or not (h > 0.0):
            continue
        cs = cw[u]
        m_in = _window(X, u, a0, b0, side, cs, h, kern)
        s0 = b0 - m_in if side == 0 else a0
        s1 = b0 if side == 0 else a0 + m_in
        invh = 1.0 / h
        isc = 1.0 / scale[u]
        nd = 0
        na = nnlo[u] if use_nnrange else s0
        nb = nnhi[u] if use_nnrange else s1
        spl = SP[u, 0] if nH > 0 else 0
        spr = SP[u, 1] if nH > 0 else 0
        for r in range(m_in):
            i = s0 + r
            t = X[u, i] - cs
            wv = _kfun(t * invh, kern) * invh
            if has_fw:
                wv = FW[u, i] * wv
            w[r] = wv
            z[r] = t * isc
            if r == 0 or X[u, i] != X[u, i - 1]:
                nd += 1
            if nH > 0:
                if (i - spl >= na) if side == 0 else (i + spr <= nb):
                    for a in range(k):
                        we[a, r] = wv * E[u, i, a]
                else:
                    _nn_point(X, D, u, i, na, nb, nnmatch, e)
                    for a in range(k):
                        we[a, r] = wv * e[a]
        _powsums(w, z, m_in, nS, tmp, pw)
        for m in range(nS):
            S[u, m] = tmp[m]
        for a in range(k):
            for r in range(m_in):
                v[r] = w[r] * D[u, s0 + r, a]
            _powsums(v, z, m_in, nT, tmp, pw)
            for m in range(nT):
                T[u, m, a] = tmp[m]
            if want_dd:
                for b in range(k):
                    for r in range(m_in):
                        pw[r] = D[u, s0 + r, b]
                    DD[u, a, b] = _dot(v, pw, m_in)
        if nH > 0:
            for a in range(k):
                for b in range(a, k):
                    for r in range(m_in):
                        v[r] = we[a, r] * we[b, r]
                    _powsums(v, z, m_in, nH, tmp, pw)
                    for m in range(nH):
                        H[u, a, b, m] = tmp[m]
                        H[u, b, a, m] = tmp[m]
        cnt[u] = m_in
        ndist[u] = nd
        wlo[u] = s0
        whi[u] = s1


@njit(cache=True, nogil=True, error_model="numpy")
def meat(X, D, FW, has_fw, CL, has_cl, ncl, wlo, whi, side, cw, scale,
         bw1, kern, m1, use_q, bw2, g, L, m2,
         vce, nnmatch, E, SP, beta_r, bwr, invG_r, mr, resfac, active, M, gcnt):
    """Middle ("meat") matrix of the sandwich variance, per pair of outcome columns.

    Over the sample ``X[u, wlo[u]:whi[u]]`` the score row is ``RX_i = w1_i z_i^j`` (``j < m1``,
    ``w1 = K(t/bw1)/bw1 * fw``); when ``use_q`` it is the bias-corrected score
    ``RX_i - w2_i (z_i' g[u]) L[u]`` (``w2`` from ``bw2``, ``z`` to power ``m2 - 1`` in the inner
    product). Residuals ``e_i`` (one per outcome column) are

    * ``vce == 0``: nearest-neighbour residuals within the sample (on side ``side``): taken from
      ``E`` (see :func:`nn_resid`) when the point's neighbour window surely lies inside the sample,
      searched again inside the sample otherwise;
    * ``vce == 1``: ``resfac[u] * (D_i - z_i' beta_r[u])``;
    * ``vce == 2`` / ``3``: the same divided by ``sqrt(1 - h_ii)`` / ``(1 - h_ii)`` with the leverage
      ``h_ii = w_r z_i' invG_r[u] z_i`` of the residual fit (``w_r`` from ``bwr``), floored at 1e-8.

    Output ``M[u, a, b, j, l] = sum_i RX_ij RX_il e_ia e_ib``; with clusters (``has_cl``) the sum
    runs over clusters of the within-cluster score sums, and ``gcnt[u]`` is the number of clusters
    in the sample.
    """
    U, n = X.shape
    k = D.shape[2]
    nh = 2 * m1 - 1
    npow = max(nh, max(m2, mr))
    zp = np.empty(npow)
    RX = np.empty(m1)
    e = np.empty(k)
    zarr = np.empty(n)
    we = np.empty((k, n))
    vv = np.empty(n)
    pw = np.empty(n)
    tmp = np.empty(nh)
    hank = (not use_q) and (not has_cl)
    ncs = ncl if has_cl else 1
    Sg = np.zeros((ncs, k, m1))
    seen = np.zeros(ncs, dtype=np.bool_)
    tl = np.empty(ncs, dtype=np.int64)
    for u in range(U):
        for a in range(k):
            for b in range(k):
                for j in range(m1):
                    for l in range(m1):
                        M[u, a, b, j, l] = 0.0
        gcnt[u] = 0
        if not active[u]:
            continue
        a0 = wlo[u]
        b0 = whi[u]
        nw = b0 - a0
        if nw <= 0:
            continue
        cs = cw[u]
        isc = 1.0 / scale[u]
        ih1 = 1.0 / bw1[u]
        ih2 = 1.0 / bw2[u]
        ihr = 1.0 / bwr[u]
        rf = resfac[u]
        nt = 0
        r = 0
        for ii in range(a0, b0):
            t = X[u, ii] - cs
            z = t * isc
            fw = FW[u, ii] if has_fw else 1.0
            w1 = _kfun(t * ih1, kern) * ih1
            if has_fw:
                w1 = fw * w1
            if has_cl:
                cid = CL[u, ii]
                if not seen[cid]:
                    seen[cid] = True
                    tl[nt] = cid
                    nt += 1
            w2 = 0.0
            if use_q:
                w2 = _kfun(t * ih2, kern) * ih2
                if has_fw:
                    w2 = fw * w2
            if w1 == 0.0 and w2 == 0.0:
                continue
            # residuals
            if vce == 0:
                if (ii - SP[u, 0] >= a0) if side == 0 else (ii + SP[u, 1] <= b0):
                    for a in range(k):
                        e[a] = E[u, ii, a]
                else:
                    _nn_point(X, D, u, ii, a0, b0, nnmatch, e)
            else:
                pwr = 1.0
                for jj in range(mr):
                    zp[jj] = pwr
                    pwr *= z
                fac = rf
                if vce >= 2:
                    wr = _kfun(t * ihr, kern) * ihr
                    if has_fw:
                        wr = fw * wr
                    q = 0.0
                    for jj in range(mr):
                        acc = 0.0
                        for ll in range(mr):
                            acc += invG_r[u, jj, ll] * zp[ll]
                        q += zp[jj] * acc
                    om = 1.0 - wr * q
                    if om < 1e-8:
                        om = 1e-8
                    fac = np.sqrt(1.0 / om) if vce == 2 else 1.0 / om
                for a in range(k):
                    fit = 0.0
                    for jj in range(mr):
                        fit += zp[jj] * beta_r[u, jj, a]
                    e[a] = fac * (D[u, ii, a] - fit)
            if hank:
                zarr[r] = z
                for a in range(k):
                    we[a, r] = w1 * e[a]
                r += 1
                continue
            pwr = 1.0
            for jj in range(npow):
                zp[jj] = pwr
                pwr *= z
            for jj in range(m1):
                RX[jj] = w1 * zp[jj]
            if use_q and w2 != 0.0:
                aq = 0.0
                for jj in range(m2):
                    aq += zp[jj] * g[u, jj]
                for jj in range(m1):
                    RX[jj] -= w2 * aq * L[u, jj]
            if has_cl:
                cid = CL[u, ii]
                for a in range(k):
                    for jj in range(m1):
                        Sg[cid, a, jj] += RX[jj] * e[a]
            else:
                for a in range(k):
                    for b in range(k):
                        eab = e[a] * e[b]
                        for jj in range(m1):
                            for ll in range(m1):
                                M[u, a, b, jj, ll] += RX[jj] * RX[ll] * eab
        if hank:
            for a in range(k):
                for b in range(a, k):
                    for i in range(r):
                        vv[i] = we[a, i] * we[b, i]
                    _powsums(vv, zarr, r, nh, tmp, pw)
                    for jj in range(m1):
                        for ll in range(m1):
                            M[u, a, b, jj, ll] = tmp[jj + ll]
                            M[u, b, a, jj, ll] = tmp[jj + ll]
        if has_cl:
            for rr in range(nt):
                cid = tl[rr]
                for a in range(k):
                    for b in range(k):
                        for jj in range(m1):
                            for ll in range(m1):
                                M[u, a, b, jj, ll] += Sg[cid, a, jj] * Sg[cid, b, ll]
                for a in range(k):
                    for jj in range(m1):
                        Sg[cid, a, jj] = 0.0
                seen[cid] = False
            gcnt[u] = nt
