"""The IR's node vocabulary: every op kind and every fact about it, in one table.

Each :class:`OpDef` of :data:`OPS` says

* which attributes the op takes and their types (checked by ``verify``),
* how many inputs it takes,
* how its output shape (channels, height, width) follows from its inputs,
* how many parameters and multiply-accumulates (MACs) it costs,
* whether it holds parameters (``param_kind``: the audit's breakdown; ``None``: none),
  which attributes are channel widths, and how it is re-instantiated on a narrower MG
  level (``scale``; ``None``: an op that cannot live inside a cycled step body),
* the elementwise group ``--count`` may add to the MACs (also how norms and activations
  are recognised),
* the structural facts passes read instead of lists of op names: ``grouped`` (its
  ``groups`` must divide its widths), ``permutation_side`` (the channels its fixed
  permutation permutes), ``absorbs_bn`` (a BN after it folds into it), ``in_body`` (may
  be a node of a step template), ``io`` (a graph boundary) and ``zero_init_through``
  (a branch scale the zero-init looks through), and
* the key of its lowering: every backend implements every key (a test checks it).

Two ops are *macros* (``residual``, ``transition``): high-level steps that the
frontends emit and that passes expand into primitive ops. A ``residual`` step carries
its *body* as data (a small template subgraph, see :mod:`mgcompile.ir.body`; its shape
rule, :func:`infer_step`, lives here so that ``ir.body`` imports this module and never
the reverse). Costs are only defined for primitives; count after expansion.

This module knows nothing of torch: the backends give each op its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from mgcompile.errors import GraphError, InputTooSmall

Shape = tuple[int, int, int]  # (channels, height, width) of one sample


@dataclass(frozen=True)
class Attr:
    """A typed attribute; ``required`` ones have no default."""

    type: type | tuple[type, ...]
    default: Any = None
    required: bool = False


def req(t: type | tuple[type, ...]) -> Attr:
    return Attr(t, required=True)


def opt(t: type | tuple[type, ...], default: Any) -> Attr:
    return Attr(t, default)


class Level(Protocol):
    """What an op needs to re-instantiate itself on an MG level (see ``ir.body.LevelScale``)."""

    groups: int  # the level's conv groups: C_j / s_g on fine levels, 1 on the coarsest

    def width(self, channels: int) -> int: ...


Scale = Callable[[Mapping[str, Any], Level], dict[str, Any]]


def _keep(a: Mapping[str, Any], level: Level) -> dict[str, Any]:
    return dict(a)


def _widths(*names: str) -> Scale:
    def scale(a: Mapping[str, Any], level: Level) -> dict[str, Any]:
        return {**a, **{n: level.width(a[n]) for n in names}}

    return scale


@dataclass(frozen=True)
class OpDef:
    name: str
    attrs: Mapping[str, Attr]
    arity: tuple[int, int | None]  # (min, max) number of inputs; max None = variadic
    infer: Callable[[Mapping[str, Any], Sequence[Shape]], Shape]
    lowering: str  # the backend key
    params: Callable[[Mapping[str, Any]], int] = lambda a: 0
    macs: Callable[[Mapping[str, Any], Sequence[Shape], Shape], int] = lambda a, i, o: 0
    param_kind: str | None = None  # conv / transfer / norm / linear / attention / scale / opaque; None: no parameters
    widths: tuple[str, ...] = ()  # attributes that are channel widths
    scale: Scale | None = _keep  # how the op is re-instantiated on an MG level; None: it cannot be
    count_group: str | None = None  # elementwise group for `audit --count` (also: which ops are norms, activations)
    macro: bool = False
    grouped: bool = False  # has ``groups``, which must divide in_channels and out_channels (verify, plan_cycle)
    permutation_side: str | None = None  # its ``permutation`` attribute permutes its "in" or "out" channels
    absorbs_bn: bool = False  # a BN right after it folds into its weights and a bias (fold_batchnorm)
    in_body: bool = True  # may be a node of a residual step's template (input, output, opaque, macros: no)
    io: bool = False  # a graph boundary (input, output), not a layer: audits list no row for it
    zero_init_through: bool = False  # scales a branch: zero_init_residual looks through it for the branch's last BN
    doc: str = ""

    @property
    def parametric(self) -> bool:
        """Lowered to a module (its node name becomes a module path)."""
        return self.param_kind is not None


def _spatial(size: int, kernel: int, stride: int, padding: int) -> int:
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise InputTooSmall(f"spatial size {size} is too small for kernel {kernel}, stride {stride}, padding {padding}")
    return out


def _one(a: Mapping[str, Any], shapes: Sequence[Shape]) -> Shape:
    return shapes[0]


def _expect_channels(op: str, shape: Shape, channels: int) -> None:
    if shape[0] != channels:
        raise GraphError(f"{op} expects {channels} input channels, got {shape[0]}")


def _channelwise(op: str) -> Callable[[Mapping[str, Any], Sequence[Shape]], Shape]:
    def infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
        _expect_channels(op, s[0], a["channels"])
        return s[0]

    return infer


def _conv_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("conv", s[0], a["in_channels"])
    k, st, p = a["kernel"], a["stride"], a["padding"]
    return (a["out_channels"], _spatial(s[0][1], k, st, p), _spatial(s[0][2], k, st, p))


def _conv_params(a: Mapping[str, Any]) -> int:
    w = a["out_channels"] * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2
    return w + (a["out_channels"] if a["bias"] else 0)


def _conv_macs(a: Mapping[str, Any], s: Sequence[Shape], o: Shape) -> int:
    return o[0] * o[1] * o[2] * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2


def _conv_scale(a: Mapping[str, Any], level: Level) -> dict[str, Any]:
    """A conv on a level: widths scaled; depth-wise stays depth-wise; a dense conv takes the level's groups;
    a conv with its own groups (ResNeXt cardinality) keeps them where they exceed the level's, at most depth-wise."""
    cin, cout = level.width(a["in_channels"]), level.width(a["out_channels"])
    g = a["groups"]
    if g > 1 and g == a["in_channels"] == a["out_channels"]:
        groups = cin
    elif g == 1:
        groups = level.groups
    else:
        groups = max(level.groups, min(g, cin))
    return {**a, "in_channels": cin, "out_channels": cout, "groups": groups}


def _transfer_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("transfer", s[0], a["in_channels"])
    return (a["out_channels"], s[0][1], s[0][2])


def _transfer_params(a: Mapping[str, Any]) -> int:
    return a["out_channels"] * (a["in_channels"] // a["groups"]) + (a["out_channels"] if a.get("bias") else 0)


def _transfer_macs(a: Mapping[str, Any], s: Sequence[Shape], o: Shape) -> int:
    return o[0] * o[1] * o[2] * (a["in_channels"] // a["groups"])


def _same(op: str) -> Callable[[Mapping[str, Any], Sequence[Shape]], Shape]:
    def infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
        if any(x != s[0] for x in s):
            raise GraphError(f"{op} inputs must have equal shapes, got {list(s)}")
        return s[0]

    return infer


def _concat_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    if any(x[1:] != s[0][1:] for x in s):
        raise GraphError(f"concat inputs must share H,W, got {list(s)}")
    return (sum(x[0] for x in s), s[0][1], s[0][2])


def _pool_size(size: int, a: Mapping[str, Any]) -> int:
    k, st, p = a["kernel"], a["stride"], a["padding"]
    if not a.get("ceil_mode"):
        return _spatial(size, k, st, p)
    out = -(-(size + 2 * p - k) // st) + 1  # PyTorch's ceil mode: a last window may start in the input or left padding
    if (out - 1) * st >= size + p:
        out -= 1
    if out < 1:
        raise InputTooSmall(f"spatial size {size} is too small for kernel {k}, stride {st}, padding {p}")
    return out


def _pool_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    return (s[0][0], _pool_size(s[0][1], a), _pool_size(s[0][2], a))


def _broadcast_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    x, y = s
    if x == y or (y == (x[0], 1, 1)):
        return x
    if x == (y[0], 1, 1):
        return y
    raise GraphError(f"mul multiplies equal shapes or a map by a per-channel (C, 1, 1) tensor, got {x} and {y}")


def _linear_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    if s[0] != (a["in_features"], 1, 1):
        raise GraphError(f"linear expects a flat input of {a['in_features']} features, got shape {s[0]}")
    return (a["out_features"], 1, 1)


def _se_params(a: Mapping[str, Any]) -> int:
    c, s = a["channels"], a["squeeze"]
    return 2 * c * s + c + s  # reduce and expand 1x1 convs with biases


def _se_macs(a: Mapping[str, Any], s: Sequence[Shape], o: Shape) -> int:
    return 2 * a["channels"] * a["squeeze"]  # on the pooled 1x1 map


#: Names a step template's nodes read for the step input and (in ``post``) the residual sum (see ``ir.body``).
STEP_INPUT = "x"
SUM = "sum"


def _infer_part(nodes: Sequence[Mapping[str, Any]], shapes: dict[str, Shape]) -> Shape | None:
    out = None
    for n in nodes:
        try:
            out = opdef(n["op"]).infer(n["attrs"], [shapes[i] for i in n["inputs"]])
        except GraphError as exc:
            raise type(exc)(f"step node {n['name']!r}: {exc}") from None
        shapes[n["name"]] = out
    return out


def infer_step(a: Mapping[str, Any], in_shapes: Sequence[Shape]) -> Shape:
    """Output shape of a residual step: its template nodes' shape rules, in order."""
    shapes: dict[str, Shape] = {STEP_INPUT: in_shapes[0]}
    out = _infer_part(a["body"], shapes)
    assert out is not None
    if a["sum"] == "none":
        if len(in_shapes) > 1:
            raise GraphError("a step without a residual sum cannot take a correction input")
        return out
    short = _infer_part(a["shortcut"], shapes) or in_shapes[0]
    for s in (short, *in_shapes[1:]):
        if s != out:
            raise GraphError(f"the residual sum adds shapes {s} and {out}; the shortcut must match the body")
    shapes[SUM] = out
    return _infer_part(a["post"], shapes) or out


def _residual_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("residual", s[0], a["in_channels"])
    return infer_step(a, s)


def _transition_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("transition", s[0], a["in_channels"])
    c, h, w = s[0]
    if a["mode"] == "paper":  # 2x2 average pooling; ceil_mode keeps an odd size's last row (7 -> 4, as a strided conv)
        pool = {"kernel": 2, "stride": 2, "padding": 0, "ceil_mode": a.get("ceil_mode", False)}
        return (2 * c, _pool_size(h, pool), _pool_size(w, pool))
    return (2 * c, _spatial(h, 3, 2, 1), _spatial(w, 3, 2, 1))


def _opaque_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    return tuple(a["out_shape"])  # type: ignore[return-value]


def _activation(name: str, doc: str, **attrs: Attr) -> OpDef:
    return OpDef(name, attrs, (1, 1), _one, lowering=name, count_group="activation", doc=doc)


INT = int
_ops: list[OpDef] = [
    OpDef("input", {"channels": req(INT), "height": req(INT), "width": req(INT)}, (0, 0),
          lambda a, s: (a["channels"], a["height"], a["width"]), lowering="input", scale=None, in_body=False, io=True,
          doc="the network input"),
    OpDef("output", {}, (1, 1), lambda a, s: s[0], lowering="output", scale=None, in_body=False, io=True,
          doc="the network output"),
    OpDef("conv", {"in_channels": req(INT), "out_channels": req(INT), "kernel": req(INT),
                   "stride": opt(INT, 1), "padding": opt(INT, 0), "groups": opt(INT, 1), "bias": opt(bool, False)},
          (1, 1), _conv_infer, "conv", _conv_params, _conv_macs, param_kind="conv",
          widths=("in_channels", "out_channels"), scale=_conv_scale, grouped=True, absorbs_bn=True,
          doc="2-D convolution, square kernel, grouped when groups > 1 (also ConvNeXt's channels-last Linear)"),
    OpDef("batchnorm", {"channels": req(INT), "eps": opt(float, 1e-5), "momentum": opt(float, 0.1)},
          (1, 1), _channelwise("batchnorm"), "batchnorm", lambda a: 2 * a["channels"], param_kind="norm",
          widths=("channels",), scale=_widths("channels"), count_group="norm", doc="batch normalisation (affine)"),
    OpDef("layernorm", {"channels": req(INT), "eps": opt(float, 1e-6)},
          (1, 1), _channelwise("layernorm"), "layernorm", lambda a: 2 * a["channels"], param_kind="norm",
          widths=("channels",), scale=_widths("channels"), count_group="norm",
          doc="layer normalisation over the channels of each pixel (ConvNeXt's LayerNorm2d; on a level: its channels)"),
    _activation("relu", "ReLU"),
    _activation("relu6", "ReLU6 (MobileNetV2)"),
    _activation("silu", "SiLU / Swish (EfficientNet)"),
    _activation("gelu", "GELU (ConvNeXt); approximate 'none' or 'tanh'", approximate=opt(str, "none")),
    _activation("hardswish", "Hardswish (MobileNetV3)"),
    _activation("hardsigmoid", "Hardsigmoid"),
    _activation("sigmoid", "Sigmoid"),
    _activation("leaky_relu", "LeakyReLU", negative_slope=opt(float, 0.01)),
    OpDef("squeeze_excite", {"channels": req(INT), "squeeze": req(INT), "activation": opt(str, "relu"),
                             "gate": opt(str, "sigmoid")},
          (1, 1), _channelwise("squeeze_excite"), "squeeze_excite", _se_params, _se_macs, param_kind="attention",
          widths=("channels", "squeeze"), scale=_widths("channels", "squeeze"), zero_init_through=True,
          doc="channel attention: x * gate(expand(act(reduce(mean_hw(x))))); reduce/expand are dense 1x1 convs with "
              "bias (on a level: dense over the level's channels)"),
    OpDef("eca", {"channels": req(INT), "kernel": req(INT)}, (1, 1), _channelwise("eca"), "eca",
          lambda a: a["kernel"], lambda a, s, o: a["channels"] * a["kernel"], param_kind="attention",
          widths=("channels",), scale=_widths("channels"),
          doc="efficient channel attention (ECA-Net): x * sigmoid(conv1d_k(mean_hw(x)) over the channel axis); "
              "on a level: over the level's channels, the same kernel"),
    OpDef("layer_scale", {"channels": req(INT), "init": opt(float, 1e-6)},
          (1, 1), _channelwise("layer_scale"), "layer_scale", lambda a: a["channels"], param_kind="scale",
          widths=("channels",), scale=_widths("channels"), zero_init_through=True,
          doc="learned per-channel scale (ConvNeXt)"),
    OpDef("drop_path", {"p": req(float)}, (1, 1), _one, "drop_path", zero_init_through=True,
          doc="stochastic depth: drop the whole branch per sample with probability p in training (identity in eval)"),
    OpDef("add", {}, (2, None), _same("add"), "add", count_group="add", doc="elementwise sum"),
    OpDef("sub", {}, (2, 2), _same("sub"), "sub", count_group="add", doc="elementwise difference a - b"),
    OpDef("mul", {}, (2, 2), _broadcast_infer, "mul", count_group="add",
          doc="elementwise product, or a map times a per-channel (C, 1, 1) gate (what an imported attention "
              "layer multiplies by before it is recognised)"),
    OpDef("concat", {}, (2, None), _concat_infer, "concat", scale=None, doc="concatenation along channels"),
    OpDef("restrict", {"in_channels": req(INT), "out_channels": req(INT), "groups": req(INT),
                       "permutation": opt((list, type(None)), None), "bias": opt(bool, False)},
          (1, 1), _transfer_infer, "restrict", _transfer_params, _transfer_macs, param_kind="transfer",
          widths=("in_channels", "out_channels"), scale=None, grouped=True, permutation_side="in",
          doc="MG restriction R: optional fixed channel permutation, then a grouped 1x1 conv (fine -> coarse)"),
    OpDef("prolong", {"in_channels": req(INT), "out_channels": req(INT), "groups": req(INT),
                      "permutation": opt((list, type(None)), None), "bias": opt(bool, False)},
          (1, 1), _transfer_infer, "prolong", _transfer_params, _transfer_macs, param_kind="transfer",
          widths=("in_channels", "out_channels"), scale=None, grouped=True, permutation_side="out", absorbs_bn=True,
          doc="MG prolongation P: a grouped 1x1 conv (coarse -> fine; with a bias once the BN after it is folded), "
              "then the inverse permutation"),
    OpDef("avgpool", {"kernel": req(INT), "stride": req(INT), "padding": opt(INT, 0), "ceil_mode": opt(bool, False),
                      "count_include_pad": opt(bool, True)}, (1, 1), _pool_infer,
          "avgpool", scale=None, count_group="pool",
          doc="average pooling (zero padding counted unless count_include_pad is false; ceil_mode as PyTorch: "
              "ResNet-D's shortcut)"),
    OpDef("maxpool", {"kernel": req(INT), "stride": req(INT), "padding": opt(INT, 0)}, (1, 1), _pool_infer,
          "maxpool", scale=None, count_group="pool", doc="max pooling"),
    OpDef("global_avgpool", {}, (1, 1), lambda a, s: (s[0][0], 1, 1), "global_avgpool", scale=None,
          count_group="pool", doc="mean over H,W"),
    OpDef("flatten", {}, (1, 1), lambda a, s: (s[0][0] * s[0][1] * s[0][2], 1, 1), "flatten", scale=None,
          doc="(C, H, W) -> (C*H*W, 1, 1)"),
    OpDef("dropout", {"p": req(float)}, (1, 1), _one, "dropout", doc="dropout (identity in eval mode)"),
    OpDef("linear", {"in_features": req(INT), "out_features": req(INT), "bias": opt(bool, True)},
          (1, 1), _linear_infer, "linear",
          lambda a: a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0),
          lambda a, s, o: a["in_features"] * a["out_features"], param_kind="linear",
          widths=("in_features", "out_features"), scale=None, doc="fully connected layer on a flat input"),
    OpDef("opaque", {"target": req(str), "out_shape": req(list), "params": opt(INT, 0), "macs": opt(INT, 0)},
          (1, None), _opaque_infer, "opaque", lambda a: a["params"], lambda a, s, o: a["macs"], param_kind="opaque",
          scale=None, in_body=False, doc="a layer the IR does not model; lowers back to the original module"),
    # --- macros, expanded by passes -------------------------------------------------------------
    OpDef("residual", {"kind": req(str), "in_channels": req(INT), "out_channels": req(INT), "stride": opt(INT, 1),
                       "body": req(list), "shortcut": opt(list, []), "sum": opt(str, "add"), "post": opt(list, []),
                       "params": opt(dict, {})},
          (1, 2), _residual_infer, "macro", scale=None, macro=True, in_body=False,
          doc="one residual step: post(sum(shortcut(x), body(x)[, extra])); body, shortcut and post are template "
              "subgraphs (ir.body); an optional second input is added into the sum (the additive cycle); "
              "sum 'none' is a plain step without shortcut; kind and params name the template it came from"),
    OpDef("transition", {"mode": req(str), "in_channels": req(INT), "ceil_mode": opt(bool, False)}, (1, 1),
          _transition_infer, "macro", scale=None, macro=True, in_body=False,
          doc="MG channel-doubling downsampling step (paper: concat+avgpool, dw_stride: strided dw conv); "
              "ceil_mode: the paper pool's last window covers an odd size's last row and column, so the output is "
              "ceil(H/2) x ceil(W/2) like the strided step it replaces"),
]

OPS: dict[str, OpDef] = {op.name: op for op in _ops}
LOWERINGS: frozenset[str] = frozenset(op.lowering for op in _ops if not op.macro)


def opdef(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise GraphError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None


def normalize_attrs(op: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and type-check ``attrs`` against the op's schema."""
    d = opdef(op)
    unknown = set(attrs) - set(d.attrs)
    if unknown:
        raise GraphError(f"op {op} has no attribute(s) {', '.join(sorted(unknown))}; it takes {', '.join(d.attrs)}")
    out: dict[str, Any] = {}
    for name, spec in d.attrs.items():
        if name in attrs:
            value = attrs[name]
        elif spec.required:
            raise GraphError(f"op {op} needs attribute {name!r}")
        else:
            value = spec.default
            if isinstance(value, (list, dict)):
                value = type(value)(value)  # never share a mutable default
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, tuple):
            value = list(value)
        ok_types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
        if not isinstance(value, ok_types) or (isinstance(value, bool) and bool not in ok_types):
            raise GraphError(f"op {op} attribute {name!r} must be {spec.type}, got {value!r}")
        out[name] = value
    return out
