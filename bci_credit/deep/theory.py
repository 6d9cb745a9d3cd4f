"""Numerical checks of the NP theory (Theorems 1–2) and the acceptance checks of deep_np.md §7.2.

Every check builds a small network with :mod:`bci_credit.deep.models`, converts it with
:func:`bci_credit.deep.convert` and runs the same NP code that trains networks (no separate
re-implementation), in float64, with the forward weights frozen. Each returns a plain dict of the
measured numbers; the tests assert on them and the scripts in ``analysis/`` report them.

* :func:`lambda_hat_bias` — check 1: the mean of λ̂ over many draws points along ∂L/∂h.
* :func:`readout_consistency` — check 2 / Theorem 1: for a linear readout under squared loss the
  least-squares (or SGD) ``B`` converges to ``W`` for every noise level, at rate ``T^(−1/2)``.
* :func:`upstream_bias` — check 3: with noise upstream of a sigmoid the estimate has an
  ``O(c_h)`` bias, so large noise gives a larger error at equal ``T``.
* :func:`linear_network_consistency` — Theorem 2: in a linear network every layer's ``B``
  converges to its ``W``, the lower ones regressed on errors propagated by the learned ``B``.
* :func:`fixed_w_convergence` — check 4: ``B`` of the paper's MLP on data, ``W`` frozen.
* :func:`feedback_identifiability` — checks 4–5: which part of each ``B`` the errors it regresses
  on can determine at all (:func:`error_structure`).

Arguments are checked on entry: counts (``n_draws``, ``n_batches``, ``batch_size``, ...) must be
positive whole numbers, labels whole class indices (at least two classes) with one per sample,
``cov`` a finite symmetric matrix of the right size; anything else raises a ValueError (a
TypeError for a model that is not a :class:`~bci_credit.deep.CreditModel`) naming the argument.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from ..checks import check_number
from ..random import SeedLike, seed_sequence
from . import metrics as _m
from .methods import CreditModel, convert
from .models import mlp

__all__ = ["lambda_hat_bias", "readout_consistency", "upstream_bias", "linear_network_consistency",
           "fixed_w_convergence", "feedback_errors", "feedback_identifiability", "error_structure"]


def _pos_int(value, name: str) -> int:
    """``value`` as an ``int`` if it is a whole number >= 1, else a ValueError naming ``name``."""
    v = check_number(value, name, integer=True)
    if v < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return v


def _fraction(value, name: str) -> float:
    """``value`` if it is a number in [0, 1] (a fraction of the largest variance), else a ValueError."""
    v = check_number(value, name)
    if not 0 <= v <= 1:
        raise ValueError(f"{name} must lie in [0, 1] (a fraction of the largest variance), got {value!r}")
    return v


def _sizes(sizes, name: str = "sizes", min_len: int = 3, why: str = "input, hidden and output sizes") -> tuple:
    """Layer sizes: at least ``min_len`` positive whole numbers."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise ValueError(f"{name} must be a sequence of layer sizes, got {sizes!r}")
    if len(sizes) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} layer sizes ({why}), got {tuple(sizes)!r}")
    return tuple(_pos_int(v, f"{name}[{i}]") for i, v in enumerate(sizes))


def _checkpoints(checkpoints, n_batches: int) -> tuple:
    """Checkpoints (in batches): whole numbers in ``[1, n_batches]``."""
    if isinstance(checkpoints, (str, bytes)) or not hasattr(checkpoints, "__iter__"):
        raise ValueError(f"checkpoints must be a sequence of batch counts, got {checkpoints!r}")
    out = tuple(_pos_int(c, "checkpoints") for c in checkpoints)
    late = [c for c in out if c > n_batches]
    if late:
        raise ValueError(f"checkpoints {late} lie beyond n_batches={n_batches}: they would never be recorded; "
                         "raise n_batches or drop them")
    return out


def _credit_model(model, fn: str) -> None:
    if not isinstance(model, CreditModel):
        raise TypeError(f"{fn} needs a CreditModel, got {type(model).__name__}; convert the network first: "
                        "bci_credit.deep.convert(net, 'np') (or another method)")


def _torch_gen(seed: SeedLike) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed_sequence(seed).generate_state(1, dtype="uint64")[0] % (2**63)))


def feedback_errors(model: CreditModel) -> dict:
    """``{layer index: (‖B − W‖/‖W‖, angle(B, W) in degrees)}`` for every site with a ``B``."""
    _credit_model(model, "feedback_errors")
    out = {}
    for l in model.sites:
        B = l.feedback_weight().detach()
        if B.shape == l.weight.shape:
            out[l.fb_index] = (_m.relative_error(B, l.weight), _m.angle_deg(B, l.weight))
    return out


def lambda_hat_bias(noise_std: float = 1e-3, n_draws: int = 20000, sizes: Sequence[int] = (10, 8, 6, 4),
                    batch_size: int = 4, activation: str = "tanh", seed: SeedLike = 0) -> dict:
    """Check 1: the average of λ̂ over ``n_draws`` noise draws versus autograd's ∂L/∂h.

    An MLP with fixed random weights and a fixed batch; all hidden layers are perturbed at once.
    The batch is repeated ``n_draws`` times so one noisy pass gives every draw.

    Returns
    -------
    dict
        ``angle_deg`` per site (mean λ̂ vs exact gradient, all samples of the batch together),
        ``rel_error`` per site, and ``se_angle_deg``: the angle expected from sampling noise
        alone, ``sqrt(Σ Var(λ̂)/n_draws)/‖∂L/∂h‖`` (in degrees).
    """
    n_draws = _pos_int(n_draws, "n_draws")
    batch_size = _pos_int(batch_size, "batch_size")
    sizes = _sizes(sizes)
    ss = seed_sequence(seed)
    s_model, s_data, s_np = ss.spawn(3)
    net = mlp(sizes, activation, seed=s_model).double()
    model = convert(net, "np", seed=s_np, noise_std=noise_std)
    gen = _torch_gen(s_data)
    x = torch.randn(batch_size, sizes[0], generator=gen, dtype=torch.float64)
    y = torch.randn(batch_size, sizes[-1], generator=gen, dtype=torch.float64)
    exact = model.site_gradients(x, y, "mse", exact=True)
    xr = x.repeat(n_draws, 1)
    yr = y.repeat(n_draws, 1)
    est = model.perturbation_estimates(xr, yr, "mse")
    out = {"noise_std": noise_std, "n_draws": n_draws, "angle_deg": {}, "rel_error": {}, "se_angle_deg": {}}
    for idx, lam in est.items():
        draws = lam.reshape(n_draws, batch_size, -1)
        mean = draws.mean(0)
        g = exact[idx].reshape(batch_size, -1)
        gn = torch.linalg.vector_norm(g)
        out["angle_deg"][idx] = _m.angle_deg(mean, g)
        out["rel_error"][idx] = float(torch.linalg.vector_norm(mean - g) / gn)
        out["se_angle_deg"][idx] = float(np.degrees(float(torch.sqrt(draws.var(0).sum() / n_draws) / gn)))
    return out


def _teacher_run(model: CreditModel, n_in: int, n_out: int, n_batches: int, batch_size: int,
                 checkpoints: Iterable[int], seed: SeedLike, teacher_scale: float = 1.0) -> dict:
    """Learn ``B`` with ``W`` frozen on a linear teacher ``y = A x``; record errors at checkpoints."""
    gen = _torch_gen(seed)
    A = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * (teacher_scale / np.sqrt(n_in))
    checkpoints = sorted(set(int(c) for c in checkpoints))
    record = {}
    for t in range(1, n_batches + 1):
        x = torch.randn(batch_size, n_in, generator=gen, dtype=torch.float64)
        model.update_feedback(x, x @ A.t(), "mse")
        if t in checkpoints:
            record[t * batch_size] = feedback_errors(model)
    return record


def readout_consistency(noise_std: float = 1e-2, *, n_batches: int = 3000, batch_size: int = 32,
                        sizes: Sequence[int] = (20, 10, 5), b_solver: str = "ls", gamma: float = 1e-3,
                        b_lr: float = 2e-3, checkpoints: Sequence[int] = (1000, 3000),
                        seed: SeedLike = 0) -> dict:
    """Check 2 (Theorem 1): the readout's ``B`` converges to ``W``.

    The §7.1 calibration setup: a 20→10→5 network, sigmoid hidden layer, linear output, a linear
    teacher, batches of 32, noise on the hidden layer only, ``W`` frozen; ``B`` by exact ridge
    least squares (``γ = 1e-3``) or SGD.

    Returns
    -------
    dict
        ``{samples: {"rel_error": float, "angle_deg": float}}`` for the readout layer at each
        checkpoint (in batches), plus the settings.
    """
    n_batches = _pos_int(n_batches, "n_batches")
    batch_size = _pos_int(batch_size, "batch_size")
    sizes = _sizes(sizes, why="input, at least one perturbed hidden layer, output")
    checkpoints = _checkpoints(checkpoints, n_batches)
    ss = seed_sequence(seed)
    s_model, s_data, s_np = ss.spawn(3)
    net = mlp(sizes, "sigmoid", seed=s_model).double()
    model = convert(net, "np", seed=s_np, noise_std=noise_std, b_solver=b_solver, gamma=gamma, b_lr=b_lr)
    top = len(sizes) - 2
    rec = _teacher_run(model, sizes[0], sizes[-1], n_batches, batch_size, checkpoints, s_data)
    return {"noise_std": noise_std, "b_solver": b_solver,
            "errors": {n: {"rel_error": e[top][0], "angle_deg": e[top][1]} for n, e in rec.items()}}


def upstream_bias(noise_std: float, *, n_batches: int = 1000, batch_size: int = 32,
                  sizes: Sequence[int] = (20, 10, 10, 20), gamma: float = 1e-3, seed: SeedLike = 0) -> dict:
    """Check 3: a site whose noise passes through a later sigmoid layer (bias ``O(c_h)``).

    Only the first hidden layer is perturbed; its ``B`` (of the second, sigmoid layer) is regressed
    on the exact error at the second layer's output (``use_learned_feedback=False``), exact LS,
    ``W`` frozen. Returns the relative error and angle of that ``B`` after ``n_batches`` batches.

    The default sizes 20-10-10-20 make the regressor's covariance well conditioned (the error of
    the 10-unit layer is a full-rank image of the 20-unit output error), so the sampling variance
    is small and the bias shows: at ``c_h = 1`` the error stays on a floor as ``T`` grows while at
    ``c_h = 0.01`` it keeps falling like ``T^(-1/2)``. (With the §7.1 sizes 30-20-15-10 the
    15-dimensional error lives mostly in the 10-dimensional image of the output error, and the
    variance hides the bias at these ``T``.)
    """
    n_batches = _pos_int(n_batches, "n_batches")
    batch_size = _pos_int(batch_size, "batch_size")
    sizes = _sizes(sizes, min_len=4, why="input, two hidden layers (the perturbed one and the sigmoid after it), output")
    ss = seed_sequence(seed)
    s_model, s_data, s_np = ss.spawn(3)
    net = mlp(sizes, "sigmoid", seed=s_model).double()
    model = convert(net, "np", seed=s_np, noise_std=noise_std, gamma=gamma, sites=(1,),
                    use_learned_feedback=False)
    rec = _teacher_run(model, sizes[0], sizes[-1], n_batches, batch_size, (n_batches,), s_data)
    rel, ang = rec[n_batches * batch_size][1]
    return {"noise_std": noise_std, "samples": n_batches * batch_size, "rel_error": rel, "angle_deg": ang}


def linear_network_consistency(noise_std: float = 1e-2, *, n_batches: int = 3000, batch_size: int = 32,
                               sizes: Sequence[int] = (12, 10, 8, 6), perturb: str = "all", gamma: float = 1e-3,
                               checkpoints: Sequence[int] = (300, 3000), seed: SeedLike = 0) -> dict:
    """Theorem 2: in a linear network every layer's learned ``B`` converges to its ``W``.

    All layers linear, ``W`` frozen, exact LS, the lower layers regressed on the errors
    propagated by the learned ``B`` of the layers above (``ẽ``), every hidden layer perturbed
    (``perturb='all'``) or one per step (``'cycle'``).

    Returns
    -------
    dict
        ``errors``: ``{samples: {layer: (rel_error, angle_deg)}}``.
    """
    n_batches = _pos_int(n_batches, "n_batches")
    batch_size = _pos_int(batch_size, "batch_size")
    sizes = _sizes(sizes)
    checkpoints = _checkpoints(checkpoints, n_batches)
    ss = seed_sequence(seed)
    s_model, s_data, s_np = ss.spawn(3)
    net = mlp(sizes, "linear", seed=s_model).double()
    model = convert(net, "np", seed=s_np, noise_std=noise_std, gamma=gamma, perturb=perturb)
    rec = _teacher_run(model, sizes[0], sizes[-1], n_batches, batch_size, checkpoints, s_data)
    return {"noise_std": noise_std, "perturb": perturb, "errors": rec}


def error_structure(B: np.ndarray, W: np.ndarray, cov: np.ndarray, n_weak: Optional[int] = None, *,
                    weak_below: float = 0.01) -> dict:
    """Where the error of a feedback matrix lies relative to the errors it carries.

    ``B`` and ``W`` have shape (out, in); the signal ``B`` delivers is ``δ B`` for a row ``δ`` of the
    layer's output error, whose covariance is ``cov`` (out × out). A direction of ``δ`` that barely
    varies is barely seen by the regression that learns ``B`` — and barely used by the signal.
    With its ``n_weak`` least-excited directions left out (by default those with a variance below
    ``weak_below`` times the largest), returns the relative error and sign
    congruence of ``B`` vs ``W`` (``P B`` vs ``P W``, ``P`` the projection on the excited directions),
    the share of ``‖B − W‖²`` in the weak directions, and the error weighted by ``cov`` (the
    relative error of the delivered signal, ``E‖δ(B − W)‖² / E‖δ W‖²``, square-rooted).
    """
    B, W, cov = np.asarray(B, float), np.asarray(W, float), np.asarray(cov, float)
    if B.ndim != 2 or B.shape != W.shape:
        raise ValueError(f"B and W must be matrices of the same shape (out, in), got {B.shape} and {W.shape}")
    k = B.shape[0]
    if cov.shape != (k, k):
        raise ValueError(f"cov must be the ({k}, {k}) covariance of the layer's output error (B has {k} rows), "
                         f"got shape {cov.shape}")
    for name, a in (("B", B), ("W", W), ("cov", cov)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    scale = float(np.abs(cov).max()) if cov.size else 0.0
    if np.abs(cov - cov.T).max(initial=0.0) > 1e-8 * scale:
        raise ValueError("cov must be symmetric (a covariance matrix); it differs from its transpose by up to "
                         f"{np.abs(cov - cov.T).max():.3g}; pass (cov + cov.T) / 2 if that is rounding")
    weak_below = _fraction(weak_below, "weak_below")
    ev, U = np.linalg.eigh(cov)
    if not ev.max() > 0:
        raise ValueError("cov has no positive variance (the errors do not vary); estimate it on more or other data")
    if n_weak is None:
        n_weak = int(np.sum(ev < weak_below * ev.max()))
    else:
        n_weak = check_number(n_weak, "n_weak", integer=True)
        if not 0 <= n_weak < k:
            raise ValueError(f"n_weak must be a whole number in [0, {k - 1}] (directions left out of {k}), got {n_weak!r}")
    D = B - W
    Uw, Ue = U[:, :n_weak], U[:, n_weak:]
    P = Ue @ Ue.T
    half = U @ np.diag(np.sqrt(np.clip(ev, 0, None))) @ U.T
    return {"n_directions": int(len(ev)), "n_weak": int(n_weak),
            "rel_error_excited": float(np.linalg.norm(P @ D) / np.linalg.norm(P @ W)),
            "sign_congruence_excited": float(np.mean(np.sign(P @ B) == np.sign(P @ W))),
            "weak_share_of_error": float(np.linalg.norm(Uw.T @ D) ** 2 / np.linalg.norm(D) ** 2),
            "rel_error_signal_weighted": float(np.linalg.norm(half @ D) / np.linalg.norm(half @ W)),
            "eigenvalues_rel_to_max": (ev / ev.max()).tolist()}


def feedback_identifiability(model: CreditModel, x: torch.Tensor, y: torch.Tensor, loss: str = "mse", *,
                             weak_below: float = 0.01) -> dict:
    """How well each layered feedback matrix is determined by the errors it regresses on.

    The covariance of the method's own error at each site's layer output (the regressor of the NP
    regression, :meth:`CreditModel.site_errors`) is estimated on ``(x, y)``; its directions with
    variance below ``weak_below`` times the largest are "weak". With one-hot targets over ``C``
    classes the top layer's error has a barely varying direction (the sum over classes), and a
    lower layer's error, driven by that ``C``-dimensional error, at most ``C − 1`` strong ones.

    Parameters
    ----------
    model : CreditModel
        A layered model (``fa``, ``np``, ...); direct (DFA-style) and conv sites are skipped.
    x, y : Tensor or array
        Inputs and targets (class labels or one-hot / real targets) to estimate the covariances on.
    loss : str
        The training loss (``'mse'`` for the paper's MLP).
    weak_below : float
        Directions whose error variance is below this fraction of the largest are "weak".

    Returns
    -------
    dict
        Per site (by its index in :attr:`CreditModel.sites`), the plain ``rel_error`` and
        ``sign_congruence`` of ``B`` vs ``W`` and :func:`error_structure` with the weak directions
        left out.
    """
    _credit_model(model, "feedback_identifiability")
    weak_below = _fraction(weak_below, "weak_below")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y {len(y)}; give one target per input")
    if len(x) < 2:
        raise ValueError(f"x has {len(x)} sample(s); a covariance needs at least 2 (use many, e.g. 1000)")
    deltas = model.site_errors(x, y, loss)
    out = {}
    for k, site in enumerate(model.sites):
        d = deltas.get(site.fb_index)
        B, W = site.feedback_weight().detach(), site.weight.detach()
        if d is None or d.dim() != 2 or B.shape != W.shape or d.shape[1] != W.shape[0]:
            continue  # direct (DFA-style) or conv sites: B does not multiply this layer's error
        d = d.detach().double().cpu().numpy()
        rec = {"rel_error": _m.relative_error(B, W), "sign_congruence": _m.sign_congruence(B, W)}
        rec.update(error_structure(B.double().cpu().numpy(), W.double().cpu().numpy(), d.T @ d / len(d),
                                   weak_below=weak_below))
        out[k] = rec
    return out


def _top_error_structure(site, cov: np.ndarray, li: int) -> dict:
    """Check 4's view of the top site: :func:`error_structure` without the one least-excited direction."""
    B = site.feedback_weight().detach().cpu().numpy()
    W = site.weight.detach().cpu().numpy()
    if B.shape != W.shape or B.shape[0] != len(cov):
        return {}
    r = error_structure(B, W, cov, 1)
    ev = r["eigenvalues_rel_to_max"]
    return {f"rel_error_without_least_excited_{li}": r["rel_error_excited"],
            f"rel_error_signal_weighted_{li}": r["rel_error_signal_weighted"],
            f"least_excited_share_of_error_{li}": r["weak_share_of_error"],
            f"least_excited_eigenvalue_ratio_{li}": ev[0] / ev[1]}


def fixed_w_convergence(x: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, *,
                        noise_std: float = 1e-2, gamma: float = 0.1, n_samples: int = 100_000,
                        batch_size: int = 32, n_blocks: int = 10, hidden: Sequence[int] = (50, 20),
                        perturb: str = "all", sites: Optional[tuple] = None, seed: SeedLike = 0,
                        eval_size: int = 1000) -> dict:
    """Check 4: ``B`` of the paper's MLP learned on data with ``W`` frozen (exact LS).

    Parameters
    ----------
    x, labels : arrays
        Training inputs (flattened per sample, scaled to [0, 1]) and integer labels.
    noise_std, gamma : float
        NP perturbation sd σ and the ridge γ of the exact least squares.
    n_samples, batch_size : int
        Training samples seen in all (``n_samples // batch_size`` steps) and the batch size.
    n_blocks : int
        Number of evaluation points (one per block of steps).
    hidden : sequence of int
        Hidden-layer sizes of the sigmoid MLP (the paper's 50, 20).
    perturb, sites
        As in :class:`~bci_credit.deep.FeedbackConfig` (the paper: every site at once).
    seed : int or SeedSequence
        Seeds the weights, the data order and the NP noise (independent streams).
    eval_size : int
        Size of the fixed evaluation batch for the angles and the error covariance.

    Returns
    -------
    dict
        ``blocks``: one row per block of ``n_samples / n_blocks`` samples with each site's
        relative error and angle of ``B`` vs ``W`` and the per-layer angle of the W update to the
        BP update (on a fixed evaluation batch); for the top site also the structure of its
        error (:func:`_top_error_structure`).
    """
    n_samples = _pos_int(n_samples, "n_samples")
    batch_size = _pos_int(batch_size, "batch_size")
    n_blocks = _pos_int(n_blocks, "n_blocks")
    eval_size = _pos_int(eval_size, "eval_size")
    hidden = _sizes(hidden, "hidden", min_len=1, why="hidden-layer sizes")
    xa = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    ya = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if xa.ndim < 1 or len(xa) == 0 or xa.size == 0:
        raise ValueError(f"x is empty (shape {xa.shape}); give the training inputs, one row per sample")
    if xa.dtype.kind not in "biuf" or not np.isfinite(xa).all():
        raise ValueError("x must hold finite numbers (no NaN or infinite values)")
    if ya.ndim != 1:
        raise ValueError(f"labels must be 1-D integer class labels (not one-hot), got shape {ya.shape}")
    if len(ya) != len(xa):
        raise ValueError(f"x has {len(xa)} samples but labels {len(ya)}; give one label per sample")
    if ya.dtype.kind not in "iuf" or (ya.dtype.kind == "f" and not (np.isfinite(ya).all() and (ya == np.round(ya)).all())):
        raise ValueError(f"labels must be whole numbers (class indices), got {ya.dtype} values such as {ya[:3].tolist()}")
    if ya.min() < 0:
        raise ValueError(f"labels must be class indices 0, 1, ..., found {ya.min()}")
    if ya.max() < 1:
        raise ValueError("labels hold a single class; check 4 needs at least 2 classes")
    if n_samples < batch_size:
        raise ValueError(f"n_samples={n_samples} is fewer than one batch of {batch_size}: no step would be taken")
    if batch_size > len(xa):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(xa)} samples of x")
    ss = seed_sequence(seed)
    s_model, s_data, s_np = ss.spawn(3)
    X = torch.as_tensor(xa, dtype=torch.float64).reshape(len(xa), -1)
    Y = torch.as_tensor(ya).long()
    n_classes = int(Y.max()) + 1
    net = mlp((X.shape[1], *hidden, n_classes), "sigmoid", seed=s_model).double()
    model = convert(net, "np", seed=s_np, noise_std=noise_std, gamma=gamma, perturb=perturb, sites=sites)
    rng = np.random.default_rng(s_data)
    n_steps = int(n_samples) // batch_size
    per_block = max(1, n_steps // n_blocks)
    ev = torch.as_tensor(rng.choice(len(X), size=min(eval_size, len(X)), replace=False))
    rows = []
    order = rng.permutation(len(X))
    pos = 0
    # the top site regresses on the output error e = ŷ − y, whose covariance (W frozen) is fixed:
    # its eigen-directions show where B is poorly determined (see _top_error_structure)
    with torch.no_grad():
        e_ev = net(X[ev]) - torch.nn.functional.one_hot(Y[ev], n_classes).to(X.dtype)
    cov = (e_ev.T @ e_ev / len(e_ev)).numpy()
    for t in range(1, n_steps + 1):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(X)), 0
        idx = torch.as_tensor(order[pos:pos + batch_size])
        pos += batch_size
        model.update_feedback(X[idx], Y[idx], "mse")
        if t % per_block == 0:
            align = model.alignment(X[ev], Y[ev], "mse")
            row = {"samples": t * batch_size}
            for li, l in enumerate(align["layers"]):
                row[f"update_angle_deg_{li}"] = l["update_angle_deg"]
                if l["rel_error"] == l["rel_error"]:
                    row[f"rel_error_{li}"] = l["rel_error"]
                    row[f"weight_angle_deg_{li}"] = l["weight_angle_deg"]
                    row[f"sign_congruence_{li}"] = l["sign_congruence"]
            row.update(_top_error_structure(model.sites[-1], cov, len(align["layers"]) - 1))
            rows.append(row)
    return {"noise_std": noise_std, "gamma": gamma, "perturb": perturb, "sites": sites, "blocks": rows}
