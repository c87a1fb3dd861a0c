"""Long work says what it is doing on stderr at the CLI; `--quiet` and the Python API stay silent."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import torch
import torchvision

import mgcompile

TINY = ["cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "16,16", "-g", "8", "-c", "16"]


def mg(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgcompile", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_export_in_a_pipe_reports_each_stage_with_its_time_and_quiet_silences_it(tmp_path):
    done = mg("export", *TINY, "-o", str(tmp_path / "m.onnx"))
    assert done.returncode == 0, done.stderr
    for stage in ("lowering for ort-cpu in the IR", "exporting ONNX (opset 18, dynamo exporter)", "cleaning up ONNX",
                  "verifying the onnx file"):
        assert any(line.startswith(stage) and "done in" in line for line in done.stderr.splitlines()), stage
    assert "ONNX pass fold_constants" in done.stderr  # each pass reports what it changed
    assert "wrote" in done.stdout  # results stay on stdout
    quiet = mg("--quiet", "export", *TINY, "-o", str(tmp_path / "m.onnx"))
    assert quiet.returncode == 0 and quiet.stderr == "" and "wrote" in quiet.stdout


def test_training_in_a_pipe_prints_periodic_progress_lines(tmp_path):
    done = mg("train", *TINY, "--data", "digits", "--epochs", "1", "--batch-size", "128", "--out", str(tmp_path / "r"),
              MGCOMPILE_PROGRESS_SECONDS="0")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("epoch 1/1: ")]
    assert len(lines) == 11 and lines[-1].startswith("epoch 1/1: 11/11 batches"), done.stderr  # 1294 images / 128
    assert "loss" in lines[0] and "img_s" in lines[0]


def test_the_python_api_prints_nothing_and_logs_instead(capfd, caplog):
    with caplog.at_level(logging.INFO, logger="mgcompile"):
        mgcompile.convert(torchvision.models.resnet18(num_classes=10), group_size=16, example_input=torch.randn(1, 3, 32, 32))
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert any("importing resnet18" in r.getMessage().lower() or "importing ResNet" in r.getMessage()
               for r in caplog.records)
