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
