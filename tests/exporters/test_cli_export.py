"""`mgcompile export` / `mgcompile run` through click's CliRunner: outputs, JSON, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mgcompile.cli import main
from mgcompile.errors import MGCompileError
from mgcompile.exporters.export import export_model

TINY = ["cifar_resnet", "--channels", "16,32,64", "--blocks", "1,1,1", "--input-size", "16,16", "-g", "8", "-c", "16"]


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_export_onnx_writes_model_and_verification_json(tmp_path):
    out = tmp_path / "m.onnx"
    result = _invoke("export", *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "verified with onnxruntime" in result.output
    data = json.loads((tmp_path / "m.onnx.verify.json").read_text())
    assert data["ok"] and data["max_rel_diff"] <= 1e-4 and data["file"] == "m.onnx"
    assert out.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.verify.json"]


def test_export_pt2_json_report(tmp_path):
    out = tmp_path / "m.pt2"
    result = _invoke("export", *TINY, "--format", "pt2", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "pt2" and report["verification"]["ok"]
    assert torch.export.load(str(out)).module()(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("args, needle", [
    (["--format", "tflite"], "unknown format"),
    (["--opset", "30"], "opset 30 is not supported"),
    (["--opset", "7"], "opset 7 is not supported"),
])
def test_bad_options_fail_cleanly(tmp_path, args, needle):
    out = tmp_path / "m.onnx"
    line = _one_line_error(_invoke("export", *TINY, *args, "-o", str(out)))
    assert needle in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ref", ["no_such_model", "missing/spec.yaml"])
def test_missing_ref_fails_cleanly(tmp_path, ref):
    line = _one_line_error(_invoke("export", ref, "-o", str(tmp_path / "m.onnx")))
    assert "no_such_model" in line or "does not exist" in line
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_fails_cleanly(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    line = _one_line_error(_invoke("export", *TINY, "-o", str(blocker / "m.onnx")))
    assert "cannot write" in line
    line = _one_line_error(_invoke("export", *TINY, "-o", str(tmp_path)))
    assert "is a folder" in line
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


class _Noisy(nn.Module):
    """Adds fresh noise on every call: no export of it can match PyTorch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_failed_verification_leaves_no_file(tmp_path):
    with pytest.raises(MGCompileError, match="does not match PyTorch"):
        export_model(_Noisy(), (2, 4, 4), tmp_path / "n.onnx", optimize=False)
    assert list(tmp_path.iterdir()) == []


def test_run_times_model_and_saves_portable_optimized(tmp_path):
    assert _invoke("export", *TINY, "-o", str(tmp_path / "m.onnx"), "--no-verify").exit_code == 0
    assert not (tmp_path / "m.onnx.verify.json").exists()
    result = _invoke("run", str(tmp_path / "m.onnx"), "-b", "3", "--repeat", "2", "--warmup", "1",
                     "--save-optimized", str(tmp_path / "m.ort.onnx"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_shape"] == [3, 3, 16, 16] and data["median_ms"] > 0
    assert "CPUExecutionProvider" in data["providers"]
    assert (tmp_path / "m.ort.onnx").stat().st_size > 0
    line = _one_line_error(_invoke("run", str(tmp_path / "missing.onnx")))
    assert "does not exist" in line


def test_unverified_reexport_removes_a_stale_verification(tmp_path):
    from mgcompile.exporters.verify import result_path

    target = tmp_path / "m.onnx"
    runner = CliRunner()
    ok = runner.invoke(main, ["export", "mg_cifar_resnet_g8c16", "--channels", "16,32", "--blocks", "1,1",
                              "--input-size", "3,16,16", "-o", str(target)])
    assert ok.exit_code == 0, ok.output and result_path(target).is_file()
    again = runner.invoke(main, ["export", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1",
                                 "--input-size", "3,16,16", "--no-verify", "-o", str(target)])
    assert again.exit_code == 0, again.output
    assert target.is_file() and not result_path(target).exists()


def test_targets_pick_format_and_lowering_and_contradictions_are_one_line_errors(tmp_path):
    r = _invoke("export", *TINY, "--target", "ort-cpu", "-o", str(tmp_path / "a.onnx"), "--opset", "17", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[r.output.index("{"):])
    assert report["format"] == "onnx" and report["target"] == "ort-cpu"
    passes = {p["pass"]: p["changed"] for p in report["lowering"]["passes"]}
    assert passes["fold_batchnorm"] > 0 and report["op_counts"].get("BatchNormalization", 0) == 0
    r = _invoke("export", *TINY, "--target", "torch", "-o", str(tmp_path / "b.pt2"))
    assert r.exit_code == 0 and "pt2 for torch" in r.output, r.output
    cuda = _invoke("export", *TINY, "--target", "ort-cuda", "-o", str(tmp_path / "c.onnx"), "--opset", "17")
    assert cuda.exit_code == 0 and "no GPU with onnxruntime-gpu has been measured" in cuda.output
    assert "--target ort-cpu exports onnx, not pt2" in _one_line_error(
        _invoke("export", *TINY, "--target", "ort-cpu", "--format", "pt2", "-o", str(tmp_path / "d.pt2")))
    assert "not onnx" in _one_line_error(
        _invoke("export", *TINY, "--target", "torch", "--format", "onnx", "-o", str(tmp_path / "e.onnx")))
    assert not (tmp_path / "d.pt2").exists() and not (tmp_path / "e.onnx").exists()


def test_external_data_writes_the_model_and_its_weights_together_and_runs_the_same(tmp_path):
    import numpy as np
    import onnx

    from mgcompile.exporters.ort_run import session

    ext, emb = tmp_path / "ext" / "m.onnx", tmp_path / "emb" / "m.onnx"
    result = _invoke("export", *TINY, "-o", str(ext), "--external-data")
    assert result.exit_code == 0, result.output
    assert "weights in m.onnx.data beside it" in result.output
    assert sorted(p.name for p in ext.parent.iterdir()) == ["m.onnx", "m.onnx.data", "m.onnx.verify.json"]
    proto = onnx.load(ext, load_external_data=False)
    stored = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert stored and all({e.key: e.value for e in t.external_data}["location"] == "m.onnx.data" for t in stored)
    assert (ext.parent / "m.onnx.data").stat().st_size > ext.stat().st_size
    assert _invoke("export", *TINY, "-o", str(emb)).exit_code == 0
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    a, b = (session(p, level="all").run(None, {"input": x})[0] for p in (ext, emb))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # an embedded re-export replaces the pair: the old weights file beside it is removed
    assert _invoke("export", *TINY, "-o", str(ext)).exit_code == 0
    assert sorted(p.name for p in ext.parent.iterdir()) == ["m.onnx", "m.onnx.verify.json"]


def test_weights_over_the_threshold_go_to_external_data_automatically(tmp_path, monkeypatch):
    import mgcompile
    from mgcompile.exporters import export

    model = mgcompile.build(mgcompile.model_spec(*TINY[:1], channels=(16, 32, 64), blocks=(1, 1, 1),
                                                 input_size=(16, 16), group_size=8, coarsest=16))
    report = export_model(model, (3, 16, 16), tmp_path / "small.onnx", verify=False)
    assert "external_data" not in report  # far below 1.5 GiB: one self-contained file
    monkeypatch.setattr(export, "EXTERNAL_DATA_BYTES", 1000)
    report = export_model(model, (3, 16, 16), tmp_path / "big.onnx")
    assert report["external_data"] == "big.onnx.data" and report["verification"]["ok"]
    assert (tmp_path / "big.onnx.data").is_file()


def test_external_data_refusals_are_one_line_and_write_nothing(tmp_path):
    line = _one_line_error(_invoke("export", *TINY, "--format", "torchscript", "-o", str(tmp_path / "m.pt"),
                                   "--external-data"))
    assert "external data is an ONNX feature" in line
    (tmp_path / "m.onnx.data").write_bytes(b"someone else's weights")
    line = _one_line_error(_invoke("export", *TINY, "-o", str(tmp_path / "m.onnx"), "--external-data"))
    assert "m.onnx.data exists and does not hold the weights" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx.data"]
    # an mgcompile model that holds its own weights does not make the file beside it ours: kept, and refused
    assert _invoke("export", *TINY, "-o", str(tmp_path / "m.onnx")).exit_code == 0
    assert (tmp_path / "m.onnx.data").read_bytes() == b"someone else's weights"
    line = _one_line_error(_invoke("export", *TINY, "-o", str(tmp_path / "m.onnx"), "--external-data"))
    assert "m.onnx.data exists and does not hold the weights" in line
    assert (tmp_path / "m.onnx.data").read_bytes() == b"someone else's weights"


def test_a_failed_pair_write_leaves_the_old_files_as_they_were(tmp_path):
    from mgcompile.atomic import atomic_files

    (tmp_path / "m.onnx").write_text("old model")
    (tmp_path / "m.onnx.data").write_text("old weights")
    with pytest.raises(RuntimeError, match="exporter crashed"):
        with atomic_files(tmp_path / "m.onnx", (".data",)) as tmp:
            (tmp.parent / "m.onnx.data").write_text("new weights")
            raise RuntimeError("exporter crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]  # no staging folder left
    assert (tmp_path / "m.onnx").read_text() == "old model" and (tmp_path / "m.onnx.data").read_text() == "old weights"
    with atomic_files(tmp_path / "m.onnx", (".data",)) as tmp:
        tmp.write_text("new model")
        (tmp.parent / "m.onnx.data").write_text("new weights")
    assert (tmp_path / "m.onnx").read_text() == "new model" and (tmp_path / "m.onnx.data").read_text() == "new weights"


def test_failed_verification_of_an_external_data_export_leaves_no_file(tmp_path):
    with pytest.raises(MGCompileError, match="does not match PyTorch"):
        export_model(nn.Sequential(nn.Conv2d(2, 64, 3), _Noisy()), (2, 4, 4), tmp_path / "n.onnx", optimize=False,
                     external_data=True)  # 4.6 KiB of weights: over the 1 KiB that goes to the .data file
    assert list(tmp_path.iterdir()) == []
