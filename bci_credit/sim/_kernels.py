"""Compiled (numba) inner loop of the LIF engine.

Written by hand because no library offers an LIF integrator that also tracks the
counterfactual drive ``u`` per window; ``benchmarks/bench_engine.py`` compares it with a plain
vectorised numpy loop in the same run.

Loop order: replicate -> window -> neuron -> step. The shared noise of a window is drawn first
(one number per step), then each neuron's private noise for the whole window, so a neuron's state
stays in registers through its window. The stream of each replicate is consumed in the same order
whatever the chunking, so results do not depend on how a run is split into calls.
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
    n_win = n_steps // window_steps
    n_ev = 0
    has_psi = pert_scale > 0.0
    shared = np.empty(window_steps)
    for r in range(R):
        sc = sqrt_c[r] * noise_scale[r]
        sp = sqrt_1mc[r] * noise_scale[r]
        for bw in range(n_win):
            b = b_off + bw
            t0 = bw * window_steps
            for j in range(window_steps):
                hz = next_hz(rng_state, r)
                iz = hz & 127
                zz = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(rng_state, r, hz, iz, kt, wt, ft)
                shared[j] = zz * sc
            for i in range(N):
                vi = v[r, i]
                ui = vi  # window start: the counterfactual drive restarts from the membrane potential
                ri = refr[r, i]
                si = s[r, i]
                xi = x[r, i]
                wi = w[r, i]
                zmax = -np.inf
                cnt = 0
                g = 0.0
                el = 0.0
                fired = False
                for j in range(window_steps):
                    hz = next_hz(rng_state, r)
                    iz = hz & 127
                    zz = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(rng_state, r, hz, iz, kt, wt, ft)
                    inp = xi + shared[j] + zz * sp
                    if has_x_t:
                        inp += x_t[t0 + j, r, i]
                    dv = -vi / tau + wi * inp
                    if has_psi:
                        hz = next_hz(pert_state, r)
                        iz = hz & 127
                        zz = hz * wt[iz] if abs(hz) < kt[iz] else normal_tail(pert_state, r, hz, iz, kt, wt, ft)
                        psi = pert_scale * zz
                        dv += psi
                        el += inp * psi
                    vi = vi + dt * dv
                    ui = ui + dt * dv
                    if rec_traces:
                        tr_v[r, t_off + t0 + j, i] = vi
                        tr_u[r, t_off + t0 + j, i] = ui
                    if ui > zmax:
                        zmax = ui
                    hval = 0.0
                    if vi > theta:
                        hval = 1.0
                        ri = tr_steps
                        fired = True
                        cnt += 1
                        if rec_spikes:
                            ev_rep[n_ev] = r
                            ev_neu[n_ev] = i
                            ev_step[n_ev] = step0 + t0 + j
                            n_ev += 1
                    if ri > 0:
                        vi = v_reset
                        if not fired:
                            # refractoriness carried over from the previous window: the drive is
                            # the membrane potential until this window's first spike
                            ui = v_reset
                        ri -= 1
                    if vi < v_reset:
                        vi = v_reset
                    if ui < v_reset:
                        ui = v_reset
                    si = decay * si + k0 * hval
                    g = decay * g + k0 * hval
                v[r, i] = vi
                u[r, i] = ui
                refr[r, i] = ri
                s[r, i] = si
                spiked_in_win[r, i] = fired
                out_z[r, b, i] = zmax
                out_h[r, b, i] = fired
                out_count[r, b, i] = cnt
                out_s_end[r, b, i] = si
                out_g[r, b, i] = g
                out_elig[r, b, i] = el
    return n_ev
