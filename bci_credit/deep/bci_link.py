"""The BCI link: a rate-network single-unit BCI task learned by BP, FA, NP and REINFORCE.

In a single-unit BCI experiment one recorded neuron (the *control unit*) drives the cursor or the
reward, and the animal learns to change that neuron's rate. Which units change, and how
specifically, depends on how the brain assigns credit. Here the same question is asked of a rate
network::

    inputs x (a new random context every trial) → hidden population h = tanh(W1 x + b1)
                                                  → output units r = softplus(W2 h + b2)

Output unit ``control_unit`` is the control unit. The task (:class:`RateBCITask`) rewards raising
its rate to a target above its baseline; the other output units are neither rewarded nor
penalised. Four learning rules see the task only through its per-trial loss/reward:

* ``bp`` — backprop (exact gradient through W2 to the hidden layer);
* ``fa`` — feedback alignment (a fixed random B instead of W2ᵀ);
* ``np`` — node perturbation learns B (Lansdell et al. 2020), then trains W as FA does with it;
* ``reinforce`` — node perturbation as the learning rule itself (Williams 1992; Fiete & Seung
  2006): every unit's pre-activation is jittered, and each weight moves by the correlation of its
  unit's jitter with the change in reward. No feedback pathway at all.

:func:`run_bci_link` trains a copy of the same initial network with each rule and reports how
much the control unit's rate changed against the other output units' — the specificity of
learning (:func:`specificity`), at the end and at matched performance.

The module is self-contained: it uses only :mod:`bci_credit.deep` and torch.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..plotting import pyplot
from ..random import SeedLike, seed_sequence
from .methods import convert

__all__ = ["RateBCITask", "BCILinkResult", "build_rate_network", "specificity", "run_bci_link", "BCI_METHODS"]

BCI_METHODS = ("bp", "fa", "np", "reinforce")


def _gen(seed) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed_sequence(seed).generate_state(1, dtype="uint64")[0] % (2**63)))


@dataclass(frozen=True)
class RateBCITask:
    """A single-unit BCI task for a rate network.

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : int
        Sizes of the input, hidden population and recorded output population.
    control_unit : int
        Index of the output unit whose rate sets the reward.
    target_increase : float
        How far above its baseline (mean over contexts at the start) the control unit's rate must go.
    """

    n_inputs: int = 20
    n_hidden: int = 50
    n_outputs: int = 10
    control_unit: int = 0
    target_increase: float = 1.0

    def __post_init__(self):
        if min(self.n_inputs, self.n_hidden, self.n_outputs) < 1:
            raise ValueError("n_inputs, n_hidden and n_outputs must be positive")
        if not 0 <= self.control_unit < self.n_outputs:
            raise ValueError(f"control_unit must be in [0, {self.n_outputs}), got {self.control_unit}")

    def loss(self, rates: torch.Tensor, target_rate: float) -> torch.Tensor:
        """Per-trial loss ``½ (r_control − target)²`` (the reward is its negative)."""
        return 0.5 * (rates[:, self.control_unit] - target_rate) ** 2

    def contexts(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` random input contexts (one per trial)."""
        return torch.randn(n, self.n_inputs, generator=gen, dtype=torch.float64)


def build_rate_network(task: RateBCITask, seed: SeedLike = 0) -> nn.Sequential:
    """inputs → tanh hidden → softplus outputs, weights ~ N(0, 1/fan_in), float64."""
    g = _gen(seed)
    l1 = nn.Linear(task.n_inputs, task.n_hidden).double()
    l2 = nn.Linear(task.n_hidden, task.n_outputs).double()
    with torch.no_grad():
        for lin in (l1, l2):
            lin.weight.normal_(0.0, 1.0 / np.sqrt(lin.in_features), generator=g)
            lin.bias.zero_()
    return nn.Sequential(l1, nn.Tanh(), l2, nn.Softplus())


def specificity(delta_rates: np.ndarray, control_unit: int) -> dict:
    """How specifically a change of mean rates hit the control unit.

    Parameters
    ----------
    delta_rates : array, shape (n_outputs,)
        Change of each output unit's mean rate (over contexts).

    Returns
    -------
    dict
        ``control_change``; ``others_mean_abs_change``; ``ratio`` = control / mean |others|;
        ``index`` = control / (|control| + mean |others|) (1: only the control unit changed, 0.5: it
        changed as much as a typical other unit); ``energy_fraction`` = the control unit's share of
        the summed squared changes (1/n_outputs for an unspecific change).
    """
    d = np.asarray(delta_rates, dtype=float)
    c = float(d[control_unit])
    others = np.delete(d, control_unit)
    mo = float(np.mean(np.abs(others))) if len(others) else 0.0
    tot = float(np.sum(d ** 2))
    return {"control_change": c, "others_mean_abs_change": mo,
            "ratio": c / mo if mo > 0 else float("inf"),
            "index": c / (abs(c) + mo) if (abs(c) + mo) > 0 else float("nan"),
            "energy_fraction": c * c / tot if tot > 0 else float("nan")}


@dataclass
class BCILinkResult:
    """Per-method learning curves and specificity of a :func:`run_bci_link` run."""

    task: RateBCITask
    curves: "object"   # DataFrame: method, step, loss, control_change, others_mean_abs_change, index
    summary: "object"  # DataFrame indexed by method
    settings: dict

    def to_frame(self):
        return self.summary

    def summary_text(self) -> str:
        cols = ["final_loss", "control_change", "others_mean_abs_change", "index", "energy_fraction",
                "index_at_matched", "steps_to_matched"]
        return self.summary[[c for c in cols if c in self.summary.columns]].to_string(float_format=lambda v: f"{v:.3g}")


@torch.no_grad()
def _mean_rates(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    return net(x).mean(0).numpy()


def _reinforce_step(net: nn.Sequential, task: RateBCITask, x: torch.Tensor, target: float, lr: float,
                    noise_std: float, gen: torch.Generator, plastic: str) -> float:
    """One node-perturbation REINFORCE step: ΔW = −η mean_t (L̃_t − L_t) ξ_t hᵀ_t / σ."""
    l1, _, l2, _ = net
    with torch.no_grad():
        a1 = x @ l1.weight.T + l1.bias
        h = torch.tanh(a1)
        a2 = h @ l2.weight.T + l2.bias
        L = task.loss(torch.nn.functional.softplus(a2), target)
        xi1 = torch.randn(a1.shape, generator=gen, dtype=a1.dtype)
        xi2 = torch.randn(a2.shape, generator=gen, dtype=a2.dtype)
        h_n = torch.tanh(a1 + noise_std * xi1)
        a2_n = h_n @ l2.weight.T + l2.bias + noise_std * xi2
        dL = task.loss(torch.nn.functional.softplus(a2_n), target) - L
        n = x.shape[0]
        g2 = xi2 * (dL / (noise_std * n))[:, None]   # estimate of ∂L/∂a2 per trial (÷ n: batch mean)
        g1 = xi1 * (dL / (noise_std * n))[:, None]   # estimate of ∂L/∂a1 per trial
        if plastic == "all":
            l2.weight -= lr * g2.T @ h
            l2.bias -= lr * g2.sum(0)
        l1.weight -= lr * g1.T @ x
        l1.bias -= lr * g1.sum(0)
    return float(L.mean())


def run_bci_link(task: Optional[RateBCITask] = None, methods: Sequence[str] = BCI_METHODS, *,
                 n_steps: int = 1500, batch_size: int = 32, lr: float = 0.02, reinforce_lr: Optional[float] = None,
                 noise_std: float = 0.05, np_noise_std: float = 1e-2, plastic: str = "hidden",
                 n_eval: int = 2000, eval_every: int = 50, seed: SeedLike = 0) -> BCILinkResult:
    """Train the same initial rate network on the BCI task with each method; measure specificity.

    Parameters
    ----------
    task : RateBCITask, optional
    methods : sequence of str
        Any of ``bp, fa, np, reinforce``.
    n_steps, batch_size : int
        Training steps and trials (contexts) per step.
    lr : float
        Learning rate of BP, FA and NP (SGD on the mean loss of a batch).
    reinforce_lr : float, optional
        Learning rate of REINFORCE (default ``lr``).
    noise_std : float
        REINFORCE's perturbation of every unit's pre-activation.
    np_noise_std : float
        NP's perturbation of the hidden activity (used to learn B).
    plastic : {'hidden', 'all'}
        ``'hidden'``: only the input→hidden weights learn and the readout to the recorded units is
        fixed (the recorded population changes through its inputs); ``'all'``: the readout learns too.
    n_eval : int
        Held-out contexts on which mean rates are measured.
    seed : int

    Returns
    -------
    BCILinkResult
    """
    import pandas as pd

    task = task or RateBCITask()
    if plastic not in ("hidden", "all"):
        raise ValueError(f"plastic must be 'hidden' or 'all', got {plastic!r}")
    bad = [m for m in methods if m not in BCI_METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {BCI_METHODS}")
    ss = seed_sequence(seed)
    s_net, s_eval, s_train, s_fb = ss.spawn(4)
    net0 = build_rate_network(task, s_net)
    x_eval = task.contexts(n_eval, _gen(s_eval))
    r0 = _mean_rates(net0, x_eval)
    target = float(r0[task.control_unit] + task.target_increase)
    matched_level = 0.5 * task.target_increase
    rows, summary = [], {}
    for method in methods:
        gen = _gen(s_train)  # the same contexts for every method
        net = copy.deepcopy(net0)
        if method == "reinforce":
            model = None
            noise_gen = _gen(s_fb)
        else:
            model = convert(net, method, seed=s_fb, noise_std=np_noise_std, gamma=1e-3)
            net = model.module
            params = [net[0].weight, net[0].bias] + ([net[2].weight, net[2].bias] if plastic == "all" else [])
            if plastic == "hidden":
                for p in (net[2].weight, net[2].bias):
                    p.requires_grad_(False)
            opt = torch.optim.SGD(params, lr=lr)
        matched = None
        for step in range(1, n_steps + 1):
            x = task.contexts(batch_size, gen)
            if model is None:
                loss = _reinforce_step(net, task, x, target, reinforce_lr or lr, noise_std, noise_gen, plastic)
            else:
                out = model.step(x, torch.zeros(batch_size, dtype=torch.float64),
                                 lambda r, _t: task.loss(r, target), opt, reduction="mean")
                loss = float(out.loss)
            if step % eval_every == 0 or step == n_steps:
                d = _mean_rates(net, x_eval) - r0
                sp = specificity(d, task.control_unit)
                rows.append({"method": method, "step": step, "loss": loss, **sp})
                if matched is None and sp["control_change"] >= matched_level:
                    matched = (step, sp)
        d = _mean_rates(net, x_eval) - r0
        sp = specificity(d, task.control_unit)
        with torch.no_grad():
            final_loss = float(task.loss(net(x_eval), target).mean())
        summary[method] = {"final_loss": final_loss, **sp,
                           "index_at_matched": matched[1]["index"] if matched else float("nan"),
                           "energy_fraction_at_matched": matched[1]["energy_fraction"] if matched else float("nan"),
                           "steps_to_matched": matched[0] if matched else float("nan"),
                           "delta_rates": d.tolist()}
    settings = {"n_steps": n_steps, "batch_size": batch_size, "lr": lr, "reinforce_lr": reinforce_lr or lr,
                "noise_std": noise_std, "np_noise_std": np_noise_std, "plastic": plastic, "n_eval": n_eval,
                "target_rate": target, "baseline_rates": r0.tolist(), "matched_level": matched_level,
                "task": asdict(task)}
    return BCILinkResult(task, pd.DataFrame(rows), pd.DataFrame(summary).T, settings)


def plot_bci_link(result: BCILinkResult, path=None):
    """Learning curves (control-unit change, specificity index) and the final rate changes."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for method, df in result.curves.groupby("method", sort=False):
        axes[0].plot(df["step"], df["control_change"], label=method)
        axes[1].plot(df["step"], df["index"], label=method)
    axes[0].axhline(result.task.target_increase, color="0.6", lw=0.6)
    axes[0].set(xlabel="step", ylabel="Δ rate of the control unit")
    axes[1].set(xlabel="step", ylabel="specificity index", ylim=(0, 1.05))
    axes[1].axhline(0.5, color="0.6", lw=0.6)
    width = 0.8 / max(1, len(result.summary))
    for i, (method, row) in enumerate(result.summary.iterrows()):
        d = np.asarray(row["delta_rates"], dtype=float)
        axes[2].bar(np.arange(len(d)) + i * width, d, width=width, label=method)
    axes[2].set(xlabel="output unit (0 = control)", ylabel="Δ mean rate")
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)  # its colours follow the summary's order, which need not be the curves'
    fig.tight_layout()
    if path is not None:
        from ..outputs import save_figure

        return save_figure(fig, path)
    return fig
