"""Remove inference-mode Dropout nodes.

Rule: ``y = Dropout(x)`` with no ``training_mode`` input (or a constant false one) and
no mask output in use is the identity: every use of ``y`` reads ``x`` instead and the
node is removed (a Dropout whose output is a graph output is left alone).
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult


def _inference(node: ir.Node) -> bool:
    if len(node.inputs) < 3 or node.inputs[2] is None:
        return True
    value = node.inputs[2].const_value
    return value is not None and not bool(value.numpy())


class RemoveDropoutPass(InPlacePass):
    def call(self, model: ir.Model) -> PassResult:
        modified = False
        graph = model.graph
        for node in list(graph):
            if node.op_type != "Dropout" or node.domain not in ("", "ai.onnx") or not _inference(node):
                continue
            if len(node.outputs) > 1 and node.outputs[1].uses():
                continue
            x, y = node.inputs[0], node.outputs[0]
            if y in graph.outputs:
                continue
            y.replace_all_uses_with(x)
            graph.remove(node, safe=True)
            modified = True
        return PassResult(model, modified=modified)
