"""Shared fixtures: tiny specs so every family is tested at reduced size (CI budget)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mgcompile
from mgcompile.cli import main

torch.set_num_threads(2)

_spec = importlib.util.spec_from_file_location("training_check", Path(__file__).parent / "training_check.py")
training_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(training_check)


@pytest.fixture
def tiny_mg_spec() -> mgcompile.Spec:
    """A 3-level MG CIFAR ResNet small enough to build and run in milliseconds."""
    return mgcompile.model_spec("cifar_resnet", channels=(16, 32, 64), blocks=(1, 1, 1), input_size=(16, 16),
                                group_size=8, coarsest=16)


@pytest.fixture
def run():
    """Invoke the real CLI in-process: ``run("audit", "resnet34", "--json")``."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def randomize_bn(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms (eval mode), so BN maths is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


@pytest.fixture
def with_random_bn():
    """The :func:`randomize_bn` helper, for tests in any folder."""
    return randomize_bn


@pytest.fixture
def assert_trains():
    """:func:`training_check.check_training`: every parameter learns and the gradient is the forward's."""
    return training_check.check_training


@pytest.fixture
def fixed_batch():
    return training_check.fixed_batch


def write_cifar(root: Path, name: str, n_train: int, n_test: int, classes: int) -> None:
    """A tiny CIFAR folder in the python archives' layout (random pixels and labels)."""
    import pickle

    import numpy as np

    from mgcompile.train.cifar import LAYOUT

    sub, train, test, meta, label_key, names_key = LAYOUT[name]
    folder = root / sub
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for files, n in ((train, n_train), (test, n_test)):
        for f in files:
            batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     label_key.encode(): list(rng.integers(0, classes, n))}
            (folder / f).write_bytes(pickle.dumps(batch))
    (folder / meta).write_bytes(pickle.dumps({names_key.encode(): [f"c{i}".encode() for i in range(classes)]}))


def write_imagefolder(root: Path, per_class: int = 3) -> None:
    """A tiny ImageNet-layout folder: train/ and val/, classes cat (red) and dog (blue), 40x30 PNGs."""
    from PIL import Image

    for split in ("train", "val"):
        for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (40, 30), color).save(root / split / cls / f"{i}.png")


@pytest.fixture(name="write_cifar")
def write_cifar_fixture():
    """:func:`write_cifar`, for tests in any folder."""
    return write_cifar


@pytest.fixture(name="write_imagefolder")
def write_imagefolder_fixture():
    """:func:`write_imagefolder`, for tests in any folder."""
    return write_imagefolder
