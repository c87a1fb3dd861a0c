"""Optional elementwise op counting (``count(graph, include=...)``) on a hand-built graph."""

from __future__ import annotations

import pytest

from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.passes.count import count
from mgcompile.passes.infer_shapes import infer_shapes


def small_graph() -> Graph:
    g = Graph()
    x = g.add("input", "input", channels=4, height=8, width=8)
    c = g.add("conv", "conv", [x], in_channels=4, out_channels=8, kernel=3, padding=1)
    b = g.add("bn", "batchnorm", [c], channels=8)
    r = g.add("relu", "relu", [b])
    a = g.add("add", "add", [r, b])
    p = g.add("pool", "avgpool", [a], kernel=2, stride=2)
    gp = g.add("gap", "global_avgpool", [p])
    f = g.add("flat", "flatten", [gp])
    y = g.add("fc", "linear", [f], in_features=8, out_features=3)
    g.add("output", "output", [y])
    return infer_shapes(g)


def test_default_counts_conv_and_linear_only():
    c = count(small_graph())
    assert c.macs == 8 * 8 * 8 * 4 * 9 + 8 * 3
    assert c.params == 8 * 4 * 9 + 2 * 8 + 8 * 3 + 3


def test_included_groups_add_their_ops():
    g = small_graph()
    base = count(g).macs
    e = 8 * 8 * 8  # elements of the 8x8x8 tensors
    assert count(g, ["norm"]).macs == base + 2 * e
    assert count(g, ["activation"]).macs == base + e
    assert count(g, ["add"]).macs == base + e
    assert count(g, ["pool"]).macs == base + 8 * 4 * 4 * 4 + 8 * 4 * 4
    assert count(g, ["norm", "activation", "add", "pool"]).params == count(g).params


def test_unknown_group_is_a_user_error():
    with pytest.raises(MGCompileError, match="choose from"):
        count(small_graph(), ["softmax"])
