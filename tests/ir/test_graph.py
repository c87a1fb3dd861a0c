"""The IR: building, JSON round trip, and what verify() rejects."""

from __future__ import annotations

import json

import pytest

import mgcompile
from mgcompile.errors import GraphError
from mgcompile.ir import Graph, verify


def _tiny() -> Graph:
    g = Graph({"notes": []})
    x = g.add("input", "input", channels=4, height=8, width=8)
    c = g.add("b.conv", "conv", [x], in_channels=4, out_channels=8, kernel=3, padding=1, groups=2)
    r = g.add("b.relu", "relu", [c])
    g.add("output", "output", [r])
    return g


def test_verify_accepts_a_well_formed_graph_and_infers_shapes():
    g = verify(_tiny())
    from mgcompile.passes import infer_shapes

    assert infer_shapes(g).shape("b.relu") == (8, 8, 8)


def test_verify_rejects_bad_groups_shapes_and_cycles():
    g = _tiny()
    g.attrs("b.conv")["groups"] = 3
    with pytest.raises(GraphError, match="groups=3 does not divide"):
        verify(g)
    g = _tiny()
    g.attrs("b.conv")["in_channels"] = 6
    with pytest.raises(GraphError, match="expects 6 input channels"):
        verify(g)
    g = _tiny()
    g.nx.add_edge("b.relu", "b.conv")
    with pytest.raises(GraphError, match="cycle"):
        verify(g)


def test_verify_rejects_wrong_stored_shape_and_module_name_prefixes():
    from mgcompile.passes import infer_shapes

    g = infer_shapes(_tiny())
    g.set_shape("b.relu", (9, 8, 8))
    with pytest.raises(GraphError, match="stores shape"):
        verify(g)
    g = _tiny()
    g.add("b.conv.bn", "batchnorm", ["b.conv"], channels=8)
    with pytest.raises(GraphError, match="prefix"):
        verify(g)


def test_unknown_op_and_attribute_types_are_rejected():
    g = Graph()
    with pytest.raises(GraphError, match="unknown op"):
        g.add("x", "bogus")
    with pytest.raises(GraphError, match="must be"):
        g.add("x", "input", channels="4", height=1, width=1)


@pytest.mark.parametrize("name", ["mg_cifar_resnet_g8c16", "mg_cifar_resnet_g8c16_add_grouped", "resnet50"])
def test_json_round_trip_is_lossless(name):
    g = mgcompile.expand(mgcompile.model_spec(name))
    text = g.to_json()
    assert json.loads(text)["graph"]["format"] == "mgcompile-ir"
    back = Graph.from_json(text)
    assert back.nodes() == g.nodes()
    for n in g.nodes():
        for key in ("op", "attrs", "inputs", "shape", "meta", "order"):
            assert back.nx.nodes[n][key] == g.nx.nodes[n][key], (n, key)
    assert back.meta_graph == g.meta_graph
    verify(back, allow_macros=False)


def test_corrupt_json_is_a_clear_error():
    with pytest.raises(GraphError, match="corrupt"):
        Graph.from_json("{not json")
    with pytest.raises(GraphError, match="not an mgcompile IR"):
        Graph.from_json('{"nodes": []}')
