"""Compiled (numba) inner loop of the LIF engine.

Written by hand because no library offers an LIF integrator that also tracks the
counterfactual drive ``u`` per window; ``benchmarks/bench_engine.py`` compares it with a plain
vectorised numpy loop in the same run.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._rng import next_hz, normal_tail


@njit(cache=True, nogil=True)
def lif_chunk(
    v, u, refr, s, spiked_in_win,  # state (R, N); modified in place
    w, x, sqrt_c, sqrt_1mc, noise_scale,  # w, x: (R, N); sqrt_c, sqrt_1mc, noise_scale: (R,)
    rng_state, kt, wt, ft,  # per-replicate noise streams (R, 4) and ziggurat tables
    x_t, has_x_t,  # x_t: (n_steps, R, N) extra input multiplied by w (has_x_t=False: ignored)
    pert_state, pert_scale,  # perturbation streams (R, 4); psi = pert_scale * N(0,1) (0: none)
    dt, tau, theta, v_reset, tr_steps, decay, k0,
    window_steps, n_steps, b_off,
    out_z, out_h, out_count, out_s_end, out_g, out_elig,  # (R, n_windows_total, N), windows b_off..
    rec_spikes, ev_rep, ev_neu, ev_step, step0,  # spike events (flat, preallocated)
    rec_traces, tr_v, tr_u, t_off,  # (R, steps_total, N) voltage and drive traces when rec_traces
):
    """Advance every replicate ``n_steps`` steps (a whole number of windows).

    Returns the number of spike events written to ``ev_*``.
    """
    R, N = v.shape
    n_ev = 0
    has_psi = pert_scale > 0.0
    for r in range(R):
        sc = sqrt_c[r] * noise_scale[r]
        sp = sqrt_1mc[r] * noise_scale[r]
        b = b_off - 1
        j = window_steps - 1
        for t in range(n_steps):
            j += 1
            if j == window_steps:
                j = 0
                b += 1
            hz = next_hz(rng_state, r)
            iz = hz & 127
            shared = sc * (hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(rng_state, r, hz, iz, kt, wt, ft))
            if j == 0:
                for i in range(N):
                    # window start: the counterfactual drive restarts from the membrane potential
                    u[r, i] = v[r, i]
                    spiked_in_win[r, i] = False
                    out_z[r, b, i] = -np.inf
                    out_h[r, b, i] = False
                    out_count[r, b, i] = 0
                    out_g[r, b, i] = 0.0
                    out_elig[r, b, i] = 0.0
            for i in range(N):
                hz = next_hz(rng_state, r)
                iz = hz & 127
                z = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(rng_state, r, hz, iz, kt, wt, ft)
                inp = x[r, i] + shared + z * sp
                if has_x_t:
                    inp += x_t[t, r, i]
                dv = -v[r, i] / tau + w[r, i] * inp
                if has_psi:
                    hz = next_hz(pert_state, r)
                    iz = hz & 127
                    z = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(pert_state, r, hz, iz, kt, wt, ft)
                    psi = pert_scale * z
                    dv += psi
                    out_elig[r, b, i] += inp * psi
                vi = v[r, i] + dt * dv
                ui = u[r, i] + dt * dv
                spike = vi > theta
                if rec_traces:
                    tr_v[r, t_off + t, i] = vi
                    tr_u[r, t_off + t, i] = ui
                if ui > out_z[r, b, i]:
                    out_z[r, b, i] = ui
                hval = 0.0
                if spike:
                    hval = 1.0
                    refr[r, i] = tr_steps
                    spiked_in_win[r, i] = True
                    out_h[r, b, i] = True
                    out_count[r, b, i] += 1
                    if rec_spikes:
                        ev_rep[n_ev] = r
                        ev_neu[n_ev] = i
                        ev_step[n_ev] = step0 + t
                        n_ev += 1
                if refr[r, i] > 0:
                    vi = v_reset
                    if not spiked_in_win[r, i]:
                        # refractoriness carried over from the previous window: the drive is the
                        # membrane potential until this window's first spike
                        ui = v_reset
                    refr[r, i] -= 1
                if vi < v_reset:
                    vi = v_reset
                if ui < v_reset:
                    ui = v_reset
                v[r, i] = vi
                u[r, i] = ui
                s[r, i] = decay * s[r, i] + k0 * hval
                out_g[r, b, i] = decay * out_g[r, b, i] + k0 * hval
                if j == window_steps - 1:
                    out_s_end[r, b, i] = s[r, i]
    return n_ev
