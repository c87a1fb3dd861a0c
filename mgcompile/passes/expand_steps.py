"""Lower the step macros (``residual``, ``transition``) into primitive ops.

Rewrite rules for ``residual(x[, extra])`` named N, with groups g (all convs of a
fine-level step are grouped; the 3x3 of a bottleneck uses ``max(g, min(mid_groups, mid))``,
so a ResNeXt's cardinality survives on every level, at most depth-wise):

1. ``basic``, post-activation (torchvision, ResNet v1):
   relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x) [+ extra]).
2. ``basic``, pre-activation (the paper's eq. 1): conv2(relu(bn2(conv1(relu(bn1(x)))))) + x [+ extra].
3. ``bottleneck``: 1x1 -> 3x3 (stride here, as torchvision) -> 1x1, same activation orders.
4. ``inverted`` (MobileNetV2): [1x1 expand + bn + relu6] -> 3x3 depth-wise + bn + relu6
   -> 1x1 project + bn, plus x when stride 1 and in == out. No activation after the sum.
5. The shortcut is the identity, or a 1x1 strided conv + bn (``N.shortcut``) when the
   step changes channels or resolution (not for ``inverted``, which then has none).

``transition(x)`` named T: ``paper``: avgpool2x2(concat(x, relu(bn(dw3x3(x))))); ``dw_stride``:
relu(bn(strided dw3x3 with 2 outputs per channel)).
"""

from __future__ import annotations

from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.ir.rewrite import Insertion, replace_node


def bottleneck_inner_groups(groups: int, mid_groups: int, mid: int) -> int:
    """Groups of a bottleneck's 3x3: the step's groups, or its own cardinality (ResNeXt) capped at depth-wise."""
    return max(groups, min(mid_groups, mid))


def expand_steps(graph: Graph) -> Graph:
    g = graph.copy()
    for name in g.nodes():
        op = g.op(name)
        if op == "residual":
            replace_node(g, name, _residual(g, name))
        elif op == "transition":
            replace_node(g, name, _transition(g, name))
    return g


def _conv_bn(ins: Insertion, n: str, x: str, cin: int, cout: int, k: int, stride: int, groups: int,
             suffix: str, act: str | None) -> str:
    x = ins.add(f"{n}.conv{suffix}", "conv", [x], in_channels=cin, out_channels=cout, kernel=k, stride=stride,
                padding=k // 2, groups=groups)
    x = ins.add(f"{n}.bn{suffix}", "batchnorm", [x], channels=cout)
    if act:
        x = ins.add(f"{n}.{act}{suffix}", act, [x])
    return x


def _residual(g: Graph, n: str) -> str:
    a = g.attrs(n)
    inputs = g.inputs(n)
    x, extra = inputs[0], inputs[1:]
    ins = Insertion(g, n)
    kind, cin, cout, mid, s, gr = (a["kind"], a["in_channels"], a["out_channels"], a["mid_channels"],
                                   a["stride"], a["groups"])
    if kind == "inverted":
        return _inverted(g, ins, n, x, extra, a)
    pre = a["activation"] == "pre"
    h = x
    if pre:
        h = ins.add(f"{n}.bn0", "batchnorm", [x], channels=cin)
        h = ins.add(f"{n}.relu0", "relu", [h])
    if kind == "basic":
        h = _conv_bn(ins, n, h, cin, mid, 3, s, gr, "1", "relu")
        if pre:
            h = ins.add(f"{n}.conv2", "conv", [h], in_channels=mid, out_channels=cout, kernel=3, padding=1, groups=gr)
        else:
            h = _conv_bn(ins, n, h, mid, cout, 3, 1, gr, "2", None)
    elif kind == "bottleneck":
        h = _conv_bn(ins, n, h, cin, mid, 1, 1, gr, "1", "relu")
        h = _conv_bn(ins, n, h, mid, mid, 3, s, bottleneck_inner_groups(gr, a["mid_groups"], mid), "2", "relu")
        if pre:
            h = ins.add(f"{n}.conv3", "conv", [h], in_channels=mid, out_channels=cout, kernel=1, groups=gr)
        else:
            h = _conv_bn(ins, n, h, mid, cout, 1, 1, gr, "3", None)
    else:
        raise GraphError(f"node {n!r}: unknown residual kind {kind!r}")
    short = x
    if cin != cout or s != 1:
        src = g.inputs(f"{n}.conv1")[0] if pre else x  # pre-activation projects the activated input
        short = ins.add(f"{n}.shortcut.conv", "conv", [src], in_channels=cin, out_channels=cout, kernel=1, stride=s)
        if not pre:
            short = ins.add(f"{n}.shortcut.bn", "batchnorm", [short], channels=cout)
    out = ins.add(f"{n}.add", "add", [short, h, *extra])
    if not pre:
        out = ins.add(f"{n}.relu", "relu", [out])
    return out


def _inverted(g: Graph, ins: Insertion, n: str, x: str, extra: list[str], a: dict) -> str:
    cin, cout, mid, s, gr = a["in_channels"], a["out_channels"], a["mid_channels"], a["stride"], a["groups"]
    h = x
    if mid != cin:
        h = _conv_bn(ins, n, h, cin, mid, 1, 1, gr, "1", "relu6")
    h = _conv_bn(ins, n, h, mid, mid, 3, s, mid, "2", "relu6")
    h = _conv_bn(ins, n, h, mid, cout, 1, 1, gr, "3", None)
    if cin == cout and s == 1:
        return ins.add(f"{n}.add", "add", [x, h, *extra])
    if extra:
        raise GraphError(f"node {n!r}: an inverted residual without shortcut cannot take a correction input")
    return h


def _transition(g: Graph, n: str) -> str:
    a = g.attrs(n)
    (x,) = g.inputs(n)
    c = a["in_channels"]
    ins = Insertion(g, n)
    if a["mode"] == "paper":
        h = _conv_bn(ins, n, x, c, c, 3, 1, c, "", "relu")
        cat = ins.add(f"{n}.concat", "concat", [x, h])
        return ins.add(f"{n}.pool", "avgpool", [cat], kernel=2, stride=2)
    if a["mode"] == "dw_stride":
        return _conv_bn(ins, n, x, c, 2 * c, 3, 2, c, "", "relu")
    raise GraphError(f"node {n!r}: unknown transition mode {a['mode']!r}")
