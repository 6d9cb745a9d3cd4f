"""Protocols: block schedules, learner settings, pretraining -> perturbation, plasticity regimes.

* :func:`conditioning_blocks` (baseline -> conditioning -> extinction) and :func:`dual_blocks`
  (manual -> brain control -> dual -> manual, the dualbci schedule of ``bci_nwb.md`` §A.2);
* :func:`default_rule_params`: hyper-parameters that make every learner move the weights on a
  comparable scale for a given mapping (the reward scales differ by orders of magnitude between
  the paper's costs and the BCI rewards);
* :func:`pretrain_then_perturb`: the preprint's Fig. 6 protocol (``rdd_model.md`` §4.7): pretrain on
  ``||s - 0.02||`` and continue **from the pretrained weights** on the special-neuron task (the
  original notebook restarted from the initial random weights, ``rdd_model.md`` §7.10);
* :func:`matched_rate_regimes`: two stimulus regimes (constant drive ``x`` and noise ``sigma``) at
  the same firing rate but with different fractions of near-threshold windows (``rdd_model.md``
  §4.8, A9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sim.lif import LIFParams, LIFPopulation
from .bci_config import Block

__all__ = [
    "conditioning_blocks", "dual_blocks", "default_rule_params", "RULE_NAMES", "pretrain_then_perturb",
    "PretrainResult", "matched_rate_regimes", "Regime",
]

#: The learners compared in the predictions (names accepted by :func:`bci_credit.tasks.bci.resolve_rule`).
RULE_NAMES = ("rdd", "od", "reinforce", "node_perturbation", "spike_injection", "rstdp", "oracle", "none")


def conditioning_blocks(baseline_s: float = 60.0, conditioning_s: float = 240.0, extinction_s: float = 60.0,
                        *, wrist: bool = False) -> tuple:
    """Baseline (no reward) -> conditioning (reward) -> extinction (no reward); zero-length blocks are dropped."""
    spec = [("baseline", baseline_s, False), ("conditioning", conditioning_s, True), ("extinction", extinction_s, False)]
    return tuple(Block(n, d, reward=r, wrist=wrist) for n, d, r in spec if d > 0)


def dual_blocks(manual_s: float = 120.0, brain_s: float = 240.0, dual_s: float = 240.0, manual2_s: float = 120.0) -> tuple:
    """The dualbci schedule MC1 -> BC -> DC -> MC2 (the wrist moves in every block)."""
    spec = [("MC1", manual_s, "manual"), ("BC", brain_s, "brain"), ("DC", dual_s, "dual"), ("MC2", manual2_s, "manual")]
    return tuple(Block(n, d, reward=True, wrist=True, control=c) for n, d, c in spec if d > 0)


# Per-mapping scales. Reward mappings give a per-window cost in {0, -1}; a control unit's spike
# changes it by ~0.05-0.3, while the paper's target-rate costs change by ~1e-3 per spike. The
# learning rates below were set so that, on the default threshold session (20 units, c = 0.3),
# each learner moves the control unit's gain by several units within a few simulated minutes
# (analysis/predict_all.py conditioning records the resulting rate changes).
_THRESHOLD = {
    "rdd": {"p": 0.2, "eta": 0.05, "epsilon": 20.0, "linear": False},
    "od": {"p": 1.0, "eta": 0.05, "epsilon": 20.0, "linear": False},
    "reinforce": {"epsilon": 40.0, "tau_baseline": 50.0},
    "node_perturbation": {"sigma_pert": 20.0, "epsilon": 3e-5, "baseline": "paired"},
    "rstdp": {"epsilon": 0.05, "tau_eligibility_s": 0.5},
    "oracle": {"epsilon": 20.0, "tau_windows": 20.0},
    "spike_injection": {"m": 0.005, "eta": 0.02, "epsilon": 20.0},
    "none": {},
}
_PAPER = {
    "rdd": {"p": 0.2, "eta": 0.1, "epsilon": 1e4, "linear": False},
    "rdd_repo": {"p": 0.2, "eta": 0.1, "epsilon": 1e4},
    "od": {"p": 1.0, "eta": 0.1, "epsilon": 5e3, "linear": False},
    "reinforce": {"epsilon": 4e4, "tau_baseline": 50.0},
    "node_perturbation": {"sigma_pert": 20.0, "epsilon": 0.1, "tau_baseline": 50.0},
    "rstdp": {"epsilon": 2e-3, "tau_eligibility_s": 0.5},
    "oracle": {"epsilon": 1e4, "tau_windows": 20.0},
    "none": {},
}


def default_rule_params(rule: str, mapping: str = "threshold") -> dict:
    """Hyper-parameters of ``rule`` for a session with the given mapping name.

    Reward mappings (``threshold``, ``windowed_rate``, ``cursor1d``, ``dual``) share one set of
    scales; the paper's ``target_rate`` cost another.
    """
    table = _PAPER if mapping == "target_rate" else _THRESHOLD
    if rule not in table:
        raise ValueError(f"no default parameters for rule {rule!r}; known: {sorted(table)}")
    return dict(table[rule])


# ----------------------------------------------------------------------------- pretrain -> perturb
@dataclass
class PretrainResult:
    """Weights and per-window costs of a pretraining + perturbation run."""

    w_initial: np.ndarray  # (R, N)
    w_pretrained: np.ndarray  # (R, N)
    w_final: np.ndarray  # (R, N)
    cost_pretrain: np.ndarray  # (R, windows)
    cost_perturb: np.ndarray  # (R, windows)
    weights_perturb: np.ndarray  # (samples, R, N) weights during the perturbed phase; [0] = its start
    weights_t_s: np.ndarray


def _online(pop: LIFPopulation, rule, cost, n_windows: int, sample_every: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the package's online loop and return (cost per window (R, W), sampled weights (S, R, N))."""
    from ..learning.loop import run_online

    w_start = pop.w.copy()
    blocks, _ = run_online(pop, rule, cost, n_windows, keep_blocks=True)
    s_end = np.concatenate([b.s_end for b in blocks], axis=1)
    costs = np.asarray(cost(s_end), dtype=float)
    hist = np.asarray(rule.history_["weights"])  # weights after each window (W / record_every, R, N)
    every = max(1, sample_every)
    return costs, np.concatenate([w_start[None], hist[every - 1::every]], axis=0)


def pretrain_then_perturb(rule, *, n_neurons: int = 10, n_replicates: int = 16, c_pretrain: float = 0.01,
                          c: float = 0.5, pretrain_s: float = 500.0, perturb_s: float = 500.0,
                          pretrain_rule=None, w_pretrained: np.ndarray | None = None, params: LIFParams | None = None,
                          perturbed_cost=None, seed=0, sample_every_s: float = 5.0) -> PretrainResult:
    """The preprint Fig. 6 protocol: pretrain on ``||s - 0.02||`` at ``c_pretrain``, then the perturbed task.

    The perturbed phase starts from the **pretrained** weights (``rdd_model.md`` §7.10: the original
    notebook restarted from the random initial weights). Pass ``w_pretrained`` to reuse one
    pretraining for several rules or correlations (it is copied, never modified).

    Parameters
    ----------
    rule : LearningRule
        Rule of the perturbed phase (cloned).
    pretrain_rule : LearningRule, optional
        Rule of the pretraining (default: ``rule``).
    perturbed_cost : Cost, optional
        Default: the special-neuron task ``TargetRateCost.special_neuron(n_neurons)``.
    """
    from ..random import seed_sequence
    from .costs import TargetRateCost

    p = params or LIFParams(sigma=10.0, window_s=0.05, tau_s=0.2, paper_kernel=True)
    R, N = int(n_replicates), int(n_neurons)
    s_w0, s_pre, s_post = seed_sequence(seed).spawn(3)
    w0 = 10.0 * np.random.default_rng(s_w0).random((R, N))
    w0 = np.clip(w0, getattr(rule, "w_min", 2.0) or 2.0, getattr(rule, "w_max", 20.0) or 20.0)
    n_pre = int(round(pretrain_s / p.window_s))
    n_post = int(round(perturb_s / p.window_s))
    every = max(1, int(round(sample_every_s / p.window_s)))
    if w_pretrained is None:
        pre_rule = (pretrain_rule if pretrain_rule is not None else rule).clone()
        pop = LIFPopulation(w0, c=c_pretrain, params=p, seed=s_pre, sigma_pert=getattr(pre_rule, "sigma_pert", 0.0))
        cost_pre, _ = _online(pop, pre_rule, TargetRateCost(target=(0.02,) * N), n_pre, every)
        w_pre = np.array(pre_rule.weights_, copy=True)
    else:
        w_pre = np.array(w_pretrained, dtype=float, copy=True)
        cost_pre = np.empty((R, 0))
    post_rule = rule.clone()
    cost = perturbed_cost if perturbed_cost is not None else TargetRateCost.special_neuron(N)
    pop = LIFPopulation(w_pre.copy(), c=c, params=p, seed=s_post, sigma_pert=getattr(post_rule, "sigma_pert", 0.0))
    if not np.array_equal(pop.w, w_pre):  # pragma: no cover - guards the §7.10 bug
        raise AssertionError("the perturbed phase must start from the pretrained weights")
    cost_post, hist = _online(pop, post_rule, cost, n_post, every)
    return PretrainResult(w_initial=w0, w_pretrained=w_pre, w_final=np.array(post_rule.weights_, copy=True),
                          cost_pretrain=cost_pre, cost_perturb=cost_post, weights_perturb=hist,
                          weights_t_s=np.arange(hist.shape[0]) * every * p.window_s)  # hist[0]: the start


# ----------------------------------------------------------------------------- plasticity regimes
@dataclass(frozen=True)
class Regime:
    """A stimulus regime: constant drive ``x`` and noise scale ``sigma`` at gain ``w``."""

    name: str
    x: float
    sigma: float
    w: float = 10.0


def regime_stats(regimes, *, duration_s: float = 200.0, p: float = 0.2, params: LIFParams | None = None,
                 seed=0) -> list[dict]:
    """Firing rate, near-threshold fraction and spike-count Fano factor of each regime (one batched run)."""
    prm = params or LIFParams(window_s=0.05, tau_s=0.2, paper_kernel=True)
    regimes = list(regimes)
    w = np.array([[r.w] for r in regimes])
    pop = LIFPopulation(w, c=0.0, x=np.array([[r.x] for r in regimes]), params=prm, seed=seed,
                        sigma=np.array([r.sigma for r in regimes]), record_spikes=False)
    n = int(round(duration_s / prm.window_s))
    b = pop.run(n)
    out = []
    for i, r in enumerate(regimes):
        cnt = b.counts[i, :, 0]
        z = b.drive[i, :, 0]
        out.append({"name": r.name, "x": r.x, "sigma": r.sigma, "w": r.w,
                    "rate_hz": float(cnt.sum() / (n * prm.window_s)),
                    "near_fraction": float(np.mean(np.abs(z - prm.threshold) < p)),
                    "fano": float(cnt.var() / max(cnt.mean(), 1e-12))})
    return out


def matched_rate_regimes(target_hz: float = 10.0, *, w: float = 10.0, sigma_drift: float = 1.0, p: float = 0.2,
                         duration_s: float = 200.0, params: LIFParams | None = None, seed=0,
                         tol: float = 0.05) -> tuple[Regime, Regime, list[dict]]:
    """Two regimes at the same rate (within ``tol``) with different near-threshold fractions.

    * ``"fluctuation"``: no constant drive (``x = 0``); the rate comes from noise excursions (sigma
      found by bisection);
    * ``"drift"``: weak noise ``sigma_drift`` and a constant drive ``x`` (found by bisection) that
      ramps the membrane steadily toward threshold, so the window maximum of the drive lands near
      threshold more often.

    Returns the two regimes and their measured statistics (rate, near-threshold fraction, Fano factor),
    re-measured on a fresh seed over ``2 duration_s``. The bisections see one noise realisation of
    ``duration_s``, whose rate estimate has a sampling error of a few per cent (noise-driven spiking
    is irregular); when the fresh measurement misses ``tol`` for that reason, the calibration is
    repeated on 10× longer runs. Raises ``RuntimeError`` if even that misses.
    """
    from scipy.optimize import brentq

    prm = params or LIFParams(window_s=0.05, tau_s=0.2, paper_kernel=True)

    def rate(x, sigma, dur):
        return regime_stats([Regime("probe", x, sigma, w)], duration_s=dur, p=p, params=prm, seed=seed)[0]["rate_hz"]

    for dur in (duration_s, 10 * duration_s):
        sig_fluct = brentq(lambda s: rate(0.0, s, dur) - target_hz, 2.0, 60.0, xtol=0.01)
        x_drift = brentq(lambda x: rate(x, sigma_drift, dur) - target_hz, 0.0, 5.0, xtol=1e-4)
        a = Regime("fluctuation", 0.0, float(sig_fluct), w)
        b = Regime("drift", float(x_drift), float(sigma_drift), w)
        stats = regime_stats([a, b], duration_s=dur * 2, p=p, params=prm, seed=seed + 1)
        r0, r1 = stats[0]["rate_hz"], stats[1]["rate_hz"]
        if abs(r1 - r0) <= tol * r0:
            return a, b, stats
    raise RuntimeError(f"regimes not matched within {tol:.0%} (calibrated on {dur:g}-s runs): {r0:.2f} vs "
                       f"{r1:.2f} Hz; try a larger duration_s or tol")
