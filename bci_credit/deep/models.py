"""The networks of Lansdell, Prakash & Kording (ICLR 2020), as ordinary ``torch.nn`` models.

Convert them with :func:`bci_credit.deep.convert` to train them by a credit-assignment method.
Every builder takes a ``seed`` and initialises its weights from its own generator, so a model is
the same for the same seed regardless of the global torch state (deep_np.md §2).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from ..random import SeedLike, seed_sequence

__all__ = ["mlp", "mnist_mlp", "autoencoder", "cifar_cnn", "build_model", "PerImageStandardization", "MODELS",
           "ACTIVATIONS", "CNN_INITS"]

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "linear": nn.Identity}
MODELS = ("mlp", "autoencoder", "cnn")
#: Weight initialisations of the CNN: ssdfa's ``sqrt_fan_in`` and ``zero`` (its DFA baseline).
CNN_INITS = ("sqrt_fan_in", "zero")


def _generator(seed: SeedLike) -> torch.Generator:
    ss = seed_sequence(seed)
    return torch.Generator().manual_seed(int(ss.generate_state(1, dtype="uint64")[0] % (2**63)))


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


@torch.no_grad()
def _init_paper(layer: nn.Module, gen: torch.Generator) -> None:
    """W and b ~ N(0, 2/fan_in): the synthfeedback initialisation (bias row included)."""
    fan_in = layer.weight[0].numel()
    std = math.sqrt(2.0 / fan_in)
    nn.init.normal_(layer.weight, 0.0, std, generator=gen)
    if layer.bias is not None:
        nn.init.normal_(layer.bias, 0.0, std, generator=gen)


@torch.no_grad()
def _init_sqrt_fan_in(layer: nn.Module, gen: torch.Generator, bias: float = 0.1) -> None:
    """W ~ U(±1/√fan_in), b = 0.1: the ssdfa CNN initialisation."""
    bound = 1.0 / math.sqrt(layer.weight[0].numel())
    nn.init.uniform_(layer.weight, -bound, bound, generator=gen)
    if layer.bias is not None:
        nn.init.constant_(layer.bias, bias)


def mlp(sizes: Sequence[int], activation: str = "sigmoid", output_activation: str = "linear", *,
        seed: SeedLike = None) -> nn.Sequential:
    """A fully connected network ``sizes[0] → … → sizes[-1]`` (inputs are flattened first).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first.
    activation : str
        Hidden nonlinearity: ``sigmoid``, ``tanh``, ``relu`` or ``linear``.
    output_activation : str
        Nonlinearity after the last layer (``linear``: none).
    seed : int, optional
        Seeds the N(0, 2/fan_in) initialisation of weights and biases.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
    gen = _generator(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        _init_paper(lin, gen)
        layers.append(lin)
        last = i == len(sizes) - 2
        act = output_activation if last else activation
        if act != "linear":
            layers.append(_activation(act))
    return nn.Sequential(*layers)


def mnist_mlp(in_features: int = 784, n_classes: int = 10, hidden: Sequence[int] = (50, 20), *,
              seed: SeedLike = None) -> nn.Sequential:
    """The paper's MNIST MLP 784-50-20-10: sigmoid hidden units, linear output (squared loss)."""
    return mlp((in_features, *hidden, n_classes), "sigmoid", "linear", seed=seed)


def autoencoder(in_features: int = 784, hidden: int = 200, code: int = 2, *, seed: SeedLike = None) -> nn.Sequential:
    """The paper's autoencoder 784-200-2-200-784: tanh, a linear 2-unit bottleneck, ReLU output.

    (``AENPModel5_CorrectGeom``; the notebook's ``AENPModel5`` silently used width 50.)
    """
    gen = _generator(seed)
    lins = [nn.Linear(in_features, hidden), nn.Linear(hidden, code), nn.Linear(code, hidden),
            nn.Linear(hidden, in_features)]
    for lin in lins:
        _init_paper(lin, gen)
    return nn.Sequential(nn.Flatten(), lins[0], nn.Tanh(), lins[1], lins[2], nn.Tanh(), lins[3], nn.ReLU())


class PerImageStandardization(nn.Module):
    """Each sample to zero mean and unit variance over all its values, as TensorFlow's
    ``per_image_standardization`` (the ssdfa CIFAR input): ``(x - mean) / max(sd, 1/sqrt(n))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        mean = flat.mean(dim=1, keepdim=True)
        sd = flat.std(dim=1, unbiased=False, keepdim=True).clamp_min(flat.shape[1] ** -0.5)
        return ((flat - mean) / sd).reshape(x.shape)


def _pooled(size: int) -> int:
    return (size + 2 * 1 - 3) // 2 + 1


def cifar_cnn(in_channels: int = 3, n_classes: int = 10, image_size: int = 32,
              channels: Sequence[int] = (96, 128, 256), hidden: Sequence[int] = (2048, 2048), *,
              kernel_size: int = 5, dropout: float = 0.5, activation: str = "tanh",
              standardize: bool = False, weight_init: str = "sqrt_fan_in", seed: SeedLike = None) -> nn.Sequential:
    """The paper's CIFAR CNN (ssdfa ``cifar10_conv_np.py`` defaults).

    Conv 5×5×96 → max-pool 3/2 → conv 5×5×128 → max-pool 3/2 → conv 5×5×256 → max-pool 3/2 →
    flatten (4096 for 32×32 inputs) → FC 2048 → dropout → FC 2048 → dropout → FC ``n_classes``;
    tanh units, ``U(±1/√fan_in)`` weights, biases 0.1. ``channels``/``hidden`` shrink it for tests;
    28×28 inputs (Fashion-MNIST, one channel) give a 4×4 map as well.

    ``standardize=True`` puts :class:`PerImageStandardization` in front, as ssdfa does for CIFAR
    (off by default, so that runs made before the option existed stay the same);
    ``weight_init='zero'`` starts every weight at zero (biases 0.1), ssdfa's DFA baseline.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
    if weight_init not in CNN_INITS:
        raise ValueError(f"unknown weight_init {weight_init!r}; choose one of {', '.join(CNN_INITS)}")
    gen = _generator(seed)

    def init(layer: nn.Module) -> None:
        _init_sqrt_fan_in(layer, gen)
        if weight_init == "zero":
            with torch.no_grad():
                layer.weight.zero_()

    layers: list[nn.Module] = [PerImageStandardization()] if standardize else []
    c_in, size = int(in_channels), int(image_size)
    for c in channels:
        conv = nn.Conv2d(c_in, int(c), kernel_size, padding=kernel_size // 2)
        init(conv)
        layers += [conv, _activation(activation), nn.MaxPool2d(3, stride=2, padding=1)]
        c_in, size = int(c), _pooled(size)
    layers.append(nn.Flatten())
    n = c_in * size * size
    for h in hidden:
        fc = nn.Linear(n, int(h))
        init(fc)
        layers += [fc, _activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n = int(h)
    out = nn.Linear(n, int(n_classes))
    init(out)
    layers.append(out)
    return nn.Sequential(*layers)


def build_model(name: str, input_shape: Sequence[int], n_classes: int, *, seed: SeedLike = None,
                **kwargs) -> nn.Sequential:
    """Build ``'mlp'``, ``'autoencoder'`` or ``'cnn'`` for inputs of ``input_shape`` (per sample)."""
    shape = tuple(int(s) for s in input_shape)
    n_in = math.prod(shape)
    if name == "mlp":
        return mnist_mlp(n_in, n_classes, seed=seed, **kwargs)
    if name == "autoencoder":
        return autoencoder(n_in, seed=seed, **kwargs)
    if name == "cnn":
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ValueError(f"the CNN needs square image inputs (channels, size, size), got {shape}")
        return cifar_cnn(shape[0], n_classes, shape[1], seed=seed, **kwargs)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
