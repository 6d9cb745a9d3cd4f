"""Parameter sweeps: every grid point x replicate is one task; results journaled per task; resumable.

::

    from bci_credit.sweep import run_sweep
    res = run_sweep("paper_2neuron_estimation", {"c": [0, 0.5, 0.99], "p": [0.01, 0.05, 0.2]},
                    replicates=10, out="out/sweep", n_jobs=2)
    res.results      # one row per task: task_id, point, replicate, parameters, seed, status, metrics
    res.summary      # one row per grid point: mean and standard error of each metric

The same from the shell: ``bci-credit sweep paper_2neuron_estimation --grid c=0,0.5,0.99 --grid
p=0.01,0.05,0.2 --replicates 10 --out out/sweep --n-jobs 2``.

Grid keys are dotted config names (``population.c``, ``model.sigma``, ``learning.p``) or short
names: ``c`` -> ``population.c``, ``p`` -> ``learning.p`` and any field name that belongs to one
table only (``sigma`` -> ``model.sigma``, ``duration_s`` -> ``run.duration_s``).

Seeds
-----
The root seed is ``seed=`` or else ``config.run.seed`` (fresh entropy, recorded, when both are
None). Task (point ``g``, replicate ``r``) runs with ``run.seed = child_seed(root, g, r)``
(:func:`bci_credit.parallel.child_seed`): it depends only on the root and the task's key, so
results are identical for any ``n_jobs``, on a Dask cluster, in any completion order, and when
a sweep is resumed or extended with more replicates.

Output folder
-------------
``sweep.json``
    What the sweep is (config, grid, replicates, root seed, metric function): a rerun with the
    same folder resumes only when these match (more replicates are allowed).
``tasks.jsonl``
    The journal: one JSON line per finished task, appended, flushed and fsync'ed as each task
    ends. On resume a half-written last line (a killed process) is dropped and those tasks rerun;
    tasks whose status is ``ok`` are never redone; failed ones are retried.
``results.csv``
    One row per task (from the journal), rewritten atomically every few seconds and at the end.
``summary.csv``, ``sweep.png``
    Mean and standard error per grid point, and a figure of them.
``run.json``
    Provenance (argv, versions, counts).

Metrics
-------
``metrics(rec, config) -> dict`` maps names to a number or a per-unit array (stored as columns
``name_0``, ``name_1``, ...). The default, :func:`default_metrics`, gives per-unit firing rates,
the mean reward and the true direct effects, plus for runs without learning the constant-RD
estimate and the observed dependence (:func:`rd_quick`) and for runs with learning the final
weights and final mean cost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .checks import check_number
from .config import ConfigError, ConfigWarning, SimulationConfig, load_preset, rule_parameter_names
from .parallel import child_seed, imap_unordered, progress_bar, resolve_scheduler
from .plotting import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .recording import Recording

__all__ = [
    "DEFAULT_P",
    "KEY_ALIASES",
    "SweepTask",
    "SweepResult",
    "resolve_key",
    "parse_grid_item",
    "normalize_grid",
    "make_tasks",
    "rd_quick",
    "default_metrics",
    "run_task",
    "run_sweep",
    "load_results",
    "metric_columns",
    "summarize",
    "plot_sweep",
]

log = logging.getLogger("bci_credit")

#: Half-width of the RD window used by :func:`default_metrics` when the config has no ``learning.p``.
DEFAULT_P = 0.05
#: Short grid keys.
KEY_ALIASES = {
    "c": "population.c",
    "p": "learning.p",
    "w": "population.w",
    "x": "population.x",
    "n": "population.n_neurons",
    "sigma": "model.sigma",
    "duration": "run.duration_s",
    "cost": "task.cost",
    "rule": "learning.rule",
}
_TABLES = ("population", "model", "task", "learning", "run")
_FORBIDDEN = {"run.seed": "per-task seeds come from the root seed; use --replicates and --seed instead",
              "name": "the config name is not a parameter"}

#: Most values one ``START:STOP:NUM`` range may give.
MAX_RANGE_VALUES = 10_000
#: Most tasks (grid points x replicates) one sweep may have; raise it from Python for a bigger sweep.
MAX_TASKS = 100_000

JOURNAL = "tasks.jsonl"
SPEC = "sweep.json"
RESULTS = "results.csv"
SUMMARY = "summary.csv"
FIGURE = "sweep.png"
_SPEC_FORMAT = 1


# --------------------------------------------------------------------------------------------
# grid


def _as_config(config: SimulationConfig | str | os.PathLike) -> SimulationConfig:
    if isinstance(config, SimulationConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_preset(os.fspath(config))
    raise TypeError(f"config must be a SimulationConfig, a preset name or a TOML path, got {type(config).__name__}")


def resolve_key(key: str, config: SimulationConfig) -> str:
    """The dotted config name of a grid key (``c`` -> ``population.c``); a clear error otherwise.

    Parameters
    ----------
    key : str
        A dotted name, a short name of :data:`KEY_ALIASES`, or a field name found in exactly one table.
    config : SimulationConfig
        The base configuration (its fields and rule).

    Returns
    -------
    str
        ``"table.key"``.
    """
    key = str(key).strip()
    if key in KEY_ALIASES:
        key = KEY_ALIASES[key]
    if "." in key:
        table, name = key.split(".", 1)
        if table not in _TABLES:
            raise ConfigError(f"grid key {key!r}: no table [{table}]; tables are {', '.join(_TABLES)}")
        if key in _FORBIDDEN:
            raise ConfigError(f"grid key {key!r}: {_FORBIDDEN[key]}")
        if table != "learning" and not key.startswith("task.cost."):  # a cost parameter is checked by the config
            valid = {f.name for f in dataclasses.fields(getattr(config, table))}
            if name not in valid:
                raise ConfigError(f"grid key {key!r}: [{table}] has no key {name!r}; valid keys: {sorted(valid)}")
        return key
    matches = []
    for table in _TABLES:
        names = {f.name for f in dataclasses.fields(getattr(config, table))}
        if table == "learning":  # the rule's settings, given in the config or not
            names |= set(config.learning.params) | rule_parameter_names(config.learning.rule)
        if key in names:
            matches.append(f"{table}.{key}")
    if len(matches) == 1:
        return resolve_key(matches[0], config)
    if len(matches) > 1:
        raise ConfigError(f"grid key {key!r} is ambiguous ({', '.join(matches)}); write it as table.key")
    raise ConfigError(
        f"grid key {key!r} is not a config field; write it as table.key (e.g. model.sigma, learning.eta) or use "
        f"a short name ({', '.join(f'{k}={v}' for k, v in KEY_ALIASES.items())})"
    )


_RANGE_RE = re.compile(r"^\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*:\s*(\d+)\s*$")


def parse_grid_item(text: str) -> tuple[str, list]:
    """``"c=0,0.5,0.99"`` -> ``("c", [0, 0.5, 0.99])``.

    Values are TOML literals separated by commas (``w=[12,9],[14,7]`` gives two lists,
    ``noise=per_step,sde`` two strings); ``c=0:1:5`` is ``numpy.linspace(0, 1, 5)``.

    Parameters
    ----------
    text : str
        ``KEY=V1,V2,...`` or ``KEY=START:STOP:NUM``.

    Returns
    -------
    key : str
        The key as written (not resolved).
    values : list
        The values.
    """
    import tomllib

    if "=" not in text:
        raise ConfigError(f"--grid {text!r}: write KEY=V1,V2,... (e.g. c=0,0.5,0.99)")
    key, rhs = (s.strip() for s in text.split("=", 1))
    if not key or not rhs:
        raise ConfigError(f"--grid {text!r}: give a key and at least one value (e.g. c=0,0.5,0.99)")
    m = _RANGE_RE.match(rhs)
    if m:
        try:
            lo, hi, num = float(m.group(1)), float(m.group(2)), int(m.group(3))
        except ValueError:
            raise ConfigError(f"--grid {text!r}: a range is START:STOP:NUM, e.g. c=0:1:5") from None
        if num < 1:
            raise ConfigError(f"--grid {text!r}: a range needs NUM >= 1")
        if num > MAX_RANGE_VALUES:
            raise ConfigError(f"--grid {text!r}: a range gives at most {MAX_RANGE_VALUES:,} values, got NUM = {num:,}; "
                              "use a smaller NUM")
        return key, [float(v) for v in np.linspace(lo, hi, num)]
    try:
        values = tomllib.loads(f"v = [{rhs}]")["v"]
    except tomllib.TOMLDecodeError:
        values = []
        for part in rhs.split(","):
            part = part.strip()
            if not part:
                raise ConfigError(f"--grid {text!r}: empty value between commas")
            try:
                values.append(tomllib.loads(f"v = {part}")["v"])
            except tomllib.TOMLDecodeError:
                values.append(part)
    if not values:
        raise ConfigError(f"--grid {text!r}: no values")
    return key, list(values)


def normalize_grid(config: SimulationConfig, grid: Mapping[str, Sequence] | Iterable) -> dict[str, list]:
    """``{dotted key: [values]}`` from a mapping, ``(key, values)`` pairs or ``"key=v1,v2"`` strings.

    Parameters
    ----------
    config : SimulationConfig
        The base configuration the keys are resolved against (:func:`resolve_key`).
    grid : mapping or iterable
        ``{key: values}``, ``(key, values)`` pairs or :func:`parse_grid_item` strings.

    Returns
    -------
    dict
        Dotted key -> list of values (each value once; a bad key, a repeated value or an oversized
        grid raises ``ConfigError``).
    """
    if isinstance(grid, Mapping):
        pairs = list(grid.items())
    else:
        pairs = [parse_grid_item(g) if isinstance(g, str) else tuple(g) for g in grid]
    out: dict[str, list] = {}
    for key, values in pairs:
        full = resolve_key(key, config)
        if full in out:
            raise ConfigError(f"grid key {key!r} ({full}) is given twice")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = [_plain(v) for v in values]
        if not values:
            raise ConfigError(f"grid key {key!r} has no values")
        seen: dict[str, Any] = {}
        for v in values:
            k = _value_key(v)
            if k in seen:
                same = f" (as {seen[k]!r} and {v!r})" if repr(seen[k]) != repr(v) else ""
                raise ConfigError(f"grid key {key!r} ({full}) lists the value {v!r} twice{same}; give each value once "
                                  "(use --replicates for repeated runs)")
            seen[k] = v
        out[full] = values
    _check_size(out, 1)
    return out


def _value_key(v: Any) -> str:
    """A key under which equal grid values (``0`` and ``0.0``, equal lists) collide."""
    def norm(x):
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, (list, tuple)):
            return [norm(y) for y in x]
        if isinstance(x, Mapping):
            return {str(k): norm(y) for k, y in x.items()}
        return repr(x)

    return json.dumps(norm(v), sort_keys=True)


def _check_size(grid: Mapping[str, Sequence], replicates: int) -> int:
    """The number of tasks; a ConfigError when it exceeds :data:`MAX_TASKS`."""
    n_points = math.prod(len(v) for v in grid.values())
    n_tasks = n_points * replicates
    if n_tasks > MAX_TASKS:
        sizes = " x ".join(str(len(v)) for v in grid.values()) or "1"
        reps = f" x {replicates} replicates" if replicates > 1 else ""
        raise ConfigError(
            f"the sweep has {n_tasks:,} tasks ({sizes} grid values{reps}), more than the limit of {MAX_TASKS:,}; "
            "use fewer grid values or replicates, or split it into several sweeps (from Python, set "
            "bci_credit.sweep.MAX_TASKS to allow more)"
        )
    return n_tasks


def _replicates(replicates: Any) -> int:
    """``replicates`` as an int >= 1, or a ConfigError (``2.5`` and ``True`` are not counts)."""
    n = check_number(replicates, "replicates", integer=True, error=ConfigError)
    if n < 1:
        raise ConfigError(f"replicates must be >= 1, got {replicates}")
    return n


def _plain(v: Any) -> Any:
    """JSON-friendly Python value (numpy scalars/arrays -> int/float/list)."""
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


@dataclasses.dataclass(frozen=True)
class SweepTask:
    """One grid point x replicate: ``params`` (dotted key -> value) and the run seed."""

    point: int
    replicate: int
    params: tuple
    seed: int

    @property
    def key(self) -> tuple[int, int]:
        """``(point, replicate)``."""
        return (self.point, self.replicate)


def _points(grid: Mapping[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def make_tasks(config: SimulationConfig, grid: Mapping[str, list], replicates: int, root_seed: int,
               *, validate: bool = True) -> list[SweepTask]:
    """Every grid point x replicate (last grid key varies fastest, replicates innermost).

    Parameters
    ----------
    config : SimulationConfig
        The base configuration.
    grid : mapping
        Dotted key -> values (as from :func:`normalize_grid`).
    replicates : int
        Runs per grid point.
    root_seed : int
        Root of the task seeds (``child_seed(root_seed, point, replicate)``).
    validate : bool
        Check the grid size and every point against the config (a rule switch or a rounded
        duration warns once); False when reading back an existing sweep.

    Returns
    -------
    list of SweepTask
        The tasks, in order.
    """
    replicates = _replicates(replicates)
    if validate:  # a new sweep (not an existing folder being read back)
        _check_size(grid, replicates)
    points = _points(grid)
    tasks = []
    said = set()
    for g, params in enumerate(points):
        if validate:
            try:
                note = config.with_overrides(**params).duration_note  # and a rule switch warns here, once
            except ConfigError as err:
                raise ConfigError(f"grid point {params}: {err}") from None
            if note and note not in said:
                said.add(note)
                warnings.warn(note, ConfigWarning, stacklevel=2)
        items = tuple(params.items())
        for r in range(replicates):
            tasks.append(SweepTask(g, r, items, child_seed(root_seed, g, r)))
    return tasks


# --------------------------------------------------------------------------------------------
# metrics


def rd_quick(drive: np.ndarray, spiked: np.ndarray, reward: np.ndarray, threshold: ArrayLike, p: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Constant-RD estimate per unit: mean reward in windows with ``|Z - theta| < p`` where the unit
    spiked, minus the mean where it did not (``p = 1`` gives the observed dependence of the tests).

    A quick number for sweeps, written here because it is a few lines; the analysis package has
    the full local-polynomial estimator with standard errors.

    Parameters
    ----------
    drive : ndarray, shape (n_windows, n_units)
        Drive Z.
    spiked : ndarray of bool, shape (n_windows, n_units)
        Spike indicator H.
    reward : ndarray, shape (n_windows,)
        Reward of each window.
    threshold : float or array_like (n_units,)
        Threshold theta.
    p : float
        Half-width of the window around threshold.

    Returns
    -------
    estimate : ndarray (n_units,)
        NaN where one side of the window is empty.
    n_near : ndarray of int (n_units,)
        Windows inside the window.
    """
    z = np.asarray(drive, dtype=float)
    h = np.asarray(spiked, dtype=bool)
    r = np.asarray(reward, dtype=float)[:, None]
    near = np.abs(z - np.asarray(threshold, dtype=float)) < p
    above, below = near & h, near & ~h
    n_a, n_b = above.sum(axis=0), below.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = (r * above).sum(axis=0) / n_a - (r * below).sum(axis=0) / n_b
    est = np.where((n_a > 0) & (n_b > 0), est, np.nan)
    return est, near.sum(axis=0)


def default_metrics(rec: Recording, config: SimulationConfig) -> dict[str, Any]:
    """Per-task numbers of a sweep (see the module docstring).

    Always: ``rate_hz`` (per unit), ``mean_reward``, ``true_direct_effect`` (per unit, simulations).
    Without learning: ``rdd_const`` and ``n_near`` (window ``learning.p``, default
    :data:`DEFAULT_P`) and ``od`` (the same with ``p = 1``) per unit. With learning
    (``config.learning.rule != "none"``): ``w_final`` (per unit) and ``final_cost`` (mean reward of the
    last 10 % of windows).

    Parameters
    ----------
    rec : Recording
        The task's simulated session.
    config : SimulationConfig
        The task's configuration.

    Returns
    -------
    dict
        Metric name -> number or per-unit array.
    """
    out: dict[str, Any] = {"rate_hz": rec.rates_hz()}
    reward = rec.windows["reward"].to_numpy(float) if rec.windows is not None and "reward" in rec.windows else None
    out["mean_reward"] = float(np.mean(reward)) if reward is not None and reward.size else math.nan
    if "true_direct_effect" in rec.units:
        out["true_direct_effect"] = rec.units["true_direct_effect"].to_numpy(float)
    learning = config.learning.rule != "none"
    if not learning and rec.drive is not None and rec.spiked is not None and reward is not None:
        theta = rec.units["threshold"].to_numpy(float)
        p = float(config.learning.params.get("p", DEFAULT_P))
        out["rdd_const"], out["n_near"] = rd_quick(rec.drive, rec.spiked, reward, theta, p)
        out["od"], _ = rd_quick(rec.drive, rec.spiked, reward, theta, 1.0)
    if learning:
        if rec.weights is not None and rec.weights.values.size:
            out["w_final"] = rec.weights.values[-1]
        if reward is not None and reward.size:
            k = max(1, reward.size // 10)
            out["final_cost"] = float(np.mean(reward[-k:]))
    return out


def _flatten(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        value = _plain(value)
        if isinstance(value, list):
            arr = np.asarray(value)
            if arr.ndim != 1:
                raise ValueError(f"metric {name!r} must be a number or a 1-D per-unit array, got shape {arr.shape}")
            for i, v in enumerate(value):
                out[f"{name}_{i}"] = v
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            raise TypeError(f"metric {name!r} has type {type(value).__name__}; return numbers or 1-D arrays")
    return out


def run_task(task: SweepTask, *, config: SimulationConfig, metrics: Callable | None = None) -> dict[str, Any]:
    """Simulate one task and return its metrics (flattened); runs in a worker.

    Parameters
    ----------
    task : SweepTask
        The grid point, replicate and seed.
    config : SimulationConfig
        The base configuration (the task's parameters and seed are applied to it).
    metrics : callable, optional
        ``metrics(rec, config) -> dict`` (default :func:`default_metrics`).

    Returns
    -------
    dict
        Metric columns: per-unit arrays become ``name_0``, ``name_1``, ...
    """
    from .experiment import run as run_experiment

    with warnings.catch_warnings():  # config warnings are said once for the whole sweep (make_tasks), not per task
        warnings.simplefilter("ignore", ConfigWarning)
        cfg = config.with_overrides(**dict(task.params), **{"run.seed": task.seed})
        rec = run_experiment(cfg)
    values = _flatten((metrics or default_metrics)(rec, cfg))
    clash = set(values) & (_RESERVED | {k for k, _ in task.params})
    if clash:
        raise ValueError(f"metric name(s) {sorted(clash)} clash with the sweep's own columns; rename them")
    return values


_RESERVED = {"task_id", "point", "replicate", "seed", "status", "reason", "elapsed_s", "cpu_s", "worker"}


# --------------------------------------------------------------------------------------------
# journal


def _dumps(row: Mapping) -> str:
    return json.dumps(row, default=_plain, allow_nan=True, separators=(",", ":"))


def _read_journal(path: Path) -> tuple[dict[tuple[int, int], dict], int, int]:
    """``(rows by (point, replicate), bytes of complete lines, number of unreadable lines)``.

    Later lines win (a retried task); a trailing line without its newline is ignored.
    """
    if not path.exists():
        return {}, 0, 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    rows: dict[tuple[int, int], dict] = {}
    bad = 0
    for line in data[:end].split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = (int(row["point"]), int(row["replicate"]))
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        rows[key] = row
    if end < len(data):
        bad += 1
    return rows, end, bad


class _Journal:
    """Append-only JSON-lines file; each row is flushed and fsync'ed before the next task counts."""

    def __init__(self, path: Path, good_bytes: int):
        self.path = path
        if path.exists() and path.stat().st_size != good_bytes:
            with open(path, "r+b") as fh:  # drop a half-written last line
                fh.truncate(good_bytes)
        self._fh = open(path, "ab")

    def append(self, row: Mapping) -> None:
        self._fh.write((_dumps(row) + "\n").encode())
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    fh = open(out / ".lock", "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"{out}: another sweep is writing to this folder; wait for it or use another --out") from None
        yield
    finally:
        fh.close()


# --------------------------------------------------------------------------------------------
# the sweep


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` gives back.

    Attributes
    ----------
    results : DataFrame
        One row per task (``task_id``, ``point``, ``replicate``, parameters, ``seed``, ``status``,
        ``reason``, metrics, ``elapsed_s`` and ``cpu_s`` of the task, ``worker``), ordered by task.
    summary : DataFrame
        Per grid point: parameters, ``n_ok``, and ``<metric>_mean`` / ``<metric>_sem``.
    grid : dict
        Dotted key -> values.
    root_seed : int
    n_resumed : int
        Tasks found finished in the output folder (not rerun).
    n_run : int
        Tasks run by this call.
    out : Path or None
    files : list of Path
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    grid: dict
    root_seed: int
    n_resumed: int = 0
    n_run: int = 0
    out: Path | None = None
    files: list = dataclasses.field(default_factory=list)

    @property
    def n_failed(self) -> int:
        """Number of tasks whose status is not ``ok``."""
        return int((self.results["status"] != "ok").sum()) if len(self.results) else 0


def _metrics_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _row(task: SweepTask, replicates: int, outcome) -> dict[str, Any]:
    row: dict[str, Any] = {"task_id": task.point * replicates + task.replicate, "point": task.point,
                           "replicate": task.replicate}
    row.update(dict(task.params))
    row.update(seed=task.seed, status="ok" if outcome.ok else "error", reason="" if outcome.ok else outcome.error)
    if outcome.ok:
        row.update(outcome.value)
    row.update(elapsed_s=round(outcome.elapsed_s, 6), cpu_s=round(outcome.cpu_s, 6), worker=outcome.worker)
    return row


def _frame(rows: Mapping[tuple[int, int], dict], tasks: Sequence[SweepTask], replicates: int,
           keys: Sequence[str]) -> pd.DataFrame:
    records = []
    for t in tasks:
        row = rows.get(t.key)
        if row is None:
            continue
        row = dict(row)
        row["task_id"] = t.point * replicates + t.replicate
        records.append(row)
    head = ["task_id", "point", "replicate", *keys, "seed", "status", "reason"]
    if not records:
        return pd.DataFrame(columns=head)
    df = pd.DataFrame.from_records(records)
    tail = [c for c in ("elapsed_s", "cpu_s", "worker") if c in df]
    middle = [c for c in df.columns if c not in head and c not in tail]
    df = df[[c for c in head if c in df] + middle + tail]
    return df.sort_values("task_id", kind="stable").reset_index(drop=True)


def metric_columns(results: pd.DataFrame, keys: Sequence[str] = ()) -> list[str]:
    """The numeric metric columns of a results table.

    Parameters
    ----------
    results : DataFrame
        A results table (:attr:`SweepResult.results`).
    keys : sequence of str
        Grid keys (parameter columns, left out).

    Returns
    -------
    list of str
        The numeric, non-boolean columns that are not the sweep's own or grid keys.
    """
    fixed = _RESERVED | set(keys)
    return [c for c in results.columns if c not in fixed and pd.api.types.is_numeric_dtype(results[c])
            and not pd.api.types.is_bool_dtype(results[c])]


def summarize(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per grid point: parameters, ``n_ok``, and mean and standard error (``ddof=1``) of each metric.

    Parameters
    ----------
    results : DataFrame
        A results table (:attr:`SweepResult.results`); only ``status == "ok"`` rows count.
    keys : sequence of str
        Grid keys.

    Returns
    -------
    DataFrame
        One row per grid point: ``point``, the keys, ``n_ok``, ``<metric>_mean`` and ``<metric>_sem``.
    """
    cols = metric_columns(results, keys)
    ok = results[results["status"] == "ok"] if "status" in results else results
    rows = []
    for point, grp in ok.groupby("point", sort=True):
        row: dict[str, Any] = {"point": int(point)}
        first = grp.iloc[0]
        for k in keys:
            row[k] = first[k]
        row["n_ok"] = len(grp)
        for c in cols:
            v = grp[c].to_numpy(float)
            v = v[np.isfinite(v)]
            row[f"{c}_mean"] = float(v.mean()) if v.size else math.nan
            row[f"{c}_sem"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _headline(cols: Sequence[str], limit: int = 6) -> list[str]:
    preferred = ["mean_reward", "final_cost", "rdd_const_0", "od_0", "true_direct_effect_0", "w_final_0",
                 "rate_hz_0"]
    chosen = [c for c in preferred if c in cols]
    chosen += [c for c in cols if c not in chosen and not re.search(r"_[1-9]\d*$", c)]
    return chosen[:limit]


def plot_sweep(summary: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str] | None = None) -> Figure:
    """Figure of a sweep summary: one panel per metric, mean +- s.e.m. against the first grid key,
    one line per combination of the other keys.

    Parameters
    ----------
    summary : DataFrame
        From :func:`summarize`.
    keys : sequence of str
        Grid keys; the first is the x axis.
    metrics : sequence of str, optional
        Metrics to plot (names without ``_mean``; default up to six headline metrics).

    Returns
    -------
    matplotlib Figure
        The figure.
    """
    plt = pyplot()

    cols = [c[:-5] for c in summary.columns if c.endswith("_mean")]
    metrics = list(metrics) if metrics else _headline(cols)
    n = max(1, len(metrics))
    ncol = min(3, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    keys = list(keys)
    xkey = keys[0] if keys else None
    others = keys[1:]
    if xkey is not None:
        xs = summary[xkey].tolist()
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
        labels = sorted({json.dumps(v) for v in xs}) if not numeric else None
    groups = summary.groupby([summary[k].map(json.dumps) for k in others], sort=True) if others else [(None, summary)]
    for ax, m in zip(axes.flat, metrics):
        for label, grp in groups:
            if xkey is None:
                x = np.arange(len(grp))
            elif numeric:
                x = grp[xkey].to_numpy(float)
            else:
                x = np.array([labels.index(json.dumps(v)) for v in grp[xkey]])
            order = np.argsort(x, kind="stable")
            name = None
            if others:
                parts = label if isinstance(label, tuple) else (label,)
                name = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, parts))
            line = ax.errorbar(x[order], grp[f"{m}_mean"].to_numpy(float)[order],
                               yerr=grp[f"{m}_sem"].to_numpy(float)[order], marker="o", ms=3, capsize=2, label=name)
            truth = re.sub(r"^(rdd_const|od)_(\d+)$", r"true_direct_effect_\2", m)
            if truth != m and f"{truth}_mean" in grp:  # the estimand, dashed in the same colour
                ax.plot(x[order], grp[f"{truth}_mean"].to_numpy(float)[order], ls="--", lw=1,
                        color=line.lines[0].get_color())
        ax.set_title(m, fontsize=10)
        ax.set_xlabel(xkey or "grid point")
        if xkey is not None and not numeric:
            ax.set_xticks(range(len(labels)), labels)
        if others and len(groups) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("sweep: mean ± s.e.m. over replicates (dashed: true direct effect)", fontsize=11)
    fig.tight_layout()
    return fig


def load_results(out: str | os.PathLike) -> pd.DataFrame:
    """The results table of a sweep folder, read from its journal (complete even after a crash).

    Parameters
    ----------
    out : str or path
        The sweep's output folder.

    Returns
    -------
    DataFrame
        One row per task, as :attr:`SweepResult.results`.
    """
    out = Path(out)
    spec_path = out / SPEC
    if not spec_path.is_file():
        raise FileNotFoundError(f"{out}: not a sweep folder (no {SPEC})")
    spec = json.loads(spec_path.read_text())
    rows, _, _ = _read_journal(out / JOURNAL)
    cfg = SimulationConfig.from_dict(spec["config"])
    tasks = make_tasks(cfg, spec["grid"], spec["replicates"], spec["root_seed"], validate=False)
    return _frame(rows, tasks, spec["replicates"], list(spec["grid"]))


def _spec(cfg: SimulationConfig, grid: dict, replicates: int, root: int, metrics_fn: Callable) -> dict:
    spec = {"format": _SPEC_FORMAT, "config": _plain_tree(cfg.to_dict()), "grid": grid, "replicates": int(replicates),
            "root_seed": int(root), "metrics": _metrics_name(metrics_fn)}
    if "learning.rule" in grid:  # each switched-in rule starts from its own defaults (SimulationConfig.with_overrides)
        spec["rule_switch"] = "own defaults"
    return spec


def _plain_tree(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_plain))


def _check_same(old: dict, new: dict, out: Path) -> None:
    if old.get("rule_switch") != new.get("rule_switch"):
        raise ValueError(
            f"{out} holds a sweep over learning.rule made before a switched-in rule started from its own defaults "
            "(its finished tasks kept the base rule's settings), so new tasks would not be comparable; use another "
            "--out, or --overwrite to run it again")
    diff = [k for k in ("format", "config", "grid", "root_seed", "metrics") if _plain_tree(old.get(k)) != _plain_tree(new[k])]
    if diff:
        raise ValueError(
            f"{out} holds a different sweep (it differs in: {', '.join(diff)}); use another --out, or --overwrite to "
            "discard it"
        )


def run_sweep(config: SimulationConfig | str | os.PathLike, grid: Mapping[str, Sequence] | Iterable, *,
              replicates: int = 1, out: str | os.PathLike | None = None, seed: int | None = None,
              metrics: Callable | None = None, n_jobs: int | None = None, scheduler: Any = None,
              progress: bool = False, overwrite: bool = False, figure: bool = True,
              threads_per_worker: int | None = None, flush_every_s: float = 5.0,
              argv: Sequence[str] | None = None) -> SweepResult:
    """Run every grid point x replicate as one task and collect one row of metrics per task.

    Parameters
    ----------
    config : SimulationConfig, preset name or TOML path
        The base configuration.
    grid : mapping or iterable
        ``{"c": [0, 0.5], "model.sigma": [5, 10]}``, or ``["c=0,0.5", "sigma=5,10"]`` (see
        :func:`parse_grid_item`, :func:`resolve_key`).
    replicates : int
        Runs per grid point, each with its own seed.
    out : path, optional
        Output folder (journal, results.csv, summary.csv, sweep.png, run.json). Without it
        nothing is written. An existing sweep in ``out`` is resumed: finished tasks are not rerun.
    seed : int, optional
        Root seed (default ``config.run.seed``; fresh entropy, recorded, when both are None).
    metrics : callable, optional
        ``metrics(rec, config) -> dict`` (default :func:`default_metrics`); must be importable by
        the workers (a module-level function).
    n_jobs, scheduler, threads_per_worker
        See :mod:`bci_credit.parallel`.
    progress : bool
        Show a progress bar.
    overwrite : bool
        Discard a different (or the same) sweep already in ``out``.
    figure : bool
        Write ``sweep.png``.
    flush_every_s : float
        How often ``results.csv`` is rewritten while the sweep runs (the journal is written per task).
    argv : sequence of str, optional
        Command line recorded in ``run.json`` (provenance).

    Returns
    -------
    SweepResult
    """
    from .outputs import write_csv, write_run_json

    cfg = _as_config(config)
    grid = normalize_grid(cfg, grid)
    metrics_fn = metrics or default_metrics
    replicates = _replicates(replicates)
    _check_size(grid, replicates)
    scheduler = resolve_scheduler(scheduler)  # a malformed address fails here, before any file is written
    keys = list(grid)
    root = seed if seed is not None else cfg.run.seed
    if root is not None and (isinstance(root, bool) or not isinstance(root, (int, np.integer)) or root < 0):
        raise ValueError(f"seed must be a non-negative integer, got {root!r}")

    if out is None:
        root = int(root) if root is not None else int(np.random.SeedSequence().entropy)
        tasks = make_tasks(cfg, grid, replicates, root)
        rows: dict[tuple[int, int], dict] = {}
        with progress_bar(len(tasks), enabled=progress, desc="sweep") as bar:
            for outcome in imap_unordered(run_task, tasks, n_jobs=n_jobs, scheduler=scheduler,
                                          kwargs={"config": cfg, "metrics": metrics},
                                          threads_per_worker=threads_per_worker):
                task = tasks[outcome.index]
                rows[task.key] = json.loads(_dumps(_row(task, replicates, outcome)))
                bar.update(1)
        results = _frame(rows, tasks, replicates, keys)
        return SweepResult(results, summarize(results, keys), grid, root, 0, len(tasks))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        spec_path, journal_path = out / SPEC, out / JOURNAL
        if overwrite:
            for name in (SPEC, JOURNAL, RESULTS, SUMMARY, FIGURE):
                (out / name).unlink(missing_ok=True)
        old = json.loads(spec_path.read_text()) if spec_path.is_file() else None
        if old is not None and root is None:
            root = old.get("root_seed")
        root = int(root) if root is not None else int(np.random.SeedSequence().entropy)
        if old is not None and isinstance(old.get("grid"), dict) and list(old["grid"]) != list(grid) \
                and set(old["grid"]) == set(grid):
            # the tasks are numbered over the keys in order: the same grid given in another order resumes in the
            # stored order (else one point's runs would be filed under another's number)
            grid = {k: grid[k] for k in old["grid"]}
        spec = _spec(cfg, grid, replicates, root, metrics_fn)
        if old is not None:
            _check_same(old, spec, out)
        elif journal_path.exists():
            raise ValueError(f"{out} has a {JOURNAL} but no {SPEC}; use another --out, or --overwrite")
        tasks = make_tasks(cfg, grid, replicates, root)
        from .outputs import write_json

        write_json(spec, spec_path)
        rows, good, bad = _read_journal(journal_path)
        if bad:
            log.warning("%s: ignored %d unreadable line(s) (an interrupted write); those tasks run again", journal_path, bad)
        done = {t.key for t in tasks if rows.get(t.key, {}).get("status") == "ok"}
        todo = [t for t in tasks if t.key not in done]
        if done:
            log.info("resuming %s: %d of %d tasks already done", out, len(done), len(tasks))
        run_info = {"n_tasks": len(tasks), "grid": grid, "replicates": replicates, "root_seed": root,
                    "metrics": spec["metrics"]}
        write_run_json(out, command="sweep", config=spec["config"], seed=root, argv=argv,
                       extra={**run_info, "state": "running"})
        journal = _Journal(journal_path, good)
        last_flush = time.monotonic()
        n_run = 0
        state = "interrupted"
        try:
            with progress_bar(len(tasks), enabled=progress, desc="sweep", initial=len(done)) as bar:
                for outcome in imap_unordered(run_task, todo, n_jobs=n_jobs, scheduler=scheduler,
                                              kwargs={"config": cfg, "metrics": metrics},
                                              threads_per_worker=threads_per_worker):
                    task = todo[outcome.index]
                    row = _row(task, replicates, outcome)
                    journal.append(row)
                    rows[task.key] = json.loads(_dumps(row))
                    n_run += 1
                    bar.update(1)
                    if not outcome.ok:
                        log.warning("task %s failed: %s", task.key, outcome.error)
                    if time.monotonic() - last_flush > flush_every_s:
                        write_csv(_frame(rows, tasks, replicates, keys), out / RESULTS, index=False)
                        last_flush = time.monotonic()
            state = "complete"
        finally:
            journal.close()
            if state != "complete":  # the journal is the record (a Ctrl-C may fall between write and bookkeeping)
                rows, _, _ = _read_journal(journal_path)
            results = _frame(rows, tasks, replicates, keys)
            write_csv(results, out / RESULTS, index=False)
            if state != "complete":
                write_run_json(out, command="sweep", config=spec["config"], seed=root, argv=argv,
                               extra={**run_info, "state": state, "n_done": int((results["status"] == "ok").sum())})
        summary = summarize(results, keys)
        files = [out / SPEC, out / JOURNAL, out / RESULTS, out / SUMMARY]
        write_csv(summary, out / SUMMARY, index=False)
        if figure and len(summary):
            from .outputs import save_figure

            save_figure(plot_sweep(summary, keys), out / FIGURE)
            files.append(out / FIGURE)
        n_failed = int((results["status"] != "ok").sum())
        write_run_json(out, command="sweep", config=spec["config"], seed=root, argv=argv,
                       extra={**run_info, "state": "complete" if not n_failed else "complete with failures",
                              "n_ok": len(results) - n_failed, "n_failed": n_failed, "n_resumed": len(done),
                              "n_run": n_run, "files": [f.name for f in files]})
        files.append(out / "run.json")
    return SweepResult(results, summary, grid, root, len(done), n_run, out, files)
