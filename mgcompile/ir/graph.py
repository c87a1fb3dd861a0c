"""The graph IR: a ``networkx.DiGraph`` of typed op nodes.

Node keys are hierarchical names (``stage3.block2.level1.conv1``) that the PyTorch
backend turns into module names, so a parameter in the lowered model is found by
the IR node it came from. Each node stores

* ``op``     – a name from :data:`mgcompile.ir.ops.OPS`,
* ``attrs``  – the op's typed attributes (defaults filled in),
* ``inputs`` – the ordered argument list (the edges mirror it; the list keeps order
  and repeated arguments, which a DiGraph's edges cannot),
* ``shape``  – (C, H, W) once shape inference ran,
* ``meta``   – annotations that passes and the audit read (``stage``, ``step``,
  ``level``) and the node's roles (``roles``, see :mod:`mgcompile.ir.roles`: query
  them with ``nodes(role=...)``, never by parsing a name),
* ``order``  – a tuple that makes the topological order deterministic and keeps
  expanded subgraphs where their macro was.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable, Iterator, Mapping

import networkx as nx

from mgcompile.errors import GraphError
from mgcompile.ir.meta import GraphMeta
from mgcompile.ir.ops import Shape, normalize_attrs, opdef
from mgcompile.ir.roles import Role, add_role, has_role, roles_of

IR_FORMAT = "mgcompile-ir"
IR_VERSION = 2  # 2: node roles (ir.roles), a typed graph meta; version 1 is read by ir.legacy


class Graph:
    """A thin, explicit wrapper around ``networkx.DiGraph`` (available as ``.nx``)."""

    def __init__(self, meta: GraphMeta | Mapping[str, Any] | None = None) -> None:
        """``meta``: a :class:`GraphMeta`, or its ``graph.json`` form (``GraphMeta.from_dict``)."""
        self.nx = nx.DiGraph()
        if meta is not None and not isinstance(meta, GraphMeta):
            meta = GraphMeta.from_dict(meta)
        self.meta_graph: GraphMeta = meta if meta is not None else GraphMeta()
        """Graph-level annotations: the spec, the MG parameters, step statuses, notes, ... (a :class:`GraphMeta`)."""
        self._next = 0

    # ---- building -----------------------------------------------------------------
    def add(
        self,
        name: str,
        op: str,
        inputs: Iterable[str] = (),
        *,
        meta: Mapping[str, Any] | None = None,
        order: tuple[int, ...] | None = None,
        **attrs: Any,
    ) -> str:
        """Add node ``name`` computing ``op(*inputs)``; returns ``name`` for chaining."""
        if name in self.nx:
            raise GraphError(f"duplicate node name {name!r}")
        inputs = list(inputs)
        for src in inputs:
            if src not in self.nx:
                raise GraphError(f"node {name!r} uses {src!r}, which is not in the graph")
        if order is None:
            order = (self._next,)
            self._next += 1
        self.nx.add_node(
            name,
            op=op,
            attrs=normalize_attrs(op, attrs),
            inputs=inputs,
            shape=None,
            meta=dict(meta or {}),
            order=tuple(order),
        )
        for src in inputs:
            self.nx.add_edge(src, name)
        return name

    def set_inputs(self, name: str, inputs: list[str]) -> None:
        for src in self.inputs(name):
            if self.nx.has_edge(src, name):
                self.nx.remove_edge(src, name)
        self.nx.nodes[name]["inputs"] = list(inputs)
        for src in inputs:
            self.nx.add_edge(src, name)

    def replace_uses(self, old: str, new: str, *, exclude: Iterable[str] = ()) -> None:
        """Make every user of ``old`` (except ``exclude``) read ``new`` instead."""
        skip = set(exclude)
        for user in list(self.users(old)):
            if user in skip:
                continue
            self.set_inputs(user, [new if x == old else x for x in self.inputs(user)])

    def remove(self, name: str) -> None:
        if self.users(name):
            raise GraphError(f"cannot remove {name!r}: still used by {', '.join(self.users(name))}")
        self.nx.remove_node(name)

    def copy(self) -> "Graph":
        """An independent copy: passes edit the copy, never their input (graph meta included)."""
        g = Graph(copy.deepcopy(self.meta_graph))
        g.nx = self.nx.copy()
        for n in g.nx.nodes:
            data = g.nx.nodes[n]
            data["attrs"] = dict(data["attrs"])
            data["meta"] = dict(data["meta"])
            data["inputs"] = list(data["inputs"])
        g._next = self._next
        return g

    # ---- reading ------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def op(self, name: str) -> str:
        return self.nx.nodes[name]["op"]

    def attrs(self, name: str) -> dict[str, Any]:
        return self.nx.nodes[name]["attrs"]

    def meta(self, name: str) -> dict[str, Any]:
        return self.nx.nodes[name]["meta"]

    def order(self, name: str) -> tuple[int, ...]:
        return self.nx.nodes[name]["order"]

    def inputs(self, name: str) -> list[str]:
        return list(self.nx.nodes[name]["inputs"])

    def users(self, name: str) -> list[str]:
        return sorted(self.nx.successors(name), key=self.order)

    def shape(self, name: str) -> Shape:
        s = self.nx.nodes[name]["shape"]
        if s is None:
            raise GraphError(f"node {name!r} has no shape yet; run infer_shapes first")
        return s

    def set_shape(self, name: str, shape: Shape) -> None:
        self.nx.nodes[name]["shape"] = tuple(int(x) for x in shape)

    def nodes(self, op: str | None = None, *, role: Role | None = None, step: str | None = None) -> list[str]:
        """Node names in deterministic topological order, optionally of one op kind and/or playing ``role``
        (for ``step``, when given: ``nodes(role=Role.STEP_OUTPUT, step="layer2.0")``)."""
        if step is not None and role is None:
            raise GraphError("nodes(step=...) needs a role: a step's nodes are found by the role they play for it")
        order = list(nx.lexicographical_topological_sort(self.nx, key=lambda n: self.order(n)))
        return [n for n in order if (op is None or self.op(n) == op)
                and (role is None or has_role(self.meta(n), role, step))]

    def roles(self, name: str) -> dict[Role, list[str]]:
        """``{role: [step, ...]}``: the roles node ``name`` plays (see :mod:`mgcompile.ir.roles`)."""
        return roles_of(self.meta(name))

    def set_role(self, name: str, role: Role, step: str) -> None:
        """Record that node ``name`` plays ``role`` for ``step`` (what the pass that creates a node calls)."""
        add_role(self.nx.nodes[name]["meta"], role, step)

    def input_shape(self) -> Shape:
        """(C, H, W) of the network input: what example inputs, exports and data loaders need."""
        inputs = self.nodes("input")
        if len(inputs) != 1:
            raise GraphError(f"expected one input node, found {len(inputs)}")
        return self.shape(inputs[0])

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes())

    # ---- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = nx.node_link_data(self.nx, edges="edges")
        for node in data["nodes"]:
            node["order"] = list(node["order"])
            node["shape"] = list(node["shape"]) if node["shape"] is not None else None
        data["graph"] = self.meta_graph.to_dict()
        data["graph"]["format"] = IR_FORMAT
        data["graph"]["ir_version"] = IR_VERSION
        return data

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Graph":
        graph_meta = dict(data.get("graph", {}))
        if graph_meta.pop("format", None) != IR_FORMAT:
            raise GraphError("not an mgcompile IR (graph.format != 'mgcompile-ir'); pass a graph.json written by mgcompile")
        version = graph_meta.pop("ir_version", None)
        if version not in (1, "1", IR_VERSION):  # (v0.1.0 wrote the version as a string)
            raise GraphError(f"IR version {version} is not supported (this mgcompile reads 1 to {IR_VERSION})")
        data = dict(data)
        data["graph"] = {}
        g = cls(GraphMeta.from_dict(graph_meta))
        g.nx = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
        for n in g.nx.nodes:
            node = g.nx.nodes[n]
            opdef(node["op"])
            node["order"] = tuple(node["order"])
            node["shape"] = tuple(node["shape"]) if node.get("shape") is not None else None
            node["attrs"] = normalize_attrs(node["op"], node["attrs"])
        g._next = 1 + max((g.order(n)[0] for n in g.nx.nodes), default=-1)
        if version != IR_VERSION:
            from mgcompile.ir.legacy import upgrade_v1_roles

            upgrade_v1_roles(g)
        return g

    @classmethod
    def from_json(cls, text: str) -> "Graph":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise GraphError(f"graph JSON is corrupt ({exc.msg} at line {exc.lineno}); re-run mgcompile convert") from None

    def __repr__(self) -> str:
        return f"Graph({len(self)} nodes)"

    def format(self) -> str:
        """A readable listing, one node per line, like ``torch.fx.Graph.print_tabular``."""
        lines = []
        for n in self.nodes():
            d = self.nx.nodes[n]
            attrs = ", ".join(f"{k}={v}" for k, v in d["attrs"].items() if k != "permutation")
            shape = "x".join(map(str, d["shape"])) if d["shape"] else "?"
            lines.append(f"{n:<44} {d['op']:<14} ({', '.join(d['inputs'])}) [{shape}] {attrs}")
        return "\n".join(lines)
