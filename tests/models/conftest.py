"""Checks every model family passes (one test file per family uses them)."""

from __future__ import annotations

import pytest
import torch

import mgcompile
from mgcompile.passes import count


def torchvision_params(name: str) -> int:
    import torchvision

    return sum(p.numel() for p in torchvision.models.get_model(name, weights=None).parameters())


class FamilyChecks:
    """What issue 10 asks of a family: exact base counts, and an MG version that lowers, trains and exports."""

    def __init__(self, assert_trains, fixed_batch, tmp_path) -> None:
        self.assert_trains, self.fixed_batch, self.tmp_path = assert_trains, fixed_batch, tmp_path

    @staticmethod
    def base_params_equal_torchvision(registry_name: str, torchvision_name: str) -> int:
        """Counted from the IR alone (no module built) and equal to torchvision's module, exactly."""
        params = count(mgcompile.expand(mgcompile.model_spec(registry_name))).params
        assert params == torchvision_params(torchvision_name), registry_name
        return params

    def mg_lowers_trains_and_exports(self, spec: mgcompile.Spec, batch: int = 4,
                                     finite_differences: bool = True) -> torch.nn.Module:
        """The MG spec (reduced size) expands with cycles, counts like its module, trains, exports with parity."""
        from mgcompile.exporters.export import export_model

        graph = mgcompile.expand(spec)
        assert graph.nodes("restrict"), "no MG cycle was built"
        model = mgcompile.build(graph)
        assert count(graph).params == sum(p.numel() for p in model.parameters())
        c, h, w = graph.input_shape()
        x, y = self.fixed_batch((batch, c, h, w), spec.num_classes)
        assert model(x).shape == (batch, spec.num_classes)
        self.assert_trains(model, x, y, finite_differences=finite_differences)
        report = export_model(model, (c, h, w), self.tmp_path / "m.onnx", fmt="onnx")
        assert report["verification"]["ok"] and report["verification"]["max_rel_diff"] <= 1e-4
        return model


@pytest.fixture
def family_checks(assert_trains, fixed_batch, tmp_path) -> FamilyChecks:
    return FamilyChecks(assert_trains, fixed_batch, tmp_path)
