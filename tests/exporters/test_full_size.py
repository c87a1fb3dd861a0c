"""Full-size ONNX export + ORT verification of resnet34 and mg_resnet34_g32c64 (`make test-full`)."""

from __future__ import annotations

from collections import Counter

import onnx
import pytest

import mgcompile
from mgcompile.exporters.export import export_model


@pytest.mark.full
@pytest.mark.parametrize("name", ["resnet34", "mg_resnet34_g32c64"])
def test_full_size_onnx_export_verifies(name, tmp_path, with_random_bn):
    model = with_random_bn(mgcompile.build(mgcompile.model_spec(name)))
    report = export_model(model, (3, 224, 224), tmp_path / f"{name}.onnx")
    ops = Counter(n.op_type for n in onnx.load(tmp_path / f"{name}.onnx").graph.node)
    assert ops["BatchNormalization"] == 0
    rows = report["verification"]["runs"]["cpu"]["batches"]
    assert [r["batch"] for r in rows] == [1, 7]
    assert all(r["max_rel_diff"] <= 1e-4 for r in rows)
