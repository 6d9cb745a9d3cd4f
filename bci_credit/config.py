"""Simulation configuration: frozen dataclasses, TOML presets, validation with clear errors.

A configuration has four tables, each a dataclass::

    [population]  n_neurons, w (one value or one per neuron), c, x, control_unit
    [model]       LIF parameters (see :class:`bci_credit.sim.LIFParams`)
    [task]        cost: a name or a table {name = ..., params...}
    [learning]    rule: "none" or a rule name, plus its hyper-parameters
    [run]         duration_s, seed, record_weights_every_s

Presets live in ``data/presets/*.toml``; :func:`load_preset` finds them by name.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .sim.lif import LIFParams

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "PopulationConfig",
    "TaskConfig",
    "LearningConfig",
    "RunConfig",
    "SimulationConfig",
    "load_config",
    "load_preset",
    "list_presets",
    "preset_dir",
    "ConfigError",
]


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the field and what to do."""


@dataclass(frozen=True)
class PopulationConfig:
    """The LIF population: size, input gains ``w``, noise correlation ``c``, stimulus ``x``, control unit.

    The noise level ``sigma`` is a model parameter (``[model] sigma``).
    """

    n_neurons: int = 2
    w: tuple = (12.0, 9.0)
    c: float = 0.5
    x: float = 0.0
    control_unit: int | None = None

    def __post_init__(self):
        if int(self.n_neurons) < 1:
            raise ConfigError(f"population.n_neurons must be >= 1, got {self.n_neurons}")
        w = tuple(float(v) for v in np.ravel(self.w))
        if len(w) == 1:
            w = w * int(self.n_neurons)
        if len(w) != int(self.n_neurons):
            raise ConfigError(f"population.w has {len(w)} values for {self.n_neurons} neurons; give one value or one per neuron")
        bad = [v for v in w if not math.isfinite(v)]
        if bad:
            raise ConfigError(f"population.w must be finite numbers, got {bad[0]}; give finite input gains")
        object.__setattr__(self, "w", w)
        object.__setattr__(self, "n_neurons", int(self.n_neurons))
        if not math.isfinite(float(self.x)):
            raise ConfigError(f"population.x (stimulus) must be a finite number, got {self.x}")
        if not 0.0 <= float(self.c) <= 1.0:
            raise ConfigError(f"population.c (noise correlation) must lie in [0, 1], got {self.c}")
        if self.control_unit is not None and not 0 <= int(self.control_unit) < self.n_neurons:
            raise ConfigError(f"population.control_unit={self.control_unit} is not a neuron index (0..{self.n_neurons - 1})")


@dataclass(frozen=True)
class TaskConfig:
    """What is rewarded: a cost of the filtered outputs at each window's end."""

    cost: Any = "quadratic"

    def build(self):
        """The cost callable."""
        from .tasks.costs import make_cost

        try:
            return make_cost(dict(self.cost) if isinstance(self.cost, Mapping) else self.cost)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"task.cost: {err}") from None


@dataclass(frozen=True)
class LearningConfig:
    """The learning rule (``"none"`` keeps the weights fixed) and its hyper-parameters."""

    rule: str = "none"
    params: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """Duration, seed and recording options."""

    duration_s: float = 10.0
    seed: int | None = 0
    record_weights_every_s: float = 1.0

    def __post_init__(self):
        if not float(self.duration_s) > 0:
            raise ConfigError(f"run.duration_s must be positive, got {self.duration_s}")
        if not math.isfinite(float(self.duration_s)):
            raise ConfigError(f"run.duration_s must be a finite number of seconds, got {self.duration_s}")
        every = float(self.record_weights_every_s)
        if not (math.isfinite(every) and every >= 0):
            raise ConfigError(f"run.record_weights_every_s must be a finite number of seconds >= 0 "
                              f"(0 = every window), got {self.record_weights_every_s}")
        if self.seed is not None and (not isinstance(self.seed, (int, np.integer)) or self.seed < 0):
            raise ConfigError(f"run.seed must be a non-negative integer, got {self.seed!r}")


@dataclass(frozen=True)
class SimulationConfig:
    """A whole simulation: population x model x task x learning x run."""

    population: PopulationConfig = field(default_factory=PopulationConfig)
    model: LIFParams = field(default_factory=LIFParams)
    task: TaskConfig = field(default_factory=TaskConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    run: RunConfig = field(default_factory=RunConfig)
    name: str = "custom"

    def __post_init__(self):
        if int(math.floor(float(self.run.duration_s) / self.model.window_s + 1e-9)) < 1:  # as experiment.run counts
            raise ConfigError(f"run.duration_s={self.run.duration_s} s is shorter than one window "
                              f"(model.window_s={self.model.window_s} s); give run.duration_s >= window_s")
        cost = self.task.build()
        need = getattr(cost, "n_neurons", None)
        if need is not None and need != self.population.n_neurons:
            raise ConfigError(
                f"task.cost {getattr(cost, 'name', cost)!r} is defined for {need} neurons but population.n_neurons = "
                f"{self.population.n_neurons}"
            )

    def to_dict(self) -> dict:
        """A plain dict (TOML/JSON-friendly) that :meth:`from_dict` turns back into this config."""
        d = dataclasses.asdict(self)
        d["population"]["w"] = list(d["population"]["w"])
        d["learning"]["params"] = dict(self.learning.params)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SimulationConfig":
        """Build and validate a config from nested dicts; unknown keys are an error."""
        known = {"population", "model", "task", "learning", "run", "name"}
        extra = set(d) - known
        if extra:
            raise ConfigError(f"unknown config table(s) {sorted(extra)}; valid tables are {sorted(known - {'name'})}")
        parts = {}
        for key, typ in (("population", PopulationConfig), ("model", LIFParams), ("task", TaskConfig),
                         ("learning", LearningConfig), ("run", RunConfig)):
            sub = dict(d.get(key, {}))
            if key == "learning":
                rule = sub.pop("rule", "none")
                params = dict(sub.pop("params", {}))
                params.update(sub)  # hyper-parameters may sit directly in [learning]
                sub = {"rule": rule, "params": params}
            names = {f.name for f in dataclasses.fields(typ)}
            bad = set(sub) - names
            if bad:
                raise ConfigError(f"[{key}] has unknown key(s) {sorted(bad)}; valid keys: {sorted(names)}")
            try:
                parts[key] = typ(**sub)
            except ConfigError:
                raise
            except (TypeError, ValueError) as err:
                raise ConfigError(f"[{key}]: {err}") from None
        return cls(name=str(d.get("name", "custom")), **parts)

    def with_overrides(self, **dotted) -> "SimulationConfig":
        """A copy with ``table.key=value`` overrides, e.g. ``with_overrides(**{"population.c": 0.9})``."""
        d = self.to_dict()
        for key, value in dotted.items():
            if "." not in key:
                raise ConfigError(f"override {key!r} must be written table.key (e.g. population.c)")
            table, name = key.split(".", 1)
            if table not in d or not isinstance(d[table], dict):
                raise ConfigError(f"override {key!r}: no table [{table}]")
            d[table][name] = value
        return SimulationConfig.from_dict(d)


def preset_dir() -> Path:
    """Folder of the TOML presets (``$BCI_CREDIT_PRESETS`` or the repository's ``data/presets``)."""
    env = os.environ.get("BCI_CREDIT_PRESETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "data" / "presets"


def list_presets() -> list[str]:
    """Names of the available presets."""
    d = preset_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_config(path: str | os.PathLike) -> SimulationConfig:
    """Read a TOML configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    data.setdefault("name", path.stem)
    return SimulationConfig.from_dict(data)


def load_preset(name: str) -> SimulationConfig:
    """Load the preset ``name`` (see :func:`list_presets`), or a TOML file when given a path."""
    if name.endswith(".toml") or os.sep in name:
        return load_config(name)
    path = preset_dir() / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no preset named {name!r}; available presets: {', '.join(list_presets()) or 'none'}")
    return load_config(path)
