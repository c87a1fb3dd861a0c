"""A small editable view of an ONNX graph: constants as numpy arrays, producers and users by value name.

The optimisation passes rewrite through this view; ``to_proto`` writes the result
back (nodes in their original order, unused initializers dropped).
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


class OnnxGraph:
    """Nodes, initializers (as numpy) and the graph interface of one ``ModelProto``."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)  # passes edit nodes in place; the caller's model stays untouched
        g = self.model.graph
        self.nodes: list[onnx.NodeProto] = list(g.node)
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.outputs = {o.name for o in g.output}
        self._fresh = itertools.count()
        self._types: dict[str, int] | None = None

    def producer(self, value: str) -> onnx.NodeProto | None:
        for n in self.nodes:
            if value in n.output:
                return n
        return None

    def users(self) -> dict[str, list[onnx.NodeProto]]:
        out: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for i in n.input:
                if i:
                    out[i].append(n)
        return out

    def n_uses(self, value: str) -> int:
        """Uses by nodes, plus one if it is a graph output (then it cannot be renamed away)."""
        return sum(i == value for n in self.nodes for i in n.input) + (value in self.outputs)

    def elem_type(self, value: str) -> int | None:
        """The ONNX element type of a value, from shape inference on the pass's input model."""
        if self._types is None:
            inferred = onnx.shape_inference.infer_shapes(self.model)
            g = inferred.graph
            self._types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]}
        return self._types.get(value) or None

    def const(self, value: str) -> np.ndarray | None:
        return self.consts.get(value)

    def add_const(self, hint: str, array: np.ndarray) -> str:
        name = f"{hint}__mg{next(self._fresh)}"
        while name in self.consts:
            name = f"{hint}__mg{next(self._fresh)}"
        self.consts[name] = array
        return name

    def rename_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            for k, i in enumerate(n.input):
                if i == old:
                    n.input[k] = new

    def remove(self, node: onnx.NodeProto) -> None:
        self.nodes = [n for n in self.nodes if n is not node]

    def remove_dead(self) -> bool:
        """Drop nodes whose outputs nobody reads (repeatedly); return whether anything went."""
        changed = False
        while True:
            used = {i for n in self.nodes for i in n.input} | self.outputs
            keep = [n for n in self.nodes if any(o in used for o in n.output if o)]
            if len(keep) == len(self.nodes):
                return changed
            self.nodes, changed = keep, True

    def to_proto(self) -> onnx.ModelProto:
        self.remove_dead()
        used = {i for n in self.nodes for i in n.input} | self.outputs
        model = self.model
        g = model.graph
        nodes = [_copy(n) for n in self.nodes]  # the wrappers point into g.node, which is cleared next
        del g.node[:]
        g.node.extend(nodes)
        del g.initializer[:]
        g.initializer.extend(numpy_helper.from_array(a, name) for name, a in self.consts.items() if name in used)
        del g.value_info[:]  # stale after rewrites; shape inference recomputes it
        return model


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    out = onnx.NodeProto()
    out.CopyFrom(node)
    return out


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default
