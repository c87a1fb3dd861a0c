"""The seven newer families at full size: MG g32/θ64 builds, trains (every parameter learns, line-searched steps
lower the loss) and exports to ONNX with parity. Slow; `make test-full` runs it (`make test` covers each family
at reduced size, gradient finite differences included)."""

from __future__ import annotations

import pytest

import mgcompile

# mobilenet_v3_small converts nothing at g32/θ64 (its SE-heavy cycles do not pay; see test_mobilenet_v3.py)
FULL = {"mobilenet_v3_small": (16, 32), "mobilenet_v3_large": (32, 64), "efficientnet_b0": (32, 64),
        "regnet_x_400mf": (32, 64), "regnet_y_400mf": (32, 64), "mnasnet1_0": (32, 64), "convnext_tiny": (32, 64)}


@pytest.mark.full
@pytest.mark.parametrize("name", sorted(FULL))
def test_full_size_mg_network_trains_and_exports(family_checks, name):
    g, c = FULL[name]
    # at full size the loss is too rough for finite differences (the reduced tests check gradients that way)
    family_checks.mg_lowers_trains_and_exports(mgcompile.model_spec(name, group_size=g, coarsest=c), batch=2,
                                               finite_differences=False)
