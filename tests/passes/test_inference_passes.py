"""The inference passes, each on a tiny hand-built graph: which nodes remain and what they record."""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.passes.densify_transfers import densify_transfers
from mgcompile.passes.fold_batchnorm import fold_batchnorm
from mgcompile.passes.fold_permutations import fold_permutations
from mgcompile.passes.infer_shapes import infer_shapes

PERM = [3, 1, 0, 2, 7, 5, 4, 6]


def _tiny(restrict_groups: int = 2) -> Graph:
    """conv -> bn -> relu; R (permuted) -> P (permuted) -> bn; the sum; and a BN whose input is shared."""
    g = Graph({"notes": [], "steps": {}})
    g.add("input", "input", channels=8, height=4, width=4)
    g.add("c", "conv", ["input"], in_channels=8, out_channels=8, kernel=3, padding=1)
    g.add("c.bn", "batchnorm", ["c"], channels=8)
    g.add("relu", "relu", ["c.bn"])
    g.add("r", "restrict", ["relu"], in_channels=8, out_channels=4, groups=restrict_groups, permutation=PERM)
    g.add("p", "prolong", ["r"], in_channels=4, out_channels=8, groups=restrict_groups, permutation=PERM)
    g.add("p.bn", "batchnorm", ["p"], channels=8)
    g.add("sum", "add", ["relu", "p.bn"])
    g.add("shared.bn", "batchnorm", ["relu"], channels=8)  # relu has other users: nothing to fold into
    g.add("out", "add", ["sum", "shared.bn"])
    g.add("output", "output", ["out"])
    return infer_shapes(g)


def test_fold_batchnorm_removes_the_bns_after_convs_and_prolongations_only():
    g = fold_batchnorm(_tiny())
    assert g.nodes("batchnorm") == ["shared.bn"]
    assert g.attrs("c")["bias"] and g.attrs("p")["bias"] and g.inputs("sum") == ["relu", "p"]
    assert g.meta("c")["derive"] == [{"bn": "c.bn", "eps": 1e-5}]
    assert g.meta("p")["derive"] == [{"bn": "p.bn", "eps": 1e-5, "channel_order": PERM}]
    assert g.attrs("p")["permutation"] == PERM  # the Gather stays; the BN is applied in the conv's order


def test_fold_permutations_only_where_the_transfer_is_dense():
    assert fold_permutations(_tiny(restrict_groups=2)).attrs("r")["permutation"] == PERM  # grouped: kept
    g = fold_permutations(_tiny(restrict_groups=1))
    assert g.attrs("r")["permutation"] is None and g.attrs("p")["permutation"] is None
    assert g.meta("r")["derive"] == [{"permute_in": PERM}] and g.meta("p")["derive"] == [{"permute_out": PERM}]


def test_densify_transfers_turns_grouped_permuted_transfers_into_dense_convs_within_the_bound():
    g = densify_transfers(fold_batchnorm(_tiny(restrict_groups=2)), max_expansion=2)
    assert g.op("r") == "conv" and g.op("p") == "conv" and not g.nodes("restrict")
    assert g.attrs("r") == {"in_channels": 8, "out_channels": 4, "kernel": 1, "stride": 1, "padding": 0, "groups": 1,
                            "bias": False}
    assert [list(s) for s in g.meta("p")["derive"]] == [["bn", "eps", "channel_order"], ["densify"],
                                                       ["permute_out"]]
    assert densify_transfers(_tiny(restrict_groups=2), max_expansion=1).op("r") == "restrict"  # over the bound
