"""The paper's costs ("reward" R; every experiment *minimises* R), ``rdd_model.md`` §1.4.

Each cost is a small frozen dataclass; calling it on filtered outputs ``s`` shaped
``(..., n_neurons)`` (evaluated at a window's last step) returns R shaped ``(...)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Union

import numpy as np

from ..checks import check_number

if TYPE_CHECKING:
    from ..random import SeedLike

__all__ = [
    "Cost",
    "QuadraticCost",
    "BananaCost",
    "LinearReadoutCost",
    "TargetRateCost",
    "TwoLayerCost",
    "make_cost",
    "COSTS",
]


class Cost:
    """Base class: ``cost(s) -> R`` over the last axis of ``s``."""

    name: str = "cost"
    n_neurons: int | None = None

    def __call__(self, s: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=float)
        if self.n_neurons is not None and s.shape[-1] != self.n_neurons:
            raise ValueError(f"{type(self).__name__} needs {self.n_neurons} neurons on the last axis, got {s.shape[-1]}")
        return s

    def describe(self) -> dict:
        """JSON-friendly description."""
        import dataclasses

        d = {"name": self.name}
        if dataclasses.is_dataclass(self):
            for f in dataclasses.fields(self):
                v = getattr(self, f.name)
                d[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return d


@dataclass(frozen=True)
class QuadraticCost(Cost):
    """Fig. 3A cost: ``R = (a1 s1 + a2 s2 + a2q s2^2 - x^2)^2``.

    The defaults are the paper's Fig. 3A (a1 = -30, a2 = 20, a2q = 20, x = 2). Fig. 3B of the
    original code omits the ``s2^2`` term (``a2q = 0``); Fig. 2 uses a2 = 40 and no square term.
    """

    a1: float = -30.0
    a2: float = 20.0
    a2q: float = 20.0
    x: float = 2.0
    name: str = "quadratic"
    n_neurons: int = field(default=2, init=False)  # fixed: the cost reads s1 and s2

    def __call__(self, s):
        s = self._check(s)
        s1, s2 = s[..., 0], s[..., 1]
        return (self.a1 * s1 + self.a2 * s2 + self.a2q * s2**2 - self.x**2) ** 2


@dataclass(frozen=True)
class BananaCost(Cost):
    """Rosenbrock-type "banana" cost (Fig. 3C, Fig. 4).

    ``R = (B1 s1 - x)^2 + (z + B2 s2 - B2 (B1 s1 - y)^2)^2`` with B1 = 1, B2 = 2, x = 0.01,
    y = 0.1, z = 0, i.e. ``(s1 - 0.01)^2 + 4 (s2 - (s1 - 0.1)^2)^2``; minimum at s = (0.01, 0.0081).
    """

    b1: float = 1.0
    b2: float = 2.0
    x: float = 0.01
    y: float = 0.1
    z: float = 0.0
    name: str = "banana"
    n_neurons: int = field(default=2, init=False)  # fixed: the cost reads s1 and s2

    def __call__(self, s):
        s = self._check(s)
        s1, s2 = s[..., 0], s[..., 1]
        return (self.b1 * s1 - self.x) ** 2 + (self.z + self.b2 * s2 - self.b2 * (self.b1 * s1 - self.y) ** 2) ** 2

    @property
    def s_min(self) -> np.ndarray:
        """Outputs at the cost minimum."""
        s1 = self.x / self.b1
        return np.array([s1, (self.b1 * s1 - self.y) ** 2 - self.z / self.b2])


@dataclass(frozen=True)
class LinearReadoutCost(Cost):
    """Network-size cost: ``R = |a . s - target|`` (``a_i ~ 5 N(0, 1)`` in the paper, target 0.1)."""

    a: tuple = ()
    target: float = 0.1
    name: str = "linear_readout"

    def __post_init__(self):
        object.__setattr__(self, "a", tuple(float(v) for v in np.ravel(self.a)))
        if not self.a:
            raise ValueError("LinearReadoutCost needs readout weights a (one per neuron)")

    @property
    def n_neurons(self) -> int:  # type: ignore[override]
        """Number of neurons (one per readout weight)."""
        return len(self.a)

    @classmethod
    def random(cls, n_neurons: int, seed: SeedLike = None, scale: float = 5.0,
               target: float = 0.1) -> "LinearReadoutCost":
        """Readout weights ``a_i ~ scale * N(0, 1)`` drawn from ``seed``.

        Parameters
        ----------
        n_neurons : int
            Number of readout weights.
        seed : int, Generator or None
            Source of the weights.
        scale : float
            Standard deviation of the weights.
        target : float
            Target of the readout.

        Returns
        -------
        LinearReadoutCost
            The new cost.
        """
        from ..random import check_random_state

        rng = check_random_state(seed)
        return cls(a=tuple(scale * rng.standard_normal(n_neurons)), target=target)

    def __call__(self, s):
        s = self._check(s)
        return np.abs(s @ np.asarray(self.a) - self.target)


@dataclass(frozen=True)
class TargetRateCost(Cost):
    """BCI / "biofeedback" cost: ``R = ||s - target||_2`` (Euclidean norm, not squared).

    ``target`` is in spikes per step (0.02 = 20 Hz at dt = 1 ms), one value per neuron.
    ``mode="brain"`` gives the brain-control variant ``R = |s_c|`` of the control neuron
    c = ``control`` (an index into ``target``); ``mode="dual"`` gives ``R = ||s - target|| + |s_c|``.
    """

    target: tuple = (0.02,) * 10
    mode: str = "rate"
    control: int = 0
    name: str = "target_rate"

    def __post_init__(self):
        object.__setattr__(self, "target", tuple(float(v) for v in np.ravel(self.target)))
        if not self.target:
            raise ValueError("TargetRateCost needs target rates (one per neuron)")
        if self.mode not in ("rate", "brain", "dual"):
            raise ValueError(f"TargetRateCost.mode must be 'rate', 'brain' or 'dual', got {self.mode!r}")
        control = check_number(self.control, "TargetRateCost.control", integer=True)
        if not 0 <= control < len(self.target):
            raise ValueError(f"TargetRateCost.control={self.control} is not a neuron index (0..{len(self.target) - 1})")
        object.__setattr__(self, "control", control)

    @property
    def n_neurons(self) -> int:  # type: ignore[override]
        """Number of neurons (one per target rate)."""
        return len(self.target)

    @classmethod
    def special_neuron(cls, n_neurons: int = 10, rate: float = 0.02, special: int = 0, special_rate: float = 0.0,
                       mode: str = "rate") -> "TargetRateCost":
        """All neurons at ``rate`` except ``special`` at ``special_rate`` (the perturbed BCI task).

        Parameters
        ----------
        n_neurons : int
            Number of neurons.
        rate, special_rate : float
            Target rates (spikes per step) of the other neurons and of the special one.
        special : int
            Index of the special neuron (also the ``control`` neuron).
        mode : {"rate", "brain", "dual"}
            As in the class.

        Returns
        -------
        TargetRateCost
            The new cost.
        """
        t = np.full(n_neurons, rate)
        t[special] = special_rate
        return cls(target=tuple(t), mode=mode, control=special)

    def __call__(self, s):
        s = self._check(s)
        c = np.abs(s[..., self.control])
        if self.mode == "brain":
            return c
        r = np.linalg.norm(s - np.asarray(self.target), axis=-1)
        return r + c if self.mode == "dual" else r


@dataclass(frozen=True)
class TwoLayerCost(Cost):
    """Deep-network cost: ``R = sum_k (s2_k - target_k)^2`` over second-layer outputs.

    Default target 0.02 for every output except the first, which is 0.
    """

    target: tuple = (0.0,) + (0.02,) * 9
    name: str = "two_layer"

    def __post_init__(self):
        object.__setattr__(self, "target", tuple(float(v) for v in np.ravel(self.target)))

    @property
    def n_neurons(self) -> int:  # type: ignore[override]
        """Number of second-layer outputs (one per target)."""
        return len(self.target)

    def __call__(self, s):
        s = self._check(s)
        return np.sum((s - np.asarray(self.target)) ** 2, axis=-1)


COSTS: dict[str, type] = {
    "quadratic": QuadraticCost,
    "banana": BananaCost,
    "linear_readout": LinearReadoutCost,
    "target_rate": TargetRateCost,
    "two_layer": TwoLayerCost,
}


def make_cost(spec: Union[str, dict, Cost, Callable]) -> Cost:
    """Build a cost from its name, a dict ``{"name": ..., **params}`` or return it unchanged.

    Parameters
    ----------
    spec : str, dict, Cost or callable
        A key of :data:`COSTS`, a dict with ``"name"`` and the cost's fields, or a Cost or other
        callable (returned as is).

    Returns
    -------
    Cost
        The cost.
    """
    if isinstance(spec, Cost) or (callable(spec) and not isinstance(spec, (str, dict))):
        return spec  # type: ignore[return-value]
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a cost is a name, a dict with 'name', or a Cost; got {spec!r}")
    params = dict(spec)
    name = params.pop("name")
    if name not in COSTS:
        raise ValueError(f"unknown cost {name!r}; choose one of {sorted(COSTS)}")
    typ = COSTS[name]
    for f in dataclasses.fields(typ) if dataclasses.is_dataclass(typ) else ():
        if not f.init and f.name in params:  # a fixed field, as describe() writes it: must agree
            given = params.pop(f.name)
            if given != f.default:
                raise ValueError(f"cost {name!r} has {f.name} = {f.default} fixed; got {given!r}")
    return typ(**params)
