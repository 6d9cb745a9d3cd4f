"""Fast per-replicate Gaussian noise for the compiled engine.

Generating Gaussian numbers, not the LIF update, sets the speed of a noisy LIF simulation
(``peers.md`` §1.2): numpy's ``Generator.standard_normal`` costs 12-15 ns per number on the
project's machines, and numba's built-in normal is slower still. The engine therefore draws its
noise inside the compiled loop from one xoshiro256++ stream per replicate (Blackman & Vigna,
"Scrambled linear pseudorandom number generators", 2021), turned into standard normals with the
128-layer ziggurat of Marsaglia & Tsang (J. Stat. Softw. 5(8), 2000), written here from the
published method. Stream states are seeded from :class:`numpy.random.SeedSequence`, so every
replicate's noise is a pure function of its seed: a batched run equals the same runs done one by
one, whatever the chunking.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["new_states", "fill_normals", "normal", "next_hz", "normal_tail", "ZIG_K", "ZIG_W", "ZIG_F"]


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer tables of the 128-layer normal ziggurat (Marsaglia & Tsang 2000)."""
    m1 = 2147483648.0
    dn = 3.442619855899
    tn = dn
    vn = 9.91256303526217e-3
    k = np.zeros(128, dtype=np.int64)
    w = np.zeros(128)
    f = np.zeros(128)
    q = vn / math.exp(-0.5 * dn * dn)
    k[0] = int((dn / q) * m1)
    k[1] = 0
    w[0] = q / m1
    w[127] = dn / m1
    f[0] = 1.0
    f[127] = math.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = int((dn / tn) * m1)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m1
    return k, w, f


ZIG_K, ZIG_W, ZIG_F = _ziggurat_tables()
_R = 3.442619855899


def new_states(seqs) -> np.ndarray:
    """xoshiro256++ states, one row of four uint64 per SeedSequence in ``seqs``."""
    states = np.empty((len(seqs), 4), dtype=np.uint64)
    for i, s in enumerate(seqs):
        st = s.generate_state(4, np.uint64)
        if not st.any():  # the all-zero state is the one forbidden state
            st[0] = np.uint64(0x9E3779B97F4A7C15)
        states[i] = st
    return states


@njit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(inline="always")
def next_u64(state, r):
    """Next 64-bit output of replicate ``r``'s xoshiro256++ stream (state updated in place)."""
    s0 = state[r, 0]
    s1 = state[r, 1]
    s2 = state[r, 2]
    s3 = state[r, 3]
    result = _rotl(s0 + s3, 23) + s0
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[r, 0] = s0
    state[r, 1] = s1
    state[r, 2] = s2
    state[r, 3] = s3
    return result


@njit(inline="always")
def _uniform(state, r):
    return np.float64(next_u64(state, r) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def next_hz(state, r):
    # a signed 32-bit integer from the upper half of the 64-bit output
    u = np.int64(next_u64(state, r) >> np.uint64(32))
    if u >= 2147483648:
        u -= 4294967296
    return u


@njit
def normal_tail(state, r, hz, iz, kt, wt, ft):
    # the rare path of the ziggurat: base strip, wedges, and the tail beyond _R
    result = 0.0
    while True:
        x = hz * wt[iz]
        if iz == 0:
            while True:
                x = -math.log(1.0 - _uniform(state, r)) * (1.0 / _R)
                y = -math.log(1.0 - _uniform(state, r))
                if y + y >= x * x:
                    break
            result = _R + x if hz > 0 else -_R - x
            break
        if ft[iz] + _uniform(state, r) * (ft[iz - 1] - ft[iz]) < math.exp(-0.5 * x * x):
            result = x
            break
        hz = next_hz(state, r)
        iz = hz & 127
        if abs(hz) < kt[iz]:
            result = hz * wt[iz]
            break
    return result


@njit
def normal(state, r, kt, wt, ft):
    """One standard normal from replicate ``r``'s stream.

    Hot loops should not call this (a numba call passing arrays costs reference counting, about
    20 ns); they inline the fast path as ``hz = next_hz(...); iz = hz & 127;
    z = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(...)``.
    """
    hz = next_hz(state, r)
    iz = hz & 127
    if abs(hz) < kt[iz]:
        return hz * wt[iz]
    return normal_tail(state, r, hz, iz, kt, wt, ft)


@njit(cache=True)
def fill_normals(state, r, out, kt, wt, ft):
    """Fill the 1-D array ``out`` with standard normals from stream ``r`` (used by tests)."""
    for k in range(out.size):
        hz = next_hz(state, r)
        iz = hz & 127
        out[k] = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(state, r, hz, iz, kt, wt, ft)
