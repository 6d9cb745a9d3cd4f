"""The learning-rule contract (scikit-learn style) and its conformance check.

A rule is an object whose ``__init__`` only stores its hyper-parameters, unchanged, under the
same names. Learned state ends in ``_``: ``weights_`` (replicates, neurons), ``beta_`` (the
rule's current causal-effect estimate), ``history_`` (a dict of lists recorded per window).

The online loop (:func:`bci_credit.learning.loop.run_online`) drives a rule window by window::

    rule.initialize(w0, context)          # w0: (replicates, neurons); context: WindowContext
    for each window:
        w = rule.update(window)           # window: WindowData; returns the new weights

``fit`` runs that loop on a configured simulation and returns ``self``.
"""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..config import SimulationConfig

__all__ = ["LearningRule", "WindowData", "WindowContext", "check_learning_rule", "clip_weights"]


@dataclass
class WindowContext:
    """What a rule may know about the simulation it is attached to (set once)."""

    threshold: float
    window_steps: int
    dt_s: float
    decay: float
    k0: float
    sigma: np.ndarray  # (replicates,)
    seed: Any = None


@dataclass
class WindowData:
    """One window of every replicate: the local signals a rule may use.

    ``drive`` Z, ``spiked`` H and ``counts`` are (replicates, neurons); ``reward`` R is
    (replicates,); ``eligibility`` is the node-perturbation eligibility (or None); ``s_end`` the
    filtered outputs at the window end; ``index`` the window number.
    """

    drive: np.ndarray
    spiked: np.ndarray
    counts: np.ndarray
    reward: np.ndarray
    s_end: np.ndarray
    index: int
    eligibility: np.ndarray | None = None
    reward_unperturbed: np.ndarray | None = None

    def __post_init__(self):
        """Check the shapes (not the values): a wrong shape would otherwise fail deep inside a rule."""
        drive = self.drive = _array(self.drive)
        if drive.ndim != 2:
            raise ValueError(f"WindowData: drive must be shaped (replicates, neurons), got shape {drive.shape}; "
                             f"for one replicate pass drive[None]")
        self.reward = _array(self.reward, float)
        for name, want in (("spiked", drive.shape), ("counts", drive.shape), ("eligibility", drive.shape),
                           ("reward", drive.shape[:1]), ("reward_unperturbed", drive.shape[:1])):
            value = getattr(self, name)
            if value is not None and _array(value).shape != want:
                what = "hold one number per replicate, shape" if len(want) == 1 else "have the shape of drive"
                raise ValueError(f"WindowData: {name} must {what} {want}, got shape {_array(value).shape}")
        if _array(self.s_end).shape[:1] != drive.shape[:1]:
            raise ValueError(f"WindowData: s_end must have one row per replicate ({drive.shape[0]}), "
                             f"got shape {np.shape(self.s_end)}")


def _array(value, dtype=None) -> np.ndarray:
    """``value`` as an array (itself when it already is one, of ``dtype`` when given)."""
    if type(value) is np.ndarray and (dtype is None or value.dtype == dtype):
        return value
    return np.asarray(value, dtype=dtype)


def as_floats(value) -> np.ndarray | None:
    """``value`` (a number or numbers) as a float array, or None when it is not numbers (text included)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return None


def finite_window(window: "WindowData", threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reward (replicates, 1), the drive's distance to threshold and a mask of the usable entries.

    A window whose reward is not finite is usable for no neuron, one whose drive is not finite not
    for that neuron; unusable entries are 0 in the reward and distance, so that masked products stay
    finite (0 * NaN is NaN).
    """
    reward = window.reward[:, None]
    d = window.drive - threshold
    ok = np.isfinite(reward) & np.isfinite(d)
    if ok.all():  # the usual case: nothing to blank
        return reward, d, ok
    return np.where(np.isfinite(reward), reward, 0.0), np.where(ok, d, 0.0), ok


def clip_weights(w: np.ndarray, w_min: float | None, w_max: float | None) -> np.ndarray:
    """Clip weights to ``[w_min, w_max]`` (``None`` = no bound)."""
    lo = -np.inf if w_min is None else w_min
    hi = np.inf if w_max is None else w_max
    return np.clip(w, lo, hi)


class LearningRule:
    """Base class: parameter handling (``get_params``/``set_params``/``clone``) and history."""

    #: Standard deviation scale of the perturbation current the rule needs (0: none).
    sigma_pert: float = 0.0
    #: Whether the rule needs an unperturbed re-run of every window (paired baseline).
    needs_unperturbed: bool = False
    #: Hyper-parameters checked by :meth:`initialize` (step sizes, rates, time constants):
    #: name -> smallest allowed value and whether it is itself allowed, e.g. ``{"epsilon": (0.0, True)}``
    #: means "a finite number >= 0", ``{"eta": (0.0, False)}`` "a finite number > 0"; a smallest value
    #: of None means "a finite number" (one, or one per neuron).
    _checked_params: dict = {}
    #: Whole-number hyper-parameters: name -> smallest allowed value (``record_every``, where the
    #: rule has it, is always checked: a whole number >= 1).
    _int_params: dict = {}
    #: Hyper-parameters with a fixed set of values: name -> the allowed values.
    _choice_params: dict = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """Hyper-parameters as given to ``__init__``.

        Parameters
        ----------
        deep : bool
            As in scikit-learn; ignored (no rule nests another).

        Returns
        -------
        dict
            Parameter name -> value.
        """
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> "LearningRule":
        """Set hyper-parameters; unknown names and values the rule's check refuses are an error (and
        leave the rule unchanged). A learning rule reads most of them at each update; ``gain`` and the
        start values (e.g. ``beta0``) take effect at the next :meth:`initialize`.

        Parameters
        ----------
        **params
            Hyper-parameter name -> new value.

        Returns
        -------
        LearningRule
            ``self``.
        """
        valid = set(self._param_names())
        for k in params:
            if k not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r}; valid: {sorted(valid)}")
        before = {k: getattr(self, k) for k in params}
        for k, v in params.items():
            setattr(self, k, v)
        try:
            self._check_params()
        except ValueError:
            for k, v in before.items():
                setattr(self, k, v)
            raise
        return self

    def clone(self) -> "LearningRule":
        """An unfitted copy with the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the online interface ------------------------------------------------------------
    def _check_params(self) -> None:
        """Raise a ValueError naming the first hyper-parameter that is out of range or not a valid choice.

        Checks ``_checked_params``, ``_int_params`` and ``_choice_params`` and, where the rule has
        them, ``record_every`` (>= 1), ``gain`` (see :func:`~bci_credit.learning.gain.make_gain`) and
        the weight bounds (``w_min < w_max``; None = no bound).
        """
        from ..checks import check_number
        from .gain import make_gain

        cls = type(self).__name__
        defaults = inspect.signature(type(self).__init__).parameters
        for name, param in defaults.items():  # a flag is True or False ("no" would count as true)
            if isinstance(param.default, bool) and not isinstance(getattr(self, name, False), (bool, np.bool_)):
                raise ValueError(f"{cls}: {name} must be True or False, got {getattr(self, name)!r}")
        for name, (low, inclusive) in self._checked_params.items():
            value = getattr(self, name)
            a = as_floats(value)
            ok = a is not None and bool(np.isfinite(a).all()) and (
                low is None or bool((a >= low if inclusive else a > low).all()))
            if not ok:
                bound = "" if low is None else f" >= {low:g}" if inclusive else f" > {low:g}"
                raise ValueError(f"{cls}: {name} must be a finite number{bound}, got {value!r}")
        ints = {"record_every": 1, **self._int_params} if hasattr(self, "record_every") else self._int_params
        for name, low in ints.items():
            value = check_number(getattr(self, name), f"{cls}: {name}", integer=True)
            if value < low:
                raise ValueError(f"{cls}: {name} must be a whole number >= {low}, got {value!r}")
        for name, choices in self._choice_params.items():
            value = getattr(self, name)
            if not isinstance(value, str) or value not in choices:
                raise ValueError(f"{cls}: {name} {value!r} is not a valid {name}; choose one of {list(choices)}")
        if hasattr(self, "gain"):
            try:
                make_gain(self.gain)
            except ValueError as err:
                raise ValueError(f"{cls}: {err}") from None
        if hasattr(self, "w_min") and hasattr(self, "w_max"):
            bounds = {}
            for name, side, limit, beyond in (("w_min", "lower", "below +inf", np.inf),
                                              ("w_max", "upper", "above -inf", -np.inf)):
                value = getattr(self, name)
                a = as_floats(-beyond if value is None else value)  # None: no bound
                if a is None or np.isnan(a).any() or (a == beyond).any():
                    raise ValueError(f"{cls}: {name} must be a number {limit} (or None: no {side} bound), "
                                     f"got {value!r}")
                bounds[name] = a
            try:
                ok = bool((bounds["w_min"] < bounds["w_max"]).all())
            except ValueError:  # one bound per neuron, but not as many lower as upper bounds
                raise ValueError(f"{cls}: w_min has {bounds['w_min'].size} values and w_max {bounds['w_max'].size}; "
                                 f"give one number or one per neuron for each") from None
            if not ok:
                raise ValueError(f"{cls}: w_min={self.w_min!r} must be below w_max={self.w_max!r}")

    def initialize(self, w0: np.ndarray, context: WindowContext) -> None:
        """Start learning from weights ``w0``; checks the hyper-parameters first.

        Parameters
        ----------
        w0 : ndarray, shape (replicates, neurons)
            Initial weights (copied).
        context : WindowContext
            The simulation the rule is attached to.
        """
        self._check_params()
        self.weights_ = np.array(w0, dtype=float, copy=True)
        self.context_ = context
        self.n_windows_ = 0
        self.history_ = {"weights": [], "beta": [], "n_updates": []}

    def update(self, window: WindowData) -> np.ndarray:  # pragma: no cover - abstract
        """Learn from one window.

        Parameters
        ----------
        window : WindowData
            The window's local signals.

        Returns
        -------
        ndarray, shape (replicates, neurons)
            The new weights (``weights_``).
        """
        raise NotImplementedError

    def _check_window(self, window: WindowData) -> None:
        """Refuse a window before :meth:`initialize`, or one whose (replicates, neurons) differ from the weights'."""
        if not hasattr(self, "weights_"):
            raise RuntimeError(f"{type(self).__name__}.update() needs initialize(w0, context) first")
        if window.drive.shape != self.weights_.shape:
            raise ValueError(f"{type(self).__name__}: the window has shape {window.drive.shape} (replicates, neurons) "
                             f"but the weights {self.weights_.shape}")

    def _start_gain(self, context: WindowContext) -> None:
        """Build the rule's own gain estimator ``gain_`` from its ``gain`` setting and start it."""
        from .gain import make_gain

        self.gain_ = make_gain(self.gain)
        self.gain_.reset(self.weights_, context)

    def _descend(self, window: WindowData, effect: np.ndarray, ready=True) -> np.ndarray:
        """Show the window to the gain, step the weights down ``epsilon * effect * dmu/dw`` (where
        ``ready``), clip them, record the history; return the weights. The update every rule that
        learns through an estimated causal effect (or gradient) ends with."""
        self.gain_.observe(window)
        if self.epsilon:
            w = self.weights_ - self.epsilon * ready * effect * self.gain_(self.weights_)
            self.weights_ = clip_weights(w, self.w_min, self.w_max)
        self._record(self.record_every)
        return self.weights_

    def _record(self, every: int = 1) -> None:
        self.n_windows_ += 1
        if self.n_windows_ % every == 0:
            self.history_["weights"].append(self.weights_.copy())
            self.history_["beta"].append(np.array(self.beta_, copy=True))
            self.history_["n_updates"].append(np.array(getattr(self, "n_updates_", 0), copy=True))

    def fit(self, config: SimulationConfig | str | os.PathLike, *, progress: bool = False) -> LearningRule:
        """Run the configured simulation with this rule (see :func:`bci_credit.experiment.run`).

        Parameters
        ----------
        config : SimulationConfig or str or path
            The simulation, or a preset name / TOML path (loaded with
            :func:`~bci_credit.config.load_preset`).
        progress : bool
            Show a progress bar.

        Returns
        -------
        LearningRule
            ``self``, with the resulting Recording as ``recording_``.
        """
        from ..experiment import run

        self.recording_ = run(config, rule=self, progress=progress)
        return self


def check_learning_rule(rule: LearningRule, *, n_windows: int = 400, seed: int = 0) -> None:
    """Conformance check run over every rule (raises AssertionError on a violation).

    Parameters
    ----------
    rule : LearningRule
        The rule to check (left unchanged; clones are run).
    n_windows : int
        Windows of the short online runs.
    seed : int
        Seed of the test population.

    Notes
    -----
    * ``__init__`` stores its parameters unchanged (``get_params`` round-trips, ``clone`` works);
    * a short online run on a 2-neuron population updates ``weights_``/``beta_``/``history_``;
    * two runs with the same seed give identical weights; inputs are left unchanged.
    """
    from ..sim import LIFParams, LIFPopulation
    from ..tasks.costs import BananaCost
    from .loop import run_online

    params = rule.get_params()
    clone = rule.clone()
    assert clone.get_params().keys() == params.keys(), "clone() changed the parameter names"
    for k, v in params.items():
        assert getattr(rule, k) is v or np.array_equal(getattr(rule, k), v), f"__init__ modified parameter {k}"

    def one_run():
        r = rule.clone()
        w0 = np.array([[14.0, 7.0], [8.0, 12.0]])
        w0_copy = w0.copy()
        pop = LIFPopulation(w0, c=0.5, params=LIFParams(window_s=0.05, tau_s=0.2), seed=seed,
                            sigma_pert=getattr(r, "sigma_pert", 0.0))
        run_online(pop, r, BananaCost(), n_windows)
        assert np.array_equal(w0, w0_copy), "the rule modified its input weights"
        return r

    a, b = one_run(), one_run()
    for attr in ("weights_", "beta_", "history_"):
        assert hasattr(a, attr), f"{type(rule).__name__} does not set {attr} after fitting"
    assert a.weights_.shape == (2, 2)
    assert np.array_equal(a.weights_, b.weights_), "same seed gave different weights"
    assert len(a.history_["weights"]) > 0
