"""Simulation configuration: frozen dataclasses, TOML presets, validation with clear errors.

A configuration has four tables, each a dataclass::

    [population]  n_neurons, w (one value or one per neuron), c, x, control_unit (the cost's
                  control unit, where the cost has one)
    [model]       LIF parameters (see :class:`bci_credit.sim.LIFParams`)
    [task]        cost: a name or a table {name = ..., params...}
    [learning]    rule: "none" or a rule name, plus its hyper-parameters (each given once: directly
                  or in a ``params`` table)
    [run]         duration_s, seed, record_weights_every_s

Presets live in ``data/presets/*.toml``; :func:`load_preset` finds them by name.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .checks import check_flag, check_number
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


def _elements(value) -> list:
    """The scalars of a number or (nested) list/array of numbers, unconverted (for type checks)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(np.ravel(np.asarray(value, dtype=object)))
    return [value]


def _number(value, name: str, **kw):
    """The shared field check (:func:`bci_credit.checks.check_number`), raising ConfigError."""
    return check_number(value, name, error=ConfigError, **kw)


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
        n = _number(self.n_neurons, "population.n_neurons", integer=True)
        if n < 1:
            raise ConfigError(f"population.n_neurons must be >= 1, got {self.n_neurons}")
        w = tuple(float(_number(v, "population.w", finite=False)) for v in _elements(self.w))
        if len(w) == 1:
            w = w * n
        if len(w) != n:
            raise ConfigError(f"population.w has {len(w)} values for {n} neurons; give one value or one per neuron")
        bad = [v for v in w if not math.isfinite(v)]
        if bad:
            raise ConfigError(f"population.w must be finite numbers, got {bad[0]}; give finite input gains")
        object.__setattr__(self, "w", w)
        object.__setattr__(self, "n_neurons", n)
        _number(self.x, "population.x (stimulus)")
        _number(self.c, "population.c (noise correlation)", finite=False)
        if not 0.0 <= float(self.c) <= 1.0:
            raise ConfigError(f"population.c (noise correlation) must lie in [0, 1], got {self.c}")
        if self.control_unit is not None:
            unit = _number(self.control_unit, "population.control_unit", integer=True)
            if not 0 <= unit < n:
                raise ConfigError(f"population.control_unit={self.control_unit} is not a neuron index (0..{n - 1})")
            object.__setattr__(self, "control_unit", unit)


@dataclass(frozen=True)
class TaskConfig:
    """What is rewarded: a cost of the filtered outputs at each window's end."""

    cost: Any = "quadratic"

    def build(self) -> Callable:
        """The cost callable (:func:`~bci_credit.tasks.costs.make_cost`; a bad cost is a ``ConfigError``)."""
        from .tasks.costs import make_cost

        if isinstance(self.cost, Mapping):
            self._check_cost_params()
        try:
            return make_cost(dict(self.cost) if isinstance(self.cost, Mapping) else self.cost)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"task.cost: {err}") from None

    def _check_cost_params(self) -> None:
        """Names and number types of a ``{name = ..., params...}`` cost table (values: ``make_cost``)."""
        from .tasks.costs import COSTS

        name = self.cost.get("name")
        if "name" in self.cost and not isinstance(name, str):
            raise ConfigError(f"task.cost.name must be a cost name in quotes, got {name!r}; choose one of {sorted(COSTS)}")
        typ = COSTS.get(name)
        if typ is None or not dataclasses.is_dataclass(typ):
            return  # make_cost names the problem
        fields = {f.name: f for f in dataclasses.fields(typ) if f.init}
        fixed = {f.name for f in dataclasses.fields(typ) if not f.init}  # e.g. a 2-neuron cost's n_neurons
        for key, value in self.cost.items():
            if key == "name" or key in fixed:  # a fixed field (as describe() writes it): make_cost checks it
                continue
            if key not in fields:
                raise ConfigError(f"task.cost: cost {self.cost['name']!r} has no parameter {key!r}; "
                                  f"valid parameters: {sorted(k for k in fields if k != 'name')}")
            default = fields[key].default
            label = f"task.cost.{key}"
            if isinstance(default, bool) or isinstance(default, str) or default is dataclasses.MISSING:
                continue
            if isinstance(default, (int, float)):
                _number(value, label, integer=isinstance(default, int))
            elif isinstance(default, tuple):
                for v in _elements(value):
                    _number(v, label)


@lru_cache(maxsize=None)
def _init_parameters(cls) -> dict:
    """``name -> inspect.Parameter`` of ``cls.__init__`` (a rule's hyper-parameters)."""
    sig = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in sig.items() if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def rule_parameter_names(rule: str) -> set[str]:
    """The hyper-parameter names of the learning rule called ``rule`` (none for ``"none"`` or an unknown name)."""
    from .learning import RULES

    return set(_init_parameters(RULES[rule])) if rule in RULES else set()


class ConfigWarning(UserWarning):
    """Something a config does that its author may not expect, said once (e.g. a rule switch that drops
    settings, a duration rounded to whole windows); a sweep says it once, not in every task."""


#: Hyper-parameters allowed with ``rule = "none"``: ``p`` is the RD window of the sweep metrics.
_NO_RULE_PARAMS = ("p",)


@dataclass(frozen=True)
class LearningConfig:
    """The learning rule (``"none"`` keeps the weights fixed) and its hyper-parameters.

    Checked at load time: the rule name, the hyper-parameter names (those of the rule's
    ``__init__``), their types (a number where the rule's default is a number, true/false where it
    is a boolean), ``p > 0``, and everything the rule itself checks before learning (its
    ``_check_params``: ranges, choices such as ``gain`` or ``step``, ``record_every``, the weight
    bounds); ``oracle`` needs ``cost`` or ``beta``. With ``rule = "none"``
    the names must belong to some rule (they are kept for a rule switched on later, e.g. by a grid
    over ``learning.rule``); ``p`` is also the RD window of :func:`bci_credit.sweep.default_metrics`.
    """

    rule: str = "none"
    params: Mapping = field(default_factory=dict)

    def __post_init__(self):
        from .learning import RULES, make_rule  # here: bci_credit.learning imports the simulator

        choices = f"'none' or one of {sorted(RULES)}"
        if not isinstance(self.rule, str):
            raise ConfigError(f"learning.rule must be a rule name in quotes, got {self.rule!r}; choose {choices}")
        if not isinstance(self.params, Mapping):
            raise ConfigError(f"learning.params must be a table of hyper-parameters (e.g. {{p = 0.1, eta = 0.1}}), "
                              f"got {self.params!r}")
        params = dict(self.params)
        if self.rule == "none":  # settings kept for a rule switched on later (e.g. a grid over the rule)
            known = set(_NO_RULE_PARAMS).union(*(_init_parameters(r) for r in RULES.values()))
            extra = sorted(set(params) - known)
            if extra:
                raise ConfigError(f"learning.params {extra} are not hyper-parameters of any learning rule "
                                  f"({sorted(RULES)}); check the names")
        elif self.rule not in RULES:
            raise ConfigError(f"learning.rule {self.rule!r} is not a learning rule; choose {choices}")
        else:
            sig = _init_parameters(RULES[self.rule])
            extra = sorted(set(params) - set(sig))
            if extra:
                raise ConfigError(f"learning rule {self.rule!r} has no hyper-parameter(s) {extra}; "
                                  f"valid: {sorted(sig)}")
            for key, value in params.items():
                default, optional = sig[key].default, "None" in str(sig[key].annotation)
                label = f"learning.{key}"
                if value is None and (optional or default is None):
                    continue
                if isinstance(default, bool):
                    params[key] = check_flag(value, label, error=ConfigError)
                elif isinstance(default, int):
                    params[key] = _number(value, label, integer=True)
                elif isinstance(default, float):
                    for v in _elements(value):  # a number, or one per neuron
                        _number(v, label, finite=False)
        if "p" in params:
            p = _number(params["p"], "learning.p (RD window half-width)")
            if not p > 0:
                raise ConfigError(f"learning.p (RD window half-width) must be > 0, got {p!r}")
        if self.rule != "none":
            try:
                make_rule(self.rule, **params)._check_params()
            except (TypeError, ValueError) as err:
                raise ConfigError(f"learning: {err}") from None
        if self.rule == "oracle" and params.get("cost") is None and params.get("beta") is None:
            # a configured simulation gives no per-window true effect (only the BCI session does)
            raise ConfigError("learning.rule 'oracle' needs the true effect: give learning.cost (a cost name or "
                              "table, e.g. the task's cost) or learning.beta (the effects, one per neuron)")
        object.__setattr__(self, "params", params)  # a plain dict; whole numbers as int, flags as bool


@dataclass(frozen=True)
class RunConfig:
    """Duration, seed and recording options."""

    duration_s: float = 10.0
    seed: int | None = 0
    record_weights_every_s: float = 1.0

    def __post_init__(self):
        _number(self.duration_s, "run.duration_s", finite=False)
        _number(self.record_weights_every_s, "run.record_weights_every_s", finite=False)
        if not float(self.duration_s) > 0:
            raise ConfigError(f"run.duration_s must be positive, got {self.duration_s}")
        if not math.isfinite(float(self.duration_s)):
            raise ConfigError(f"run.duration_s must be a finite number of seconds, got {self.duration_s}")
        every = float(self.record_weights_every_s)
        if not (math.isfinite(every) and every >= 0):
            raise ConfigError(f"run.record_weights_every_s must be a finite number of seconds >= 0 "
                              f"(0 = every window), got {self.record_weights_every_s}")
        if self.seed is not None and (isinstance(self.seed, (bool, np.bool_)) or not isinstance(self.seed, (int, np.integer))
                                      or self.seed < 0):
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

    @property
    def n_windows(self) -> int:
        """Whole windows in ``run.duration_s`` (the simulation runs this many; a remainder is dropped)."""
        return int(math.floor(float(self.run.duration_s) / self.model.window_s + 1e-9))

    @property
    def duration_note(self) -> str | None:
        """The :class:`ConfigWarning` text when ``run.duration_s`` is not a whole number of windows (else None)."""
        n, window_s, duration = self.n_windows, self.model.window_s, float(self.run.duration_s)
        if math.isclose(n * window_s, duration, rel_tol=1e-9, abs_tol=1e-12):
            return None
        return (f"run.duration_s={duration:g} s is not a whole number of {window_s:g}-s windows: "
                f"simulating {n} windows ({n * window_s:g} s)")

    def __post_init__(self):
        if self.n_windows < 1:
            raise ConfigError(f"run.duration_s={self.run.duration_s} s is shorter than one window "
                              f"(model.window_s={self.model.window_s} s); give run.duration_s >= window_s")
        cost = self.task.build()
        n = self.population.n_neurons
        need = getattr(cost, "n_neurons", None)
        if need is not None and need != n:
            raise ConfigError(
                f"task.cost {getattr(cost, 'name', cost)!r} is defined for {need} neurons but "
                f"population.n_neurons = {n}"
            )
        control, unit = getattr(cost, "control", None), self.population.control_unit
        uses_control = getattr(cost, "mode", None) in ("brain", "dual") or (
            isinstance(self.task.cost, Mapping) and "control" in self.task.cost)
        if unit is not None and isinstance(control, int) and uses_control and control != unit:
            raise ConfigError(f"population.control_unit = {unit} but task.cost.control = {control}: the control unit "
                              f"is the one the cost singles out; set both to the same unit")
        for key, value in self.learning.params.items():  # one value, or one per neuron
            if isinstance(value, (list, tuple)) and np.shape(value) not in ((1,), (n,)):
                raise ConfigError(f"learning.{key} has {np.size(value)} values for {n} neurons; give one value "
                                  f"or one per neuron")
        oracle_cost = self.learning.params.get("cost") if self.learning.rule == "oracle" else None
        if oracle_cost is not None:
            from .tasks.costs import make_cost

            need = getattr(make_cost(oracle_cost), "n_neurons", None)
            if need is not None and need != n:
                raise ConfigError(f"learning.cost is defined for {need} neurons but population.n_neurons = {n}")

    def to_dict(self) -> dict:
        """A plain dict (TOML/JSON-friendly) that :meth:`from_dict` turns back into this config."""
        d = dataclasses.asdict(self)
        d["population"]["w"] = list(d["population"]["w"])
        d["learning"]["params"] = dict(self.learning.params)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SimulationConfig":
        """Build and validate a config from nested dicts; unknown keys are an error.

        Parameters
        ----------
        d : mapping
            Tables ``population``, ``model``, ``task``, ``learning``, ``run`` (each optional) and
            ``name``, as in a TOML file or :meth:`to_dict`.

        Returns
        -------
        SimulationConfig
            The validated config.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"a config is a table of tables ([population], [model], ...), got {type(d).__name__}")
        known = {"population", "model", "task", "learning", "run", "name"}
        extra = set(d) - known
        if extra:
            raise ConfigError(f"unknown config table(s) {sorted(extra)}; valid tables are {sorted(known - {'name'})}")
        parts = {}
        for key, typ in (("population", PopulationConfig), ("model", LIFParams), ("task", TaskConfig),
                         ("learning", LearningConfig), ("run", RunConfig)):
            sub = d.get(key, {})
            if not isinstance(sub, Mapping):
                raise ConfigError(f"[{key}] must be a table of settings (e.g. [{key}] followed by key = value lines), "
                                  f"got {sub!r}")
            sub = dict(sub)
            if key == "learning":
                rule = sub.pop("rule", "none")
                params = sub.pop("params", {})
                if not isinstance(params, Mapping):
                    raise ConfigError(f"learning.params must be a table of hyper-parameters (e.g. params = {{p = 0.1}}), "
                                      f"got {params!r}")
                twice = sorted(set(params) & set(sub))
                if twice:
                    raise ConfigError(f"learning.{twice[0]} is given twice, directly in [learning] and in "
                                      f"learning.params; give it once")
                params = {**params, **sub}  # hyper-parameters may sit directly in [learning]
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
                lif = re.match(r"LIFParams\.(\w+)", str(err)) if key == "model" else None
                where = f"model.{lif[1]}" if lif else f"[{key}]"  # the TOML key, where the error names one
                raise ConfigError(f"{where}: {err}") from None
        return cls(name=str(d.get("name", "custom")), **parts)

    def with_overrides(self, **dotted: Any) -> "SimulationConfig":
        """A copy with ``table.key=value`` overrides, e.g. ``with_overrides(**{"population.c": 0.9})``.

        ``task.cost.NAME`` sets one parameter of the cost (``task.cost.name`` another cost, with its
        defaults; it is applied before the cost parameters given in the same call). ``learning.NAME``
        sets one hyper-parameter of the rule. Changing ``learning.rule`` from one rule to another
        starts the new rule from its own defaults, with a :class:`ConfigWarning` naming what was
        dropped: the config's hyper-parameters were chosen for the old rule (an RDD ``p = 0.1`` kept
        by ``od`` would make it an RDD rule; ``epsilon`` has another scale in ``reinforce``).
        Hyper-parameters given in the same call are kept. Switching from or to ``"none"`` keeps them.

        Parameters
        ----------
        **dotted
            ``"table.key"`` -> new value.

        Returns
        -------
        SimulationConfig
            The new, validated config.
        """
        d = self.to_dict()
        old_rule, new_rule = d["learning"]["rule"], dotted.get("learning.rule")
        if new_rule not in (None, "none", old_rule) and old_rule != "none":
            dropped = sorted(set(d["learning"]["params"]) - {k.split(".", 1)[1] for k in dotted
                                                             if k.startswith("learning.")})
            d["learning"]["params"] = {}
            if dropped:
                warnings.warn(f"learning.rule {new_rule!r} replaces {old_rule!r}: starting it from its own defaults, "
                              f"without the settings of {old_rule!r}: {dropped} (set them again to keep them)",
                              ConfigWarning, stacklevel=2)
        # a new cost (task.cost.name) first, so that its parameters given in the same call apply to it
        order = sorted(dotted, key=lambda k: k != "task.cost.name")
        for key in order:
            value = dotted[key]
            if "." not in key:
                raise ConfigError(f"override {key!r} must be written table.key (e.g. population.c)")
            table, name = key.split(".", 1)
            if table not in d or not isinstance(d[table], dict):
                raise ConfigError(f"override {key!r}: no table [{table}]")
            if table == "learning" and name not in ("rule", "params"):
                d[table]["params"][name] = value  # a hyper-parameter: replaces the one in params
            elif table == "task" and name.startswith("cost."):  # one parameter of the cost, e.g. task.cost.target
                cost = d["task"]["cost"]
                cost = {"name": cost} if isinstance(cost, str) else dict(cost)
                field = name.split(".", 1)[1]
                d["task"]["cost"] = {"name": value} if field == "name" and value != cost.get("name") else {
                    **cost, field: value}
            else:
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
    """Read a TOML configuration file.

    Parameters
    ----------
    path : str or path
        The file; its stem is the config's name unless it sets ``name``.

    Returns
    -------
    SimulationConfig
        The validated config.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a TOML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    data.setdefault("name", path.stem)
    return SimulationConfig.from_dict(data)


def load_preset(name: str) -> SimulationConfig:
    """Load the preset ``name`` (see :func:`list_presets`), or a TOML file when given a path.

    Parameters
    ----------
    name : str
        A preset name, or a path (ending in ``.toml`` or containing a path separator).

    Returns
    -------
    SimulationConfig
        The validated config.
    """
    if name.endswith(".toml") or os.sep in name:
        return load_config(name)
    path = preset_dir() / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no preset named {name!r}; available presets: {', '.join(list_presets()) or 'none'}")
    return load_config(path)
