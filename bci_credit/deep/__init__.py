"""Deep credit assignment without weight transport (PyTorch; the ``deep`` extra).

Backprop (the reference), feedback alignment, direct feedback alignment, the sign-symmetry family
(uSF, brSF, frSF), weight mirror, Kolen–Pollack, and node perturbation (NP) learning the feedback
weights (Lansdell, Prakash & Kording, ICLR 2020), as drop-in ``Linear``/``Conv2d`` layers and a
:func:`convert` that turns an ordinary ``torch.nn`` MLP/CNN into one trained by a method.

>>> import torch.nn as nn
>>> from bci_credit.deep import convert
>>> net = nn.Sequential(nn.Linear(784, 50), nn.Sigmoid(), nn.Linear(50, 20), nn.Sigmoid(), nn.Linear(20, 10))
>>> model = convert(net, "np", seed=0, noise_std=1e-2)   # doctest: +SKIP
>>> out = model.step(x, labels, "mse", optimizer)        # doctest: +SKIP
>>> model.alignment(x, labels, "mse")["layers"]          # doctest: +SKIP

Modules: :mod:`~bci_credit.deep.feedback` (layers), :mod:`~bci_credit.deep.methods`
(``convert``, ``CreditModel``), :mod:`~bci_credit.deep.node_perturbation` (λ̂ and the B
regressions), :mod:`~bci_credit.deep.metrics`, :mod:`~bci_credit.deep.models` (the paper's
networks), :mod:`~bci_credit.deep.datasets`, :mod:`~bci_credit.deep.train`,
:mod:`~bci_credit.deep.theory` (Theorems 1–2 and the acceptance checks) and
:mod:`~bci_credit.deep.bci_link` (a rate-network single-unit BCI task) and
:mod:`~bci_credit.deep.cifar_table` (the paper's CIFAR table in one call).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError("bci_credit.deep needs PyTorch: install the 'deep' extra, "
                      "e.g. pip install 'bci_credit[deep]' (or the CPU wheel: pip install torch)") from err

from .feedback import (DIRECT_METHODS, LAYERED_METHODS, METHODS, NP_METHODS, FeedbackConv2d, FeedbackLinear,
                       SharedDropout)
from .methods import CreditModel, FeedbackConfig, StepOutput, convert

__all__ = [
    "METHODS", "LAYERED_METHODS", "DIRECT_METHODS", "NP_METHODS",
    "FeedbackLinear", "FeedbackConv2d", "SharedDropout",
    "FeedbackConfig", "CreditModel", "StepOutput", "convert",
]
