"""Configuration of a simulated single-unit BCI session (:mod:`bci_credit.tasks.bci`).

Frozen dataclasses, validated when built: :class:`SessionConfig` with its sub-configurations
(:class:`NoiseConfig`, :class:`WristConfig`, :class:`TuningConfig`, :class:`CouplingConfig`,
:class:`TruthConfig`), the block schedule (:class:`Block`) and the engine parameters of the BCI
simulations (:data:`BCI_MODEL`). The module docstring of :mod:`bci_credit.tasks.bci` describes
what the settings do in the simulation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping as TMapping

import numpy as np

from ..sim.lif import LIFParams
from .bci_mappings import MAPPINGS

__all__ = [
    "BCI_MODEL", "NoiseConfig", "WristConfig", "TuningConfig", "CouplingConfig", "TruthConfig", "Block",
    "SessionConfig",
]

#: Engine parameters of the BCI simulations: the paper's LIF with 50-ms windows, tau_s = 0.2 s and
#: the paper's output kernel (``rdd_model.md`` §4.7).
BCI_MODEL = LIFParams(sigma=10.0, window_s=0.05, tau_s=0.2, paper_kernel=True)


# ============================================================================ configuration
@dataclass(frozen=True)
class NoiseConfig:
    """Correlated input noise.

    Attributes
    ----------
    c : float
        Pairwise correlation in [0, 1) (see the module docstring of :mod:`bci_credit.tasks.bci` for its
        exact meaning per kind).
    kind : {"white", "ou"}
        Shared part from the engine's shared Gaussian, or from ``n_latents`` latent OU processes.
    n_latents : int
        Number of latent OU processes (``kind="ou"``).
    tau_latent_s : float
        Time constant of the latent OU processes (s).
    loadings : {"shared", "clustered", "random"}
        How units load on the latents.
    control_private_scale : float
        Multiplier of the control units' private noise standard deviation (1 = like every unit;
        0 = no private variability). Only with ``kind="white"``.
    """

    c: float = 0.3
    kind: str = "white"
    n_latents: int = 1
    tau_latent_s: float = 0.1
    loadings: str = "shared"
    control_private_scale: float = 1.0

    def __post_init__(self):
        if not 0.0 <= float(self.c) < 1.0:
            raise ValueError(f"NoiseConfig.c must lie in [0, 1), got {self.c}")
        if self.kind not in ("white", "ou"):
            raise ValueError(f"NoiseConfig.kind must be 'white' or 'ou', got {self.kind!r}")
        if self.loadings not in ("shared", "clustered", "random"):
            raise ValueError(f"NoiseConfig.loadings must be 'shared', 'clustered' or 'random', got {self.loadings!r}")
        if int(self.n_latents) < 1 or not self.tau_latent_s > 0:
            raise ValueError("NoiseConfig.n_latents must be >= 1 and tau_latent_s > 0")
        if self.control_private_scale < 0:
            raise ValueError("NoiseConfig.control_private_scale must be >= 0")
        if self.control_private_scale != 1.0 and self.kind != "white":
            raise ValueError("NoiseConfig.control_private_scale needs kind='white'")


@dataclass(frozen=True)
class WristConfig:
    """The 2-D wrist (torque) signal: an OU process pulled toward the target when it drives the cursor.

    ``tau_s`` and ``sd`` set the free movement (stationary sd per axis, workspace units); on an axis
    that drives the cursor the wrist relaxes to the goal at ``track_gain_hz`` with a stationary
    jitter ``track_sd``; ``cursor_gain`` maps wrist to cursor position.
    """

    tau_s: float = 0.3
    sd: float = 0.2
    track_gain_hz: float = 4.0
    track_sd: float = 0.03
    cursor_gain: float = 1.0


@dataclass(frozen=True)
class TuningConfig:
    """Cosine tuning to the wrist: ``depth`` in input units per wrist sd (0 = untuned)."""

    depth: float = 0.0


@dataclass(frozen=True)
class CouplingConfig:
    """Sparse coupling acting with a one-window delay (``strength`` in input units per spike).

    The coupling input of a unit is clipped so that one step's increment ``dt w x`` stays below half
    the threshold (strength 1 already adds about 10 Hz per presynaptic spike per window at w = 10).
    """

    p_exc: float = 0.0
    p_inh: float = 0.0
    strength: float = 1.0
    matrix: Any = None  # explicit J (neurons, neurons), J[j, i] = effect of unit i on unit j; overrides p_exc/p_inh

    @property
    def enabled(self) -> bool:
        if self.matrix is not None:
            return bool(np.any(np.asarray(self.matrix, float) != 0))
        return (self.p_exc > 0 or self.p_inh > 0) and self.strength != 0


@dataclass(frozen=True)
class TruthConfig:
    """Paired counterfactual ground truth.

    ``every_s``: one sampled window every this many seconds (0 = off); ``horizon_s``: how long each
    counterfactual is continued; ``units``: ``"all"``, ``"decoder"`` or an int k (the decoder units
    plus k random others); ``near_p``: band for the marginal effect.
    """

    every_s: float = 1.0
    horizon_s: float = 0.5
    units: Any = "all"
    near_p: float = 0.2


@dataclass(frozen=True)
class Block:
    """One block of the session.

    Attributes
    ----------
    name : str
        Block label (``baseline``, ``conditioning``, ``MC1`` ...), written to trials and windows.
    duration_s : float
        Length (rounded down to whole windows).
    reward : bool
        Whether rewards are delivered (False: baseline / extinction).
    learn : bool
        Whether the learning rule updates the weights.
    wrist : bool
        Whether the wrist moves (and tuned units feel it).
    control : {"brain", "manual", "dual"}
        What drives the cursor (cursor mappings) or which cost variant applies (``target_rate``).
    """

    name: str
    duration_s: float
    reward: bool = True
    learn: bool = True
    wrist: bool = False
    control: str = "brain"

    def __post_init__(self):
        if not self.duration_s > 0:
            raise ValueError(f"block {self.name!r}: duration_s must be positive, got {self.duration_s}")
        if self.control not in ("brain", "manual", "dual"):
            raise ValueError(f"block {self.name!r}: control must be 'brain', 'manual' or 'dual', got {self.control!r}")


def _default_blocks() -> tuple:
    return (Block("baseline", 60.0, reward=False), Block("conditioning", 240.0), Block("extinction", 60.0, reward=False))


@dataclass(frozen=True)
class SessionConfig:
    """A simulated single-unit BCI session.

    Attributes
    ----------
    n_units : int
        Population size (10-200 in the spec).
    control_units : tuple of int
        Units read by the decoder.
    rate_range_hz : (float, float)
        Baseline rates of the units are drawn uniformly from this range.
    control_rate_hz : float or None
        Baseline rate of the control units (None: drawn like the others).
    noise, wrist, tuning, coupling, truth : sub-configurations
    model : LIFParams
        Engine parameters.
    mapping : dict
        ``{"name": "threshold" | "windowed_rate" | "cursor1d" | "dual" | "target_rate", **params}``.
    blocks : tuple of Block
        The block schedule.
    rule : str or None
        Learning rule name (see :func:`resolve_rule`); None or ``"none"``: no learning.
    rule_params : dict
        Hyper-parameters of the rule.
    n_replicates : int
        Independent sessions simulated together (each with its own population draw and noise).
    seed : int
        Root seed.
    w0 : array_like, optional
        Initial gains (neurons) or (replicates, neurons); skips the rate calibration.
    calibration_s : float
        Simulated seconds per gain value in the rate calibration.
    record_weights_every_s : float
        Sampling period of the weight trace.
    """

    n_units: int = 20
    control_units: tuple = (0,)
    rate_range_hz: tuple = (5.0, 20.0)
    control_rate_hz: float | None = 8.0
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    wrist: WristConfig = field(default_factory=WristConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    coupling: CouplingConfig = field(default_factory=CouplingConfig)
    truth: TruthConfig = field(default_factory=TruthConfig)
    model: LIFParams = BCI_MODEL
    mapping: dict = field(default_factory=lambda: {"name": "threshold"})
    blocks: tuple = field(default_factory=_default_blocks)
    rule: str | None = "rdd"
    rule_params: dict = field(default_factory=dict)
    n_replicates: int = 1
    seed: int = 0
    w0: Any = None
    calibration_s: float = 100.0
    record_weights_every_s: float = 1.0

    def __post_init__(self):
        for name, typ in _SUBCONFIGS.items():
            val = getattr(self, name)
            if isinstance(val, TMapping):
                object.__setattr__(self, name, typ(**val))
            elif not isinstance(val, typ):
                raise TypeError(f"SessionConfig.{name} must be a {typ.__name__} or a dict of its fields")
        object.__setattr__(self, "blocks", tuple(Block(**b) if isinstance(b, TMapping) else b for b in self.blocks))
        n = int(self.n_units)
        if n < 1:
            raise ValueError(f"SessionConfig.n_units must be >= 1, got {self.n_units}")
        ctrl = tuple(int(c) for c in np.ravel(self.control_units))
        if not ctrl or any(not 0 <= c < n for c in ctrl) or len(set(ctrl)) != len(ctrl):
            raise ValueError(f"SessionConfig.control_units={self.control_units} must be distinct unit indices in 0..{n - 1}")
        object.__setattr__(self, "control_units", ctrl)
        lo, hi = (float(v) for v in self.rate_range_hz)
        if not 0 < lo <= hi:
            raise ValueError(f"SessionConfig.rate_range_hz must be 0 < low <= high, got {self.rate_range_hz}")
        if not self.blocks:
            raise ValueError("SessionConfig.blocks is empty; give at least one Block")
        if int(self.n_replicates) < 1:
            raise ValueError("SessionConfig.n_replicates must be >= 1")
        if not isinstance(self.mapping, TMapping) or "name" not in self.mapping:
            raise ValueError(f"SessionConfig.mapping must be a dict with a 'name', got {self.mapping!r}")
        if self.mapping["name"] not in MAPPINGS:
            raise ValueError(f"unknown mapping {self.mapping['name']!r}; choose one of {sorted(MAPPINGS)}")

    def replace(self, **changes) -> "SessionConfig":
        """A copy with ``changes`` applied (a sub-config given as a dict updates only those fields)."""
        for k in _SUBCONFIGS:
            if k in changes and isinstance(changes[k], TMapping):
                changes[k] = dataclasses.replace(getattr(self, k), **changes[k])
        return dataclasses.replace(self, **changes)

    @property
    def duration_s(self) -> float:
        return float(sum(b.duration_s for b in self.blocks))

    def to_dict(self) -> dict:
        """JSON-friendly description."""
        from ..outputs import to_jsonable

        d = dataclasses.asdict(self)
        d["blocks"] = [dataclasses.asdict(b) for b in self.blocks]
        return to_jsonable(d)


_SUBCONFIGS = {"noise": NoiseConfig, "wrist": WristConfig, "tuning": TuningConfig, "coupling": CouplingConfig,
               "truth": TruthConfig, "model": LIFParams}
