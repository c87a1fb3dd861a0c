"""`convert --calibrate`, `mgcompile calibrate` and `train --teacher original` as a user runs them (issue 19).

The README's flow runs exactly as written (its three commands, in a fresh folder); the other tests reuse its
folders. Accuracy targets are `make bench-convert`'s; here: it finishes, reports, and the held-out agreement
with the original ends above the uncalibrated network's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "2"}
README_FLOW = [
    "mgcompile train cifar_resnet --data digits --epochs 3 --out runs/digits-base",
    "mgcompile convert runs/digits-base -g 8 -c 16 --calibrate digits -o out/digits-mg",
    "mgcompile eval out/digits-mg --data digits",
]


def mg(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgcompile", *args], cwd=cwd, capture_output=True, text=True,
                          env=ENV, timeout=600)


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("flow")
    outs = []
    for line in README_FLOW:
        done = mg(cwd, *line.split()[1:])
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
        outs.append(done)
    return cwd, outs


def test_the_readme_flow_calibrates_and_reports(flow):
    cwd, (_, convert, evaluate) = flow
    report = json.loads((cwd / "out/digits-mg/conversion.json").read_text())
    cal = report["calibration"]
    assert cal["heldout"]["agreement"] > cal["heldout"]["agreement_before"]
    assert cal["heldout"]["kl"] < cal["heldout"]["kl_before"] and cal["heldout"]["images"] == 144
    assert {s["status"] for s in cal["steps"]} == {"converted", "transition"}
    assert report["original"]["route"] == "run" and len(report["original"]["sha256"]) == 64
    assert report["init"] == "base"  # the default when calibrating
    assert "no labels read" in convert.stderr and "held out (144 images)" in convert.stderr
    assert "top-1" in evaluate.stdout
    audit = mg(cwd, "audit", "out/digits-mg")
    assert audit.returncode == 0 and "calibration:" in audit.stdout


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_ctrl_c_mid_fit_leaves_the_folder_as_it_was(flow):
    cwd, _ = flow
    folder = cwd / "out/digits-mg"
    before = _digest(folder)
    proc = subprocess.Popen([sys.executable, "-m", "mgcompile", "calibrate", str(folder), "--data", "digits"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "fitting" in line:
            proc.send_signal(signal.SIGINT)
            break
    err = "".join(seen) + proc.communicate(timeout=300)[1]
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted by SIGINT; nothing was left half-written"
    assert _digest(folder) == before


def test_calibrate_a_folder_later_and_distil_from_its_original(flow, tmp_path):
    cwd, _ = flow
    folder = tmp_path / "mg"
    shutil.copytree(cwd / "out/digits-mg", folder)
    done = mg(cwd, "calibrate", str(folder), "--data", "digits", "--calibrate-steps", "3", "--calibrate-batch", "32")
    assert done.returncode == 0, done.stderr
    cal = json.loads((folder / "conversion.json").read_text())["calibration"]
    assert cal["config"]["presentations"] == 96 and "wrote" in done.stdout
    run = tmp_path / "ft"
    done = mg(cwd, "train", str(folder), "--data", "digits", "--epochs", "1", "--limit-train", "64", "--teacher",
              "original", "--out", str(run))
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "results.json").read_text())["test_top1"] > 0


def test_an_original_that_cannot_be_reproduced_is_one_line_naming_the_fix(flow, tmp_path):
    cwd, _ = flow
    shutil.copytree(cwd / "runs/digits-base", tmp_path / "base")
    done = mg(tmp_path, "convert", "base", "-g", "8", "-c", "16", "-o", "mg")
    assert done.returncode == 0, done.stderr
    shutil.rmtree(tmp_path / "base")
    before = _digest(tmp_path / "mg")
    done = mg(tmp_path, "calibrate", "mg", "--data", "digits")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--original REF" in done.stderr and _digest(tmp_path / "mg") == before
    done = mg(tmp_path, "calibrate", "mg", "--data", "digits", "--original", str(cwd / "runs/digits-base"),
              "--calibrate-steps", "2", "--calibrate-batch", "16")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, words", [
    (["cifar_resnet", "-g", "8", "--calibrate", "digits"], "fresh weights"),
    (["torchvision:resnet18", "-g", "32", "--calibrate", "digits"], "fresh weights"),
])
def test_calibrating_fresh_weights_is_one_line(tmp_path, args, words):
    done = mg(tmp_path, "convert", *args, "-o", "out")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert words in done.stderr and not (tmp_path / "out").exists()
