"""Alignment metrics between a method's updates/feedback and backprop's (deep_np.md §7.2 item 9).

All angles are computed over whole tensors (the whole batch, flattened), in degrees, **without**
folding angles above 90° (the official notebooks folded them and used one sample only, which hides
anti-alignment). An angle involving an all-zero tensor is NaN.
"""

from __future__ import annotations

import math

import torch

__all__ = ["angle_deg", "norm_ratio", "relative_error", "sign_congruence"]


def angle_deg(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    """Angle in degrees between two tensors flattened to vectors, in [0, 180] (no folding)."""
    if a is None or b is None:
        return float("nan")
    a = a.detach().reshape(-1).double()
    b = b.detach().reshape(-1).double()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare tensors of {a.numel()} and {b.numel()} elements")
    na = torch.linalg.vector_norm(a)
    nb = torch.linalg.vector_norm(b)
    if float(na) == 0.0 or float(nb) == 0.0:
        return float("nan")
    cos = float(torch.dot(a, b) / (na * nb))
    if not math.isfinite(cos):
        return float("nan")
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def norm_ratio(b: torch.Tensor | None, w: torch.Tensor) -> float:
    """``‖B‖_F / ‖W‖_F`` (biotorch's weight-norm ratio)."""
    if b is None or b.shape != w.shape:
        return float("nan")
    nw = float(torch.linalg.vector_norm(w.detach().double()))
    return float(torch.linalg.vector_norm(b.detach().double())) / nw if nw > 0 else float("nan")


def relative_error(b: torch.Tensor | None, w: torch.Tensor) -> float:
    """``‖B − W‖_F / ‖W‖_F``."""
    if b is None or b.shape != w.shape:
        return float("nan")
    w = w.detach().double()
    nw = float(torch.linalg.vector_norm(w))
    return float(torch.linalg.vector_norm(b.detach().double() - w)) / nw if nw > 0 else float("nan")


def sign_congruence(b: torch.Tensor | None, w: torch.Tensor) -> float:
    """Fraction of entries where ``B`` and ``W`` have the same sign."""
    if b is None or b.shape != w.shape:
        return float("nan")
    return float((torch.sign(b.detach()) == torch.sign(w.detach())).double().mean())
