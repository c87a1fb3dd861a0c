"""Fold constant subgraphs into initializers (onnxscript's folder, on onnx-ir).

Rules: a node whose inputs are all constants is evaluated and its output becomes an
initializer (up to onnxscript's size limits); nodes left without users are removed.
The dynamo exporter leaves such subgraphs behind (``Shape -> ConstantOfShape`` zero
biases, ``Cast``/``Reshape`` of index constants).
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult
from onnx_ir.passes.common import RemoveUnusedNodesPass


class FoldConstantsPass(InPlacePass):
    def call(self, model: ir.Model) -> PassResult:
        from onnxscript.optimizer import fold_constants_ir

        before = sum(1 for _ in model.graph)
        fold_constants_ir(model)
        RemoveUnusedNodesPass()(model)
        return PassResult(model, modified=sum(1 for _ in model.graph) != before)
