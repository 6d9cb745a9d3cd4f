"""Feedback layers: drop-in ``Linear``/``Conv2d`` whose backward pass uses a feedback matrix.

The forward pass is the ordinary one. In the backward pass the weight gradient is the exact local
one (error at the layer's output times its input), but the error sent down to the layer's input is
computed with a feedback matrix ``B`` instead of the forward weights ``W`` (deep_np.md §1.2):

============  ==================================================================================
method        error sent to the layer input
============  ==================================================================================
``bp``        ``e W`` (backpropagation, the reference)
``fa``        ``e B``, ``B`` fixed random (feedback alignment)
``usf``       ``e (sign(W) · rms(W))`` (uniform sign-concordant feedback)
``frsf``      ``e (sign(W) ∘ |R| · rms(W))``, ``R`` fixed (fixed random-magnitude sign feedback)
``brsf``      as frSF, ``R`` redrawn for every batch
``wm``        ``e B``, ``B`` learned by weight mirroring (Akrout et al. 2019)
``kp``        ``e B``, ``B`` gets the same update as ``W``, both decay (Kolen–Pollack)
``np``        ``e B``, ``B`` learned by node perturbation (Lansdell et al. 2020)
``dfa``       ``E D``: the output error ``E`` through a fixed random matrix ``D`` (direct FA)
``np-direct`` ``E D``, ``D`` learned by node perturbation (the paper's CNN variant, §1.7)
============  ==================================================================================

The layers share one :class:`FeedbackState` per converted model, which carries the run-time
switches (a noisy pass for node perturbation, a BP reference pass for metrics, dropout masks that
are recorded in one pass and replayed in the next). Use :func:`bci_credit.deep.convert` to build
them; the classes are public so that ``isinstance`` checks and custom models can use them.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "METHODS", "LAYERED_METHODS", "DIRECT_METHODS", "NP_METHODS",
    "FeedbackState", "FeedbackLinear", "FeedbackConv2d", "SharedDropout", "FeedbackLayer", "dropout_kind",
]

METHODS = ("bp", "fa", "dfa", "usf", "brsf", "frsf", "wm", "kp", "np", "np-direct")
DIRECT_METHODS = frozenset({"dfa", "np-direct"})
LAYERED_METHODS = frozenset(METHODS) - DIRECT_METHODS
NP_METHODS = frozenset({"np", "np-direct"})


def _device_available(dev: torch.device) -> bool:
    """Whether a generator can be made on ``dev`` in this process."""
    if dev.type == "cpu":
        return True
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index is None or dev.index < torch.cuda.device_count())
    mod = getattr(torch, dev.type, None)
    return bool(mod is not None and getattr(mod, "is_available", lambda: False)())


# methods whose backward uses a stored matrix ``feedback`` (the others derive it from W)
STORED_FEEDBACK = frozenset({"fa", "wm", "kp", "np", "dfa", "np-direct"})


class FeedbackState:
    """Run-time switches shared by every feedback layer of one converted model.

    Attributes
    ----------
    method : str
        The credit-assignment method.
    force_bp : bool
        When true the backward pass uses ``W`` (a BP reference pass for metrics).
    capture : bool
        When true the layers keep the error at their output (``grad_out``) and input
        (``grad_in``) from the last backward pass.
    noisy : bool
        When true (node perturbation's second pass) the perturbation sites add
        ``noise_std · ξ`` to their input and keep ``ξ``.
    """

    def __init__(self, method: str, seed: int):
        self.method = method
        self.direct = method in DIRECT_METHODS
        self.seed = int(seed)
        self.n_steps = 0
        self.force_bp = False
        self.capture = False
        self.noisy = False
        self.noise_std = 0.0
        self.reuse_first = False
        self.active_sites: Optional[set] = None
        self.top_error: Optional[torch.Tensor] = None
        self.mask_mode = "free"
        self._masks: dict = {}
        self._cursor: dict = {}
        self._generators: dict = {}

    # -- random streams -------------------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The generator for noise and dropout on ``device`` (seeded from the model's seed)."""
        key = str(torch.device(device))
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            self._generators[key] = gen
        return gen

    def generator_states(self) -> dict:
        return {k: g.get_state() for k, g in self._generators.items()}

    def restore_generators(self, states: dict) -> None:
        """Put every stream back to ``states`` (from :meth:`generator_states`); a stream made since is
        dropped, so it starts again from the seed when next needed."""
        for key in [k for k in self._generators if k not in states]:
            del self._generators[key]
        for key, st in states.items():
            self._generators[key].set_state(st)

    def set_generator_states(self, states: dict) -> None:
        """Restore saved generator states; those of a device not available here are skipped with a warning.

        A run trained on a GPU saves a ``'cuda:0'`` stream: loaded on a CPU-only machine the model
        works, only that stream (the noise and dropout masks drawn on the GPU) is not restored.
        """
        for key, st in states.items():
            dev = torch.device(key)
            if not _device_available(dev):
                warnings.warn(f"the saved random stream of device {key!r} is skipped: that device is not available "
                              "here (the model loads; a resumed run draws new noise/dropout masks on this device)",
                              UserWarning, stacklevel=2)
                continue
            self.generator(dev).set_state(st.cpu() if hasattr(st, "cpu") else st)

    # -- dropout masks shared between passes ---------------------------------------------------
    def begin_pass(self, mask_mode: str) -> None:
        """Start a forward pass: ``'record'`` dropout masks, ``'replay'`` them, or ``'free'``."""
        if mask_mode not in ("free", "record", "replay"):
            raise ValueError(f"mask_mode must be free, record or replay, got {mask_mode!r}")
        self.mask_mode = mask_mode
        self._cursor = {}
        if mask_mode == "record":
            self._masks = {}
        elif mask_mode == "free":
            self._masks = {}

    def dropout_mask(self, module: nn.Module, x: torch.Tensor, p: float, shape: Optional[tuple] = None,
                     scale: bool = True) -> torch.Tensor:
        """A keep mask of ``shape`` (default ``x.shape``) drawn, recorded or replayed per the pass mode.

        Entries are ``1/(1 − p)`` (``scale``) or 1 where kept, 0 where dropped; the mask has
        ``x``'s dtype and device.
        """
        key = id(module)
        shape = tuple(x.shape) if shape is None else tuple(shape)
        if self.mask_mode == "replay":
            masks = self._masks.get(key)
            i = self._cursor.get(key, 0)
            if masks is None or i >= len(masks) or tuple(masks[i].shape) != shape:
                raise RuntimeError("dropout mask replay found no matching recorded mask: the replayed "
                                   "pass must run the same forward as the recorded one")
            self._cursor[key] = i + 1
            return masks[i]
        mask = x.new_empty(shape).bernoulli_(1.0 - p, generator=self.generator(x.device))
        if scale:
            mask.div_(1.0 - p)
        if self.mask_mode == "record":
            self._masks.setdefault(key, []).append(mask)
        return mask


#: SELU's α of alpha dropout (torch's ATen constant)
_ALPHA = 1.7580993408473766
#: forward of each torch dropout class → (mask kind, whether alpha dropout)
_DROPOUT_KINDS = {
    nn.Dropout.forward: ("element", False),
    nn.Dropout1d.forward: ("feature1d", False),
    nn.Dropout2d.forward: ("feature2d", False),
    nn.Dropout3d.forward: ("feature3d", False),
    nn.AlphaDropout.forward: ("element", True),
    nn.FeatureAlphaDropout.forward: ("feature", True),
}


def dropout_kind(module: nn.Module) -> Optional[tuple]:
    """``(mask kind, alpha)`` of a torch dropout module that can be replayed, else ``None``.

    Every ``torch.nn`` dropout class (and any subclass that keeps its ``forward``) is replayable;
    a subclass with its own ``forward`` is not (what it draws cannot be seen from outside).
    """
    if not isinstance(module, nn.modules.dropout._DropoutNd):
        return None
    return _DROPOUT_KINDS.get(type(module).forward)


def _feature_shape(x: torch.Tensor, kind: str) -> tuple:
    """Shape of a channel-wise mask as torch's feature dropout draws it (one value per sample and channel)."""
    unbatched = {"feature1d": 2, "feature3d": 4}.get(kind)
    if x.dim() == unbatched:  # (C, ...): one value per channel
        return (x.shape[0],) + (1,) * (x.dim() - 1)
    return tuple(x.shape[:2]) + (1,) * (x.dim() - 2)


class SharedDropout(nn.Dropout):
    """A torch dropout layer whose masks come from the model's seeded stream and can be replayed.

    Node perturbation compares a clean and a noisy pass; with independent masks the dropout noise
    would leak into the loss difference (the ssdfa bug, deep_np.md §1.7), so the noisy pass (and
    the BP reference pass of the metrics) replays the clean pass's masks. :func:`convert` puts one
    in place of every ``nn.Dropout``, ``nn.Dropout1d/2d/3d``, ``nn.AlphaDropout`` and
    ``nn.FeatureAlphaDropout`` (and subclasses that keep their ``forward``), with the same
    semantics: element-wise or channel-wise masks, and alpha dropout's affine correction.
    Dropout applied as a function (``F.dropout`` inside a custom module) cannot be seen by
    :func:`convert` and is not replayed.
    """

    _fb_state: Optional[FeedbackState] = None
    kind: str = "element"
    alpha: bool = False

    @classmethod
    def from_module(cls, module: nn.Module) -> "SharedDropout":
        """The replayable twin of a torch dropout ``module`` (see :func:`dropout_kind`)."""
        kind = dropout_kind(module)
        if kind is None:
            raise ValueError(f"{type(module).__name__} has its own forward; its dropout masks cannot be replayed")
        new = cls(module.p, module.inplace)
        new.kind, new.alpha = kind
        new.train(module.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.numel() == 0:
            return x
        if self.p >= 1.0:
            return x * torch.zeros((), dtype=x.dtype, device=x.device)
        st = self._fb_state
        if self.kind == "element" and not self.alpha:
            if st is None:
                return F.dropout(x, self.p, True, self.inplace)
            return x * st.dropout_mask(self, x, self.p)
        shape = tuple(x.shape) if self.kind == "element" else _feature_shape(x, self.kind)
        if st is None:
            keep = x.new_empty(shape).bernoulli_(1.0 - self.p)
        else:
            keep = st.dropout_mask(self, x, self.p, shape, scale=not self.alpha)
        if not self.alpha:
            if st is None:
                keep.div_(1.0 - self.p)
            return x * keep
        # torch's alpha dropout: x·(a·keep) + α·a·(keep − 1) + α·a·p
        a = 1.0 / math.sqrt((_ALPHA * _ALPHA * self.p + 1.0) * (1.0 - self.p))
        return x * (keep * a) + ((keep - 1.0) * (_ALPHA * a) + _ALPHA * a * self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, kind={self.kind}{', alpha' if self.alpha else ''}"


class _Scratch:
    """Per-layer values of the last passes (a plain object: cheap attribute writes)."""

    __slots__ = ("xi", "grad_out", "grad_in", "cache_key", "cache_out")

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.xi = None
        self.grad_out = None
        self.grad_in = None
        self.cache_key = None
        self.cache_out = None


def _rms(w: torch.Tensor) -> torch.Tensor:
    return w.detach().pow(2).mean().sqrt()


class FeedbackLayer:
    """Mixin with the feedback logic shared by :class:`FeedbackLinear` and :class:`FeedbackConv2d`.

    Attributes set by :func:`~bci_credit.deep.convert`: ``fb_method``, ``fb_index`` (position in
    the forward pass), ``fb_site`` (true when the layer's input is a hidden activity that receives
    feedback and, for node perturbation, noise), ``is_output`` and ``fb_input_shape`` (per sample).
    The buffer ``feedback`` holds the stored feedback matrix (``None`` where none is used).
    """

    fb_method: str = "bp"
    _fb_custom: bool = False
    _fb_stored: bool = False
    fb_index: int = -1
    fb_site: bool = False
    is_output: bool = False
    fb_input_shape: tuple = ()
    _fb_state: Optional[FeedbackState] = None

    def _init_feedback_attrs(self) -> None:
        self.register_buffer("feedback", None)
        self.register_buffer("feedback_magnitude", None)
        self._fb = _Scratch()

    # -- the matrix used in the backward pass ----------------------------------------------------
    def feedback_weight(self, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The matrix the backward pass multiplies the error by, as used right now.

        For layered methods it has ``W``'s shape; for direct methods it is ``(n_out, n_in)``
        (``n_out`` the size of the model's output, ``n_in`` that of this layer's input).
        """
        st = self._fb_state
        forced = st is not None and st.force_bp
        if self._fb_stored and not forced:  # fast path (runs in every backward): no Module.__getattr__
            B = self._buffers["feedback"]
            if B is None:
                raise RuntimeError(f"layer {self.fb_index} has no feedback matrix: it is the first layer, "
                                   "whose input does not receive an error signal")
            return B
        w = self._parameters["weight"] if weight is None else weight
        m = self.fb_method
        if m == "bp" or forced:
            return w
        if m == "usf":
            return torch.sign(w) * _rms(w)
        if m == "frsf":
            return torch.sign(w) * self.feedback_magnitude * _rms(w)
        if m == "brsf":
            gen = st.generator(w.device) if st is not None else None
            mag = torch.randn(w.shape, generator=gen, device=w.device, dtype=w.dtype).abs_()
            return torch.sign(w) * mag * _rms(w)
        if self.feedback is None:
            raise RuntimeError(f"layer {self.fb_index} has no feedback matrix: it is the first layer, "
                               "whose input does not receive an error signal")
        return self.feedback

    def _direct_input_grad(self, x_shape) -> torch.Tensor:
        st = self._fb_state
        E = st.top_error
        if E is None:
            raise RuntimeError("direct feedback needs the output error, but the output layer's backward "
                               "has not run: is the model a feed-forward chain?")
        return (E.reshape(E.shape[0], -1) @ self._buffers["feedback"]).reshape(x_shape)

    def _perturb(self, x: torch.Tensor) -> torch.Tensor:
        """Add node-perturbation noise to the input during a noisy pass (keeps ξ)."""
        st = self._fb_state
        if st is None or not st.noisy or not self.fb_site:
            return x
        if st.active_sites is not None and self.fb_index not in st.active_sites:
            self._fb.xi = None
            return x
        xi = torch.randn(x.shape, generator=st.generator(x.device), device=x.device, dtype=x.dtype)
        self._fb.xi = xi
        return x + st.noise_std * xi

    def _adopt(self, module: nn.Module) -> "FeedbackLayer":
        """Share ``module``'s parameters and training mode (the body of ``from_module``)."""
        self.weight = module.weight
        self.bias = module.bias
        self.train(module.training)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st = self._fb_state
        if st is None:
            return self._plain(x)
        if self.fb_site:
            if st.noisy:
                x = self._perturb(x)
        elif st.reuse_first:
            # the input of the first layer is the data, identical in the clean and the noisy pass:
            # the noisy pass reuses the clean output instead of recomputing it
            key = (x.data_ptr(), tuple(x.shape), x._version)
            if st.noisy and self._fb.cache_key == key:
                return self._fb.cache_out  # its own storage (see below): in-place ops on it touch nothing else
            out = self._function(x) if self._use_function(x, st) else self._plain(x)
            if st.mask_mode == "record":
                # a copy: an in-place op after this layer (ReLU(inplace=True)) changes the clean
                # output, which must neither change the cache nor be changed by the noisy pass
                self._fb.cache_key = key
                self._fb.cache_out = out.detach().clone()
            return out
        return self._function(x) if self._use_function(x, st) else self._plain(x)

    def _use_function(self, x: torch.Tensor, st: FeedbackState) -> bool:
        """Whether the custom backward is needed (else the plain, faster autograd path is exact)."""
        if not torch.is_grad_enabled():
            return False
        if st.capture:
            return True
        # BP needs nothing custom; a layer whose input needs no gradient (the first) only needs its
        # exact weight gradient, unless it is the output layer (the direct methods read its error)
        return self._fb_custom and (x.requires_grad or self.is_output)


class _LinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        layer = ctx.layer
        st = layer._fb_state
        if layer.is_output:
            st.top_error = g
        if st.capture:
            layer._fb.grad_out = g
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            # the first layer's input is data; it needs a gradient only when something trainable runs
            # before it, which convert() allows only in a model without feedback sites (exactly backprop)
            if not layer.fb_site:
                gx = g @ w
            elif st.direct and not st.force_bp:
                gx = layer._direct_input_grad(x.shape)
            else:
                gx = g @ layer.feedback_weight(w)
            if st.capture:
                layer._fb.grad_in = gx
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            if g.dim() == 2:
                g2, x2 = g, x
            else:
                g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
            if ctx.needs_input_grad[1]:
                gw = g2.t().mm(x2)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                gb = g2.sum(0)
        return gx, gw, gb, None


class FeedbackLinear(FeedbackLayer, nn.Linear):
    """``nn.Linear`` trained by a feedback method (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        nn.Linear.__init__(self, in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_feedback_attrs()

    @classmethod
    def from_module(cls, lin: nn.Linear) -> "FeedbackLinear":
        new = cls(lin.in_features, lin.out_features, bias=lin.bias is not None,
                  device=lin.weight.device, dtype=lin.weight.dtype)
        return new._adopt(lin)

    def _function(self, x: torch.Tensor) -> torch.Tensor:
        p = self._parameters
        return _LinearFn.apply(x, p["weight"], p["bias"], self)

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        p = self._parameters
        return F.linear(x, p["weight"], p["bias"])

    def extra_repr(self) -> str:
        return f"{nn.Linear.extra_repr(self)}, method={self.fb_method}"


def _conv_padding(conv: nn.Conv2d) -> tuple:
    if conv.padding_mode != "zeros":
        raise ValueError(f"FeedbackConv2d supports padding_mode='zeros' only, got {conv.padding_mode!r}")
    pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid":
            return (0, 0)
        # 'same' (stride 1): total padding dilation*(k-1), which must split evenly
        out = []
        for k, d in zip(conv.kernel_size, conv.dilation):
            tot = d * (k - 1)
            if tot % 2:
                raise ValueError("padding='same' with an even kernel is asymmetric; give numeric padding")
            out.append(tot // 2)
        return tuple(out)
    return tuple(pad)


class _ConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, layer.stride, layer._num_padding, layer.dilation, layer.groups)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        layer = ctx.layer
        st = layer._fb_state
        if layer.is_output:
            st.top_error = g
        if st.capture:
            layer._fb.grad_out = g
        need_x = bool(ctx.needs_input_grad[0])
        need_w = bool(ctx.needs_input_grad[1])
        need_b = bool(ctx.has_bias and ctx.needs_input_grad[2])
        direct = st.direct and not st.force_bp and layer.fb_site
        weight_arg = w
        if need_x and not direct and layer.fb_site:  # not a site: the exact gradient (see _LinearFn)
            weight_arg = layer.feedback_weight(w)
        gx, gw, gb = torch.ops.aten.convolution_backward(
            g, x, weight_arg, [w.shape[0]] if ctx.has_bias else None, layer.stride, layer._num_padding,
            layer.dilation, False, [0, 0], layer.groups, [need_x and not direct, need_w, need_b])
        if need_x and direct:
            gx = layer._direct_input_grad(x.shape)
        if need_x and st.capture:
            layer._fb.grad_in = gx
        return (gx if need_x else None), (gw if need_w else None), (gb if need_b else None), None


class FeedbackConv2d(FeedbackLayer, nn.Conv2d):
    """``nn.Conv2d`` trained by a feedback method (zero padding; see the module docstring)."""

    def __init__(self, *args, **kwargs):
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._num_padding = _conv_padding(self)
        self._init_feedback_attrs()

    @classmethod
    def from_module(cls, conv: nn.Conv2d) -> "FeedbackConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                  bias=conv.bias is not None, padding_mode=conv.padding_mode,
                  device=conv.weight.device, dtype=conv.weight.dtype)
        return new._adopt(conv)

    def _function(self, x: torch.Tensor) -> torch.Tensor:
        p = self._parameters
        return _ConvFn.apply(x, p["weight"], p["bias"], self)

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        p = self._parameters
        return F.conv2d(x, p["weight"], p["bias"], self.stride, self._num_padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return f"{nn.Conv2d.extra_repr(self)}, method={self.fb_method}"


def fan_in(weight: torch.Tensor) -> int:
    """Number of inputs feeding one output unit of a Linear/Conv weight."""
    return int(math.prod(weight.shape[1:]))
