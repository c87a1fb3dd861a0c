"""IR -> PyTorch: codegen to a ``torch.fx.GraphModule``.

Every parametric IR node becomes a module whose dotted path is the node's name
(``stage3.block2.level1.conv1``), so ``state_dict`` keys point back to the IR. The
forward is an fx graph generated node by node: print ``model.code`` to read it. The
result is fx-traceable and ``torch.compile``-able like any GraphModule.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.spec import Spec


class Restriction(nn.Module):
    """R = G_R ∘ Π: a fixed channel permutation (a buffer, never re-drawn), then a grouped 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, permutation: list[int] | None) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, 1, 1))
        self.register_buffer("perm", None if permutation is None else torch.tensor(permutation, dtype=torch.long))
        positive_row_stochastic_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.perm is not None:
            x = x.index_select(1, self.perm)
        return F.conv2d(x, self.weight, groups=self.groups)


class Prolongation(nn.Module):
    """P = Πᵀ ∘ G_P: a grouped 1x1 conv, then the inverse of R's permutation."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, permutation: list[int] | None) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, 1, 1))
        inverse = None
        if permutation is not None:
            inverse = torch.empty(len(permutation), dtype=torch.long)
            inverse[torch.tensor(permutation)] = torch.arange(len(permutation))
        self.register_buffer("inv_perm", inverse)
        positive_row_stochastic_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, groups=self.groups)
        if self.inv_perm is not None:
            x = x.index_select(1, self.inv_perm)
        return x


@torch.no_grad()
def positive_row_stochastic_(weight: torch.Tensor) -> torch.Tensor:
    """The paper's transfer init: positive random weights, each row summing to 1 (mean 1/nnz)."""
    weight.uniform_(0.5, 1.5)
    weight /= weight.sum(dim=(1, 2, 3), keepdim=True)
    return weight


def _make_module(op: str, a: Mapping[str, Any]) -> nn.Module | None:
    if op == "conv":
        conv = nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel"], a["stride"], a["padding"],
                         groups=a["groups"], bias=a["bias"])
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        return conv
    if op == "batchnorm":
        return nn.BatchNorm2d(a["channels"], eps=a["eps"], momentum=a["momentum"])
    if op == "linear":
        return nn.Linear(a["in_features"], a["out_features"], bias=a["bias"])
    if op == "restrict":
        return Restriction(a["in_channels"], a["out_channels"], a["groups"], a["permutation"])
    if op == "prolong":
        return Prolongation(a["in_channels"], a["out_channels"], a["groups"], a["permutation"])
    if op == "dropout":
        return nn.Dropout(a["p"])
    return None


def _function(op: str, a: Mapping[str, Any]) -> tuple[Callable, tuple, dict]:
    """(callable, extra args, kwargs) for parameter-free ops."""
    if op == "relu":
        return torch.relu, (), {}
    if op == "relu6":
        return F.relu6, (), {}
    if op == "avgpool":
        return F.avg_pool2d, (a["kernel"], a["stride"], a["padding"]), {}
    if op == "maxpool":
        return F.max_pool2d, (a["kernel"], a["stride"], a["padding"]), {}
    if op == "global_avgpool":
        return F.adaptive_avg_pool2d, (1,), {}
    if op == "flatten":
        return torch.flatten, (1,), {}
    raise GraphError(f"op {op!r} has no PyTorch lowering")


def _py(name: str) -> str:
    """A Python identifier for a node name, so generated code reads like the IR."""
    return name.replace(".", "_")


def _install(root: nn.Module, path: str, module: nn.Module) -> None:
    parent = root
    *scopes, leaf = path.split(".")
    for s in scopes:
        if not hasattr(parent, s):
            parent.add_module(s, nn.Module())
        parent = getattr(parent, s)
    parent.add_module(leaf, module)


def lower_to_torch(graph: Graph, *, opaque: Mapping[str, nn.Module] | None = None, seed: int | None = None) -> fx.GraphModule:
    """Build the module of a fully expanded graph (no macros; shapes inferred).

    ``opaque`` maps the ``target`` of each ``opaque`` node to the original module it
    stands for. ``seed`` makes the initialisation deterministic (default: the spec's).
    """
    if seed is None:
        seed = int(graph.meta_graph.get("spec", {}).get("seed", 0))
    root = nn.Module()
    fg = fx.Graph()
    values: dict[str, fx.Node] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in graph.nodes():
            op, a, args = graph.op(name), graph.attrs(name), [values[i] for i in graph.inputs(name)]
            if op == "input":
                values[name] = fg.placeholder(_py(name))
            elif op == "output":
                fg.output(args[0])
            elif op == "opaque":
                if opaque is None or a["target"] not in opaque:
                    raise GraphError(f"opaque node {name!r} needs module {a['target']!r}, which was not supplied")
                _install(root, name, opaque[a["target"]])
                values[name] = fg.call_module(name, tuple(args))
            elif (module := _make_module(op, a)) is not None:
                _install(root, name, module)
                values[name] = fg.call_module(name, tuple(args))
            elif op in ("add", "sub"):
                fn = operator.add if op == "add" else operator.sub
                acc = args[0]
                for other in args[1:]:
                    acc = fg.create_node("call_function", fn, (acc, other), name=_py(name))
                values[name] = acc
            elif op == "concat":
                values[name] = fg.create_node("call_function", torch.cat, (args, 1), name=_py(name))
            else:
                fn, extra, kwargs = _function(op, a)
                values[name] = fg.create_node("call_function", fn, (*args, *extra), kwargs, name=_py(name))
    fg.lint()
    return fx.GraphModule(root, fg, class_name="MGNet")


def attach(model: nn.Module, graph: Graph, spec: Spec | None) -> nn.Module:
    """Remember where a module came from, so :func:`mgcompile.save` can store it."""
    model.mg_graph = graph  # type: ignore[attr-defined]
    model.mg_spec = spec  # type: ignore[attr-defined]
    return model
