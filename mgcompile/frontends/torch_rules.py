"""What each PyTorch layer and function means in the IR: the import rules, as data.

Two tables, read by :mod:`mgcompile.frontends.torch_import`:

* :data:`MODULE_RULES`: ``(name, matches(module), emit(module, site))``. A module
  a rule matches is a leaf of the trace (its ``forward`` is not traced: timm's fused
  ``BatchNormAct2d`` asserts on ``x.ndim``, DropPath would trace to nothing in eval
  mode) and becomes the IR nodes ``emit`` returns, or stays opaque when it returns
  ``None``.
* :data:`FUNCTION_RULES`: ``(name, matches(fx node), emit(node, values))`` for
  ``call_function`` / ``call_method`` nodes (``F.relu``, ``x + y``, ``x.permute``).

Tensors carry a *layout* while they are imported: ``nchw`` (the IR's own), ``nhwc``
(ConvNeXt's channels-last ``permute -> LayerNorm -> Linear -> permute``, which the IR
writes as layernorm and 1x1 convs on NCHW) and ``flat`` ((N, F), the classifier).

Every emitted parametric node says where its weights come from (``Emit.weights``:
lowered state-dict key -> the original's key, relative to the module), so a converter
copies any kept layer exactly, whatever the original class was. Nothing here is trusted
blindly: the importer checks that the imported network reproduces the original's output.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

NCHW, NHWC, FLAT = "nchw", "nhwc", "flat"


@dataclass(frozen=True)
class Value:
    """An imported tensor: the IR node holding it and its layout."""

    node: str
    layout: str


@dataclass(frozen=True)
class Site:
    """Where a module rule applies: its input's layout and channel count."""

    layout: str
    channels: int


@dataclass(frozen=True)
class Param:
    """A parameter or buffer read directly by a forward (``self.gamma``), by its path in the root module."""

    path: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class Emit:
    """One IR node a rule produces: ``suffix`` is appended to the module's name ('' = the module's own name)."""

    op: str
    attrs: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""
    weights: dict[str, str] = field(default_factory=dict)  # lowered key -> original key (relative; reshaped on copy)


def pair(v: Any) -> int | None:
    """An int from an int or a square pair; ``None`` for non-square values."""
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1] and isinstance(v[0], int):
        return v[0]
    return None


def _keys(m: nn.Module, prefix: str = "") -> dict[str, str]:
    return {k: prefix + k for k in m.state_dict()}


# ---- activations --------------------------------------------------------------------------------

def _activation_module(m: nn.Module) -> tuple[str, dict[str, Any]] | None:
    t = type(m)
    simple = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
              nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid"}
    if t in simple:
        return simple[t], {}
    if t is nn.GELU and m.approximate in ("none", "tanh"):
        return "gelu", {"approximate": m.approximate}
    if t is nn.LeakyReLU:
        return "leaky_relu", {"negative_slope": float(m.negative_slope)}
    return None


# ---- module rules -------------------------------------------------------------------------------

def _conv(m: nn.Module, site: Site) -> list[Emit] | None:
    k, s, p = pair(m.kernel_size), pair(m.stride), pair(m.padding)
    if site.layout != NCHW or None in (k, s, p) or pair(m.dilation) != 1 or m.padding_mode != "zeros":
        return None
    return [Emit("conv", dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel=k, stride=s, padding=p,
                              groups=m.groups, bias=m.bias is not None), weights=_keys(m))]


def _batchnorm(m: nn.BatchNorm2d, site: Site) -> list[Emit] | None:
    if site.layout != NCHW or not (m.affine and m.track_running_stats) or m.momentum is None:
        return None
    keys = {k: k for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    return [Emit("batchnorm", dict(channels=m.num_features, eps=float(m.eps), momentum=float(m.momentum)), weights=keys)]


def _is_norm_act(m: nn.Module) -> bool:
    """timm's fused BatchNormAct2d and kin: a BatchNorm2d subclass that applies its ``act`` (and ``drop``) after."""
    return isinstance(m, nn.BatchNorm2d) and type(m) is not nn.BatchNorm2d and isinstance(getattr(m, "act", None), nn.Module)


def _norm_act(m: nn.BatchNorm2d, site: Site) -> list[Emit] | None:
    bn = _batchnorm(m, site)
    if bn is None:
        return None
    out = list(bn)
    for part, sub in (("act", m.act), ("drop", getattr(m, "drop", None))):
        if sub is None or type(sub) is nn.Identity:
            continue
        emitted = _simple(sub, site)
        if emitted is None:
            return None
        out += [Emit(e.op, e.attrs, suffix=f".{part}") for e in emitted]
    return out


def _simple(m: nn.Module, site: Site) -> list[Emit] | None:
    """Parameter-free layers valid in any layout."""
    act = _activation_module(m)
    if act is not None:
        return [Emit(act[0], act[1])]
    if type(m) is nn.Dropout:
        return [Emit("dropout", {"p": float(m.p)})] if m.p > 0 else []
    return None


def _linear(m: nn.Linear, site: Site) -> list[Emit] | None:
    if site.layout == FLAT:
        return [Emit("linear", dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None),
                     weights=_keys(m))]
    if site.layout == NHWC:  # channels-last Linear == a 1x1 conv with bias on NCHW (ConvNeXt)
        return [Emit("conv", dict(in_channels=m.in_features, out_channels=m.out_features, kernel=1,
                                  bias=m.bias is not None), weights=_keys(m))]
    return None


def _layernorm(m: nn.LayerNorm, site: Site) -> list[Emit] | None:
    """nn.LayerNorm over the channels of a channels-last map (subclasses such as LayerNorm2d are traced)."""
    shape = tuple(m.normalized_shape)
    if site.layout != NHWC or len(shape) != 1 or not m.elementwise_affine or getattr(m, "bias", None) is None:
        return None
    return [Emit("layernorm", dict(channels=shape[0], eps=float(m.eps)), weights=_keys(m))]


def _pool(m: nn.Module, site: Site) -> list[Emit] | None:
    if site.layout != NCHW:
        return None
    if type(m) is nn.AdaptiveAvgPool2d:
        return [Emit("global_avgpool")] if pair(m.output_size) == 1 else None
    k, s, p = pair(m.kernel_size), pair(m.stride), pair(m.padding)
    if None in (k, s, p):
        return None
    if type(m) is nn.MaxPool2d:
        if m.ceil_mode or pair(m.dilation) != 1 or m.return_indices:
            return None
        return [Emit("maxpool", dict(kernel=k, stride=s, padding=p))]
    if m.divisor_override is not None:
        return None
    return [Emit("avgpool", dict(kernel=k, stride=s, padding=p, ceil_mode=bool(m.ceil_mode),
                                 count_include_pad=bool(m.count_include_pad)))]


def _drop_path_p(m: nn.Module) -> float | None:
    """timm's DropPath (``drop_prob``), mgcompile's (``p``), torchvision's StochasticDepth in row mode (``p``)."""
    name = type(m).__name__
    p = getattr(m, "drop_prob", getattr(m, "p", None))  # timm's drop_prob; mgcompile's own DropPath: p
    if name == "DropPath" and isinstance(p, (int, float)) and not isinstance(p, bool):
        return float(p) if getattr(m, "scale_by_keep", True) else None
    if name == "StochasticDepth" and getattr(m, "mode", None) == "row":
        return float(m.p)
    return None


def _drop_path(m: nn.Module, site: Site) -> list[Emit] | None:
    p = _drop_path_p(m)
    if p is None:
        return None
    return [] if p == 0.0 else [Emit("drop_path", {"p": p})]


def _is_eca(m: nn.Module) -> bool:
    """timm's EcaModule with one plain 1-D conv (odd kernel, no bias, same padding) and a sigmoid gate."""
    conv = getattr(m, "conv", None)
    return (type(m).__name__ == "EcaModule" and isinstance(conv, nn.Conv1d) and getattr(m, "conv2", None) is None
            and type(getattr(m, "gate", None)).__name__ == "Sigmoid" and conv.bias is None and conv.in_channels == 1
            and conv.out_channels == 1 and conv.kernel_size[0] % 2 == 1 and conv.padding[0] == conv.kernel_size[0] // 2
            and conv.padding_mode == "zeros" and conv.stride[0] == 1 and conv.dilation[0] == 1)


def _eca(m: nn.Module, site: Site) -> list[Emit] | None:
    """ECA over a map's channels (the module does not store its width: the input's)."""
    if site.layout != NCHW:
        return None
    return [Emit("eca", {"channels": site.channels, "kernel": m.conv.kernel_size[0]},
                 weights={"conv.weight": "conv.weight"})]


def _flatten(m: nn.Flatten, site: Site) -> list[Emit] | None:
    return [Emit("flatten")] if site.layout == NCHW and m.start_dim == 1 and m.end_dim == -1 else None


ModuleRule = tuple[str, Callable[[nn.Module], bool], Callable[[Any, "Site"], "list[Emit] | None"]]

#: (rule name, matches(module), emit(module, site) -> IR nodes, [] for an identity, None: keep opaque)
MODULE_RULES: list[ModuleRule] = [
    ("conv2d", lambda m: type(m) is nn.Conv2d, _conv),
    ("batchnorm2d", lambda m: type(m) is nn.BatchNorm2d, _batchnorm),
    ("norm+act", _is_norm_act, _norm_act),
    ("activation/dropout", lambda m: _simple(m, Site(NCHW, 0)) is not None, _simple),
    ("linear", lambda m: type(m) is nn.Linear, _linear),
    ("layernorm", lambda m: type(m) is nn.LayerNorm, _layernorm),
    ("pool", lambda m: type(m) in (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d), _pool),
    ("drop_path", lambda m: _drop_path_p(m) is not None, _drop_path),
    ("eca", _is_eca, _eca),
    ("flatten", lambda m: type(m) is nn.Flatten, _flatten),
    ("identity", lambda m: type(m) is nn.Identity, lambda m, site: []),
]


def module_rule(m: nn.Module) -> ModuleRule | None:
    return next((r for r in MODULE_RULES if r[1](m)), None)


def forced_leaf(m: nn.Module) -> bool:
    """Modules outside ``torch.nn`` that must not be traced into (see the module docstring)."""
    return _is_norm_act(m) or _drop_path_p(m) is not None or _is_eca(m)


# ---- function rules -----------------------------------------------------------------------------

Shapes = Callable[[Any], "tuple[int, ...] | None"]


@dataclass
class Call:
    """What a rule sees of one fx call: its node, a shape lookup and the imported values of its arguments."""

    node: fx.Node
    shape: Shapes
    values: dict[fx.Node, Any]

    def arg(self, i: int, key: str, default: Any = None) -> Any:
        if len(self.node.args) > i:
            return self.node.args[i]
        return self.node.kwargs.get(key, default)

    def value(self, v: Any) -> Any:
        return self.values.get(v) if isinstance(v, fx.Node) else None

    def tensor(self, i: int = 0, key: str = "input") -> Value | None:
        v = self.value(self.arg(i, key))
        return v if isinstance(v, Value) else None


@dataclass
class Result:
    """A function rule's answer: an IR op on tensor inputs, or a value passed through (permute, reshape)."""

    op: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    inputs: list[Value] = field(default_factory=list)
    layout: str | None = None  # the output layout; default: the first input's
    passthrough: Any = None  # a Value or Param that the call only relabels
    weights: dict[str, str] = field(default_factory=dict)  # lowered key -> absolute original key (reshaped on copy)


def _is(node: fx.Node, functions: Sequence[Any] = (), methods: Sequence[str] = ()) -> bool:
    if node.op == "call_function":
        return any(node.target is f for f in functions)
    return node.op == "call_method" and node.target in methods


_ACT_FUNCTIONS: list[tuple[str, Sequence[Any], Sequence[str]]] = [
    ("relu", (F.relu, torch.relu, torch.relu_), ("relu", "relu_")),
    ("relu6", (F.relu6,), ()),
    ("silu", (F.silu,), ()),
    ("hardswish", (F.hardswish,), ()),
    ("hardsigmoid", (F.hardsigmoid,), ()),
    ("sigmoid", (torch.sigmoid, F.sigmoid), ("sigmoid", "sigmoid_")),
]


def _activation_call(c: Call) -> Result | None:
    x = c.tensor()
    if x is None:
        return None
    for op, functions, methods in _ACT_FUNCTIONS:
        if _is(c.node, functions, methods):
            return Result(op, inputs=[x])
    if _is(c.node, (F.gelu,)) and c.node.kwargs.get("approximate", "none") in ("none", "tanh"):
        return Result("gelu", {"approximate": c.node.kwargs.get("approximate", "none")}, [x])
    if _is(c.node, (F.leaky_relu,)):
        return Result("leaky_relu", {"negative_slope": float(c.arg(1, "negative_slope", 0.01))}, [x])
    return None


def _arith(c: Call) -> Result | None:
    n = c.node
    if "alpha" in n.kwargs or len(n.args) != 2:
        return None
    a, b = c.value(n.args[0]), c.value(n.args[1])
    if _is(n, (operator.mul, operator.imul, torch.mul), ("mul", "mul_")):
        return _product(c, a, b)
    if not (isinstance(a, Value) and isinstance(b, Value)) or a.layout != b.layout or c.shape(n.args[0]) != c.shape(n.args[1]):
        return None
    if _is(n, (operator.add, operator.iadd, torch.add), ("add", "add_")):
        return Result("add", inputs=[a, b])
    if _is(n, (operator.sub, operator.isub, torch.sub), ("sub", "sub_")):
        return Result("sub", inputs=[a, b])
    return None


def _product(c: Call, a: Any, b: Any) -> Result | None:
    """x * y (equal shapes, or a per-channel gate: squeeze-excitation) or x * param (layer scale)."""
    if isinstance(a, Param) and isinstance(b, Value):
        a, b = b, a
    if isinstance(a, Value) and isinstance(b, Param):
        channels = _channels(c, a)
        if channels is None or b.numel != channels:
            return None
        return Result("layer_scale", {"channels": channels}, [a], weights={"gamma": b.path})
    if not (isinstance(a, Value) and isinstance(b, Value)) or a.layout != b.layout:
        return None
    sa, sb = c.shape(c.node.args[0]), c.shape(c.node.args[1])
    if sa is None or sb is None:
        return None
    if sa == sb:
        return Result("mul", inputs=[a, b])
    if a.layout == NCHW and len(sa) == len(sb) == 4 and sa[:2] == sb[:2]:
        if sb[2:] == (1, 1):
            return Result("mul", inputs=[a, b])
        if sa[2:] == (1, 1):
            return Result("mul", inputs=[b, a])
    return None


def _channels(c: Call, v: Value) -> int | None:
    shape = c.shape(next(a for a in c.node.args if c.value(a) is v))
    if shape is None or len(shape) != 4:
        return None
    return shape[1] if v.layout == NCHW else shape[3]


def _dims(c: Call) -> tuple[int, ...] | None:
    n = c.node
    rest = n.args[1:] if n.op == "call_method" else ()
    if n.op == "call_method":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
        dims = dims or n.kwargs.get("dims", ())
    else:
        dims = c.arg(1, "dims", ())
    return tuple(int(d) % 4 for d in dims) if dims and all(isinstance(d, int) for d in dims) else None


def _permute(c: Call) -> Result | None:
    x = c.tensor()
    if x is None:
        return None
    dims = _dims(c)
    if x.layout == NCHW and dims == (0, 2, 3, 1):
        return Result(passthrough=Value(x.node, NHWC))
    if x.layout == NHWC and dims == (0, 3, 1, 2):
        return Result(passthrough=Value(x.node, NCHW))
    return None


def _reshape(c: Call) -> Result | None:
    """view/reshape/flatten: a parameter keeps its identity; (N, C, 1, 1) or (N, C, H, W) -> (N, F) is a flatten."""
    n = c.node
    src = c.value(n.args[0]) if n.args else None
    if isinstance(src, Param):
        return Result(passthrough=src)
    if not isinstance(src, Value) or src.layout != NCHW:
        return None
    if _is(n, (torch.flatten,), ("flatten",)):
        ok = c.arg(1, "start_dim", 0) == 1 and c.arg(2, "end_dim", -1) == -1
        return Result("flatten", inputs=[src], layout=FLAT) if ok else None
    out, inp = c.shape(n), c.shape(n.args[0])
    if out is not None and inp is not None and len(out) == 2 and out[0] == inp[0]:
        return Result("flatten", inputs=[src], layout=FLAT)
    return None


def _mean(c: Call) -> Result | None:
    x = c.tensor()
    dims = c.arg(1, "dim", None)
    if x is None or x.layout != NCHW or not isinstance(dims, (tuple, list)) or sorted(d % 4 for d in dims) != [2, 3]:
        return None
    if bool(c.arg(2, "keepdim", False)):
        return Result("global_avgpool", inputs=[x])
    return Result("global_avgpool+flatten", inputs=[x], layout=FLAT)


def _pool_call(c: Call) -> Result | None:
    x, t = c.tensor(), c.node.target
    if x is None or x.layout != NCHW:
        return None
    if t is F.adaptive_avg_pool2d:
        return Result("global_avgpool", inputs=[x]) if pair(c.arg(1, "output_size")) == 1 else None
    k = pair(c.arg(1, "kernel_size"))
    s = c.arg(2, "stride")
    s = k if s is None or s == [] or s == () else pair(s)
    p = pair(c.arg(3, "padding", 0))
    if None in (k, s, p):
        return None
    if t is F.max_pool2d:
        if c.arg(5, "ceil_mode", False) or pair(c.arg(4, "dilation", 1)) != 1 or c.arg(6, "return_indices", False):
            return None
        return Result("maxpool", dict(kernel=k, stride=s, padding=p), [x])
    if c.arg(6, "divisor_override") is not None:
        return None
    return Result("avgpool", dict(kernel=k, stride=s, padding=p, ceil_mode=bool(c.arg(4, "ceil_mode", False)),
                                  count_include_pad=bool(c.arg(5, "count_include_pad", True))), [x])


def _cat(c: Call) -> Result | None:
    parts = c.arg(0, "tensors", [])
    values = [c.value(p) for p in parts]
    if c.arg(1, "dim", 0) not in (1, -3) or len(parts) < 2:
        return None
    if not all(isinstance(v, Value) and v.layout == NCHW for v in values):
        return None
    return Result("concat", inputs=values)


def _layer_norm(c: Call) -> Result | None:
    """F.layer_norm over the channels of a channels-last map, with direct parameters (LayerNorm2d's forward)."""
    x = c.tensor()
    shape, w, b = c.arg(1, "normalized_shape"), c.value(c.arg(2, "weight")), c.value(c.arg(3, "bias"))
    if x is None or x.layout != NHWC or not isinstance(w, Param) or not isinstance(b, Param):
        return None
    if not isinstance(shape, (tuple, list)) or not isinstance(c.arg(4, "eps", 1e-5), (int, float)):
        return None  # computed at run time: keep the layer opaque
    channels = _channels(c, x)
    if channels is None or tuple(shape or ()) != (channels,):
        return None
    return Result("layernorm", {"channels": channels, "eps": float(c.arg(4, "eps", 1e-5))}, [x],
                  weights={"weight": w.path, "bias": b.path})


def _dropout(c: Call) -> Result | None:
    x, p = c.tensor(), c.arg(1, "p", 0.5)
    if x is None or not isinstance(p, (int, float)):
        return None
    return Result("dropout", {"p": float(p)}, [x]) if p > 0 else Result(passthrough=x)


def _linear_call(c: Call) -> Result | None:
    """F.linear(x, weight, bias) with direct parameters (timm's Linear subclass) on a flat input."""
    x, w, b = c.tensor(), c.value(c.arg(1, "weight")), c.value(c.arg(2, "bias"))
    if x is None or x.layout != FLAT or not isinstance(w, Param) or len(w.shape) != 2:
        return None
    if b is not None and not isinstance(b, Param):
        return None
    weights = {"weight": w.path, **({"bias": b.path} if b is not None else {})}
    return Result("linear", dict(in_features=w.shape[1], out_features=w.shape[0], bias=b is not None), [x],
                  weights=weights)


def _stochastic_depth(c: Call) -> Result | None:
    x, p = c.tensor(), c.arg(1, "p")
    if x is None or c.arg(2, "mode") != "row" or not isinstance(p, (int, float)):
        return None
    p = float(p)
    return Result(passthrough=x) if p == 0.0 else Result("drop_path", {"p": p}, [x])


def _identity(c: Call) -> Result | None:
    src = c.value(c.node.args[0]) if c.node.args else None
    return Result(passthrough=src) if src is not None else None


def _stochastic_depth_fn() -> Any:
    try:
        from torchvision.ops import stochastic_depth
    except ImportError:  # torchvision is optional here
        return None
    return stochastic_depth


FunctionRule = tuple[str, Callable[[fx.Node], bool], Callable[[Call], "Result | None"]]

#: (rule name, matches(fx node), emit(call) -> Result or None: the IR cannot model this call)
FUNCTION_RULES: list[FunctionRule] = [
    ("activation", lambda n: any(_is(n, f, m) for _, f, m in _ACT_FUNCTIONS) or _is(n, (F.gelu, F.leaky_relu)),
     _activation_call),
    ("arithmetic", lambda n: _is(n, (operator.add, operator.iadd, torch.add, operator.sub, operator.isub, torch.sub,
                                     operator.mul, operator.imul, torch.mul),
                                 ("add", "add_", "sub", "sub_", "mul", "mul_")), _arith),
    ("permute", lambda n: _is(n, (torch.permute,), ("permute",)), _permute),
    ("reshape", lambda n: _is(n, (torch.flatten, torch.reshape), ("flatten", "view", "reshape")), _reshape),
    ("mean", lambda n: _is(n, (torch.mean,), ("mean",)), _mean),
    ("pool", lambda n: _is(n, (F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d)), _pool_call),
    ("cat", lambda n: _is(n, (torch.cat,)), _cat),
    ("layer_norm", lambda n: _is(n, (F.layer_norm,)), _layer_norm),
    ("dropout", lambda n: _is(n, (F.dropout,)), _dropout),
    ("linear", lambda n: _is(n, (F.linear,)), _linear_call),
    ("stochastic_depth", lambda n: _stochastic_depth_fn() is not None and _is(n, (_stochastic_depth_fn(),)),
     _stochastic_depth),
    ("identity", lambda n: _is(n, (), ("contiguous",)), _identity),
]


def function_rule(node: fx.Node) -> FunctionRule | None:
    return next((r for r in FUNCTION_RULES if r[1](node)), None)
