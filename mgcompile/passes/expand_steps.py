"""Lower the step macros (``residual``, ``transition``) into primitive ops.

Rewrite rules:

1. ``residual(x[, extra])`` named N: its template nodes are inlined as ``N.<name>``
   (body, then shortcut, then ``N.add = add(shortcut, body[, extra])``, then post),
   with ``x`` the step input and ``sum`` the add (role ``residual_sum``); every inlined node
   records its template node's name (``meta["template"]``). A step with ``sum: none`` is its body.
   The step's output takes over the macro's ``step_output``/``step_input`` roles.
   Whatever the step kind (basic, bottleneck, inverted, ConvNeXt, an imported body):
   the kind only chose the template.
2. ``transition(x)`` named T: ``paper``: avgpool2x2(concat(x, relu(bn(dw3x3(x))))) (``ceil_mode``: an odd
   H or W keeps its last row/column, averaged alone, so 7x7 -> 4x4 as the strided step's); ``dw_stride``:
   relu(bn(strided dw3x3 with 2 outputs per channel)).
"""

from __future__ import annotations

from mgcompile.errors import GraphError
from mgcompile.ir.body import STEP_INPUT, SUM
from mgcompile.ir.graph import Graph
from mgcompile.ir.rewrite import Insertion, replace_node
from mgcompile.ir.roles import Role
from mgcompile.passes.contract import contract


@contract(ensures=("no_macros",))
def expand_steps(graph: Graph) -> Graph:
    g = graph.copy()
    for name in g.nodes():
        op = g.op(name)
        if op == "residual":
            replace_node(g, name, _residual(g, name))
        elif op == "transition":
            replace_node(g, name, _transition(g, name))
    return g


def _inline(ins: Insertion, n: str, nodes: list, env: dict[str, str]) -> str | None:
    last = None
    for t in nodes:
        env[t["name"]] = last = ins.add(f"{n}.{t['name']}", t["op"], [env[i] for i in t["inputs"]],
                                        meta={"template": t["name"]}, **t["attrs"])
    return last


def _residual(g: Graph, n: str) -> str:
    a = g.attrs(n)
    x, *extra = g.inputs(n)
    ins = Insertion(g, n)
    env = {STEP_INPUT: x}
    body = _inline(ins, n, a["body"], env)
    assert body is not None
    if a["sum"] == "none":
        if extra:
            raise GraphError(f"node {n!r}: a step without a residual sum cannot take a correction input")
        return body
    short = _inline(ins, n, a["shortcut"], env) or x
    env[SUM] = ins.add(f"{n}.add", "add", [short, body, *extra], roles=[Role.RESIDUAL_SUM])
    return _inline(ins, n, a["post"], env) or env[SUM]


def _transition(g: Graph, n: str) -> str:
    a = g.attrs(n)
    (x,) = g.inputs(n)
    c = a["in_channels"]
    ins = Insertion(g, n)
    if a["mode"] == "paper":
        h = _conv_bn_relu(ins, n, x, c, c, 1)
        cat = ins.add(f"{n}.concat", "concat", [x, h])
        if a.get("ceil_mode"):  # an odd size: average the last row/column alone (no padding counted)
            return ins.add(f"{n}.pool", "avgpool", [cat], kernel=2, stride=2, ceil_mode=True, count_include_pad=False)
        return ins.add(f"{n}.pool", "avgpool", [cat], kernel=2, stride=2)
    if a["mode"] == "dw_stride":
        return _conv_bn_relu(ins, n, x, c, 2 * c, 2)
    raise GraphError(f"node {n!r}: unknown transition mode {a['mode']!r}")


def _conv_bn_relu(ins: Insertion, n: str, x: str, cin: int, cout: int, stride: int) -> str:
    x = ins.add(f"{n}.conv", "conv", [x], in_channels=cin, out_channels=cout, kernel=3, stride=stride, padding=1,
                groups=cin)
    x = ins.add(f"{n}.bn", "batchnorm", [x], channels=cout)
    return ins.add(f"{n}.relu", "relu", [x])
