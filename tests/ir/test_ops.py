"""ops.py is the single source of op facts: every op has all of them, and every backend lowers every key."""

from __future__ import annotations

import pytest

from mgcompile.ir.body import LevelScale, node, scale_step
from mgcompile.ir.ops import LOWERINGS, OPS
from mgcompile.steps import STEP_KINDS, make_step


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_states_every_fact(name):
    d = OPS[name]
    assert d.name == name and d.lowering and d.doc
    assert d.param_kind in (None, "conv", "transfer", "norm", "linear", "attention", "scale", "opaque")
    assert set(d.widths) <= set(d.attrs), "a width must be an attribute"
    assert d.count_group in (None, "norm", "activation", "pool", "add")
    if d.param_kind is None and not d.macro:
        assert d.params({k: a.default for k, a in d.attrs.items()}) == 0
    if d.widths and d.scale is not None:  # scaling halves every width attribute
        attrs = {k: (a.default if not a.required else 64) for k, a in d.attrs.items()}
        if name == "conv":
            attrs.update(kernel=3, groups=1)
        scaled = d.scale(attrs, LevelScale(64, 32, 2))
        assert all(scaled[w] == 32 for w in d.widths), scaled


def test_every_backend_implements_every_lowering_key():
    from mgcompile.backends.backend import backends

    assert "torch" in backends()
    missing = {name: sorted(LOWERINGS - b.lowerings()) for name, b in backends().items()}
    assert not any(missing.values()), missing


def test_a_conv_scales_by_the_level_rule():
    conv = OPS["conv"].scale
    lv = LevelScale(step_width=128, level_width=64, groups=4)
    dense = conv({"in_channels": 128, "out_channels": 512, "kernel": 1, "stride": 1, "padding": 0, "groups": 1,
                  "bias": False}, lv)
    assert (dense["in_channels"], dense["out_channels"], dense["groups"]) == (64, 256, 4)  # expansion ratio kept
    dw = conv({"in_channels": 512, "out_channels": 512, "kernel": 5, "stride": 1, "padding": 2, "groups": 512,
               "bias": False}, lv)
    assert (dw["in_channels"], dw["groups"]) == (256, 256)  # depth-wise stays depth-wise
    card = conv({"in_channels": 128, "out_channels": 128, "kernel": 3, "stride": 1, "padding": 1, "groups": 32,
                 "bias": False}, lv)
    assert card["groups"] == 32  # ResNeXt: max(C_j/s_g, min(cardinality, width))
    narrow = conv({"in_channels": 128, "out_channels": 128, "kernel": 3, "stride": 1, "padding": 1, "groups": 32,
                   "bias": False}, LevelScale(128, 16, 1))
    assert narrow["groups"] == 16  # ... capped at depth-wise


def test_internal_widths_round_to_the_nearest_whole_number():
    lv = LevelScale(step_width=96, level_width=48, groups=1)
    se = node("se", "squeeze_excite", ["x"], channels=96, squeeze=7)
    step = {**make_step("inverted", in_channels=96, out_channels=96, mid_channels=96 * 6, act="hardswish",
                        se={"squeeze": 7, "gate": "hardsigmoid"})}
    scaled = scale_step(step, lv)
    (se_node,) = [n for n in scaled["body"] if n["op"] == "squeeze_excite"]
    assert se_node["attrs"]["squeeze"] == 4 and se_node["attrs"]["channels"] == 288  # round(3.5) -> 4, SE stays dense
    assert se["attrs"]["activation"] == "relu"
    assert scale_step(step, LevelScale(96, 1, 1))["body"][0]["attrs"]["out_channels"] == 6


@pytest.mark.parametrize("kind", sorted(STEP_KINDS))
def test_every_step_kind_has_a_template_a_policy_and_a_doc(kind):
    k = STEP_KINDS[kind]
    assert callable(k.template) and k.uneven in ("error", "floor") and k.doc


@pytest.mark.parametrize("name", sorted(OPS))
def test_structural_facts_agree_with_the_attribute_schema(name):
    d = OPS[name]
    assert d.grouped == ("groups" in d.attrs), "an op with groups is a grouped op, and only such an op"
    assert d.permutation_side in (None, "in", "out")
    assert (d.permutation_side is not None) == ("permutation" in d.attrs)
    if d.permutation_side is not None:
        assert f"{d.permutation_side}_channels" in d.attrs
    if d.absorbs_bn:
        assert d.param_kind in ("conv", "transfer") and "bias" in d.attrs
    assert not (d.in_body and (d.macro or d.io)), "macros and graph boundaries cannot sit in a step template"
    assert not (d.zero_init_through and d.param_kind in ("conv", "norm"))


def test_ops_and_bodies_import_one_way():
    import ast
    from pathlib import Path

    import mgcompile.ir.ops as ops

    tree = ast.parse(Path(ops.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "mgcompile.ir.body" not in imported
