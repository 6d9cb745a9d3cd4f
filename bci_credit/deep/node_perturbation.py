"""Node perturbation (NP) estimates of ∂L/∂h and the regressions that learn feedback weights.

Following Lansdell, Prakash & Kording (ICLR 2020) and deep_np.md §1.3–1.7:

* every training step runs a clean pass (loss ``L`` per sample) and a noisy pass in which each
  perturbation site adds ``c_h ξ`` (``ξ ~ N(0, I)``) to a hidden activity (loss ``L̃``);
* the per-sample estimate of the gradient of the loss with respect to that activity is
  ``λ̂ = (L̃ − L) ξ / c_h`` (:func:`lambda_hat`), unbiased to first order in ``c_h``;
* the feedback matrix ``B`` of a site is the regression of ``λ̂`` on the error ``e`` that ``B``
  multiplies in the backward pass: ``λ̂ ≈ e B``. It is solved either exactly, as a ridge
  regression with penalty ``γ`` over all samples seen (:func:`ridge_accumulate_` and
  :func:`ridge_solve`, the paper's ``ExactLsq`` models) or by SGD on the squared residual
  (:func:`sgd_feedback_step_`, :func:`conv_sgd_feedback_step_`).

In the layered variant ``e`` is the error at the output of the layer whose input is the site
(propagated by the learned ``B`` of the layers above); in the direct variant it is the output
error ``E`` itself. These functions are pure tensor operations; the orchestration lives in
:class:`bci_credit.deep.CreditModel`.
"""

from __future__ import annotations

import torch

__all__ = ["lambda_hat", "ridge_accumulate_", "ridge_solve", "sgd_feedback_step_",
           "conv_feedback_apply", "conv_sgd_feedback_step_"]


def lambda_hat(delta_loss: torch.Tensor, xi: torch.Tensor, noise_std: float) -> torch.Tensor:
    """Per-sample NP gradient estimate ``λ̂ = (L̃ − L) ξ / c_h``.

    Parameters
    ----------
    delta_loss : Tensor, shape (batch,)
        Noisy minus clean loss of each sample.
    xi : Tensor, shape (batch, ...)
        The standard-normal draws of the site (the noise added was ``noise_std * xi``).
    noise_std : float
        ``c_h``, the standard deviation of the perturbation.
    """
    if delta_loss.dim() != 1 or delta_loss.shape[0] != xi.shape[0]:
        raise ValueError(f"delta_loss must have shape (batch,) = ({xi.shape[0]},), got {tuple(delta_loss.shape)}")
    if not noise_std > 0:
        raise ValueError(f"noise_std must be positive, got {noise_std}")
    return xi * (delta_loss / noise_std).reshape((-1,) + (1,) * (xi.dim() - 1))


def ridge_accumulate_(V: torch.Tensor, e: torch.Tensor, pairs, *, gamma: float = 0.0,
                      forget: float = 1.0) -> None:
    """Add a batch to ridge sufficient statistics, in place.

    ``V ← f (V − γI) + γI + eᵀe`` and, for every ``(S, λ̂)`` in ``pairs``, ``S ← f S + eᵀλ̂``
    (``f`` the forgetting factor; ``f = 1`` gives the paper's unbounded memory, ``V`` starting at
    ``γI`` and ``S`` at 0). Several targets may share one regressor (the direct variant: every
    site regresses on the same output error). ``e`` and ``λ̂`` are cast to the statistics' dtype
    (float64 in :func:`~bci_credit.deep.convert`: in float32 the rounding errors of ~1e5 steps
    make ``V`` indefinite).

    Parameters
    ----------
    V : Tensor, shape (k, k)
    e : Tensor, shape (T, k)
        Regressors (errors), one row per sample.
    pairs : sequence of (Tensor (k, n), Tensor (T, n))
        The statistics ``S`` and the targets (λ̂, one row per sample) of each regression.
    """
    if forget != 1.0:
        eye = torch.eye(V.shape[0], dtype=V.dtype, device=V.device)
        V.sub_(eye, alpha=gamma).mul_(forget).add_(eye, alpha=gamma)
    e = e.to(V.dtype)
    V.addmm_(e.t(), e)
    for S, lam in pairs:
        if forget != 1.0:
            S.mul_(forget)
        S.addmm_(e.t(), lam.to(S.dtype))


def ridge_solve(V: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """The ridge solution ``B = V⁻¹ S`` (``V`` symmetric positive definite)."""
    B, info = torch.linalg.solve_ex(V, S)
    if info.device.type == "cpu" and int(info) != 0:
        if not (bool(torch.isfinite(V).all()) and bool(torch.isfinite(S).all())):
            raise FloatingPointError("the NP least-squares statistics are not finite: training diverged "
                                     "(lower the learning rate)")
        return torch.linalg.lstsq(V, S).solution
    return B


def sgd_feedback_step_(B: torch.Tensor, e: torch.Tensor, lam: torch.Tensor, lr: float) -> torch.Tensor:
    """One SGD step on ``½ Σ_t ‖e_t B − λ̂_t‖²``: ``B ← B − η eᵀ(eB − λ̂)``, in place.

    Returns the gradient (for logging its norm).
    """
    grad = e.t() @ (e @ B - lam)
    B.sub_(grad, alpha=lr)
    return grad


def conv_feedback_apply(layer, B: torch.Tensor, e: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The error a conv layer sends to its input through ``B`` (a transposed convolution)."""
    return torch.ops.aten.convolution_backward(
        e, like, B, None, layer.stride, layer._num_padding, layer.dilation, False, [0, 0], layer.groups,
        [True, False, False])[0]


def conv_sgd_feedback_step_(layer, B: torch.Tensor, e: torch.Tensor, lam: torch.Tensor, lr: float) -> torch.Tensor:
    """SGD step on ``½‖convᵀ(e, B) − λ̂‖²`` for a conv layer's feedback kernel, in place.

    The gradient with respect to ``B`` is the weight gradient of a convolution whose input is the
    residual and whose output error is ``e``.
    """
    resid = conv_feedback_apply(layer, B, e, lam) - lam
    grad = torch.ops.aten.convolution_backward(
        e, resid, B, None, layer.stride, layer._num_padding, layer.dilation, False, [0, 0], layer.groups,
        [False, True, False])[1]
    B.sub_(grad, alpha=lr)
    return grad
