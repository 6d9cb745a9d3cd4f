"""Reward-threshold design: the effect of reward on each unit's firing in a BCI recording.

Part of :mod:`bci_credit.analysis.causal` (which re-exports these names): :class:`RewardThreshold`
(running variable: the decoder output's maximum in an epoch minus the reward threshold), with
:func:`reconstruct_decoder` (a threshold decoder's output rebuilt from the control unit's spikes)
and :func:`threshold_crossings` (reward times at upward crossings).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..recording import Recording, TimeSeries
from ._causal_data import (
    check_design,
    count_spikes,
    decoder_threshold,
    density_pvalues,
    event_times_from_trials,
    find_decoder,
    reward_event_series,
)
from .causal_results import (
    CausalResults,
    _add_truth,
    _empty_rows,
    _fill_from_batch,
    _fill_fuzzy_row,
    _level,
    _match_id,
    _positions,
    _quiet_fit_many,
    _rd_kwargs,
)

__all__ = ["RewardThreshold", "reconstruct_decoder", "threshold_crossings"]


# ============================================================================ reward-threshold RD
def reconstruct_decoder(recording: Recording, unit, *, tau_s: float = 0.2, rate_hz: float = 60.0,
                        gain: float = 1.0, baseline_hz: float = 0.0) -> TimeSeries:
    """Rebuild a threshold decoder's output from the control unit's spikes.

    ``d(t) = gain * (r(t) - baseline_hz)``, where ``r`` is the unit's rate (Hz) through a causal
    exponential filter of time constant ``tau_s``, sampled at ``rate_hz`` (the update rate of a
    Fetz/Arduin-style threshold task). Use it when a file records the decoder's parameters but not
    its output.
    """
    from scipy.signal import lfilter

    st = recording.spike_times[recording.unit_position(_match_id(recording, unit))]
    t0, dur = recording.t_start_s, recording.duration_s
    dt = 1.0 / float(rate_hz)
    t = t0 + dt * np.arange(1, int(math.floor(dur / dt + 1e-9)) + 1)
    # r(t_k) = sum over spikes s <= t_k of exp(-(t_k - s) / tau) / tau, with the exact spike times:
    # each spike enters at the first sample at or after it, already decayed by its offset
    k = np.searchsorted(t, st, side="left")
    keep = k < t.size
    inc = np.bincount(k[keep], weights=np.exp(-(t[k[keep]] - st[keep]) / tau_s) / tau_s, minlength=t.size)
    r = lfilter([1.0], [1.0, -math.exp(-dt / float(tau_s))], inc)
    return TimeSeries(t, gain * (r - baseline_hz), unit="Hz" if gain == 1.0 else "a.u.",
                      description=f"exponential-filter rate of unit {unit} (tau {tau_s:g} s) at {rate_hz:g} Hz")


def threshold_crossings(series: TimeSeries, threshold: float, *, refractory_s: float = 0.0) -> np.ndarray:
    """Times at which ``series`` crosses ``threshold`` upward (at most one per ``refractory_s``)."""
    v = np.asarray(series.values, dtype=float)
    if v.ndim > 1:
        v = v[:, 0]
    up = np.flatnonzero((v[1:] >= threshold) & (v[:-1] < threshold)) + 1
    times = series.t_s[up]
    if refractory_s > 0 and times.size:
        keep = [times[0]]
        for t in times[1:]:
            if t - keep[-1] >= refractory_s:
                keep.append(t)
        times = np.asarray(keep)
    return times


class RewardThreshold:
    """Reward-threshold RD on a BCI recording: the effect of reward on each unit's firing.

    The session is cut into epochs of ``epoch_s`` seconds over the decoder output's span. Per epoch k,
    the running variable is ``x_k = max decoder output in the epoch - threshold`` (reward is earned
    when the decoder reaches threshold), and for each unit the outcome is its firing-rate change
    ``rate in [stop_k + gap_s, stop_k + gap_s + horizon_s) - rate in [start_k - baseline_s, start_k)``
    (Hz). Treatment is the reward: the reward events in the epoch (series ``reward`` or trials
    ``reward_time_s``) when the recording has them, else ``x_k >= 0``. When the events disagree with
    ``x_k >= 0`` in more than ``sharp_tol`` of epochs (refractory periods, hold times, or epochs that
    start above threshold, which an upward-crossing rule does not reward), the fit is a fuzzy RD with
    the reward events as treatment. Epochs are not selected on the decoder value at their start:
    that value is the epoch's maximum whenever the decoder only decays, so such a selection would
    itself create a discontinuity at the threshold (the density test detects it).

    **Estimand.** ``E[dRate_i(reward) - dRate_i(no reward) | decoder max = threshold]``: the causal
    effect of receiving the reward in this epoch on the unit's subsequent firing, for epochs where the
    decoder just reached (or just missed) the threshold. It is an intent-to-treat effect of reaching
    the threshold *now*: an epoch that just misses is often followed by a crossing (and a reward)
    soon after, and a reward now can postpone later ones (refractory periods), so when rewards
    fall inside the outcome window of the near misses the estimate is the reward response minus
    that displaced response. Keep ``horizon_s`` short relative to the typical time between a near
    miss and the next crossing for the estimate to be the reward response itself.

    **Assumptions.** (1) Apart from the reward, the firing change is continuous in the decoder
    output at threshold (the decoder output is itself built from spikes, so its own smooth
    relation with future firing - regression to the mean - is absorbed by the local-linear fits).
    (2) The subject cannot place the decoder output precisely on one side of the threshold
    (density test). (3) Epochs are independent observations (the variance ignores overlap of
    outcome windows of neighbouring epochs). It needs no drive, so it runs on real recordings.

    Parameters
    ----------
    recording : Recording
        With a continuous decoder-output series and spike times.
    decoder : str, optional
        Series name (default: the first of ``decoder_output``, ``decoder``, ``control_signal``, ``bci_output``).
    threshold : float, optional
        Reward threshold (default ``recording.meta['decoder']`` key ``threshold``, ``reward_threshold``,
        ``theta`` or ``theta_hz``, the key this package's BCI simulations write).
    reward : str, optional
        Reward events (series or trials column); default series ``reward`` / trials ``reward_time_s``;
        ``"none"`` ignores recorded events (sharp design on ``x >= 0``).
    epoch_s, horizon_s, baseline_s, gap_s : float
        Epoch length, outcome window after the epoch, baseline window before it, and a gap between
        epoch end and outcome window.
    exclude_after_reward_s : float, optional
        Leave out epochs that start less than this long after a recorded reward (refractory or
        lock-out periods, and baselines holding the previous reward's response); default
        ``baseline_s``. Past rewards are fixed before the epoch, so this does not bias the RD.
    units : sequence, optional
        Units to analyse.
    density : bool
        Run the density test of the running variable.
    sharp_tol : float
        Largest fraction of epochs where events and ``x >= 0`` may disagree for a sharp fit.
    n_jobs : int
        Threads for the vectorised RD fits.
    **rd_options
        Passed to the RD fits (``p``, ``kernel``, ``bwselect``, ``vce``, ``h``, ``level`` ...).
    """

    design = "reward-threshold"
    estimand = ("jump at the reward threshold of the expected change in the unit's firing rate (Hz) after an "
                "epoch: the effect of reward (reaching the threshold now) on activity")
    assumptions = (
        "apart from reward, the firing change is continuous in the decoder output at threshold",
        "no precise sorting of the decoder output around the threshold (density test)",
        "epochs are independent observations (variance)",
    )

    def __init__(self, recording: Recording, *, decoder: str | None = None, threshold: float | None = None,
                 reward: str | None = None, epoch_s: float = 0.1, horizon_s: float = 0.3, baseline_s: float = 0.5,
                 gap_s: float = 0.0, exclude_after_reward_s: float | None = None, units: Sequence | None = None,
                 density: bool = True, sharp_tol: float = 0.01, n_jobs: int = 1, **rd_options: Any) -> None:
        check_design(recording, "reward-threshold", decoder=decoder, threshold=threshold)
        for name, v in (("epoch_s", epoch_s), ("horizon_s", horizon_s), ("baseline_s", baseline_s)):
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        if not (np.isfinite(gap_s) and gap_s >= 0):
            raise ValueError(f"gap_s must be >= 0, got {gap_s!r}")
        self.recording = recording
        self.decoder = find_decoder(recording, decoder)
        self.threshold = decoder_threshold(recording, threshold)
        self.reward = reward
        self.epoch_s, self.horizon_s, self.baseline_s, self.gap_s = map(float, (epoch_s, horizon_s, baseline_s, gap_s))
        excl = self.baseline_s if exclude_after_reward_s is None else float(exclude_after_reward_s)
        if not (np.isfinite(excl) and excl >= 0):
            raise ValueError(f"exclude_after_reward_s must be >= 0, got {exclude_after_reward_s!r}")
        self.exclude_after_reward_s = excl
        self.units = units
        self.density = bool(density)
        self.sharp_tol = float(sharp_tol)
        self.n_jobs = n_jobs
        self.rd_options = _rd_kwargs(rd_options)

    def _epochs(self):
        ts = self.recording.series[self.decoder]
        v = np.asarray(ts.values, dtype=float)
        if v.ndim > 1:
            if v.shape[1] != 1:
                raise ValueError(f"decoder series {self.decoder!r} has {v.shape[1]} channels; the reward-threshold "
                                 "design needs a one-dimensional decoder output")
            v = v[:, 0]
        t = ts.t_s
        if t.size < 2:
            raise ValueError(f"decoder series {self.decoder!r} has {t.size} sample(s); nothing to analyse")
        n = int(math.floor((t[-1] - t[0]) / self.epoch_s + 1e-9))
        if n < 10:
            raise ValueError(f"the decoder output spans {t[-1] - t[0]:.3g} s: fewer than 10 epochs of {self.epoch_s:g} s")
        start = t[0] + self.epoch_s * np.arange(n)
        stop = start + self.epoch_s
        i0 = np.searchsorted(t, start, side="left")
        i1 = np.searchsorted(t, stop, side="left")
        # maximum of the decoder output in each epoch (NaN for an epoch without finite samples)
        vv = np.where(np.isfinite(v), v, -np.inf)
        x = np.full(n, -np.inf)
        has = i1 > i0
        x[has] = [vv[a:b].max() for a, b in zip(i0[has], i1[has])]
        x[~np.isfinite(x)] = np.nan
        return start, stop, x - self.threshold

    def _treatment(self, start, stop):
        rec = self.recording
        if self.reward is not None and str(self.reward).lower() == "none":
            return None, "x >= 0 (recorded reward events ignored)"
        name = self.reward
        kind = ""
        if name is not None and ":" in str(name):  # series:NAME, events:NAME, trials:NAME as in the other designs
            kind, _, name = str(name).partition(":")
            if kind not in ("series", "events", "trials"):
                raise ValueError(f"reward={self.reward!r}: the reward-threshold design reads reward events; write NAME, "
                                 "series:NAME, events:NAME or trials:NAME")
        events = None
        src = ""
        if name is None:
            named = reward_event_series(rec)
            if named is not None:
                events, src = rec.series[named].t_s, f"series {named!r}"
            else:
                ev, why = event_times_from_trials(rec, "reward_time_s")
                if why:
                    raise ValueError(f"reward events: {why}")
                if ev is not None and ev.size:
                    events, src = ev, "trials['reward_time_s']"
        elif kind != "trials" and name in rec.series:
            events, src = rec.series[name].t_s, f"series {name!r}"
        elif kind in ("series", "events"):
            raise ValueError(f"reward={self.reward!r}: no series {name!r}; series: {', '.join(rec.series) or 'none'}")
        else:
            ev, why = event_times_from_trials(rec, name)
            if why:
                raise ValueError(f"reward={self.reward!r}: {why}")
            if ev is None:
                raise ValueError(f"reward={self.reward!r}: no such series or trials column of event times")
            events, src = ev, f"trials[{name!r}]"
        if events is None:
            return None, "x >= 0 (no reward events recorded)"
        events = np.sort(np.asarray(events, dtype=float))
        ts = TimeSeries(events, np.ones(events.size), kind="events")
        from ._causal_data import series_per_window

        self._events = events
        return (series_per_window(ts, start, stop) > 0).astype(float), f"reward events from {src}"

    def epoch_table(self) -> pd.DataFrame:
        """The epochs of the design, one row each.

        Columns: ``start_s``, ``stop_s``; ``running`` (max decoder output minus threshold; NaN for
        an epoch left out: no decoder sample, or within ``exclude_after_reward_s`` of a reward);
        ``reward`` (1/0 from the recorded events, NaN without events); ``inside`` (the baseline and
        outcome windows lie within the recording); ``outcome_start_s``/``outcome_stop_s`` and
        ``baseline_start_s``/``baseline_stop_s``.
        """
        start, stop, x = self._epochs()
        self._events = None
        T, self._t_src = self._treatment(start, stop)
        recent = np.zeros(x.size, dtype=bool)
        if self._events is not None and self._events.size and self.exclude_after_reward_s > 0:
            j = np.searchsorted(self._events, start, side="left") - 1  # last reward before the epoch
            last = np.where(j >= 0, self._events[np.maximum(j, 0)], -np.inf)
            recent = (start - last) < self.exclude_after_reward_s
        self._n_recent = int((recent & np.isfinite(x)).sum())
        rec = self.recording
        t_first, t_last = rec.t_start_s, rec.t_start_s + rec.duration_s
        a_lo, a_hi = stop + self.gap_s, stop + self.gap_s + self.horizon_s
        b_lo, b_hi = start - self.baseline_s, start
        return pd.DataFrame({
            "start_s": start, "stop_s": stop, "running": np.where(recent, np.nan, x),
            "reward": np.full(x.size, np.nan) if T is None else T,
            "inside": (b_lo >= t_first - 1e-9) & (a_hi <= t_last + 1e-9),
            "outcome_start_s": a_lo, "outcome_stop_s": a_hi, "baseline_start_s": b_lo, "baseline_stop_s": b_hi,
        })

    def fit(self) -> CausalResults:
        """Estimate every unit's reward response; NaN rows with a reason for units that cannot be fitted."""
        rec = self.recording
        pos = _positions(rec, self.units)
        ep = self.epoch_table()
        x = ep["running"].to_numpy()
        T = None if ep["reward"].isna().all() else ep["reward"].to_numpy()
        t_src, n_recent = self._t_src, self._n_recent
        spikes = [rec.spike_times[p] for p in pos]
        after = count_spikes(spikes, ep["outcome_start_s"].to_numpy(), ep["outcome_stop_s"].to_numpy()) / self.horizon_s
        before = count_spikes(spikes, ep["baseline_start_s"].to_numpy(), ep["baseline_stop_s"].to_numpy()) / self.baseline_s
        inside = ep["inside"].to_numpy()
        Y = after - before
        Y[~inside] = np.nan
        df = _empty_rows(rec, pos, self.design)
        notes = [f"{inside.sum()} of {x.size} epochs of {self.epoch_s:g} s have full baseline and outcome windows"]
        if n_recent:
            notes.append(f"{n_recent} epochs starting less than {self.exclude_after_reward_s:g} s after a reward are "
                         "left out (exclude_after_reward_s)")
        fuzzy = False
        mismatch = np.nan
        if T is not None:
            ok = np.isfinite(x) & inside
            mismatch = float(np.mean(T[ok] != (x[ok] >= 0))) if ok.any() else np.nan
            fuzzy = bool(np.isfinite(mismatch) and mismatch > self.sharp_tol)
        notes.append(f"treatment: {t_src}" + (f"; it disagrees with x >= 0 in {mismatch:.1%} of epochs: fuzzy RD"
                                              if fuzzy else ""))
        X = np.repeat(x[:, None], len(pos), axis=1)
        if not fuzzy:
            fit = _quiet_fit_many(X, Y, 0.0, units=list(df["unit"]), n_jobs=self.n_jobs, **self.rd_options)
            _fill_from_batch(df, range(len(pos)), fit)
        else:
            df["design"] = "reward-threshold (fuzzy)"
            for k in range(len(pos)):
                _fill_fuzzy_row(df, k, Y[:, k], x, T, self.rd_options)
        if self.density:
            p, dn = density_pvalues(x[inside], np.zeros(1), ["decoder"])
            df["density_p"] = p[0]
            notes += dn
        df = _add_truth(df.frame(), rec, ("true_reward_response",))
        data = {u: {"x": x, "y": Y[:, k], "cutoff": 0.0, "xlabel": "max decoder output in epoch - threshold",
                    "ylabel": f"rate change of unit {u} (Hz)"} for k, u in enumerate(df["unit"])}
        opts = {"decoder": self.decoder, "threshold": self.threshold, "epoch_s": self.epoch_s,
                "horizon_s": self.horizon_s, "baseline_s": self.baseline_s, "gap_s": self.gap_s,
                "exclude_after_reward_s": self.exclude_after_reward_s,
                "n_epochs": int(x.size), "level": _level(self.rd_options), **self.rd_options}
        return CausalResults(self.design, self.estimand, self.assumptions, df, opts, notes, data,
                             {"treatment_mismatch": mismatch, "fuzzy": fuzzy})

