"""Per-sample losses for credit-assignment training.

Node perturbation needs the loss of every sample separately (deep_np.md §1.4: the λ̂ of one
sample uses that sample's loss difference), so every loss here returns a vector of shape
``(batch,)``; the training objective is its sum (the paper's MLP/AE convention) or its mean.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["squared_error", "cross_entropy", "get_loss", "reduce_loss", "accuracy", "LOSSES", "REDUCTIONS"]

REDUCTIONS = ("sum", "mean")


def _as_target(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One-hot encode integer class labels to the output's shape; pass real targets through."""
    if target.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8) and target.dim() == 1:
        if output.dim() != 2:
            raise ValueError(f"integer class targets need a (batch, classes) output, got shape {tuple(output.shape)}")
        return F.one_hot(target.long(), output.shape[1]).to(output.dtype)
    if target.shape != output.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match output shape {tuple(output.shape)}")
    return target.to(output.dtype)


def squared_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ½‖ŷ − y‖² (integer labels are one-hot encoded), shape ``(batch,)``."""
    diff = output - _as_target(output, target)
    return 0.5 * diff.pow(2).reshape(diff.shape[0], -1).sum(1)


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample softmax cross-entropy of logits ``output`` against labels or probabilities."""
    if target.dim() == 1:
        return F.cross_entropy(output, target.long(), reduction="none")
    return -(target.to(output.dtype) * F.log_softmax(output, dim=1)).sum(1)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": squared_error,
    "ce": cross_entropy,
}


def get_loss(name_or_fn) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The per-sample loss called ``name_or_fn`` ('mse' or 'ce'), or the callable itself."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return LOSSES[name_or_fn]
    except KeyError:
        raise ValueError(f"unknown loss {name_or_fn!r}; choose one of {sorted(LOSSES)} or pass a callable") from None


def reduce_loss(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Sum or mean of per-sample losses."""
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of correct arg-max predictions (NaN when the target is not a class label)."""
    if target.dim() != 1 or output.dim() != 2 or target.is_floating_point():
        return float("nan")
    return float((output.argmax(1) == target.long()).float().mean())
