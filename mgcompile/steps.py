"""Step kinds: the templates that write a residual step's body as data (see ``ir/body.py``).

A step kind is a record: its template (parameters -> the ``residual`` macro's
attributes), the uneven-groups policy a step of this kind found on the module route
gets, and whether a channel-doubling strided step of the kind becomes the MG
transition. Nothing downstream branches on the kind: the MG pass scales whatever body
a step carries and ``expand_steps`` inlines it. Adding a kind = one template function
and one :data:`STEP_KINDS` entry.

Node names inside the templates are the module names of the lowered network
(``stage3.block1.conv1``), kept from mgcompile's first releases so saved models and
state-dict keys stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mgcompile.errors import SpecError
from mgcompile.ir.body import STEP_INPUT, SUM, node


def _conv_bn(out: list, name_suffix: str, src: str, cin: int, cout: int, kernel: int, stride: int = 1,
             groups: int = 1, act: str | None = None, bn: bool = True, bias: bool = False,
             eps: float = 1e-5, momentum: float = 0.1) -> str:
    out.append(node(f"conv{name_suffix}", "conv", [src], in_channels=cin, out_channels=cout, kernel=kernel,
                    stride=stride, padding=kernel // 2, groups=groups, bias=bias))
    last = f"conv{name_suffix}"
    if bn:
        out.append(node(f"bn{name_suffix}", "batchnorm", [last], channels=cout, eps=eps, momentum=momentum))
        last = f"bn{name_suffix}"
    if act:
        out.append(node(f"{act}{name_suffix}", act, [last]))
        last = f"{act}{name_suffix}"
    return last


def _step(kind: str, params: Mapping[str, Any], cin: int, cout: int, stride: int, body: list, shortcut: list,
          post: list, add: bool = True) -> dict[str, Any]:
    return {"kind": kind, "params": dict(params), "in_channels": cin, "out_channels": cout, "stride": stride,
            "body": body, "shortcut": shortcut, "sum": "add" if add else "none", "post": post}


def _projection(shortcut: list, src: str, cin: int, cout: int, stride: int, bn: bool, **bn_args: Any) -> None:
    shortcut.append(node("shortcut.conv", "conv", [src], in_channels=cin, out_channels=cout, kernel=1, stride=stride))
    if bn:
        shortcut.append(node("shortcut.bn", "batchnorm", ["shortcut.conv"], channels=cout, **bn_args))


def _se(body: list, src: str, se: Mapping[str, Any] | None, channels: int) -> str:
    if not se:
        return src
    body.append(node("se", "squeeze_excite", [src], channels=channels, squeeze=int(se["squeeze"]),
                     activation=se.get("activation", "relu"), gate=se.get("gate", "sigmoid")))
    return "se"


def _resnet_step(kind: str, params: Mapping[str, Any], cin: int, cout: int, stride: int, activation: str,
                 branch: Callable[[list, str, bool], None]) -> dict[str, Any]:
    """The ResNet frame around a conv branch: post (v1) or pre-activation (v2: bn0 + relu0 first, no BN after the
    last conv, a projection shortcut reading relu0 without BN), the projection when the width or stride changes,
    and the ReLU after the sum (post only). ``branch(body, src, last_bn)`` appends the convs."""
    pre = activation == "pre"
    body: list = []
    src = STEP_INPUT
    if pre:
        body += [node("bn0", "batchnorm", [STEP_INPUT], channels=cin), node("relu0", "relu", ["bn0"])]
        src = "relu0"
    branch(body, src, not pre)
    shortcut: list = []
    if cin != cout or stride != 1:
        _projection(shortcut, src, cin, cout, stride, bn=not pre)
    post = [] if pre else [node("relu", "relu", [SUM])]
    return _step(kind, params, cin, cout, stride, body, shortcut, post)


def basic(in_channels: int, out_channels: int, stride: int = 1, activation: str = "post",
          mid_channels: int | None = None) -> dict[str, Any]:
    """Two 3x3 convs. post (torchvision, ResNet v1): relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x));
    pre (the paper's eq. 1, ResNet v2): conv2(relu(bn1(conv1(relu(bn0 x))))) + x, a projection reading relu0."""
    params = dict(in_channels=in_channels, out_channels=out_channels, stride=stride, activation=activation,
                  mid_channels=mid_channels)
    mid = mid_channels or out_channels

    def branch(body: list, src: str, last_bn: bool) -> None:
        h = _conv_bn(body, "1", src, in_channels, mid, 3, stride, act="relu")
        _conv_bn(body, "2", h, mid, out_channels, 3, bn=last_bn)

    return _resnet_step("basic", params, in_channels, out_channels, stride, activation, branch)


def bottleneck(in_channels: int, out_channels: int, mid_channels: int, stride: int = 1, cardinality: int = 1,
               activation: str = "post", se: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """1x1 -> 3x3 (stride here, as torchvision; ``cardinality`` groups: ResNeXt, RegNet) [-> SE] -> 1x1."""
    params = dict(in_channels=in_channels, out_channels=out_channels, mid_channels=mid_channels, stride=stride,
                  cardinality=cardinality, activation=activation, se=dict(se) if se else None)

    def branch(body: list, src: str, last_bn: bool) -> None:
        h = _conv_bn(body, "1", src, in_channels, mid_channels, 1, act="relu")
        h = _conv_bn(body, "2", h, mid_channels, mid_channels, 3, stride, groups=cardinality, act="relu")
        h = _se(body, h, se, mid_channels)
        _conv_bn(body, "3", h, mid_channels, out_channels, 1, bn=last_bn)

    return _resnet_step("bottleneck", params, in_channels, out_channels, stride, activation, branch)


def inverted(in_channels: int, out_channels: int, mid_channels: int, stride: int = 1, kernel: int = 3,
             act: str = "relu6", se: Mapping[str, Any] | None = None, drop_path: float = 0.0,
             bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> dict[str, Any]:
    """MobileNetV2/V3, MnasNet, EfficientNet's MBConv: [1x1 expand + bn + act] -> k x k depth-wise + bn + act
    [-> SE] -> 1x1 project + bn [-> DropPath], plus x when stride 1 and in == out (no activation after the sum)."""
    params = dict(in_channels=in_channels, out_channels=out_channels, mid_channels=mid_channels, stride=stride,
                  kernel=kernel, act=act, se=dict(se) if se else None, drop_path=drop_path, bn_eps=bn_eps,
                  bn_momentum=bn_momentum)
    bn = {"eps": bn_eps, "momentum": bn_momentum}
    body: list = []
    h = STEP_INPUT
    if mid_channels != in_channels:
        h = _conv_bn(body, "1", h, in_channels, mid_channels, 1, act=act, **bn)
    h = _conv_bn(body, "2", h, mid_channels, mid_channels, kernel, stride, groups=mid_channels, act=act, **bn)
    h = _se(body, h, se, mid_channels)
    h = _conv_bn(body, "3", h, mid_channels, out_channels, 1, **bn)
    residual = in_channels == out_channels and stride == 1
    if residual and drop_path > 0:
        body.append(node("drop_path", "drop_path", [h], p=float(drop_path)))
    return _step("inverted", params, in_channels, out_channels, stride, body, [], [], add=residual)


def convnext(channels: int, kernel: int = 7, expansion: int = 4, layer_scale: float = 1e-6,
             drop_path: float = 0.0) -> dict[str, Any]:
    """ConvNeXt's block: x + drop_path(layer_scale(pw2(gelu(pw1(layernorm(dw7x7(x))))))).

    The channels-last ``permute -> Linear -> permute`` of torchvision is the same map as a
    1x1 conv with bias, which is how the IR writes it (a level then groups it like any 1x1).
    """
    params = dict(channels=channels, kernel=kernel, expansion=expansion, layer_scale=layer_scale, drop_path=drop_path)
    hidden = expansion * channels
    body = [
        node("dwconv", "conv", [STEP_INPUT], in_channels=channels, out_channels=channels, kernel=kernel,
             padding=kernel // 2, groups=channels, bias=True),
        node("norm", "layernorm", ["dwconv"], channels=channels, eps=1e-6),
        node("pwconv1", "conv", ["norm"], in_channels=channels, out_channels=hidden, kernel=1, bias=True),
        node("gelu", "gelu", ["pwconv1"]),
        node("pwconv2", "conv", ["gelu"], in_channels=hidden, out_channels=channels, kernel=1, bias=True),
        node("layer_scale", "layer_scale", ["pwconv2"], channels=channels, init=float(layer_scale)),
    ]
    if drop_path > 0:
        body.append(node("drop_path", "drop_path", ["layer_scale"], p=float(drop_path)))
    return _step("convnext", params, channels, channels, 1, body, [], [])


# ---- reading a found body's template parameters (the module route names its steps by kind) ----------------

def _ops(a: Mapping[str, Any], op: str) -> list[dict[str, Any]]:
    return [n["attrs"] for n in a["body"] if n["op"] == op]


def _se_params(a: Mapping[str, Any]) -> dict[str, Any] | None:
    se = _ops(a, "squeeze_excite")
    return {"squeeze": se[0]["squeeze"], "activation": se[0]["activation"], "gate": se[0]["gate"]} if se else None


def _activation(a: Mapping[str, Any]) -> str:
    return "pre" if a["body"][0]["op"] == "batchnorm" else "post"


def _read_basic(a: Mapping[str, Any]) -> dict[str, Any]:
    mid = _ops(a, "conv")[0]["out_channels"]
    return dict(in_channels=a["in_channels"], out_channels=a["out_channels"], stride=a["stride"],
                activation=_activation(a), mid_channels=None if mid == a["out_channels"] else mid)


def _read_bottleneck(a: Mapping[str, Any]) -> dict[str, Any]:
    convs = _ops(a, "conv")
    return dict(in_channels=a["in_channels"], out_channels=a["out_channels"], mid_channels=convs[0]["out_channels"],
                stride=a["stride"], cardinality=convs[1]["groups"], activation=_activation(a), se=_se_params(a))


def _read_inverted(a: Mapping[str, Any]) -> dict[str, Any]:
    dw = next(c for c in _ops(a, "conv") if c["groups"] > 1)
    act = next(n["op"] for n in a["body"] if n["op"] not in ("conv", "batchnorm"))
    bn = _ops(a, "batchnorm")[0]
    drop = _ops(a, "drop_path")
    return dict(in_channels=a["in_channels"], out_channels=a["out_channels"], mid_channels=dw["in_channels"],
                stride=a["stride"], kernel=dw["kernel"], act=act, se=_se_params(a),
                drop_path=drop[0]["p"] if drop else 0.0, bn_eps=bn["eps"], bn_momentum=bn["momentum"])


def _read_convnext(a: Mapping[str, Any]) -> dict[str, Any]:
    convs = _ops(a, "conv")
    drop = _ops(a, "drop_path")
    return dict(channels=a["in_channels"], kernel=convs[0]["kernel"],
                expansion=convs[1]["out_channels"] // a["in_channels"], layer_scale=_ops(a, "layer_scale")[0]["init"],
                drop_path=drop[0]["p"] if drop else 0.0)


@dataclass(frozen=True)
class StepKind:
    """One kind of residual step: its template, how to read a found body's parameters back, its policies."""

    name: str
    template: Callable[..., dict[str, Any]]
    read: Callable[[Mapping[str, Any]], dict[str, Any]]  # a found step's attributes -> template parameters (may raise)
    uneven: str  # uneven-groups policy of a step found on the module route (a family's spec overrides it)
    transition: bool  # a channel-doubling stride-2 step of this kind becomes the MG stage transition
    doc: str


STEP_KINDS: dict[str, StepKind] = {k.name: k for k in (
    StepKind("basic", basic, _read_basic, "error", True, "two 3x3 convs (ResNet-18/34, the paper's CIFAR ResNets)"),
    StepKind("bottleneck", bottleneck, _read_bottleneck, "error", False,
             "1x1-3x3-1x1 (ResNet-50+, ResNeXt, Wide-ResNet, RegNet)"),
    StepKind("inverted", inverted, _read_inverted, "floor", False,
             "inverted residual (MobileNetV2/V3, MnasNet, EfficientNet)"),
    StepKind("convnext", convnext, _read_convnext, "floor", False,
             "ConvNeXt block (7x7 depth-wise, LayerNorm, MLP, layer scale)"),
)}

#: the kind of a step found on the module route that is no template's: its body is kept as found
IMPORTED = "imported"


def recognise(a: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(kind, template parameters) of the first kind whose template computes what the found step ``a`` does."""
    from mgcompile.ir.body import structure

    want = structure(a)
    for kind in STEP_KINDS.values():
        try:
            params = kind.read(a)
            made = kind.template(**params)
        except Exception:  # the body is not of this kind's shape (a missing conv, a zero width, ...)
            continue
        if made["in_channels"] == a["in_channels"] and made["stride"] == a["stride"] and structure(made) == want:
            return kind.name, params
    return None


def make_step(kind: str, **params: Any) -> dict[str, Any]:
    """The ``residual`` attributes of a step of ``kind`` (the template filled with ``params``)."""
    try:
        template = STEP_KINDS[kind].template
    except KeyError:
        raise SpecError(f"unknown step kind {kind!r}; known: {', '.join(STEP_KINDS)}") from None
    return template(**params)


def remake(attrs: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A step rebuilt from its template with some parameters changed (the transition pass needs this)."""
    return make_step(attrs["kind"], **{**attrs["params"], **changes})
