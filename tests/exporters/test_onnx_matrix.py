"""Every model family exports to ONNX, passes the checker, carries its metadata, and matches PyTorch in ORT."""

from __future__ import annotations

import json
from collections import Counter

import onnx

from mgcompile import __version__
from mgcompile.exporters.export import export_model
from mgcompile.exporters.verify import result_path


def _ir_counts(graph) -> Counter:
    return Counter(graph.op(n) for n in graph.nodes())


def _unfoldable_bn(graph) -> int:
    """BNs not right after a conv or a prolongation (pre-activation steps): no conv to fold into."""
    return sum(graph.op(graph.inputs(n)[0]) not in ("conv", "prolong") for n in graph.nodes("batchnorm"))


def test_matrix_exports_optimized_and_verified(matrix_case, tmp_path):
    case, model, shape = matrix_case
    path = tmp_path / f"{case}.onnx"
    report = export_model(model, shape, path, metadata={"mgcompile_spec": model.mg_spec.to_json()})

    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["mgcompile_version"] == __version__
    assert json.loads(meta["mgcompile_spec"]) == model.mg_spec.to_dict()

    ops = Counter(n.op_type for n in proto.graph.node)
    ir = _ir_counts(model.mg_graph)
    assert ops["BatchNormalization"] == _unfoldable_bn(model.mg_graph)
    if model.mg_spec.activation == "post":
        assert ops["BatchNormalization"] == 0
    assert ops["Conv"] == ir["conv"] + ir["restrict"] + ir["prolong"]
    assert ops["Gemm"] == ir["linear"]
    assert report["verification"]["ok"]
    assert [b["batch"] for b in report["verification"]["runs"]["cpu"]["batches"]] == [1, 7]
    saved = json.loads(result_path(path).read_text())
    assert saved["ok"] and saved["max_rel_diff"] <= 1e-4
    assert "CPUExecutionProvider" in saved["providers"]
