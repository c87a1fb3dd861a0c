"""The IR's node vocabulary: every op kind, its typed attributes, shape rule and cost.

One table, :data:`OPS`, is the whole vocabulary. Each :class:`OpDef` says

* which attributes the op takes and their types (checked by ``verify``),
* how many inputs it takes,
* how its output shape (channels, height, width) follows from its inputs,
* how many parameters and multiply-accumulates (MACs) it costs.

Two ops are *macros* (``residual``, ``transition``): high-level steps that the
frontends emit and that passes expand into primitive ops. Costs are only defined for
primitives; count after expansion.

This module knows nothing of torch: the backends give each op its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from mgcompile.errors import GraphError, InputTooSmall

Shape = tuple[int, int, int]  # (channels, height, width) of one sample


@dataclass(frozen=True)
class Attr:
    """A typed attribute. ``default`` of ``REQUIRED`` means the attribute must be given."""

    type: type | tuple[type, ...]
    default: Any = None
    required: bool = False


def req(t: type | tuple[type, ...]) -> Attr:
    return Attr(t, required=True)


def opt(t: type | tuple[type, ...], default: Any) -> Attr:
    return Attr(t, default)


@dataclass(frozen=True)
class OpDef:
    name: str
    attrs: Mapping[str, Attr]
    arity: tuple[int, int | None]  # (min, max) number of inputs; max None = variadic
    infer: Callable[[Mapping[str, Any], Sequence[Shape]], Shape]
    params: Callable[[Mapping[str, Any]], int] = lambda a: 0
    macs: Callable[[Mapping[str, Any], Sequence[Shape], Shape], int] = lambda a, i, o: 0
    macro: bool = False
    doc: str = ""


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


def _conv_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("conv", s[0], a["in_channels"])
    k, st, p = a["kernel"], a["stride"], a["padding"]
    return (a["out_channels"], _spatial(s[0][1], k, st, p), _spatial(s[0][2], k, st, p))


def _conv_params(a: Mapping[str, Any]) -> int:
    w = a["out_channels"] * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2
    return w + (a["out_channels"] if a["bias"] else 0)


def _conv_macs(a: Mapping[str, Any], s: Sequence[Shape], o: Shape) -> int:
    return o[0] * o[1] * o[2] * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2


def _transfer_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("transfer", s[0], a["in_channels"])
    return (a["out_channels"], s[0][1], s[0][2])


def _transfer_params(a: Mapping[str, Any]) -> int:
    return a["out_channels"] * (a["in_channels"] // a["groups"])


def _transfer_macs(a: Mapping[str, Any], s: Sequence[Shape], o: Shape) -> int:
    return o[0] * o[1] * o[2] * (a["in_channels"] // a["groups"])


def _bn_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("batchnorm", s[0], a["channels"])
    return s[0]


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


def _pool_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    k, st, p = a["kernel"], a["stride"], a["padding"]
    return (s[0][0], _spatial(s[0][1], k, st, p), _spatial(s[0][2], k, st, p))


def _linear_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    if s[0] != (a["in_features"], 1, 1):
        raise GraphError(f"linear expects a flat input of {a['in_features']} features, got shape {s[0]}")
    return (a["out_features"], 1, 1)


def _residual_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("residual", s[0], a["in_channels"])
    st = a["stride"]
    return (a["out_channels"], _spatial(s[0][1], 3, st, 1), _spatial(s[0][2], 3, st, 1))


def _transition_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    _expect_channels("transition", s[0], a["in_channels"])
    c, h, w = s[0]
    if a["mode"] == "paper":
        return (2 * c, _spatial(h, 2, 2, 0), _spatial(w, 2, 2, 0))
    return (2 * c, _spatial(h, 3, 2, 1), _spatial(w, 3, 2, 1))


def _opaque_infer(a: Mapping[str, Any], s: Sequence[Shape]) -> Shape:
    return tuple(a["out_shape"])  # type: ignore[return-value]


INT = int
_ops: list[OpDef] = [
    OpDef("input", {"channels": req(INT), "height": req(INT), "width": req(INT)}, (0, 0),
          lambda a, s: (a["channels"], a["height"], a["width"]), doc="the network input"),
    OpDef("output", {}, (1, 1), lambda a, s: s[0], doc="the network output"),
    OpDef("conv", {"in_channels": req(INT), "out_channels": req(INT), "kernel": req(INT),
                   "stride": opt(INT, 1), "padding": opt(INT, 0), "groups": opt(INT, 1), "bias": opt(bool, False)},
          (1, 1), _conv_infer, _conv_params, _conv_macs, doc="2-D convolution, square kernel, grouped when groups > 1"),
    OpDef("batchnorm", {"channels": req(INT), "eps": opt(float, 1e-5), "momentum": opt(float, 0.1)},
          (1, 1), _bn_infer, lambda a: 2 * a["channels"], doc="batch normalisation (affine)"),
    OpDef("relu", {}, (1, 1), _one, doc="ReLU"),
    OpDef("relu6", {}, (1, 1), _one, doc="ReLU6 (MobileNet)"),
    OpDef("add", {}, (2, None), _same("add"), doc="elementwise sum"),
    OpDef("sub", {}, (2, 2), _same("sub"), doc="elementwise difference a - b"),
    OpDef("concat", {}, (2, None), _concat_infer, doc="concatenation along channels"),
    OpDef("restrict", {"in_channels": req(INT), "out_channels": req(INT), "groups": req(INT),
                       "permutation": opt((list, type(None)), None)},
          (1, 1), _transfer_infer, _transfer_params, _transfer_macs,
          doc="MG restriction R: optional fixed channel permutation, then a grouped 1x1 conv (fine -> coarse)"),
    OpDef("prolong", {"in_channels": req(INT), "out_channels": req(INT), "groups": req(INT),
                      "permutation": opt((list, type(None)), None)},
          (1, 1), _transfer_infer, _transfer_params, _transfer_macs,
          doc="MG prolongation P: a grouped 1x1 conv (coarse -> fine), then the inverse permutation"),
    OpDef("avgpool", {"kernel": req(INT), "stride": req(INT), "padding": opt(INT, 0)}, (1, 1), _pool_infer),
    OpDef("maxpool", {"kernel": req(INT), "stride": req(INT), "padding": opt(INT, 0)}, (1, 1), _pool_infer),
    OpDef("global_avgpool", {}, (1, 1), lambda a, s: (s[0][0], 1, 1), doc="mean over H,W"),
    OpDef("flatten", {}, (1, 1), lambda a, s: (s[0][0] * s[0][1] * s[0][2], 1, 1)),
    OpDef("dropout", {"p": req(float)}, (1, 1), _one, doc="dropout (identity in eval mode)"),
    OpDef("linear", {"in_features": req(INT), "out_features": req(INT), "bias": opt(bool, True)},
          (1, 1), _linear_infer,
          lambda a: a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0),
          lambda a, s, o: a["in_features"] * a["out_features"]),
    OpDef("opaque", {"target": req(str), "out_shape": req(list), "params": opt(INT, 0), "macs": opt(INT, 0)},
          (1, None), _opaque_infer, lambda a: a["params"], lambda a, s, o: a["macs"],
          doc="a layer the IR does not model; lowers back to the original module"),
    # --- macros, expanded by passes -------------------------------------------------------------
    OpDef("residual", {"kind": req(str), "in_channels": req(INT), "out_channels": req(INT),
                       "mid_channels": req(INT), "stride": opt(INT, 1), "groups": opt(INT, 1),
                       "mid_groups": opt(INT, 1), "activation": opt(str, "post")},
          (1, 2), _residual_infer, macro=True,
          doc="one residual step (basic / bottleneck / inverted); groups > 1 makes it a fine-level grouped "
              "step; an optional second input is added into the step's sum before its post-activation"),
    OpDef("transition", {"mode": req(str), "in_channels": req(INT)}, (1, 1), _transition_infer, macro=True,
          doc="MG channel-doubling downsampling step (paper: concat+avgpool, dw_stride: strided dw conv)"),
]

OPS: dict[str, OpDef] = {op.name: op for op in _ops}


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
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, tuple):
            value = list(value)
        ok_types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
        if not isinstance(value, ok_types) or (isinstance(value, bool) and bool not in ok_types):
            raise GraphError(f"op {op} attribute {name!r} must be {spec.type}, got {value!r}")
        out[name] = value
    return out
