"""Find residual steps in an imported IR by dataflow, never by class or module names.

Every ``add`` of two tensors is a candidate residual sum; :func:`find_sums` returns one
:class:`Sum` for each, either a :class:`FoundStep` or the reason it is none.

Rules (for ``s = add(a, b)``, trying ``b`` then ``a`` as the body's output):

1. The shortcut: the other input, read back through a chain of projection ops
   (:data:`SHORTCUT_OPS`: conv, batchnorm, avg/max pool -- ResNet's 1x1 + BN,
   ResNet-D's avg-pool + 1x1 + BN), each used only by the next; no chain is the identity.
2. The step input ``x``: where the shortcut starts, or, for a projection shortcut that
   reads ``act(norm(x))``, ``x`` itself -- a pre-activation step's shortcut reads the
   activated input, so its BN and ReLU belong to the step when they live in the step's
   module (a post-activation stem's BN and ReLU look the same but live elsewhere).
3. The body: every node between ``x`` and the body's output (ancestors of the output
   that are not ancestors of ``x``). It must read nothing but ``x`` and its own nodes,
   and be *closed*: its nodes are used only inside the step (the output only by the sum).
4. The post op: the sum's only user, when it is an activation (ResNet's ReLU after the add).
5. The step's body is data (``ir.body``): its nodes named relative to the step. When a
   step kind's template computes the same function (:func:`mgcompile.steps.recognise`:
   basic, bottleneck, inverted, convnext), the step takes that template (its node names
   and kind); otherwise it keeps its body as found (kind ``imported``).
6. A body holding an op no MG level can re-instantiate (an opaque layer, a pool, ...)
   is still a step, with ``problem`` naming the first such op by module path and class.

:func:`collapse` replaces a step by one ``residual`` macro.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from mgcompile.ir.body import STEP_INPUT, SUM
from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.ir.roles import ROLES_KEY, move_roles
from mgcompile.passes.infer_shapes import infer_shapes
from mgcompile.steps import IMPORTED, recognise, remake

SHORTCUT_OPS = ("conv", "batchnorm", "avgpool", "maxpool")


@dataclass
class FoundStep:
    """A residual step: its macro attributes, the IR nodes it replaces and the original modules they came from."""

    name: str
    kind: str
    input: str
    output: str
    members: list[str]
    attrs: dict[str, Any] | None  # the ``residual`` attributes; None when ``problem`` stops building them
    in_channels: int
    out_channels: int
    stride: int
    replaced: list[str] = field(default_factory=list)
    problem: str | None = None  # the first op that no MG level can re-instantiate
    weights: dict[str, dict[str, str]] = field(default_factory=dict)  # template node -> its original weights

    @property
    def constant_width(self) -> bool:
        return self.in_channels == self.out_channels and self.stride == 1


@dataclass
class Sum:
    """One residual sum of the network: a step, or why it is none."""

    add: str
    name: str
    step: FoundStep | None = None
    reason: str = ""


def _is_activation(g: Graph, n: str) -> bool:
    return opdef(g.op(n)).count_group == "activation"


def _shortcut_chain(g: Graph, short: str, add: str) -> list[str]:
    """Projection ops ending at ``short``, first to last, each used only by the next (rule 1)."""
    chain: list[str] = []
    n, user = short, add
    while g.op(n) in SHORTCUT_OPS and g.users(n) == [user] and len(g.inputs(n)) == 1:
        chain.insert(0, n)
        n, user = g.inputs(n)[0], n
    return chain


def _body(g: Graph, main: str, x: str, add: str, chain: list[str]) -> tuple[set[str] | None, str]:
    """The body nodes between ``x`` and ``main`` (rule 3), or None and why not."""
    if x == main or x not in nx.ancestors(g.nx, main):
        return None, "the two inputs of the sum do not branch from one tensor"
    body = (nx.ancestors(g.nx, main) - nx.ancestors(g.nx, x) - {x}) | {main}
    for n in sorted(body, key=g.order):
        outside = [i for i in g.inputs(n) if i not in body and i != x]
        if outside:
            return None, f"its body reads {outside[0]} from outside the step"
    allowed = body | set(chain)
    for n in sorted(body, key=g.order):
        users = set(g.users(n))
        if n == main:
            users -= {add}
        if not users <= allowed:
            return None, f"{n} inside it is also used outside the step"
    return body, ""


def _candidates(g: Graph, start: str, chain: list[str]) -> list[str]:
    """The step input candidates (rule 2), nearest first: a projection reading ``act(norm(x))`` may start at x."""
    out = [start]
    if chain and _is_activation(g, start) and len(g.inputs(start)) == 1:
        norm = g.inputs(start)[0]
        if opdef(g.op(norm)).count_group == "norm" and len(g.inputs(norm)) == 1:
            out.append(g.inputs(norm)[0])
    return out


def _sources(g: Graph, nodes: Any) -> list[str]:
    return [g.meta(n)["source"] for n in sorted(nodes, key=g.order) if "source" in g.meta(n)]


def find_sums(graph: Graph, describe: Any = None) -> list[Sum]:
    """Every residual sum of ``graph`` in topological order (see the module docstring).

    ``describe(node) -> str`` names a node for reasons (default: its source module and class).
    """
    describe = describe or (lambda n: _describe(graph, n))
    shapes = infer_shapes(graph)
    found: list[Sum] = []
    taken: set[str] = set()
    used_names: set[str] = set()
    for add in graph.nodes("add"):
        ins = graph.inputs(add)
        if len(ins) != 2 or ins[0] == ins[1]:
            found.append(Sum(add, add, reason="not a sum of two different tensors"))
            continue
        users = graph.users(add)
        post = [users[0]] if len(users) == 1 and _is_activation(graph, users[0]) else []
        best, why = None, ""
        for main, short in ((ins[1], ins[0]), (ins[0], ins[1])):
            chain = _shortcut_chain(graph, short, add)
            start = graph.inputs(chain[0])[0] if chain else short
            for x in _candidates(graph, start, chain):
                body, reason = _body(graph, main, x, add, chain)
                if body is None or (chain and start not in body | {x}):
                    why = why or reason or "its shortcut does not start at the step input"
                    continue
                if taken & (body | set(chain) | set(post) | {add}):
                    why = why or "it overlaps a step found before it"
                    continue
                if best is not None:  # a pre-activation BN + ReLU belongs to the step only if it lives in its module
                    narrow = _block_name(graph, _sources(graph, best[2] | set(chain)), add, best[1], set(), set())
                    wide = _block_name(graph, _sources(graph, body | set(chain)), add, x, set(), set())
                    if narrow != wide:
                        continue
                best = (main, x, body, chain)
            if best is not None:
                break
        if best is None:
            found.append(Sum(add, add, reason=f"not a residual step: {why}"))
            continue
        main, x, body, chain = best
        step = _make_step(graph, shapes, add, x, main, body, chain, post, describe, used_names)
        if isinstance(step, str):
            found.append(Sum(add, add, reason=step))
            continue
        taken |= set(step.members)
        used_names.add(step.name)
        found.append(Sum(add, step.name, step=step))
    return found


def _describe(g: Graph, n: str) -> str:
    m = g.meta(n)
    where = m.get("source") or n
    return f"{where} ({m['class']})" if m.get("class") else f"{where} ({g.op(n)})"


def _make_step(g: Graph, shapes: Graph, add: str, x: str, main: str, body: set[str], chain: list[str],
               post: list[str], describe: Any, used_names: set[str]) -> FoundStep | str:
    cin, hin, _ = shapes.shape(x)
    cout, hout, _ = shapes.shape(add)
    stride = -(-hin // hout) if hout >= 1 else 0  # a strided step rounds up: 7 -> 4 at stride 2
    if hout < 1 or -(-hin // stride) != hout:
        return f"not a residual step: no stride takes its input {hin} high to its output {hout}"
    order = sorted(body, key=g.order)
    members = order + chain + [add] + post
    replaced = [g.meta(n)["source"] for n in members if "source" in g.meta(n)]
    name = _block_name(g, replaced, add, x, set(members), used_names)
    step = FoundStep(name, IMPORTED, x, post[0] if post else add, members, None, cin, cout, stride, replaced)
    for n in order + chain + post:
        op = g.op(n)
        if not opdef(op).in_body:
            step.problem = f"{describe(n)} is an {op} layer that no MG level can re-instantiate"
            return step
        if opdef(op).scale is None and n not in chain:
            step.problem = f"{describe(n)} is a {op}, which no MG level can re-instantiate"
            return step
    names = _template_names(g, name, order + chain + post)
    env = {x: STEP_INPUT, add: SUM, **names}

    def template(nodes: list[str]) -> list[dict[str, Any]]:
        return [{"name": names[n], "op": g.op(n), "inputs": [env[i] for i in g.inputs(n)], "attrs": dict(g.attrs(n))}
                for n in nodes]

    attrs = {"kind": IMPORTED, "params": {}, "in_channels": cin, "out_channels": cout, "stride": stride,
             "body": template(order), "shortcut": template(chain), "sum": "add", "post": template(post)}
    if order[-1] != main:  # the body's output must be its last node
        return "not a residual step: its body's output is not its last node"
    known = recognise(attrs)
    rename = {name: name for name in names.values()}
    if known is not None:
        attrs, rename = _as_template(attrs, *known)
        step.kind = known[0]
    step.attrs = attrs
    step.weights = {rename[names[n]]: dict(g.meta(n)["weights"]) for n in order + chain + post
                    if g.meta(n).get("weights")}
    return step


def _as_template(found: dict[str, Any], kind: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The template's attributes (its node names), with the found shortcut renamed to read them; and the renaming."""
    made = remake({"kind": kind, "params": params})
    rename = {STEP_INPUT: STEP_INPUT, SUM: SUM}
    for part in ("body", "post"):
        for a, b in zip(found[part], made[part]):
            rename[a["name"]] = b["name"]
    taken = set(rename.values())
    shortcut = []
    for n in found["shortcut"]:
        new = n["name"] if n["name"] not in taken else f"shortcut.{n['name']}"
        rename[n["name"]] = new
        shortcut.append({**n, "name": new, "inputs": [rename[i] for i in n["inputs"]]})
    return {**made, "shortcut": shortcut}, rename


def _template_names(g: Graph, step: str, nodes: list[str]) -> dict[str, str]:
    """Template node names: the IR name relative to the step (``conv.0.0``), unique, never ``x``/``sum``/``add``."""
    out: dict[str, str] = {}
    used = {STEP_INPUT, SUM, "add"}
    for n in nodes:
        rel = n[len(step) + 1:] if n.startswith(step + ".") else n.replace(".", "_")
        candidate, k = rel, 0
        while candidate in used:
            k += 1
            candidate = f"{rel}_{k}"
        used.add(candidate)
        out[n] = candidate
    return out


def _block_name(g: Graph, replaced: list[str], add: str, x: str, members: set[str], used: set[str]) -> str:
    """The module that holds the block (``layer1.0``, ``features.3``); else the sources' common prefix."""
    sources = [s.split(".") for s in replaced]
    common: list[str] = []
    for parts in zip(*sources):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if sources and len(common) == min(len(s) for s in sources):
        common = common[:-1]  # a single source module: name the block after its parent
    scope = add.rsplit(".", 1)[0] if "." in add else ""
    name = scope if scope and ".".join(common).startswith(scope) else ".".join(common)
    if not name or (name in g and name not in members) or name in used:
        name = f"block_{x.replace('.', '_')}"
        while (name in g and name not in members) or name in used:
            name += "_"
    return name


def collapse(graph: Graph, step: FoundStep, *, meta: dict | None = None) -> str:
    """Replace the nodes of ``step`` by one ``residual`` macro named ``step.name``; returns it."""
    assert step.attrs is not None
    first = min(step.members, key=graph.order)
    node_meta = {**graph.meta(first), **(meta or {}), "step": step.name, "replaced": list(step.replaced)}
    for key in ("source", "weights", "class", ROLES_KEY):
        node_meta.pop(key, None)
    move_roles(graph.meta(step.output), node_meta)  # the macro computes the step's output: its input/output roles
    tmp = graph.add(f"{step.name}.__step__", "residual", [step.input], meta=node_meta, order=graph.order(first),
                    **step.attrs)
    graph.replace_uses(step.output, tmp)
    for n in sorted(step.members, key=graph.order, reverse=True):
        graph.remove(n)
    name = graph.add(step.name, "residual", [step.input], meta=node_meta, order=graph.order(tmp), **step.attrs)
    graph.replace_uses(tmp, name)
    graph.remove(tmp)
    return name
