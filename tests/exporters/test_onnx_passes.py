"""The onnx-ir cleanup passes, each on a tiny hand-built ONNX graph: the exact nodes that remain."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper

from mgcompile.exporters.onnx_passes import optimize
from mgcompile.exporters.onnx_passes.fold_constants import FoldConstantsPass
from mgcompile.exporters.onnx_passes.remove_dropout import RemoveDropoutPass


def _model(nodes, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def _ops(model) -> list[str]:
    return [n.op_type for n in (model.graph if isinstance(model, ir.Model) else model.graph.node)]


def test_remove_dropout_keeps_only_what_computes():
    m = _model([helper.make_node("Dropout", ["x"], ["d"], ratio=0.5), helper.make_node("Relu", ["d"], ["y"])])
    result = RemoveDropoutPass()(ir.from_proto(m))
    assert result.modified and _ops(result.model) == ["Relu"]
    assert result.model.graph.node(0).inputs[0].name == "x"
    kept = _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Dropout", ["r"], ["y"])])
    assert not RemoveDropoutPass()(ir.from_proto(kept)).modified  # its output is the graph's output


def test_fold_constants_turns_a_constant_subgraph_into_an_initializer():
    two = helper.make_tensor("two", TensorProto.FLOAT, [4], [2.0] * 4)
    m = _model([helper.make_node("Add", ["two", "two"], ["four"]), helper.make_node("Mul", ["x", "four"], ["y"])],
               [two])
    result = FoldConstantsPass()(ir.from_proto(m))
    assert result.modified and _ops(result.model) == ["Mul"]


def test_optimize_runs_every_pass_reports_it_and_keeps_the_outputs():
    two = helper.make_tensor("two", TensorProto.FLOAT, [4], [2.0] * 4)
    m = _model([helper.make_node("Add", ["two", "two"], ["four"]), helper.make_node("Identity", ["x"], ["i"]),
                helper.make_node("Dropout", ["i"], ["d"]), helper.make_node("Mul", ["d", "four"], ["y"])], [two])
    out, report = optimize(m)
    assert _ops(out) == ["Mul"]
    assert [r["pass"] for r in report] == ["fold_constants", "remove_dropout", "eliminate_identities",
                                           "remove_unused_nodes"]
    assert all(r.get("max_abs_diff", 0.0) == 0.0 for r in report) and report[0]["changed"]
    import onnxruntime as ort

    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    got = ort.InferenceSession(out.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(got, 4 * x)
