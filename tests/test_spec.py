"""Spec validation, round trips and the level rule."""

from __future__ import annotations

import pytest

import mgcompile
from mgcompile.spec import Spec, mg_levels


@pytest.mark.parametrize(
    "width, theta, fine, coarsest",
    [(512, 64, [512, 256, 128, 64], 32), (64, 64, [64], 32), (64, 16, [64, 32, 16], 8), (16, 16, [16], 8),
     (96, 64, [96], 48)],
)
def test_level_rule_matches_the_reference_table(width, theta, fine, coarsest):
    assert mg_levels(width, theta) == (fine, coarsest)


def test_block_narrower_than_theta_is_already_coarse():
    assert mg_levels(32, 64) is None


def test_theta_and_nnz_default_from_group_size():
    s = Spec(group_size=16)
    assert s.theta == 32 and s.nnz == 16
    assert Spec(group_size=16, coarsest=64, transfer_nnz=4).nnz == 4


@pytest.mark.parametrize("name", ["cifar_resnet", "resnet34", "mg_resnet34_g32c64", "mg_cifar_resnet_g8c16_add_grouped_pre"])
def test_yaml_and_json_round_trip_losslessly(name, tmp_path):
    spec = mgcompile.model_spec(name)
    assert Spec.from_dict(spec.to_dict()) == spec
    (tmp_path / "s.yaml").write_text(spec.to_yaml())
    (tmp_path / "s.json").write_text(spec.to_json())
    assert Spec.from_file(tmp_path / "s.yaml") == spec
    assert Spec.from_file(tmp_path / "s.json") == spec


def test_paper_spec_round_trips_with_its_paper_row():
    spec = mgcompile.model_spec("paper/t1_c10_mg_16-128_g8c16")
    assert spec.paper is not None and spec.paper.params_m == 0.22
    assert Spec.from_dict(spec.to_dict()) == spec


def test_mg_name_suffixes():
    s = mgcompile.model_spec("mg_cifar_resnet_g8c16_add_grouped_dw_pre")
    assert (s.group_size, s.theta, s.cycle, s.transfer, s.transition, s.activation) == (
        8, 16, "additive", "grouped", "dw_stride", "pre")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"cycle": "w"}, "field 'cycle' is 'w'; allowed values: multiplicative, additive"),
        ({"transfer": "dense"}, "field 'transfer'"),
        ({"transition": "x"}, "allowed values: paper, dw_stride, keep"),
        ({"activation": "mid"}, "field 'activation'"),
        ({"stem": "big"}, "field 'stem'"),
        ({"group_size": 0}, "field 'group_size' must be a positive integer"),
        ({"blocks": (1, 2)}, "field 'blocks'"),
        ({"channels": ()}, "field 'channels'"),
        ({"coarsest": 32}, "needs 'group_size'"),
        ({"group_size": 12, "channels": (16, 32, 64, 128)}, "group_size 12 does not divide the 32 channels of stage2 level0"),
        ({"input_size": (32,)}, "field 'input_size'"),
        ({"version": 99}, "field 'version'"),
        ({"width_mult": -1.0}, "field 'width_mult'"),
    ],
)
def test_invalid_values_name_the_field(fields, message):
    """Generic fields fail at construction, family rules (divisibility for ResNets) at the family check."""
    from mgcompile.models import family_of

    base = {"channels": (16, 32, 64, 128), "blocks": (1, 1, 1, 1)}
    with pytest.raises(mgcompile.SpecError, match=None) as err:
        family_of(Spec(**{**base, **fields}))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_field_and_malformed_file(tmp_path):
    with pytest.raises(mgcompile.SpecError, match="unknown spec field"):
        Spec.from_dict({"chanels": [1]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: [16, 32\n")
    with pytest.raises(mgcompile.SpecError, match="not valid YAML/JSON"):
        Spec.from_file(bad)
    with pytest.raises(mgcompile.SpecError, match="does not exist"):
        Spec.from_file(tmp_path / "missing.yaml")


def test_unknown_model_suggests_close_names():
    with pytest.raises(mgcompile.MGCompileError, match="did you mean resnet34"):
        mgcompile.model_spec("resnet43")


@pytest.mark.parametrize("width, group_size, uneven, groups", [
    (64, 16, "error", 4), (16, 32, "error", 1), (80, 32, "floor", 2), (44, 16, "floor", 2), (96, 64, "floor", 1),
])
def test_level_groups(width, group_size, uneven, groups):
    from mgcompile.spec import level_groups

    assert level_groups(width, group_size, uneven) == groups
    assert (width // 2) % groups == 0


def test_uneven_level_is_an_error_for_resnets_and_floor_for_mobilenet():
    from mgcompile.spec import level_groups

    with pytest.raises(mgcompile.SpecError, match="does not divide width 80"):
        level_groups(80, 32)
    from mgcompile.models import uneven_policy

    assert uneven_policy(mgcompile.model_spec("mobilenet_v2", group_size=32)) == "floor"
    assert uneven_policy(mgcompile.model_spec("resnet34", group_size=32)) == "error"
    with pytest.raises(mgcompile.SpecError, match="stage6 level1"):
        mgcompile.model_spec("mobilenet_v2", group_size=32, coarsest=64, uneven_groups="error")
