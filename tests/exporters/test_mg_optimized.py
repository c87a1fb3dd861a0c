"""The optimised ONNX of an MG model (target ort-cpu): every BN folded (also the one after P), permutations folded
where exact, transfers of up to 4 groups written as dense 1x1 convs (no Gather)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

from mgcompile.exporters.export import export_model
from mgcompile.exporters.ort_run import run_model


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(path).graph.node)


def test_mg_optimized_has_no_batchnorm_and_matches_torch(tiny, tmp_path):
    model, shape = tiny("mg")
    graph = model.mg_graph
    raw = export_model(model, shape, tmp_path / "raw.onnx", optimize=False)
    opt = export_model(model, shape, tmp_path / "opt.onnx", optimize=True)

    n_bn = len(graph.nodes("batchnorm"))
    transfers = graph.nodes("restrict") + graph.nodes("prolong")
    n_perm = sum(graph.attrs(n)["permutation"] is not None for n in transfers)
    wide = sum(graph.attrs(n)["permutation"] is not None and graph.attrs(n)["groups"] > 4 for n in transfers)
    raw_ops, opt_ops = _ops(tmp_path / "raw.onnx"), _ops(tmp_path / "opt.onnx")
    assert raw_ops["BatchNormalization"] == n_bn > 0
    assert raw_ops["Gather"] == n_perm > 0
    assert opt_ops["BatchNormalization"] == 0
    assert opt_ops["Gather"] == wide  # permutations of transfers with up to 4 groups are folded into dense convs
    assert opt["lowering"]["transfers"] == "dense" and opt["target"] == "ort-cpu"
    assert opt_ops["Conv"] == raw_ops["Conv"]
    assert opt["nodes"] < raw["nodes"]
    assert all(p.get("max_abs_diff", 0.0) <= 1e-5 for p in opt["passes"])
    assert {p["pass"]: p["changed"] for p in opt["lowering"]["passes"]}["fold_batchnorm"] == n_bn

    for report in (raw, opt):
        rows = report["verification"]["runs"]["cpu"]["batches"]
        assert [r["batch"] for r in rows] == [1, 7] and all(r["max_rel_diff"] <= 1e-4 for r in rows)
    x = np.random.default_rng(3).standard_normal((7, *shape)).astype(np.float32)
    a, b = run_model(onnx.load(tmp_path / "raw.onnx"), x), run_model(onnx.load(tmp_path / "opt.onnx"), x)
    assert np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(a))


def test_static_export_has_fixed_batch_one(tiny, tmp_path):
    model, shape = tiny("mg_grouped")
    report = export_model(model, shape, tmp_path / "s.onnx", dynamic_batch=False)
    dim0 = onnx.load(tmp_path / "s.onnx").graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_value == 1
    assert [r["batch"] for r in report["verification"]["runs"]["cpu"]["batches"]] == [1, 1]


def test_legacy_exporter_below_opset_18(tiny, tmp_path):
    model, shape = tiny("mg")
    report = export_model(model, shape, tmp_path / "l.onnx", opset=17)
    assert report["exporter"] == "legacy" and report["opset"] == 17
    assert report["verification"]["ok"]
    assert _ops(tmp_path / "l.onnx")["BatchNormalization"] == 0
