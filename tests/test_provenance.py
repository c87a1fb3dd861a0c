"""Outputs never destroy files mgcompile did not write (mgcompile/provenance.py, atomic.write_file_set)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from mgcompile.cli import main
from mgcompile.cli.convert import CONVERT_FILES
from mgcompile.provenance import written_by_mgcompile

TINY = ["cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "16,16", "-g", "8", "-c", "16"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["--quiet", *args])


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv") / "mg"
    assert invoke("convert", *TINY, "-o", str(out)).exit_code == 0
    return out


def test_everything_mgcompile_writes_carries_its_mark(converted, tmp_path):
    for name in ("spec.yaml", "graph.json", "model.pt", "audit.json"):
        assert written_by_mgcompile(converted / name), name
    for suffix in (".onnx", ".pt", ".pt2"):
        fmt = {".onnx": "onnx", ".pt": "torchscript", ".pt2": "pt2"}[suffix]
        out = tmp_path / f"m{suffix}"
        assert invoke("export", str(converted), "--format", fmt, "-o", str(out)).exit_code == 0
        assert written_by_mgcompile(out) and written_by_mgcompile(tmp_path / f"m{suffix}.verify.json"), suffix
    for suffix in (".png", ".svg", ".pdf", ".dot"):
        out = tmp_path / f"g{suffix}"
        assert invoke("graph", str(converted), "-o", str(out)).exit_code == 0
        assert written_by_mgcompile(out), suffix


def test_foreign_files_are_not_mgcompile_s(tmp_path):
    samples = {"notes.json": '{"params": 3}', "m.onnx": "not onnx", "model.pt": "zip?", "spec.yaml": "arch: resnet\n",
               "p.png": "\x89PNG fake", "metrics.csv": "a,b\n", "x.dot": "digraph {}", "run.json": "[]"}
    for name, text in samples.items():
        (tmp_path / name).write_text(text)
        assert not written_by_mgcompile(tmp_path / name), name
    torch.save({"weights": torch.zeros(2)}, tmp_path / "user.pt")
    assert not written_by_mgcompile(tmp_path / "user.pt")
    assert not written_by_mgcompile(tmp_path / "missing.json")


def test_convert_into_its_own_folder_keeps_the_user_s_files(converted, tmp_path):
    """Re-running convert (as make demo does) replaces only its fixed file set."""
    out = tmp_path / "mg"
    shutil.copytree(converted, out)
    (out / "notes.txt").write_text("my notes")
    assert invoke("export", str(out), "-o", str(out / "model.onnx")).exit_code == 0
    onnx_bytes = (out / "model.onnx").read_bytes()
    old_model = (out / "model.pt").read_bytes()
    result = invoke("convert", *TINY, "--seed", "3", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "my notes" and (out / "model.onnx").read_bytes() == onnx_bytes
    assert (out / "model.pt").read_bytes() != old_model  # the new conversion replaced its own file
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_convert_removes_stale_members_of_its_own_set_only(converted, tmp_path):
    out = tmp_path / "mg"
    shutil.copytree(converted, out)
    (out / "conversion.json").write_text(json.dumps({"mgcompile_version": "0.1.0", "blocks": []}))  # a module route's
    (out / "latency.json").write_text(json.dumps({"mgcompile_version": "0.1.0", "steps": []}))  # --latency-aware's
    assert invoke("convert", *TINY, "-o", str(out)).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(set(CONVERT_FILES) - {"conversion.json", "latency.json"})


def test_convert_refuses_a_foreign_member_and_a_training_run_folder(converted, tmp_path):
    out = tmp_path / "mg"
    shutil.copytree(converted, out)
    (out / "audit.json").write_text('{"mine": true}')
    before = snapshot(out)
    assert "audit.json exists and was not written by mgcompile" in error_line(invoke("convert", *TINY, "-o", str(out)))
    assert snapshot(out) == before

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"mgcompile_version": "0.1.0", "recipe": {}}))
    (run / "my-notes.md").write_text("keep")
    before = snapshot(run)
    assert "is a training run folder" in error_line(invoke("convert", *TINY, "-o", str(run)))
    assert snapshot(run) == before


def test_train_refuses_a_folder_of_unrelated_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "model.pt").write_text("the user's own model")
    (out / "run.json").write_text('{"who": "me"}')
    before = snapshot(out)
    line = error_line(invoke("train", *TINY, "--data", "digits", "--epochs", "1", "--out", str(out)))
    assert "run.json exists and was not written by mgcompile" in line
    assert snapshot(out) == before


@pytest.mark.parametrize("command", ["export", "graph"])
def test_single_file_outputs_replace_only_their_own_files_unless_forced(converted, tmp_path, command):
    target = tmp_path / ("m.onnx" if command == "export" else "g.png")
    target.write_text("precious")
    args = [command, str(converted), "-o", str(target)]
    assert f"{target} exists and was not written by mgcompile; pass --force" in error_line(invoke(*args))
    assert target.read_text() == "precious"
    assert invoke(*args, "--force").exit_code == 0 and written_by_mgcompile(target)
    assert invoke(*args).exit_code == 0  # its own file: replaced without --force


def test_export_refuses_a_foreign_verification_file(converted, tmp_path):
    side = tmp_path / "m.onnx.verify.json"
    side.write_text("{}")
    assert "m.onnx.verify.json exists and was not written" in error_line(
        invoke("export", str(converted), "-o", str(tmp_path / "m.onnx")))
    assert not (tmp_path / "m.onnx").exists() and side.read_text() == "{}"
    # --no-verify removes a stale verification only when it is mgcompile's
    assert invoke("export", str(converted), "--no-verify", "--force", "-o", str(tmp_path / "m.onnx")).exit_code == 0
    assert side.read_text() == "{}"


def test_audit_plot_and_report_refuse_foreign_files(converted, tmp_path):
    png = tmp_path / "sweep.png"
    png.write_bytes(b"mine")
    assert "pass --force" in error_line(invoke("audit", "cifar_resnet", "-g", "8", "-c", "16", "--sweep-width", "1,2",
                                               "--plot", str(png)))
    assert png.read_bytes() == b"mine"


def test_make_demo_exports_beside_the_converted_folder():
    from pathlib import Path

    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "-o $(DEMO_OUT).onnx" in demo and "$(DEMO_OUT)/" not in demo
