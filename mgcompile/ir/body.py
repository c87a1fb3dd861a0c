"""Step bodies: the template subgraph a ``residual`` macro carries, as plain data.

A residual step is ``post(sum(shortcut(x), body(x) [, extra]))``. Its ``body``,
``shortcut`` and ``post`` attributes are lists of *template nodes*, each a JSON-able
dict ``{"name", "op", "inputs", "attrs"}`` in topological order. Inputs name the step
input ``"x"``, the sum ``"sum"`` (in ``post``) or an earlier template node (a
pre-activation shortcut reads the body's ``relu0``). The last node of each list is its
output; an empty ``shortcut`` is the identity, an empty ``post`` means no op after the
sum, and ``sum: "none"`` is a plain step whose output is the body's.

Because a body is data, one MG pass serves every step kind: :func:`scale_step`
re-instantiates a constant-width body on a level by asking every op how it scales
(``OpDef.scale``: widths times C_j / C, the level's groups for dense convs, depth-wise
stays depth-wise, ResNeXt cardinality kept), and ``expand_steps`` inlines any body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from mgcompile.errors import GraphError
from mgcompile.ir.ops import STEP_INPUT, SUM, Shape, infer_step, normalize_attrs, opdef

__all__ = ["STEP_INPUT", "SUM", "PARTS", "infer_step", "node", "chain", "nodes_of", "check_step", "step_cost",
           "structure", "LevelScale", "scale_step", "unscalable", "group_problem"]

PARTS = ("body", "shortcut", "post")


def node(name: str, op: str, inputs: Sequence[str], **attrs: Any) -> dict[str, Any]:
    """One template node (attributes type-checked and defaults filled, as a graph node's are)."""
    return {"name": name, "op": op, "inputs": list(inputs), "attrs": normalize_attrs(op, attrs)}


def chain(*specs: tuple[str, str, Mapping[str, Any]], start: str = STEP_INPUT) -> list[dict[str, Any]]:
    """Template nodes that each read the previous one: ``chain(("conv1", "conv", {...}), ("bn1", ...))``."""
    out, prev = [], start
    for name, op, attrs in specs:
        out.append(node(name, op, [prev], **attrs))
        prev = name
    return out


def nodes_of(a: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(part, template node) for every node of a step, body first."""
    for part in PARTS:
        for n in a[part]:
            yield part, n


def check_step(name: str, a: Mapping[str, Any]) -> None:
    """A well-formed step: known non-macro ops, normalised attributes, inputs defined before use."""
    if a["sum"] not in ("add", "none"):
        raise GraphError(f"step {name!r}: sum must be 'add' or 'none', got {a['sum']!r}")
    if not a["body"]:
        raise GraphError(f"step {name!r} has an empty body")
    if a["sum"] == "none" and (a["shortcut"] or a["post"]):
        raise GraphError(f"step {name!r}: a step without sum has no shortcut or post ops")
    defined = {STEP_INPUT}
    for part, n in nodes_of(a):
        if not isinstance(n, Mapping) or set(n) != {"name", "op", "inputs", "attrs"}:
            raise GraphError(f"step {name!r}: {part} entries must be {{name, op, inputs, attrs}}, got {n!r}")
        d = opdef(n["op"])
        if not d.in_body:
            raise GraphError(f"step {name!r}: {part} node {n['name']!r} cannot be a {n['op']}")
        if normalize_attrs(n["op"], n["attrs"]) != n["attrs"]:
            raise GraphError(f"step {name!r}: attributes of {part} node {n['name']!r} do not match the {n['op']} schema")
        lo, hi = d.arity
        if len(n["inputs"]) < lo or (hi is not None and len(n["inputs"]) > hi):
            raise GraphError(f"step {name!r}: {part} node {n['name']!r} ({n['op']}) has {len(n['inputs'])} inputs")
        if part == "post" and n is a["post"][0]:
            defined.add(SUM)
        missing = [i for i in n["inputs"] if i not in defined]
        if missing or n["name"] in defined:
            raise GraphError(f"step {name!r}: {part} node {n['name']!r} reads undefined {missing} or repeats a name")
        defined.add(n["name"])


def step_cost(a: Mapping[str, Any], in_shape: Shape) -> tuple[int, int]:
    """(params, MACs) of a step's primitive ops, from the op rules alone."""
    shapes: dict[str, Shape] = {STEP_INPUT: in_shape}
    params = macs = 0
    for part, n in nodes_of(a):
        if part == "post" and SUM not in shapes:
            shapes[SUM] = shapes[a["body"][-1]["name"]]
        d = opdef(n["op"])
        ins = [shapes[i] for i in n["inputs"]]
        shapes[n["name"]] = out = d.infer(n["attrs"], ins)
        params += d.params(n["attrs"])
        macs += d.macs(n["attrs"], ins, out)
    return params, macs


def structure(a: Mapping[str, Any], parts: Sequence[str] = ("body", "post")) -> tuple:
    """A step's shape of computation with node names replaced by positions: two steps that compute the same
    function of the same parameters (whatever their nodes are called) have equal structures."""
    ids = {STEP_INPUT: STEP_INPUT, SUM: SUM}
    out: list = [a["sum"]]
    for part in parts:
        for n in a[part]:
            ids[n["name"]] = f"#{len(ids)}"
            out.append((part, n["op"], tuple(ids.get(i, "?") for i in n["inputs"]), tuple(sorted(n["attrs"].items()))))
    return tuple(out)


@dataclass(frozen=True)
class LevelScale:
    """How widths map from a step at ``step_width`` to one of its MG levels (see ``OpDef.scale``).

    The step's own width becomes the level width; every other width in the body
    (expansion, bottleneck, SE squeeze) is scaled by the same ratio, rounded to the
    nearest whole number >= 1. ``groups`` is the level's group count for dense convs.
    """

    step_width: int
    level_width: int
    groups: int

    def width(self, channels: int) -> int:
        if channels == self.step_width:
            return self.level_width
        return max(1, int(round(channels * self.level_width / self.step_width)))


def scale_step(a: Mapping[str, Any], level: LevelScale) -> dict[str, Any]:
    """The constant-width step ``a`` re-instantiated on ``level`` (a new attribute dict; ``a`` is unchanged).

    The result keeps its ``kind`` (for reports) but no template ``params``: they describe the base step.
    """
    if a["in_channels"] != a["out_channels"] or a["stride"] != 1 or a["shortcut"]:
        raise GraphError("only a constant-width step with an identity shortcut can be cycled")
    out = {**a, "in_channels": level.level_width, "out_channels": level.level_width, "params": {}}
    for part in PARTS:
        scaled = []
        for n in a[part]:
            rule = opdef(n["op"]).scale
            if rule is None:
                raise GraphError(f"{n['op']} node {n['name']!r} cannot be re-instantiated on an MG level")
            scaled.append({**n, "attrs": normalize_attrs(n["op"], rule(n["attrs"], level))})
        out[part] = scaled
    return out


def unscalable(a: Mapping[str, Any]) -> str | None:
    """The first template node no MG level can re-instantiate, described; ``None`` when every node can."""
    for part, n in nodes_of(a):
        if opdef(n["op"]).scale is None:
            return f"its {n['op']} node {n['name']!r} cannot be re-instantiated on an MG level"
    return None


def group_problem(a: Mapping[str, Any]) -> str | None:
    """The first grouped template op whose groups do not divide its channels, described; ``None`` when all do."""
    for part, n in nodes_of(a):
        at = n["attrs"]
        if opdef(n["op"]).grouped:
            for key in ("in_channels", "out_channels"):
                if at["groups"] < 1 or at[key] % at["groups"]:
                    which = "width" if at[key] == a["out_channels"] else "inner width"
                    return f"the {at['groups']} groups of {n['name']} do not divide its {which} {at[key]}"
    return None
