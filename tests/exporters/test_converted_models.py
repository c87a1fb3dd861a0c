"""Converted torchvision families (and a user module with an opaque layer) export and verify.

Reduced input size keeps CI fast; the converted graphs are the same as at 224x224.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torchvision

import mgcompile
from mgcompile.exporters.export import export_model

sys.path.insert(0, str(Path(__file__).parents[1] / "frontends"))
from user_nets import BottleneckNet  # noqa: E402

SIZE = (3, 64, 64)


def _converted(family: str) -> torch.nn.Module:
    x = torch.randn(1, *SIZE)
    if family == "resnet18":
        return mgcompile.convert(torchvision.models.resnet18(num_classes=10), group_size=32, example_input=x)
    if family == "resnet50":  # bottleneck cycles; layer4 kept dense to stay small
        return mgcompile.convert(torchvision.models.resnet50(num_classes=10), group_size=32, coarsest=256,
                                 ignored_layers=("layer4.*",), example_input=x)
    if family == "mobilenet_v2":
        return mgcompile.convert(torchvision.models.mobilenet_v2(num_classes=10), group_size=32, coarsest=64,
                                 example_input=x)
    return mgcompile.convert(BottleneckNet(c=64), group_size=8, coarsest=32, example_input=torch.randn(1, 3, 16, 16))


CASES = {"resnet18": SIZE, "resnet50": SIZE, "mobilenet_v2": SIZE, "user_opaque": (3, 16, 16)}


@pytest.mark.parametrize("family", list(CASES))
def test_converted_model_exports_to_onnx_and_verifies(family, tmp_path, with_random_bn):
    model = with_random_bn(_converted(family))
    assert model.mg_conversion["converted"] > 0
    report = export_model(model, CASES[family], tmp_path / f"{family}.onnx")
    assert report["verification"]["ok"]
    assert report["op_counts"].get("BatchNormalization", 0) == 0


@pytest.mark.parametrize("family", ["resnet18", "user_opaque"])
@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_converted_model_exports_to_torch_formats(family, fmt, tmp_path, with_random_bn):
    model = with_random_bn(_converted(family))
    report = export_model(model, CASES[family], tmp_path / f"{family}.{fmt}", fmt=fmt)
    assert report["verification"]["ok"]
