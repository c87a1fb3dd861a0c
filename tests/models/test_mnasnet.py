"""MnasNet: torchvision's exact counts (at every alpha), an MG version that lowers, trains and exports."""

from __future__ import annotations

import pytest
import torchvision

import mgcompile
from mgcompile.errors import SpecError
from mgcompile.passes import count


def test_base_params_equal_torchvision(family_checks):
    assert family_checks.base_params_equal_torchvision("mnasnet1_0", "mnasnet1_0") == 4_383_312


@pytest.mark.parametrize("alpha, tv_name", [(0.5, "mnasnet0_5"), (0.75, "mnasnet0_75"), (1.3, "mnasnet1_3")])
def test_width_mult_is_torchvision_alpha(alpha, tv_name):
    spec = mgcompile.model_spec("mnasnet1_0", width_mult=alpha)
    tv = getattr(torchvision.models, tv_name)()
    assert count(mgcompile.expand(spec)).params == sum(p.numel() for p in tv.parameters())


def test_mg_reduced_lowers_trains_and_exports(family_checks):
    spec = mgcompile.model_spec("mnasnet1_0", width_mult=0.5, blocks=(2, 1, 2, 1, 1, 1), input_size=(32, 32),
                                num_classes=10, group_size=8, coarsest=16)
    family_checks.mg_lowers_trains_and_exports(spec)


def test_mg_has_fewer_params_than_base():
    base = count(mgcompile.expand(mgcompile.model_spec("mnasnet1_0"))).params
    mg = count(mgcompile.expand(mgcompile.model_spec("mnasnet1_0", group_size=32, coarsest=64, only_profitable=True)))
    assert mg.params < base


def test_stage_count_is_checked():
    with pytest.raises(SpecError, match="field 'channels'"):
        mgcompile.model_spec("mnasnet1_0", channels=(24, 40, 80), blocks=(1, 1, 1))
