"""Turn an ordinary ``torch.nn`` MLP/CNN into one trained without weight transport.

:func:`convert` replaces every ``nn.Linear``/``nn.Conv2d`` of a model by a
:class:`~bci_credit.deep.feedback.FeedbackLinear`/``FeedbackConv2d`` (same parameters, same
forward pass) and every torch dropout layer (``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
``FeatureAlphaDropout``) by a seeded, replayable one, and returns a
:class:`CreditModel`. For ``bp``, ``fa``, ``dfa`` and the sign-symmetry family the converted model is
a drop-in: an ordinary ``loss.backward(); optimizer.step()`` loop trains it by that method. Methods
that also learn their feedback (``wm``, ``kp``, ``np``, ``np-direct``) need their extra work done
each step, which :meth:`CreditModel.step` does (and which an ordinary loop may call as
:meth:`CreditModel.update_feedback` and friends).

The network must be a feed-forward chain in which the converted layers run once each; their order
in the forward pass (found by one dummy forward) decides which layer is the output (its error
``E`` drives the direct methods) and which is first (its input is data: no feedback, no noise).
"""

from __future__ import annotations

import copy as _copy
import logging
import math
import warnings
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_flag, check_number
from ..random import SeedLike, seed_sequence
from . import metrics as _m
from .feedback import (DIRECT_METHODS, METHODS, NP_METHODS, STORED_FEEDBACK, FeedbackConv2d, FeedbackLayer,
                       FeedbackLinear, FeedbackState, SharedDropout, dropout_kind)
from .losses import accuracy, cross_entropy, get_loss, reduce_loss, squared_error
from .node_perturbation import (conv_sgd_feedback_step_, lambda_hat, ridge_accumulate_, ridge_solve,
                                sgd_feedback_step_)

__all__ = ["FeedbackConfig", "convert", "CreditModel", "StepOutput", "METHODS"]

logger = logging.getLogger("bci_credit")

B_SOLVERS = ("ls", "sgd")
PERTURB = ("all", "cycle")


@dataclass(frozen=True)
class FeedbackConfig:
    """Hyper-parameters of the feedback methods (each used only by the methods named).

    Parameters
    ----------
    noise_std : float
        NP: ``c_h``, the standard deviation of the activity perturbation (the official code's
        ``var_xi``, which is a standard deviation despite its name).
    b_solver : {'ls', 'sgd'}
        NP: learn ``B`` by exact ridge least squares over all samples seen, or by SGD.
    b_lr : float
        NP with ``b_solver='sgd'``: the feedback learning rate ``η_B``.
    gamma : float
        NP with ``b_solver='ls'``: the ridge penalty ``γ`` (``V`` starts at ``γI``).
    forget : float
        NP with ``b_solver='ls'``: forgetting factor per step (1 = unbounded memory, the paper's).
    perturb : {'all', 'cycle'}
        NP: perturb every site in each noisy pass (the paper) or one site per step in turn
        (lower variance, deep_np.md §3 (c)).
    use_learned_feedback : bool
        NP: when false the backward pass uses ``W`` and ``B`` is only learned alongside
        (the "true error" regressions of the theory checks).
    mirror_rate, mirror_noise_std, mirror_batch : float, float, int
        WM: ``B ← (1 − ρ) B + ρ · yxᵀ/(n σ²)`` with ``x ~ N(0, σ²)`` fed through the layer,
        ``n = mirror_batch`` samples, once per training step.
    kp_decay : float
        KP: both ``W`` and ``B`` shrink by this fraction per step (makes ``B − W → 0``); in [0, 1).
    sites : tuple of int or None
        NP: indices (forward order) of the layers whose input is perturbed; ``None``: every
        site (each layer but the first). The NP methods need at least one (``()`` is an error).
    init_scale : float or None
        Standard deviation of random feedback. ``None``: the RMS of the layer's ``W`` for layered
        methods (the paper initialises ``B`` like ``W``), ``sqrt(2 / n_in)`` for direct ones.
    """

    noise_std: float = 1e-2
    b_solver: str = "ls"
    b_lr: float = 5e-4
    gamma: float = 0.1
    forget: float = 1.0
    perturb: str = "all"
    use_learned_feedback: bool = True
    mirror_rate: float = 0.01
    mirror_noise_std: float = 1.0
    mirror_batch: int = 32
    kp_decay: float = 1e-4
    init_scale: Optional[float] = None
    sites: Optional[tuple] = None

    def __post_init__(self):
        def num(name, *, integer=False):
            value = check_number(getattr(self, name), f"FeedbackConfig.{name}", integer=integer)
            if integer:
                object.__setattr__(self, name, value)
            return value

        def fail(name, what):
            raise ValueError(f"FeedbackConfig.{name} must be {what}, got {getattr(self, name)!r}")

        if not num("noise_std") > 0:
            fail("noise_std", "a positive number (the NP perturbation's standard deviation)")
        if not isinstance(self.b_solver, str) or self.b_solver not in B_SOLVERS:
            fail("b_solver", f"one of {B_SOLVERS}")
        for name in ("b_lr", "gamma"):
            if num(name) < 0:
                fail(name, "a non-negative number")
        if not 0 < num("forget") <= 1:
            fail("forget", "in (0, 1] (1 = unbounded memory)")
        if not isinstance(self.perturb, str) or self.perturb not in PERTURB:
            fail("perturb", f"one of {PERTURB}")
        object.__setattr__(self, "use_learned_feedback",
                           check_flag(self.use_learned_feedback, "FeedbackConfig.use_learned_feedback"))
        if not 0 <= num("mirror_rate") <= 1:
            fail("mirror_rate", "in [0, 1]")
        if not num("mirror_noise_std") > 0:
            fail("mirror_noise_std", "a positive number")
        if num("mirror_batch", integer=True) < 1:
            fail("mirror_batch", "a positive whole number (samples per weight-mirror step)")
        if not 0 <= num("kp_decay") < 1:
            fail("kp_decay", "in [0, 1) (the fraction W and B shrink by per step)")
        if self.init_scale is not None and not num("init_scale") > 0:
            fail("init_scale", "a positive finite number or None")
        if self.sites is not None:
            sites = self.sites
            if isinstance(sites, (str, bytes)) or not hasattr(sites, "__iter__"):
                hint = f" (for one site write sites=({sites},))" if isinstance(sites, int) else ""
                raise ValueError("FeedbackConfig.sites must be None or a sequence of layer indices, e.g. (1, 2); "
                                 f"got {sites!r}{hint}")
            object.__setattr__(self, "sites", tuple(
                check_number(i, "FeedbackConfig.sites entry", integer=True) for i in sites))


@dataclass
class StepOutput:
    """What one training step returns (tensors are detached)."""

    loss: torch.Tensor
    output: torch.Tensor
    per_sample: torch.Tensor
    delta_loss: Optional[torch.Tensor] = None


def _replace_layers(module: nn.Module, opaque: Optional[list] = None, prefix: str = "") -> int:
    """Swap Linear/Conv2d for feedback layers and torch dropout for replayable dropout, in place.

    Returns the number of feedback layers; dropout modules whose masks cannot be replayed (a
    subclass with its own ``forward``) are appended to ``opaque`` as ``(name, module)``.
    """
    n = 0
    for name, child in list(module.named_children()):
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, FeedbackLayer):
            raise ValueError("the model is already converted; convert the original torch model")
        if isinstance(child, nn.Linear):
            setattr(module, name, FeedbackLinear.from_module(child))
            n += 1
        elif isinstance(child, nn.Conv2d):
            setattr(module, name, FeedbackConv2d.from_module(child))
            n += 1
        elif isinstance(child, nn.modules.dropout._DropoutNd) and not isinstance(child, SharedDropout):
            if dropout_kind(child) is None:
                if opaque is not None:
                    opaque.append((full, child))
            else:
                setattr(module, name, SharedDropout.from_module(child))
        else:
            n += _replace_layers(child, opaque, full)
    return n


def _check_opaque_dropout(opaque: list, method: str) -> None:
    """NP methods refuse dropout they cannot replay; the others warn that alignment() is affected."""
    if not opaque:
        return
    names = ", ".join(f"{n!r} ({type(m).__name__})" for n, m in opaque)
    if method in NP_METHODS:
        raise ValueError(f"the dropout module(s) {names} define their own forward, so their masks cannot be replayed "
                         f"in node perturbation's noisy pass and {method!r} would regress on dropout noise; use a "
                         "torch dropout class (nn.Dropout, nn.Dropout1d/2d/3d, nn.AlphaDropout, "
                         "nn.FeatureAlphaDropout) or drop the custom forward")
    warnings.warn(f"convert: the dropout module(s) {names} define their own forward, so their masks cannot be "
                  "replayed: alignment() will compare this method's pass with a BP pass under different masks "
                  "(use a torch dropout class for comparable angles)", UserWarning, stacklevel=3)


def _validate_method(method: str) -> str:
    m = str(method).lower().replace("_", "-")
    if m not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return m


def convert(model: nn.Module, method: str, *, input_shape: Optional[Sequence[int]] = None,
            seed: SeedLike = None, config: Optional[FeedbackConfig] = None, copy: bool = True,
            **options: Any) -> "CreditModel":
    """Make ``model`` trainable by a credit-assignment ``method``.

    Parameters
    ----------
    model : nn.Module
        A feed-forward network built from ``nn.Linear``/``nn.Conv2d`` layers (plus activations,
        pooling, flattening, dropout...). Other parametrised modules keep exact gradients; for
        methods other than ``bp`` none may run before the first ``Linear``/``Conv2d`` (its input is
        data, which gets no error signal), else a ValueError. Dropout must be a torch dropout
        module to be replayed across NP's two passes and alignment()'s; dropout applied as a
        function (``F.dropout`` in a custom ``forward``) cannot be seen, so its masks differ
        between the passes: avoid it with the NP methods.
    method : str
        One of ``bp, fa, dfa, usf, brsf, frsf, wm, kp, np, np-direct``.
    input_shape : sequence of int, optional
        Shape of one input sample, e.g. ``(3, 32, 32)``; needed when the first layer is a
        convolution (``(in_features,)`` is assumed for a first ``Linear``).
    seed : int, optional
        Seeds the random feedback matrices, the NP noise and the dropout masks.
    config : FeedbackConfig, optional
        Method hyper-parameters.
    copy : bool
        Convert a deep copy (default) or ``model`` itself.
    **options
        :class:`FeedbackConfig` fields overriding those of ``config`` (e.g. ``noise_std``).

    Returns
    -------
    CreditModel
        The converted network.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(784, 50), nn.Sigmoid(), nn.Linear(50, 10))
    >>> fa = convert(net, "fa", seed=0)            # train with any ordinary loop
    >>> np_net = convert(net, "np", seed=0, noise_std=1e-2)
    >>> out = np_net.step(x, y, "mse", optimizer)  # doctest: +SKIP
    """
    method = _validate_method(method)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if config is not None and not isinstance(config, FeedbackConfig):
        raise TypeError(f"config must be a FeedbackConfig, got {type(config).__name__}; "
                        "build one with FeedbackConfig(...) or pass the options as keywords")
    if options:
        valid = [f.name for f in fields(FeedbackConfig)]
        unknown = sorted(k for k in options if k not in valid)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for convert; "
                             f"valid FeedbackConfig options are: {', '.join(valid)}")
    config = replace(config or FeedbackConfig(), **options) if options else (config or FeedbackConfig())
    copy = check_flag(copy, "copy")
    if method in NP_METHODS and config.sites is not None and len(config.sites) == 0:
        raise ValueError(f"sites=() leaves {method!r} nothing to perturb, so it would learn no feedback; "
                         "give at least one site index (e.g. sites=(1,)) or sites=None for every site")
    ss = seed_sequence(seed)
    init_seed, run_seed = (int(s.generate_state(1, dtype="uint64")[0] % (2**63)) for s in ss.spawn(2))

    module = _copy.deepcopy(model) if copy else model
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        module = nn.Sequential(module)
    _check_no_shared_modules(module)
    opaque: list = []
    n_layers = _replace_layers(module, opaque)
    _check_opaque_dropout(opaque, method)
    if n_layers == 0:
        raise ValueError("the model has no nn.Linear or nn.Conv2d layer to convert")
    other = [type(m).__name__ for m in module.modules()
             if not isinstance(m, FeedbackLayer) and any(True for _ in m.parameters(recurse=False))]
    if other:
        logger.warning("convert: modules %s keep exact (backprop) gradients", sorted(set(other)))

    state = FeedbackState(method, run_seed)
    fb_layers = [m for m in module.modules() if isinstance(m, FeedbackLayer)]
    for layer in fb_layers:
        layer._fb_state = state
        layer.fb_method = method
        layer._fb_custom = method != "bp"
    for m in module.modules():
        if isinstance(m, SharedDropout):
            m._fb_state = state

    # one dummy forward finds the execution order, the per-sample input shapes and the output size
    first = fb_layers[0]
    if input_shape is None:
        if isinstance(first, FeedbackLinear):
            input_shape = (first.in_features,)
        else:
            raise ValueError("the model starts with a convolution: pass input_shape=(channels, height, width)")
    calls: list = []
    out_shapes: dict = {}
    def _record(mod, inp, out):
        calls.append((mod, tuple(inp[0].shape[1:])))
        out_shapes[id(mod)] = tuple(out.shape[1:])

    trainable = [(name, m) for name, m in module.named_modules()
                 if not isinstance(m, FeedbackLayer) and any(p.requires_grad for p in m.parameters(recurse=False))]
    before: list = []  # trainable non-feedback modules that ran before the first feedback layer

    def _note(mod, inp, out):
        if not calls:
            before.append(mod)

    hooks = [layer.register_forward_hook(_record) for layer in fb_layers]
    hooks += [m.register_forward_hook(_note) for _, m in trainable]
    was_training = module.training
    p = next(module.parameters())
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros((2,) + tuple(int(s) for s in input_shape), device=p.device, dtype=p.dtype))
    except Exception as err:
        raise ValueError(f"a test forward pass with input shape {tuple(input_shape)} failed ({err}); "
                         "pass the shape of one sample as input_shape") from err
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
    if method != "bp" and before and len(calls) > 1:  # with no feedback site the method is backprop: allowed
        _refuse_trainable_first(before, trainable, method)
    seen = [c[0] for c in calls]
    if len(set(map(id, seen))) != len(seen):
        raise ValueError("a converted layer runs more than once per forward pass (shared weights); not supported")
    unused = [l for l in fb_layers if all(l is not s for s in seen)]
    if unused:
        raise ValueError(f"{len(unused)} layer(s) are not used in the forward pass; remove them before converting")
    ordered = [c[0] for c in calls]
    n_out = math.prod(out_shapes[id(ordered[-1])])
    gen = torch.Generator().manual_seed(init_seed)
    for i, ((layer, in_shape)) in enumerate(calls):
        layer.fb_index = i
        layer.fb_input_shape = in_shape
        layer.fb_site = i > 0
        layer.is_output = i == len(calls) - 1
        _init_feedback(layer, method, config, n_out, gen)
        layer._fb_stored = method in STORED_FEEDBACK and layer.feedback is not None

    if config.sites is not None:
        bad = [i for i in config.sites if not 0 < i < len(ordered)]
        if bad:
            raise ValueError(f"sites {bad} are not perturbation sites; valid layer indices are 1..{len(ordered) - 1}")
    if method != "bp" and not any(l.fb_site for l in ordered):
        warnings.warn(
            f"convert: method {method!r} has no feedback site in this model, so it will train exactly like "
            "backprop: it has a single nn.Linear/nn.Conv2d layer, and the first such layer's input is treated "
            "as data, which receives no feedback (other layer types, e.g. Conv1d, are not converted and keep "
            "exact gradients). The method needs at least two nn.Linear/nn.Conv2d layers to differ from backprop.",
            UserWarning, stacklevel=2)
    model_out = CreditModel(module, method, config, state, ordered, n_out,
                            input_shape=tuple(int(s) for s in input_shape))
    return model_out


def _refuse_trainable_first(before: list, trainable: list, method: str) -> None:
    """A trainable module ahead of the first converted layer would get no error signal: refuse it."""
    names = {id(m): n for n, m in trainable}
    what = ", ".join(f"{names.get(id(m), '?')!r} ({type(m).__name__})" for m in dict.fromkeys(before))
    raise ValueError(f"the trainable module(s) {what} run before the first nn.Linear/nn.Conv2d layer, whose input "
                     f"{method!r} treats as data that receives no error signal, so they could not learn; move them "
                     "after the first Linear/Conv2d, freeze their parameters (requires_grad=False), or use 'bp'")


def _tap_counts(layer: FeedbackConv2d, x1: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
    """Per kernel tap, the number of output positions at which it sees a real (not padded) input.

    The weight gradient of all-ones input and output errors for one sample: with zero padding a
    border tap meets fewer inputs than the centre one, so weight mirror must divide each tap's
    ``Σ y x`` by its own count (dividing by ``H_out · W_out`` biases border taps low).
    """
    w = layer.weight.detach()
    return torch.ops.aten.convolution_backward(
        torch.ones_like(y1), torch.ones_like(x1), w, None, layer.stride, layer._num_padding, layer.dilation,
        False, [0, 0], layer.groups, [False, True, False])[1].clamp_min_(1.0)


def _check_no_shared_modules(module: nn.Module) -> None:
    """Refuse a model that uses one layer object (one set of weights) in two places."""
    where: dict = {}
    for name, m in module.named_modules(remove_duplicate=False):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Dropout)) or any(True for _ in m.parameters(recurse=False)):
            where.setdefault(id(m), (m, []))[1].append(name or "<model>")
    for m, names in where.values():
        if len(names) > 1:
            raise ValueError(
                f"the {type(m).__name__} at {' and '.join(repr(n) for n in names)} is one module object used "
                f"{len(names)} times (shared weights), which feedback methods do not support: each use needs its "
                "own layer (build separate layers, or copy.deepcopy the shared one)")


def _per_site_V(method: str, config: FeedbackConfig) -> bool:
    """np-direct with exact LS and ``perturb='cycle'`` keeps one ``V`` per site.

    A site's ``S`` grows only on the steps that perturb it, so its ``V`` must sum ``EᵀE`` over
    those steps only; a ``V`` shared by all sites (right when every site is perturbed every step)
    would grow ``n_sites`` times faster and shrink ``B`` by ``1/n_sites``.
    """
    return method == "np-direct" and config.b_solver == "ls" and config.perturb == "cycle"


def _init_feedback(layer: FeedbackLayer, method: str, config: FeedbackConfig, n_out: int,
                   gen: torch.Generator) -> None:
    w = layer.weight.detach()
    if not layer.fb_site:
        return
    if method in DIRECT_METHODS:
        n_in = math.prod(layer.fb_input_shape)
        std = config.init_scale or math.sqrt(2.0 / n_in)
        B = torch.randn((n_out, n_in), generator=gen, dtype=w.dtype) * std
        layer.feedback = B.to(w.device)
    elif method in ("fa", "wm", "kp", "np"):
        rms = float(w.pow(2).mean().sqrt())
        std = config.init_scale or (rms if rms > 0 else math.sqrt(2.0 / max(1, w[0].numel())))
        layer.feedback = (torch.randn(w.shape, generator=gen, dtype=w.dtype) * std).to(w.device)
    elif method == "frsf":
        layer.feedback_magnitude = torch.randn(w.shape, generator=gen, dtype=w.dtype).abs_().to(w.device)
    if method in NP_METHODS and config.b_solver == "ls":
        if method == "np" and isinstance(layer, FeedbackConv2d):
            raise ValueError("exact least squares for a layered conv feedback kernel is too costly; "
                             "use b_solver='sgd' or method='np-direct'")
        # the sufficient statistics sum millions of outer products: in float32 their rounding
        # errors make V indefinite after ~1e5 steps and B = V⁻¹S explodes, so they are float64
        B = layer.feedback
        layer.register_buffer("np_S", torch.zeros(B.shape, dtype=torch.float64, device=B.device))
        if method == "np" or _per_site_V(method, config):
            k = B.shape[0]
            layer.register_buffer("np_V", torch.eye(k, dtype=torch.float64, device=B.device) * config.gamma)


class CreditModel(nn.Module):
    """A network whose layers are trained by a credit-assignment method (made by :func:`convert`).

    ``model(x)`` is the wrapped network's forward pass. :meth:`step` runs one full training step of
    the method; :meth:`alignment` compares the method's updates and feedback with backprop's.
    ``state_dict()`` holds the weights, the feedback matrices, the NP statistics and the random
    streams, so a training run resumes exactly.
    """

    def __init__(self, module: nn.Module, method: str, config: FeedbackConfig, state: FeedbackState,
                 layers: list, n_out: int, *, input_shape: Optional[tuple] = None):
        super().__init__()
        self.module = module
        self.method = method
        self.config = config
        self.n_out = int(n_out)
        self._state = state
        self._layers = tuple(layers)
        self._sites = tuple(l for l in self._layers if l.fb_site)
        # a plain reference that skips nn.Module.__getattr__ in the per-step path; set with
        # object.__setattr__ so that it is not registered as a second submodule (state_dict keys
        # ``module.*`` only; older checkpoints also hold ``_net.*`` copies, see _load_from_state_dict)
        object.__setattr__(self, "_net", module)
        # modules with running statistics (BatchNorm...), which the noisy and the diagnostic passes must not move
        self._norms = tuple(m for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
                            and m.track_running_stats)
        self._input_shape = None if input_shape is None else tuple(input_shape)
        # the first layer's in_features when the data goes straight into it (a Sequential whose
        # first leaf is the first converted layer, an nn.Linear): lets _batch name a wrong x width
        first = module
        while isinstance(first, nn.Sequential) and len(first):
            first = first[0]
        direct_input = isinstance(first, FeedbackLinear) and first is self._layers[0]
        self._x_features = first.in_features if direct_input else None
        V = None
        if method == "np-direct" and config.b_solver == "ls" and not _per_site_V(method, config):
            p = next(module.parameters())
            V = torch.eye(n_out, dtype=torch.float64, device=p.device) * config.gamma  # see _init_feedback
        self.register_buffer("np_V", V)

    # -- structure ---------------------------------------------------------------------------------
    @property
    def feedback_layers(self) -> tuple:
        """The converted layers in forward order."""
        return self._layers

    @property
    def sites(self) -> tuple:
        """Layers whose input is a hidden activity (feedback target and NP perturbation site)."""
        return self._sites

    @property
    def n_steps(self) -> int:
        """Training steps taken (drives the NP ``perturb='cycle'`` schedule; saved in ``state_dict``)."""
        return self._state.n_steps

    @property
    def feedback_state(self) -> FeedbackState:
        """Run-time switches shared by the feedback layers (:class:`~bci_credit.deep.feedback.FeedbackState`)."""
        return self._state

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def get_extra_state(self):
        return {"n_steps": self.n_steps, "method": self.method, "generators": self._state.generator_states()}

    def set_extra_state(self, extra) -> None:
        if extra.get("method") != self.method:
            raise ValueError(f"state was saved for method {extra.get('method')!r}, this model uses {self.method!r}")
        self._state.n_steps = int(extra["n_steps"])
        self._state.set_generator_states(extra.get("generators", {}))

    def _apply(self, fn, recurse=True):
        """As ``nn.Module._apply``, but the float64 NP statistics ``np_V``/``np_S`` only change device.

        ``.half()``/``.float()``/``.to(dtype)`` would otherwise round the sums of millions of outer
        products (see :func:`_init_feedback`) and spoil ``B = V⁻¹S``.
        """
        keep = [(m, k, b) for m in self.modules() for k, b in m._buffers.items()
                if k in ("np_V", "np_S") and b is not None]
        out = super()._apply(fn, recurse)
        for m, k, b in keep:
            moved = m._buffers[k]
            if moved is not None and moved.dtype != b.dtype:
                m._buffers[k] = b.to(device=moved.device)
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the fast ``_net`` reference stopped being a registered submodule
        # hold every network entry twice, as ``module.*`` and ``_net.*``: drop (or, alone, rename) the latter
        legacy = prefix + "_net."
        for key in [k for k in state_dict if k.startswith(legacy)]:
            new = prefix + "module." + key[len(legacy):]
            value = state_dict.pop(key)
            if new not in state_dict:
                state_dict[new] = value
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _batch(self, x, y, loss_fn: Optional[Callable] = None) -> tuple:
        """``(x, y)`` as tensors on the model's device (arrays accepted; ``x`` in the model's dtype).

        Checks what is cheap to check every step: one target per sample, a non-empty batch, the
        input width of a model that starts with ``nn.Linear``, and, for the built-in losses, class
        labels within ``[0, n_out)`` (cross-entropy: whole-number labels or probabilities of width
        ``n_out``).
        """
        p = self._layers[0].weight
        x = torch.as_tensor(x, device=p.device, dtype=p.dtype)
        y = torch.as_tensor(y, device=p.device)
        if y.is_floating_point():
            y = y.to(p.dtype)
        if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(f"x ({tuple(x.shape)}) and y ({tuple(y.shape)}) must hold the same number of samples "
                             "along their first axis; pass one target per sample")
        if x.shape[0] == 0:
            raise ValueError("the batch is empty (x has 0 samples); pass at least one sample")
        n_in = self._x_features
        if n_in is not None and (x.dim() < 2 or x.shape[-1] != n_in):
            if x.dim() < 2:
                raise ValueError(f"x has shape {tuple(x.shape)}, one number per sample, but the model's first layer "
                                 f"takes {n_in} features: pass x of shape (batch, {n_in})")
            raise ValueError(f"x has {x.shape[-1]} features per sample (shape {tuple(x.shape)}), the model's first "
                             f"layer takes {n_in}: pass x of shape (batch, {n_in})")
        if loss_fn is squared_error or loss_fn is cross_entropy:
            y = self._check_targets(y, loss_fn is cross_entropy)
        return x, y

    def _check_targets(self, y: torch.Tensor, ce: bool) -> torch.Tensor:
        """Class labels in ``[0, n_out)``; for cross-entropy, labels or probabilities of width ``n_out``."""
        n = self.n_out
        loss = "'ce'" if ce else "'mse'"
        if y.dim() == 1 and ce and y.is_floating_point():
            if not bool((y == y.floor()).all()):
                raise ValueError(f"the {loss} loss takes integer class labels in [0, {n}) or probabilities of shape "
                                 f"(batch, {n}); got fractional labels such as {float(y[y != y.floor()][0]):g}")
            y = y.long()
        if y.dim() == 1 and not y.is_floating_point():
            lo, hi = torch.aminmax(y.long() if y.dtype == torch.bool else y)
            # on the CPU two int() are cheaper than more tensor ops; elsewhere one host sync
            bad = int(lo) < 0 or int(hi) >= n if y.device.type == "cpu" else bool((lo < 0) | (hi >= n))
            if bad:
                raise ValueError(f"class labels must lie in [0, {n}) for this model's {n} outputs; got labels from "
                                 f"{int(lo)} to {int(hi)}")
        elif ce and (y.dim() != 2 or y.shape[1] != n):
            raise ValueError(f"the 'ce' loss takes class labels of shape (batch,) or probabilities of shape "
                             f"(batch, {n}); got targets of shape {tuple(y.shape)}")
        elif ce:
            tol = 1e-3 if y.dtype in (torch.float32, torch.float64) or not y.is_floating_point() else 1e-2
            t = y.to(torch.float64)
            bad = (t < 0).any() | ((t.sum(1) - 1).abs() > tol).any()
            if bool(bad):
                raise ValueError("the 'ce' loss takes target probabilities (each row non-negative and summing to 1); "
                                 "these rows do not (pass class labels, or normalise the rows)")
        return y

    # -- one training step -----------------------------------------------------------------------
    def step(self, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "mse",
             optimizer: Optional[torch.optim.Optimizer] = None, *, reduction: str = "sum",
             update_weights: bool = True, update_feedback: bool = True) -> StepOutput:
        """One training step of the method on a minibatch.

        Runs the clean forward/backward pass (the backward uses the method's feedback), for NP a
        noisy forward pass on the same batch with the same dropout masks, then updates the
        feedback (NP regression, weight mirror) and the weights (``optimizer.step()``; KP applies
        the same change to ``B``). Both updates use the values from before the step.

        Parameters
        ----------
        x, y : Tensor or array
            Minibatch inputs and targets (class labels or real targets); arrays are converted to
            tensors on the model's device, inputs and real targets in the model's dtype.
        loss : str or callable
            ``'mse'`` (½‖ŷ − y‖² per sample), ``'ce'``, or a function returning per-sample losses.
        optimizer : torch.optim.Optimizer, optional
            Updates the weights; without one only gradients (and the feedback) are computed.
        reduction : {'sum', 'mean'}
            The objective is the sum (the paper's MLP/AE) or the mean of the per-sample losses.
        update_weights : bool
            False freezes ``W`` (feedback warm-up, fixed-W convergence runs).
        update_feedback : bool
            False skips the feedback learning of WM/KP/NP for this step.

        Returns
        -------
        StepOutput
            Detached ``loss``, ``output`` and ``per_sample`` losses, and ``delta_loss`` (L̃ − L of the NP
            noisy pass when the feedback learns; None otherwise).

        Raises
        ------
        ValueError
            For a batch the model cannot take: no samples, ``x`` of the wrong width, class labels
            outside ``[0, n_out)``, fractional labels or non-probability targets with ``'ce'``.
        FloatingPointError
            When NaN/inf values (in the batch, or from a diverged run) would reach the learned
            feedback (the NP regression, or the WM/KP weight gradients); nothing is updated.
        """
        loss_fn = get_loss(loss)
        x, y = self._batch(x, y, loss_fn)
        st = self._state
        cfg = self.config
        do_np = self.method in NP_METHODS and update_feedback
        if loss_fn is squared_error and y.dim() == 1 and not y.is_floating_point():
            y = F.one_hot(y.long(), self.n_out).to(self._layers[-1].weight.dtype)  # once, for both passes
        saved_grads = None
        if do_np:
            st.begin_pass("record")
            st.capture = not st.direct
            st.reuse_first = True
        else:
            st.begin_pass("free")
        try:
            try:
                out = self._net(x)
            except RuntimeError as err:
                self._explain_forward_error(x, err)
                raise
            per = loss_fn(out, y)
            if per.dim() != 1 or per.shape[0] != x.shape[0]:
                raise ValueError(f"the loss must return one value per sample, shape ({x.shape[0]},); got {tuple(per.shape)}")
            total = reduce_loss(per, reduction)
            delta = None
            if do_np:
                delta = self._noisy_pass(x, y, loss_fn, per.detach())
                if not cfg.use_learned_feedback:
                    st.force_bp = True
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            if not update_weights:  # W frozen: the backward only feeds the feedback learning
                saved_grads = self._take_grads()
            total.backward()
            st.force_bp = False
            st.capture = False
            if do_np:
                self._np_update(delta, reduction, x.shape[0])
            if update_weights and optimizer is not None:
                if update_feedback and self.method in ("wm", "kp"):
                    self._check_weight_grads()
                if self.method == "kp" and update_feedback:
                    self._kp_step(optimizer)
                else:
                    optimizer.step()
            if self.method == "wm" and update_feedback:
                self.mirror_step()
        finally:
            if saved_grads is not None:
                self._restore_grads(saved_grads)
            st.force_bp = False
            st.capture = False
            st.noisy = False
            st.reuse_first = False
            st.active_sites = None
            st.top_error = None
            st.begin_pass("free")
            if do_np:
                for l in self._layers:
                    l._fb.clear()
        self._state.n_steps += 1
        return StepOutput(loss=total.detach(), output=out.detach(), per_sample=per.detach(), delta_loss=delta)

    def _take_grads(self) -> list:
        """Set every parameter's ``.grad`` aside (to ``None``); :meth:`_restore_grads` puts them back."""
        params = list(self.parameters())
        saved = [(p, p.grad) for p in params]
        for p in params:
            p.grad = None
        return saved

    @staticmethod
    def _restore_grads(saved: list) -> None:
        for p, g in saved:
            p.grad = g

    def _save_side_state(self, rng: bool) -> tuple:
        """Shield the BatchNorm running statistics and save (``rng``) every random stream a pass may draw from.

        The statistics are not copied back afterwards but swapped: the pass updates copies, and
        :meth:`_restore_side_state` puts the untouched originals back (an in-place copy would bump
        their version and break a clean pass's pending backward, which saved them).
        """
        norms = []
        for m in self._norms:
            bufs = {k: b for k, b in m._buffers.items() if b is not None}
            for k, b in bufs.items():
                m._buffers[k] = b.clone()
            norms.append((m, bufs))
        if not rng:
            return norms, None
        gens = dict(self._state.generator_states())
        cpu = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return norms, (gens, cpu, cuda)

    def _restore_side_state(self, saved: tuple) -> None:
        """Undo what a diagnostic or noisy pass did to BatchNorm statistics and random streams."""
        norms, rng = saved
        for m, bufs in norms:
            m._buffers.update(bufs)
        if rng is None:
            return
        gens, cpu, cuda = rng
        self._state.restore_generators(gens)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    def _explain_forward_error(self, x: torch.Tensor, err: Exception) -> None:
        """Turn a forward pass that failed on an input of the wrong shape into a clear error."""
        want = self._input_shape
        if want is not None and tuple(x.shape[1:]) != want:
            raise ValueError(f"x has shape {tuple(x.shape)}, i.e. samples of shape {tuple(x.shape[1:])}, but the model "
                             f"was converted for samples of shape {want} and its forward pass failed ({err}); "
                             f"pass x of shape (batch, {', '.join(map(str, want))})") from err

    def _refuse_non_finite(self, what: str, tensors: list) -> None:
        """Raise before ``tensors`` (the values about to update the feedback) fold a NaN/inf into it.

        A sum of all entries in float64 is finite exactly when every entry is (finite float32/16
        values cannot overflow it): one cheap reduction per tensor, and on an accelerator one host
        sync per step (the sums are combined on the device).
        """
        ts = [t for t in tensors if t is not None]
        if not ts:
            return
        if ts[0].device.type == "cpu":  # float() of a CPU scalar is cheaper than more tensor ops
            total = sum(float(t.sum(dtype=torch.float64)) for t in ts)
        else:
            total = float(torch.stack([t.sum(dtype=torch.float64) for t in ts]).sum())
        if not math.isfinite(total):
            raise FloatingPointError(
                f"non-finite values in the {what} at step {self.n_steps} (do the inputs or targets hold NaN/inf, "
                "or did training diverge?); the feedback statistics and weights were left unchanged. Remove "
                "the bad samples (or lower the learning rate) and continue.")

    def _check_weight_grads(self) -> None:
        """WM/KP: a non-finite weight gradient would reach ``B`` through the weights; refuse it first."""
        self._refuse_non_finite(f"weight gradients of {self.method!r}",
                                [l.weight.grad for l in self._layers])

    # -- feedback learning -----------------------------------------------------------------------
    def _active_sites(self) -> Optional[set]:
        cfg = self.config
        if cfg.sites is None and cfg.perturb == "all":
            return None
        idx = [l.fb_index for l in self._sites if cfg.sites is None or l.fb_index in cfg.sites]
        if cfg.perturb == "cycle" and idx:
            return {idx[self.n_steps % len(idx)]}
        return None if cfg.sites is None else set(idx)

    @torch.no_grad()
    def _noisy_pass(self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable, per_clean: torch.Tensor) -> torch.Tensor:
        """The perturbed forward pass (replaying the clean pass's dropout masks); returns L̃ − L."""
        st = self._state
        st.active_sites = self._active_sites()
        st.begin_pass("replay")
        st.noisy = True
        st.noise_std = self.config.noise_std
        saved = self._save_side_state(rng=False) if self._norms else None
        try:
            per_noisy = loss_fn(self._net(x), y)
        finally:
            st.noisy = False
            st.active_sites = None
            if saved is not None:  # the noisy pass replays the clean one: BatchNorm must not count it
                self._restore_side_state(saved)
        return per_noisy - per_clean

    @torch.no_grad()
    def perturbation_estimates(self, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "mse") -> dict:
        """Node-perturbation estimates of ∂L_s/∂h at every perturbed site, for every sample.

        One clean and one noisy forward pass (same dropout masks). Nothing is learned. Average over
        repeated calls (or a repeated batch) to see that λ̂ is unbiased.

        Parameters
        ----------
        x, y, loss
            As in :meth:`step`.

        Returns
        -------
        dict
            ``{layer index: λ̂ (batch, *input shape)}``, where ``L_s`` is the per-sample loss.
        """
        loss_fn = get_loss(loss)
        x, y = self._batch(x, y, loss_fn)
        st = self._state
        if loss_fn is squared_error and y.dim() == 1 and not y.is_floating_point():
            y = F.one_hot(y.long(), self.n_out).to(self._layers[-1].weight.dtype)
        try:
            st.begin_pass("record")
            st.reuse_first = True
            per = loss_fn(self.module(x), y)
            delta = self._noisy_pass(x, y, loss_fn, per)
            return {l.fb_index: lambda_hat(delta, l._fb.xi, self.config.noise_std)
                    for l in self.sites if l._fb.xi is not None}
        finally:
            st.reuse_first = False
            st.begin_pass("free")
            for l in self._layers:
                l._fb.clear()

    def site_gradients(self, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "mse", *,
                       reduction: str = "sum", exact: bool = True) -> dict:
        """Gradient of the loss with respect to each site's activity (the input of each layer).

        Parameters
        ----------
        x, y, loss, reduction
            As in :meth:`step`.
        exact : bool
            True: backprop's (autograd's) gradient; False: what this method's feedback delivers.

        Returns
        -------
        dict
            ``{layer index: tensor (batch, *input shape)}``; with ``reduction='sum'`` row ``s`` is
            ``∂L_s/∂h_s``.
        """
        return self._site_captures(x, y, loss, reduction, force_bp=exact, part=1)

    def site_errors(self, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "mse", *,
                    reduction: str = "sum") -> dict:
        """This method's error at the output of each feedback site's layer (the regressor of its ``B``).

        Parameters
        ----------
        x, y, loss, reduction
            As in :meth:`step`.

        Returns
        -------
        dict
            Keyed like :meth:`site_gradients`; row ``s`` is the error the method computes for sample
            ``s`` at the output of the site's layer, which ``B`` carries back to its input (for the
            layered NP, what ``λ̂`` is regressed on).
        """
        return self._site_captures(x, y, loss, reduction, force_bp=False, part=0)

    def _site_captures(self, x, y, loss, reduction: str, *, force_bp: bool, part: int) -> dict:
        """One captured pass; per feedback site its layer's output error (part 0) or input signal (1)."""
        loss_fn = get_loss(loss)
        x, y = self._batch(x, y, loss_fn)
        _, _, _, cap = self._capture_pass(x, y, loss_fn, reduction, force_bp=force_bp, mask_mode="free")
        return {l.fb_index: cap[i][part] for i, l in enumerate(self._layers) if l.fb_site}

    def _capture_pass(self, x, y, loss_fn, reduction, *, force_bp: bool, mask_mode: str):
        """Forward + autograd.grad of the weights with the layers' errors captured."""
        st = self._state
        weights = [l.weight for l in self._layers]
        try:
            st.capture = True
            st.force_bp = force_bp
            st.begin_pass(mask_mode)
            with torch.enable_grad():
                out = self.module(x)
                per = loss_fn(out, y)
                total = reduce_loss(per, reduction)
                live = [w for w in weights if w.requires_grad]
                got = iter(torch.autograd.grad(total, live, allow_unused=True)) if live else iter(())
                g = [next(got) if w.requires_grad else None for w in weights]
            cap = [(l._fb.grad_out, l._fb.grad_in) for l in self._layers]
        finally:
            st.force_bp = False
            st.capture = False
            st.top_error = None
            for l in self._layers:
                l._fb.clear()
        return total.detach(), out.detach(), g, cap

    @torch.no_grad()
    def _np_update(self, delta: torch.Tensor, reduction: str, n: int) -> None:
        cfg = self.config
        st = self._state
        scale = float(n) if reduction == "mean" else 1.0
        sites = [l for l in self._sites if l._fb.xi is not None]
        if not sites:
            return
        if st.direct:
            self._refuse_non_finite("NP regression", [delta, st.top_error])
            E = st.top_error.reshape(n, -1) * scale
            lams = [lambda_hat(delta, l._fb.xi, cfg.noise_std).reshape(n, -1) for l in sites]
            if cfg.b_solver == "ls" and self._buffers["np_V"] is None:  # one V per site (perturb='cycle')
                for l, lam in zip(sites, lams):
                    V = l._buffers["np_V"]
                    ridge_accumulate_(V, E, [(l._buffers["np_S"], lam)], gamma=cfg.gamma, forget=cfg.forget)
                    l._buffers["feedback"].copy_(ridge_solve(V, l._buffers["np_S"]))
            elif cfg.b_solver == "ls":
                V = self._buffers["np_V"]
                ridge_accumulate_(V, E, [(l._buffers["np_S"], lam) for l, lam in zip(sites, lams)],
                                  gamma=cfg.gamma, forget=cfg.forget)
                for l in sites:
                    l._buffers["feedback"].copy_(ridge_solve(V, l._buffers["np_S"]))
            else:
                for l, lam in zip(sites, lams):
                    sgd_feedback_step_(l._buffers["feedback"], E, lam, cfg.b_lr)
        else:
            self._refuse_non_finite("NP regression", [delta] + [l._fb.grad_out for l in sites])
            for l in sites:
                B = l._buffers["feedback"]
                e = l._fb.grad_out * scale if scale != 1.0 else l._fb.grad_out
                lam = lambda_hat(delta, l._fb.xi, cfg.noise_std)
                if isinstance(l, FeedbackConv2d):
                    conv_sgd_feedback_step_(l, B, e, lam, cfg.b_lr)
                    continue
                e2 = e if e.dim() == 2 else e.reshape(-1, e.shape[-1])
                lam2 = lam if lam.dim() == 2 else lam.reshape(-1, lam.shape[-1])
                if cfg.b_solver == "ls":
                    S = l._buffers["np_S"]
                    V = l._buffers["np_V"]
                    ridge_accumulate_(V, e2, [(S, lam2)], gamma=cfg.gamma, forget=cfg.forget)
                    B.copy_(ridge_solve(V, S))
                else:
                    sgd_feedback_step_(B, e2, lam2, cfg.b_lr)

    def update_feedback(self, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "mse", *,
                        reduction: str = "sum") -> StepOutput:
        """Learn the feedback only (``W`` frozen) from one minibatch: NP regression or weight mirror.

        The parameters' ``.grad`` are left as they were, so an ordinary loop may call it between its
        ``loss.backward()`` and ``optimizer.step()``. Kolen–Pollack has no feedback learning of its
        own (``B`` gets ``W``'s update): train ``kp`` with :meth:`step` and an optimizer; here it
        only warns.

        Parameters
        ----------
        x, y, loss, reduction
            As in :meth:`step`.

        Returns
        -------
        StepOutput
            As :meth:`step` with ``update_weights=False``.
        """
        if self.method == "kp":
            warnings.warn("update_feedback does nothing for 'kp': Kolen-Pollack's B learns only through the weight "
                          "update; call step(x, y, loss, optimizer) instead of optimizer.step()", UserWarning,
                          stacklevel=2)
        return self.step(x, y, loss, None, reduction=reduction, update_weights=False)

    @torch.no_grad()
    def mirror_step(self) -> None:
        """Weight mirror: drive each layer with white noise and move ``B`` towards ``E[y xᵀ]/σ²``."""
        cfg = self.config
        s = cfg.mirror_noise_std
        rho = cfg.mirror_rate
        for l in self.sites:
            w = l.weight.detach()
            gen = self._state.generator(w.device)
            x = torch.randn((cfg.mirror_batch,) + tuple(l.fb_input_shape), generator=gen, device=w.device, dtype=w.dtype) * s
            if isinstance(l, FeedbackConv2d):
                y = F.conv2d(x, w, None, l.stride, l._num_padding, l.dilation, l.groups)
                est = torch.ops.aten.convolution_backward(
                    y, x, w, None, l.stride, l._num_padding, l.dilation, False, [0, 0], l.groups,
                    [False, True, False])[1]
                est = est / (_tap_counts(l, x[:1], y[:1]) * (cfg.mirror_batch * s * s))
            else:
                y = F.linear(x, w)
                est = y.reshape(-1, y.shape[-1]).t() @ x.reshape(-1, x.shape[-1]) / (y[..., 0].numel() * s * s)
            l.feedback.mul_(1.0 - rho).add_(est, alpha=rho)

    def _kp_step(self, optimizer: torch.optim.Optimizer) -> None:
        sites = self.sites
        old = [l.weight.detach().clone() for l in sites]
        optimizer.step()
        d = self.config.kp_decay
        with torch.no_grad():
            for l, w0 in zip(sites, old):
                l.feedback.add_(l.weight.detach() - w0)
            if d > 0:
                for l in self._layers:
                    l.weight.mul_(1.0 - d)
                    if l.feedback is not None:
                        l.feedback.mul_(1.0 - d)

    # -- diagnostics -------------------------------------------------------------------------------
    def feedback_matrices(self) -> dict:
        """``{layer index: matrix used in the backward pass}`` (sites only; BP would use ``W``)."""
        return {l.fb_index: l.feedback_weight().detach() for l in self.sites}

    def alignment(self, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "mse", *,
                  reduction: str = "sum") -> dict:
        """Compare this method's updates and feedback with backprop's on one batch.

        The method's weight gradients and errors and the BP ones come from the same forward pass
        (same weights, same dropout masks, no NP noise). Angles are over the whole batch and are
        not folded (deep_np.md §7.2 item 9). Taking metrics does not change training: every random
        stream (the model's and torch's global ones) and every BatchNorm running statistic is left
        as it was found.

        Parameters
        ----------
        x, y, loss, reduction
            As in :meth:`step`.

        Returns
        -------
        dict
            ``loss``, ``accuracy`` and ``layers``: one dict per layer (forward order) with
            ``update_angle_deg`` (ΔW vs ΔW_BP), ``delta_angle_deg`` (error at the layer's output vs
            BP's), ``signal_angle_deg`` (error sent to the layer's input vs BP's),
            ``weight_angle_deg`` (B vs W), ``norm_ratio`` (‖B‖/‖W‖), ``rel_error``
            (‖B − W‖/‖W‖) and ``sign_congruence``. Entries that do not apply are NaN, among them
            every B-vs-W entry of the direct methods (``dfa``, ``np-direct``), whose ``(n_out, n_in)``
            feedback has no counterpart in ``W`` even where the shapes happen to match.
        """
        loss_fn = get_loss(loss)
        x, y = self._batch(x, y, loss_fn)
        results = []
        saved = self._save_side_state(rng=True)
        try:
            total, out, gm, capm = self._capture_pass(x, y, loss_fn, reduction, force_bp=False, mask_mode="record")
            # B vs W only where B stands in for W (a direct method's D is (n_out, n_in): no counterpart)
            fb = {} if self._state.direct else {l.fb_index: l.feedback_weight().detach() for l in self.sites}
            _, _, gb, capb = self._capture_pass(x, y, loss_fn, reduction, force_bp=True, mask_mode="replay")
        finally:
            self._state.begin_pass("free")
            self._restore_side_state(saved)
        loss_value = float(total)
        acc = accuracy(out, y)
        for i, l in enumerate(self._layers):
            B = fb.get(l.fb_index)
            w = l.weight.detach()
            results.append({
                "layer": i,
                "update_angle_deg": _m.angle_deg(gm[i], gb[i]),
                "delta_angle_deg": _m.angle_deg(capm[i][0], capb[i][0]),
                "signal_angle_deg": _m.angle_deg(capm[i][1], capb[i][1]) if l.fb_site else float("nan"),
                "weight_angle_deg": _m.angle_deg(B, w) if B is not None and B.shape == w.shape else float("nan"),
                "norm_ratio": _m.norm_ratio(B, w),
                "rel_error": _m.relative_error(B, w),
                "sign_congruence": _m.sign_congruence(B, w),
            })
        return {"loss": loss_value, "accuracy": acc, "layers": results}

    def extra_repr(self) -> str:
        return f"method={self.method}, sites={len(self.sites)}"
