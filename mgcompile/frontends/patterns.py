"""Find residual steps in an imported IR by dataflow, never by class or module names.

Rules (each matched at an ``add`` node with two inputs; every node inside the
block must be used only inside it, the block input may have other users):

1. ``basic``: relu(add(shortcut, bn(conv3x3(relu(bn(conv3x3/s(x))))))), shortcut the
   identity (stride 1, in == out) or bn(conv1x1/s(x)) (a projection).
2. ``bottleneck``: the same with 1x1 -> 3x3/s (any groups: ResNeXt) -> 1x1.
3. ``inverted`` (MobileNetV2): add(x, bn(conv1x1(relu6(bn(dwconv3x3(
   [relu6(bn(conv1x1(x)))])))))), stride 1 and in == out; no activation after the sum.

:func:`collapse` replaces a match by one ``residual`` macro node, remembering the
original modules it replaced in ``meta["replaced"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mgcompile.ir.graph import Graph
from mgcompile.steps import make_step


@dataclass
class BlockMatch:
    kind: str
    name: str
    input: str
    output: str
    members: list[str]
    in_channels: int
    out_channels: int
    mid_channels: int
    stride: int
    mid_groups: int = 1
    replaced: list[str] = field(default_factory=list)

    @property
    def constant_width(self) -> bool:
        return self.in_channels == self.out_channels and self.stride == 1

    def step(self) -> dict:
        """The ``residual`` attributes of the matched step (its kind's template)."""
        common = dict(in_channels=self.in_channels, out_channels=self.out_channels, stride=self.stride)
        if self.kind == "basic":
            return make_step("basic", **common, mid_channels=self.mid_channels)
        if self.kind == "bottleneck":
            return make_step("bottleneck", **common, mid_channels=self.mid_channels, cardinality=self.mid_groups)
        return make_step("inverted", **common, mid_channels=self.mid_channels)


def _conv(g: Graph, n: str, *, kernel: int, stride: int | None = None, groups: int | None = None) -> dict | None:
    if g.op(n) != "conv":
        return None
    a = g.attrs(n)
    if a["kernel"] != kernel or a["padding"] != kernel // 2:
        return None
    if stride is not None and a["stride"] != stride:
        return None
    if groups is not None and a["groups"] != groups:
        return None
    return a


def _one_in(g: Graph, n: str, op: str) -> str | None:
    """The single input of ``n`` when ``n`` is an ``op`` node."""
    if n not in g or g.op(n) != op or len(g.inputs(n)) != 1:
        return None
    return g.inputs(n)[0]


def _conv_bn_act(g: Graph, out: str, act: str | None) -> tuple[str, str, str | None] | None:
    """Walk back act? <- bn <- conv from ``out``; returns (conv, bn, act node)."""
    a_node = None
    if act is not None:
        a_node, out = out, _one_in(g, out, act)
        if out is None:
            return None
    conv = _one_in(g, out, "batchnorm")
    if conv is None or g.op(conv) != "conv":
        return None
    return conv, out, a_node


def _basic(g: Graph, main: str, short: str) -> BlockMatch | None:
    c2 = _conv_bn_act(g, main, None)
    if c2 is None or _conv(g, c2[0], kernel=3, stride=1, groups=1) is None:
        return None
    c1 = _conv_bn_act(g, g.inputs(c2[0])[0], "relu")
    if c1 is None or (a1 := _conv(g, c1[0], kernel=3, groups=1)) is None:
        return None
    x = g.inputs(c1[0])[0]
    a2 = g.attrs(c2[0])
    members = [c1[0], c1[1], c1[2], c2[0], c2[1]]
    return _with_shortcut(g, "basic", x, short, members, a1["in_channels"], a2["out_channels"], a1["out_channels"],
                          a1["stride"], 1)


def _bottleneck(g: Graph, main: str, short: str) -> BlockMatch | None:
    c3 = _conv_bn_act(g, main, None)
    if c3 is None or _conv(g, c3[0], kernel=1, stride=1, groups=1) is None:
        return None
    c2 = _conv_bn_act(g, g.inputs(c3[0])[0], "relu")
    if c2 is None or (a2 := _conv(g, c2[0], kernel=3)) is None:
        return None
    c1 = _conv_bn_act(g, g.inputs(c2[0])[0], "relu")
    if c1 is None or (a1 := _conv(g, c1[0], kernel=1, stride=1, groups=1)) is None:
        return None
    if a2["in_channels"] != a2["out_channels"] or a1["out_channels"] != a2["in_channels"]:
        return None
    x = g.inputs(c1[0])[0]
    members = [c1[0], c1[1], c1[2], c2[0], c2[1], c2[2], c3[0], c3[1]]
    return _with_shortcut(g, "bottleneck", x, short, members, a1["in_channels"], g.attrs(c3[0])["out_channels"],
                          a1["out_channels"], a2["stride"], a2["groups"])


def _with_shortcut(g: Graph, kind: str, x: str, short: str, members: list[str], cin: int, cout: int, mid: int,
                   stride: int, mid_groups: int) -> BlockMatch | None:
    if short == x:
        if cin != cout or stride != 1:
            return None
    else:
        sc = _conv_bn_act(g, short, None)
        if sc is None or _conv(g, sc[0], kernel=1, stride=stride, groups=1) is None or g.inputs(sc[0])[0] != x:
            return None
        a = g.attrs(sc[0])
        if a["in_channels"] != cin or a["out_channels"] != cout:
            return None
        members += [sc[0], sc[1]]
    return BlockMatch(kind, "", x, "", members, cin, cout, mid, stride, mid_groups)


def _inverted(g: Graph, main: str, short: str) -> BlockMatch | None:
    proj = _conv_bn_act(g, main, None)
    if proj is None or (ap := _conv(g, proj[0], kernel=1, stride=1, groups=1)) is None:
        return None
    dw = _conv_bn_act(g, g.inputs(proj[0])[0], "relu6")
    if dw is None:
        return None
    ad = g.attrs(dw[0])
    mid = ad["in_channels"]
    if _conv(g, dw[0], kernel=3, stride=1, groups=mid) is None or ad["out_channels"] != mid:
        return None
    members = [dw[0], dw[1], dw[2], proj[0], proj[1]]
    x = g.inputs(dw[0])[0]
    if x != short:
        ex = _conv_bn_act(g, x, "relu6")
        if ex is None or _conv(g, ex[0], kernel=1, stride=1, groups=1) is None or g.inputs(ex[0])[0] != short:
            return None
        members = [ex[0], ex[1], ex[2], *members]
        x = short
    cin, cout = g.attrs(members[0])["in_channels"], ap["out_channels"]
    if cin != cout:
        return None
    return BlockMatch("inverted", "", x, "", members, cin, cout, mid, 1, 1)


def _closed(g: Graph, m: BlockMatch) -> bool:
    """Every member's users stay inside the block (the output may be used anywhere)."""
    inside = set(m.members)
    return all(set(g.users(n)) <= inside for n in m.members if n != m.output)


def find_blocks(graph: Graph) -> list[BlockMatch]:
    """Every residual step of ``graph`` in topological order (see the module docstring)."""
    found: list[BlockMatch] = []
    taken: set[str] = set()
    for add in graph.nodes("add"):
        ins = graph.inputs(add)
        if len(ins) != 2 or ins[0] == ins[1]:
            continue
        users = graph.users(add)
        relu = users[0] if len(users) == 1 and graph.op(users[0]) == "relu" else None
        match = None
        for main, short in ((ins[1], ins[0]), (ins[0], ins[1])):
            if relu is not None:
                match = _bottleneck(graph, main, short) or _basic(graph, main, short)
            if match is None:
                match = _inverted(graph, main, short)
            if match is not None:
                break
        if match is None:
            continue
        match.members.append(add)
        match.output = add
        if match.kind != "inverted":
            match.members.append(relu)
            match.output = relu
        if not _closed(graph, match) or taken & set(match.members):
            continue
        taken |= set(match.members)
        match.replaced = [graph.meta(n)["source"] for n in match.members if "source" in graph.meta(n)]
        match.name = _block_name(graph, match, add, {b.name for b in found})
        found.append(match)
    return found


def _block_name(g: Graph, m: BlockMatch, add: str, used: set[str]) -> str:
    """The module that holds the block (``layer1.0``, ``features.3``); else the sources' common prefix."""
    sources = [s.split(".") for s in m.replaced]
    common: list[str] = []
    for parts in zip(*sources):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if sources and len(common) == min(len(s) for s in sources):
        common = common[:-1]  # a single source module: name the block after its parent
    scope = add.rsplit(".", 1)[0] if "." in add else ""
    name = scope if scope and ".".join(common).startswith(scope) else ".".join(common)
    if not name or name in g or name in used:
        name = f"block_{m.input.replace('.', '_')}"
        while name in g or name in used:
            name += "_"
    return name


def collapse(graph: Graph, m: BlockMatch, *, meta: dict | None = None) -> str:
    """Replace the nodes of ``m`` by one ``residual`` macro named ``m.name``; returns it."""
    first = min(m.members, key=graph.order)
    node_meta = {**graph.meta(first), **(meta or {}), "step": m.name, "replaced": list(m.replaced)}
    node_meta.pop("source", None)
    name = graph.add(m.name, "residual", [m.input], meta=node_meta, order=graph.order(first), **m.step())
    graph.replace_uses(m.output, name)
    for n in sorted(m.members, key=graph.order, reverse=True):
        graph.remove(n)
    return name
