"""Simulation-based power analysis for the plasticity experiment (``rdd_model.md`` §4.8, A9).

The experiment: each of ``n_neurons`` neurons is recorded in two stimulus regimes at matched firing
rate (``n_trials`` trials of ``trial_s`` seconds per regime); the measured quantity per trial is the
synaptic change ``|dw|`` (e.g. the change of an evoked response), contaminated by recording noise.
The question: how many neurons (or trials, or minutes) are needed to detect the difference between
regimes that a learning rule predicts, at ``alpha`` with power ``1 - beta``?

:class:`PlasticityPower` follows the statsmodels Model -> Results split:

* it is built from the rule's per-window plasticity ``|dw|`` in each regime (arrays from a
  simulation, e.g. :mod:`bci_credit.predict.plasticity`, or from data), the trial design, the
  recording noise ``noise_sd`` (standard deviation of the measurement error of one trial's ``dw``)
  and the neuron-to-neuron variability ``neuron_cv`` (a multiplicative random effect);
* :meth:`PlasticityPower.power` simulates ``n_sims`` experiments and tests each with
  **cluster-robust OLS** of ``dw`` on the regime (statsmodels ``OLS(...).fit(cov_type="cluster")``,
  clusters = neurons) or a **linear mixed model** (statsmodels ``MixedLM``, random intercept per
  neuron);
* :meth:`PlasticityPower.solve` computes the power curve over a grid of sample sizes and returns a
  :class:`PowerResults` with the smallest size reaching the target power, re-checked by an
  independent simulation at that size.

A trial's plasticity is modelled as Gaussian with the mean and standard deviation of sums of
``trial_s / window_s`` consecutive windows of the rule's simulated ``|dw|`` series (block sums
when the series is long enough, otherwise the window variance times the number of windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ..random import SeedLike, check_random_state

__all__ = ["PlasticityPower", "PowerResults", "trial_moments"]


def trial_moments(dw_per_window: np.ndarray, windows_per_trial: int) -> tuple[float, float]:
    """Mean and standard deviation of the plasticity summed over one trial.

    ``dw_per_window`` is (windows,) or (neurons, windows) of ``|dw|`` per window. With at least ten
    whole trials per neuron the standard deviation is that of the block sums (keeps the serial
    correlation); otherwise it is ``sqrt(windows_per_trial) x`` the per-window sd.
    """
    x = np.atleast_2d(np.asarray(dw_per_window, float))
    W = int(windows_per_trial)
    if W < 1:
        raise ValueError("windows_per_trial must be >= 1")
    n_blocks = x.shape[1] // W
    mean = float(x.mean() * W)
    if n_blocks >= 10:
        sums = x[:, :n_blocks * W].reshape(x.shape[0], n_blocks, W).sum(axis=2)
        # within-neuron spread of trial sums (between-neuron spread is the random effect)
        sd = float(np.sqrt(np.mean(sums.var(axis=1, ddof=1))))
    else:
        sd = float(np.sqrt(np.mean(x.var(axis=1, ddof=1)) * W))
    return mean, sd


@dataclass
class PowerResults:
    """Power curve and the required sample size.

    Attributes
    ----------
    curve : DataFrame
        ``n_neurons``, ``n_trials``, ``trial_s``, ``minutes``, ``power``, ``power_se`` per grid point.
    n_required : int or None
        Smallest ``n_neurons`` (or ``n_trials`` when solving over trials) with power >= target.
    target_power, alpha : float
    verified_power, verified_se : float
        Power re-simulated at ``n_required`` with an independent seed.
    minutes_required : float
        Total recording time at that size (both regimes).
    settings : dict
        The design and noise settings.
    """

    curve: pd.DataFrame
    n_required: int | None
    target_power: float
    alpha: float
    verified_power: float
    verified_se: float
    minutes_required: float
    solve_over: str
    settings: dict = field(default_factory=dict)

    @property
    def reproduces(self) -> bool:
        """Whether the re-simulated power at ``n_required`` reaches the target within 2 MC standard errors."""
        return self.n_required is not None and self.verified_power >= self.target_power - 2 * self.verified_se

    def summary(self) -> str:
        lines = [f"Plasticity power analysis ({self.settings.get('test', '')}, alpha = {self.alpha}, "
                 f"target power = {self.target_power})",
                 f"  effect: mean |dw| per trial {self.settings.get('mean_a', float('nan')):.4g} vs "
                 f"{self.settings.get('mean_b', float('nan')):.4g} (regimes {self.settings.get('labels')})",
                 f"  noise sd per trial {self.settings.get('noise_sd')}, neuron CV {self.settings.get('neuron_cv')}"]
        if self.n_required is None:
            lines.append(f"  target power not reached on the grid (max {self.curve['power'].max():.2f})")
        else:
            lines.append(f"  required {self.solve_over}: {self.n_required} "
                         f"({self.minutes_required:.1f} recording minutes); re-simulated power "
                         f"{self.verified_power:.3f} +- {self.verified_se:.3f}")
        lines.append(self.curve.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        return self.curve.copy()


class PlasticityPower:
    """Power of the two-regime plasticity experiment for one learning rule.

    Parameters
    ----------
    dw_a, dw_b : array_like
        Per-window plasticity ``|dw|`` of the rule in regime a and b, shape (windows,) or
        (neurons, windows).
    window_s : float
        Window length of those series (s).
    trial_s : float
        Length of one trial (s).
    noise_sd : float
        Recording noise: standard deviation of the measurement error of one trial's ``dw``, in
        the units of ``dw``.
    neuron_cv : float
        Coefficient of variation of a multiplicative per-neuron random effect (shared by both
        regimes).
    test : {"cluster", "mixed"}
        Cluster-robust OLS (fast; default) or a random-intercept mixed model.
    labels : (str, str)
        Names of the regimes.
    """

    def __init__(self, dw_a, dw_b, *, window_s: float, trial_s: float = 30.0, noise_sd: float = 0.0,
                 neuron_cv: float = 0.3, test: str = "cluster", labels: Sequence[str] = ("a", "b")):
        if test not in ("cluster", "mixed"):
            raise ValueError(f"test must be 'cluster' or 'mixed', got {test!r}")
        if not window_s > 0 or not trial_s >= window_s:
            raise ValueError("need window_s > 0 and trial_s >= window_s")
        if noise_sd < 0 or neuron_cv < 0:
            raise ValueError("noise_sd and neuron_cv must be >= 0")
        self.window_s = float(window_s)
        self.trial_s = float(trial_s)
        self.noise_sd = float(noise_sd)
        self.neuron_cv = float(neuron_cv)
        self.test = test
        self.labels = tuple(labels)
        W = int(round(trial_s / window_s))
        self.mean_a, self.sd_a = trial_moments(dw_a, W)
        self.mean_b, self.sd_b = trial_moments(dw_b, W)

    # ------------------------------------------------------------------ simulation of one experiment
    def _simulate(self, rng: np.random.Generator, n_neurons: int, n_trials: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, t = int(n_neurons), int(n_trials)
        if self.neuron_cv > 0:
            s2 = math.log(1.0 + self.neuron_cv**2)
            u = rng.lognormal(-s2 / 2, math.sqrt(s2), size=n)
        else:
            u = np.ones(n)
        ya = u[:, None] * (self.mean_a + self.sd_a * rng.standard_normal((n, t))) + self.noise_sd * rng.standard_normal((n, t))
        yb = u[:, None] * (self.mean_b + self.sd_b * rng.standard_normal((n, t))) + self.noise_sd * rng.standard_normal((n, t))
        y = np.concatenate([ya.ravel(), yb.ravel()])
        regime = np.concatenate([np.zeros(n * t), np.ones(n * t)])
        neuron = np.concatenate([np.repeat(np.arange(n), t)] * 2)
        return y, regime, neuron

    def _pvalue(self, y, regime, neuron) -> float:
        import warnings

        import statsmodels.api as sm

        X = sm.add_constant(regime, has_constant="add")
        if self.test == "cluster":
            # small-sample correction and t reference with (clusters - 1) df: correct size with few neurons
            fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": neuron, "use_correction": True,
                                                                  "df_correction": True}, use_t=True)
            return float(fit.pvalues[1])
        from statsmodels.regression.mixed_linear_model import MixedLM

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = MixedLM(y, X, groups=neuron).fit(reml=True)
        return float(fit.pvalues[1])

    def power(self, n_neurons: int, n_trials: int = 1, *, n_sims: int = 400, alpha: float = 0.05,
              seed: SeedLike = None) -> tuple[float, float]:
        """Fraction of simulated experiments with p < ``alpha``, and its Monte-Carlo standard error."""
        if n_neurons < 2:
            raise ValueError("need at least 2 neurons (clusters) for the test")
        rng = check_random_state(seed)
        rej = 0
        for _ in range(int(n_sims)):
            p = self._pvalue(*self._simulate(rng, n_neurons, n_trials))
            rej += p < alpha
        pw = rej / n_sims
        return pw, math.sqrt(max(pw * (1 - pw), 1e-12) / n_sims)

    def solve(self, *, target_power: float = 0.8, alpha: float = 0.05, over: str = "n_neurons",
              grid: Sequence[int] | None = None, n_trials: int = 4, n_neurons: int = 10, n_sims: int = 400,
              n_sims_verify: int = 1000, refine: bool = True, seed: SeedLike = 0) -> PowerResults:
        """Power curve over ``grid`` and the smallest size reaching ``target_power``.

        ``over="n_neurons"`` varies the number of neurons at ``n_trials`` trials per regime;
        ``over="n_trials"`` varies trials per regime at ``n_neurons`` neurons. The answer is
        re-simulated at that size with an independent seed (``verified_power``). With ``refine`` the
        integers between the last grid size below the target and the first above are bisected, so the
        answer is the smallest size whose simulated power reaches the target (each point with its
        Monte-Carlo error: near the answer a size can land on either side by chance).
        """
        if over not in ("n_neurons", "n_trials"):
            raise ValueError(f"over must be 'n_neurons' or 'n_trials', got {over!r}")
        if grid is None:
            grid = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
        ss = np.random.SeedSequence(seed if isinstance(seed, (int, np.integer)) else None)
        s_curve, s_verify = ss.spawn(2)
        seeds = s_curve.spawn(len(grid))
        rows = []
        for g, s in zip(grid, seeds):
            nn, nt = (int(g), int(n_trials)) if over == "n_neurons" else (int(n_neurons), int(g))
            pw, se = self.power(nn, nt, n_sims=n_sims, alpha=alpha, seed=s)
            rows.append({"n_neurons": nn, "n_trials": nt, "trial_s": self.trial_s,
                         "minutes": 2 * nn * nt * self.trial_s / 60.0, "power": pw, "power_se": se})
        ok = [r for r in rows if r["power"] >= target_power]
        n_req = None if not ok else int(ok[0][over])
        if n_req is not None and refine:
            # bisect the integers between the last grid size below the target and the first one above
            below = [int(r[over]) for r in rows if int(r[over]) < n_req and r["power"] < target_power]
            lo, hi = (max(below) if below else int(grid[0]) - 1), n_req
            rseeds = iter(s_curve.spawn(64))
            while hi - lo > 1:
                mid = (lo + hi) // 2
                nn, nt = (mid, int(n_trials)) if over == "n_neurons" else (int(n_neurons), mid)
                pw, se = self.power(nn, nt, n_sims=n_sims, alpha=alpha, seed=next(rseeds))
                rows.append({"n_neurons": nn, "n_trials": nt, "trial_s": self.trial_s,
                             "minutes": 2 * nn * nt * self.trial_s / 60.0, "power": pw, "power_se": se})
                lo, hi = (lo, mid) if pw >= target_power else (mid, hi)
            n_req = hi
        curve = pd.DataFrame(rows).sort_values(over, kind="stable").reset_index(drop=True)
        vp, vse, minutes = float("nan"), float("nan"), float("nan")
        if n_req is not None:
            nn, nt = (n_req, int(n_trials)) if over == "n_neurons" else (int(n_neurons), n_req)
            vp, vse = self.power(nn, nt, n_sims=n_sims_verify, alpha=alpha, seed=s_verify)
            minutes = 2 * nn * nt * self.trial_s / 60.0
        settings = {"test": self.test, "labels": list(self.labels), "mean_a": self.mean_a, "mean_b": self.mean_b,
                    "sd_a": self.sd_a, "sd_b": self.sd_b, "noise_sd": self.noise_sd, "neuron_cv": self.neuron_cv,
                    "trial_s": self.trial_s, "window_s": self.window_s, "n_trials": int(n_trials),
                    "n_neurons": int(n_neurons), "n_sims": int(n_sims), "n_sims_verify": int(n_sims_verify)}
        return PowerResults(curve=curve, n_required=n_req, target_power=target_power, alpha=alpha, verified_power=vp,
                            verified_se=vse, minutes_required=minutes, solve_over=over, settings=settings)
