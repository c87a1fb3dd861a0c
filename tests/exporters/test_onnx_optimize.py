"""Each ONNX pass on a hand-built graph: the exact nodes left, and ORT outputs unchanged."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mgcompile.errors import MGCompileError
from mgcompile.exporters.onnx_graph import OnnxGraph
from mgcompile.exporters.onnx_optimize import PASSES, optimize
from mgcompile.exporters.ort_run import run_model

RNG = np.random.default_rng(0)


def _model(nodes, inits: dict[str, np.ndarray], c_in: int = 4, out: str = "Y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", c_in, 5, 5])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _bn_inits(prefix: str, n: int) -> dict[str, np.ndarray]:
    return {f"{prefix}.s": RNG.uniform(0.5, 1.5, n), f"{prefix}.b": RNG.normal(0, 0.3, n),
            f"{prefix}.m": RNG.normal(0, 0.5, n), f"{prefix}.v": RNG.uniform(0.5, 2.0, n)}


def _bn(x: str, prefix: str, y: str) -> onnx.NodeProto:
    return helper.make_node("BatchNormalization", [x, f"{prefix}.s", f"{prefix}.b", f"{prefix}.m", f"{prefix}.v"], [y],
                            epsilon=1e-5)


def _run(model: onnx.ModelProto, passes: list[str]) -> tuple[onnx.ModelProto, float]:
    x = RNG.standard_normal((3, 4, 5, 5)).astype(np.float32)
    new, _ = optimize(model, [p for p in PASSES if p[0] in passes])
    diff = float(np.max(np.abs(run_model(new, x) - run_model(model, x))))
    return new, diff


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_bn_folds_into_grouped_conv():
    nodes = [helper.make_node("Conv", ["X", "W"], ["c"], group=2, pads=[1, 1, 1, 1]), _bn("c", "bn", "Y")]
    model = _model(nodes, {"W": RNG.standard_normal((6, 2, 3, 3)), **_bn_inits("bn", 6)})
    new, diff = _run(model, ["fold_bn_into_conv"])
    assert _ops(new) == ["Conv"]
    assert len(new.graph.node[0].input) == 3  # the BN shift became a bias
    assert diff <= 1e-5


def test_bn_after_channel_gather_moves_then_folds():
    perm = RNG.permutation(6).astype(np.int64)
    nodes = [helper.make_node("Conv", ["X", "W"], ["c"], group=2), helper.make_node("Gather", ["c", "perm"], ["g"], axis=1),
             _bn("g", "bn", "Y")]
    model = _model(nodes, {"W": RNG.standard_normal((6, 2, 1, 1)), "perm": perm, **_bn_inits("bn", 6)})
    moved, diff = _run(model, ["move_bn_before_gather"])
    assert _ops(moved) == ["Conv", "BatchNormalization", "Gather"] and diff <= 1e-5
    folded, diff = _run(model, ["move_bn_before_gather", "fold_bn_into_conv"])
    assert _ops(folded) == ["Conv", "Gather"] and diff <= 1e-5


@pytest.mark.parametrize("groups, perm, folds", [
    (1, [3, 0, 5, 1, 4, 2], True),   # dense conv: any channel order folds into W's rows
    (2, [2, 0, 1, 4, 5, 3], True),   # every channel stays in its group
    (2, [3, 0, 5, 1, 4, 2], False),  # crosses groups: not expressible as the same grouped conv
])
def test_gather_after_conv_folds_only_where_exact(groups, perm, folds):
    nodes = [helper.make_node("Conv", ["X", "W"], ["c"], group=groups),
             helper.make_node("Gather", ["c", "perm"], ["Y"], axis=1)]
    model = _model(nodes, {"W": RNG.standard_normal((6, 4 // groups, 1, 1)), "perm": np.array(perm, np.int64)})
    new, diff = _run(model, ["fold_gather_into_conv"])
    assert _ops(new) == (["Conv"] if folds else ["Conv", "Gather"])
    assert diff <= 1e-5


def test_gather_before_dense_conv_folds_into_its_input_channels():
    nodes = [helper.make_node("Gather", ["X", "perm"], ["g"], axis=1), helper.make_node("Conv", ["g", "W"], ["Y"])]
    model = _model(nodes, {"W": RNG.standard_normal((6, 4, 1, 1)), "perm": np.array([2, 0, 3, 1], np.int64)})
    new, diff = _run(model, ["fold_gather_into_conv"])
    assert _ops(new) == ["Conv"] and new.graph.node[0].input[0] == "X"
    assert diff <= 1e-5


def test_constants_fold_and_identities_go():
    nodes = [helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([1, 4, 1, 1], np.int64))),
             helper.make_node("Reshape", ["b", "shape"], ["b4"]),
             helper.make_node("Identity", ["X"], ["x1"]),
             helper.make_node("Add", ["x1", "b4"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Identity", ["r"], ["Y"])]
    model = _model(nodes, {"b": RNG.standard_normal(4)})
    new, diff = _run(model, ["fold_constants", "remove_identities"])
    assert _ops(new) == ["Add", "Relu"]
    assert new.graph.node[-1].output[0] == "Y" and new.graph.output[0].name == "Y"
    assert diff == 0.0


def test_a_wrong_pass_is_caught_and_named():
    def scale_first_weight(g: OnnxGraph) -> bool:
        g.consts["W"] = g.consts["W"] * 1.01
        return True

    model = _model([helper.make_node("Conv", ["X", "W"], ["Y"])], {"W": RNG.standard_normal((6, 4, 1, 1))})
    with pytest.raises(MGCompileError, match="scale_first_weight"):
        optimize(model, [("scale_first_weight", scale_first_weight)])
