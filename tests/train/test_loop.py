"""Device choice and the CPU denormal guard of the training loop."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from mgcompile.cli import main
from mgcompile.errors import MGCompileError
from mgcompile.train.loop import flush_denormals, pick_device

DENORMAL = 1e-40  # below float32's smallest normal number (1.18e-38)


def _denormals_survive() -> bool:
    return (torch.tensor([DENORMAL]) * 1.0).item() != 0.0


def test_cpu_flushes_denormals_and_training_turns_it_on(tmp_path):
    torch.set_flush_denormal(False)
    try:
        assert _denormals_survive()
        flush_denormals(torch.device("cpu"))
        assert not _denormals_survive()
        torch.set_flush_denormal(False)
        args = ["--quiet", "train", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "-g", "8", "-c", "16",
                "--data", "digits", "--epochs", "1", "--limit-train", "64", "--out", str(tmp_path / "run")]
        assert CliRunner().invoke(main, args).exit_code == 0
        assert not _denormals_survive()
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize("name, message", [("tpu", "unknown device 'tpu'"), ("cuda:x", "unknown device"),
                                           ("meta", "unknown device 'meta'")])
def test_unknown_devices_are_refused(name, message):
    with pytest.raises(MGCompileError, match=message):
        pick_device(name)


def test_cpu_and_auto():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
