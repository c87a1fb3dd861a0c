"""Images for label-free calibration: a data set's images (never its labels) as the original network sees them.

``mgcompile convert REF --calibrate DATA`` fits a converted network to the network it came
from. That fit needs images at the original's input size and channel count, normalised
the way the original was trained (its statistics, not the calibration data's), plus
images held out from the fit to report agreement on. DATA is any data set ``train``
accepts, or ``images:PATH``, a folder of unlabelled image files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from mgcompile.errors import MGCompileError, first_line
from mgcompile.train.data import (DATASETS, IMAGENET_MEAN, IMAGENET_STD, Source, Splits, load_source,
                                  split_indices, statistics_source, train_statistics)
from mgcompile.train.transforms import AUGMENTATIONS, center_crop_resize, resize, sample_rng
from mgcompile.train.transforms import augment as augment_image

IMAGES_PREFIX = "images:"
HELD_OUT_SEED = 20240502  # fixed: a folder's held-out images never depend on the run's seed
HELD_OUT_FRACTION, HELD_OUT_MAX = 0.1, 5000
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601: RGB -> gray
ROUTES = ("torchvision", "timm", "module")
_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})  # 16-bit (or float in [0,1]) gray


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean/std the original network's inputs were normalised with, and where they come from."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if not mean or len(mean) != len(std):
            raise MGCompileError(f"a normalisation needs one mean and one std per channel; got {len(mean)} and {len(std)}")
        if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
            raise MGCompileError(f"a normalisation needs finite means and positive stds; got mean {mean}, std {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "source": self.source}

    @classmethod
    def from_dict(cls, d: Any) -> "Normalisation":
        """The record :meth:`to_dict` wrote; a malformed one is a one-line error."""
        if not isinstance(d, Mapping) or not {"mean", "std"} <= d.keys():
            raise MGCompileError(f"a normalisation record needs mean and std lists; got {d!r:.100}")
        mean, std, source = d["mean"], d["std"], d.get("source", "recorded")
        if not all(isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v) for v in (mean, std)):
            raise MGCompileError(f"a normalisation record's mean and std must be lists of numbers; got {d!r:.100}")
        return cls(tuple(mean), tuple(std), str(source))

    def tensors(self, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) as float32 (C,1,1) tensors for ``channels`` channels (a single value serves every channel)."""
        if len(self.mean) not in (1, channels):
            raise MGCompileError(f"the normalisation from {self.source} has {len(self.mean)} channels but the "
                                 f"network takes {channels}; normalise with {channels} means and stds")
        mean, std = torch.tensor(self.mean), torch.tensor(self.std)
        return mean.expand(channels).reshape(-1, 1, 1).clone(), std.expand(channels).reshape(-1, 1, 1).clone()


def split_normalisation(source: Source, splits: Splits) -> Normalisation:
    """The statistics :func:`make_splits` normalised a run's images with (recorded in run.json)."""
    return Normalisation(tuple(splits.train.mean.flatten().tolist()), tuple(splits.train.std.flatten().tolist()),
                         statistics_source(source))


def source_normalisation(source: Source) -> Normalisation:
    """A data set's training statistics, computed exactly as training and evaluation compute them."""
    mean, std = train_statistics(source)
    return Normalisation(tuple(mean.tolist()), tuple(std.tolist()), statistics_source(source))


def run_normalisation(run_dir: str | Path) -> Normalisation:
    """How a trained run's inputs were normalised: run.json's ``normalize`` record, else recomputed from
    its ``data``/``data_dir`` (runs written before the record existed)."""
    run = Path(run_dir)
    info = _read_run_json(run)
    path = run / "run.json"
    if info.get("normalize") is not None:
        try:
            return Normalisation.from_dict(info["normalize"])
        except MGCompileError as exc:
            raise MGCompileError(f"{path}'s normalize record is damaged ({exc}); delete that entry to recompute "
                                 "it from the run's data set") from None
    data = info.get("data")
    if not isinstance(data, str):
        raise MGCompileError(f"{path} names no data set; pass a run folder written by `mgcompile train`")
    data_dir = info.get("data_dir")
    try:
        source = load_source(data, data_dir if isinstance(data_dir, str) else None)
    except MGCompileError as exc:
        raise MGCompileError(f"{run}'s input normalisation is recomputed from its data set {data}, which cannot "
                             f"be read: {exc}") from None
    return source_normalisation(source)


def _read_run_json(run: Path) -> dict[str, Any]:
    path = run / "run.json"
    if not run.is_dir():
        raise MGCompileError(f"{run} is not a folder; pass a run folder written by `mgcompile train --out`")
    if not path.is_file():
        raise MGCompileError(f"{run} has no run.json; pass a run folder written by `mgcompile train --out`")
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MGCompileError(f"{path} is damaged ({first_line(exc)}); restore it or re-run the training") from None
    if not isinstance(info, dict):
        raise MGCompileError(f"{path} is damaged (not a JSON object); restore it or re-run the training")
    return info


def module_normalisation(route: str, model: nn.Module, name: str) -> Normalisation:
    """How a module route's weights expect inputs: ImageNet's statistics, or timm's ``pretrained_cfg``."""
    if route == "torchvision":
        return Normalisation(IMAGENET_MEAN, IMAGENET_STD, f"ImageNet (torchvision {name})")
    if route == "timm":
        cfg = getattr(model, "pretrained_cfg", None)
        cfg = cfg if isinstance(cfg, Mapping) else getattr(cfg, "__dict__", {})
        if cfg.get("mean") is not None and cfg.get("std") is not None:
            return Normalisation(tuple(cfg["mean"]), tuple(cfg["std"]), f"timm pretrained_cfg of {name}")
        return Normalisation(IMAGENET_MEAN, IMAGENET_STD, f"ImageNet (timm {name} has no pretrained_cfg mean/std)")
    if route == "module":
        return Normalisation(IMAGENET_MEAN, IMAGENET_STD, f"ImageNet (assumed: {name} states no normalisation)")
    raise MGCompileError(f"unknown module route {route!r}; choose one of: {', '.join(ROUTES)}")


def to_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """A float image (C,H,W) with ``channels`` channels: gray repeated to RGB, RGB to gray by BT.601 luma."""
    have = image.shape[0]
    if have == channels:
        return image
    if have == 1:
        return image.expand(channels, -1, -1)
    if have == 3 and channels == 1:
        r, g, b = image.unbind(0)
        return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(0)
    raise MGCompileError(f"cannot turn {have}-channel images into {channels}-channel ones; "
                         "calibrate with images of the network's channel count")


def _check_channels(have: int, want: int, data: str) -> None:
    if have != want and not (have == 1 or (have == 3 and want == 1)):
        raise MGCompileError(f"{data} has {have}-channel images but the network takes {want} channels; "
                             "calibrate with a data set of 1 or 3 channels")


def read_image(path: Path) -> torch.Tensor:
    """A float image (C,H,W) in [0,1] from any file PIL reads: 1 channel if the file is gray, else RGB."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    try:
        with Image.open(path) as pil:
            if pil.mode in _WIDE_GRAY_MODES:  # PIL's own conversion to 8 bits clips these at 255
                pixels = torch.from_numpy(np.asarray(pil, dtype=np.float32).copy())[None]
                return (pixels / (1.0 if pil.mode == "F" else 65535.0)).clamp(0, 1)
            return pil_to_tensor(pil.convert("L" if pil.mode in _GRAY_MODES else "RGB")).float() / 255.0
    except Exception as exc:  # PIL raises many types for truncated or foreign files
        raise MGCompileError(f"image {path} cannot be read ({type(exc).__name__}: {first_line(exc, 80)}); "
                             "remove or replace it") from None


class CalibrationSet(Dataset):
    """Images at the network's input size and channels, normalised; item ``i`` is an image tensor, never a label.

    With ``augment`` the data set's training augmentation is applied, random as a function of
    (seed, epoch, image key) like :class:`ImageSet`; set ``epoch`` before each pass for new views.
    """

    def __init__(self, keys: np.ndarray, kind: str, size: tuple[int, int], channels: int, norm: Normalisation,
                 augment: bool, seed: int) -> None:
        self.keys, self.kind, self.size, self.channels = keys, kind, tuple(size), channels
        self.mean, self.std = norm.tensors(channels)
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.keys)

    def _raw(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def _view(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def __getitem__(self, i: int) -> torch.Tensor:
        image = self._raw(i)
        if self.augment:
            image = augment_image(image, self.kind, self.size, sample_rng(self.seed, self.epoch, int(self.keys[i])))
        else:
            image = self._view(image)
        return ((to_channels(image, self.channels) - self.mean) / self.std).contiguous()


class TensorImages(CalibrationSet):
    """An in-memory data set's images (uint8, resized once to the input size, as ImageSet does)."""

    def __init__(self, images: torch.Tensor, keys: np.ndarray, **kwargs: Any) -> None:
        super().__init__(keys, **kwargs)
        if tuple(images.shape[-2:]) != self.size:
            images = (resize(images.float() / 255.0, self.size) * 255.0).round().clamp(0, 255).to(torch.uint8)
        self.images = images

    def _raw(self, i: int) -> torch.Tensor:
        return self.images[i].float() / 255.0


class FileImages(CalibrationSet):
    """Image files read on access; unaugmented, the central 87.5% is resized to the input size (as for
    ``imagefolder`` evaluation), augmented, the ``imagefolder`` training view."""

    def __init__(self, files: list[Path], keys: np.ndarray, **kwargs: Any) -> None:
        super().__init__(keys, **kwargs)
        self.files = files

    def _raw(self, i: int) -> torch.Tensor:
        return read_image(self.files[i])

    def _view(self, image: torch.Tensor) -> torch.Tensor:
        return center_crop_resize(image, self.size)


@dataclass
class CalibrationImages:
    """The images a calibration fits on, and those held out from the fit to report on."""

    fit: CalibrationSet
    heldout: CalibrationSet
    description: str
    norm: Normalisation | None = field(default=None)

    def set_epoch(self, epoch: int) -> None:
        """New augmentations for the next pass over a (small, cycled) fit set."""
        self.fit.epoch = self.heldout.epoch = epoch


def calibration_images(data: str | Source, *, data_dir: str | None, size: tuple[int, int], channels: int,
                       norm: Normalisation, limit: int | None = None, seed: int = 0, augment: bool = False,
                       val_fraction: float = 0.1) -> CalibrationImages:
    """Fit and held-out images of DATA at ``size``/``channels``, normalised with ``norm`` (the original's).

    A named data set (or a :class:`Source`) fits on its training split minus the validation part
    ``train`` holds out (``val_fraction``), which is the held-out set; ``images:PATH`` holds out a
    fixed 10% (at most 5,000). ``limit`` keeps a fixed random subset of the fit images, chosen by
    ``seed``, which also seeds the augmentation.
    """
    size = (int(size[0]), int(size[1]))
    if min(size) < 1 or channels < 1:
        raise MGCompileError(f"calibration images need a positive size and channel count; got {size}, {channels}")
    if limit is not None and limit < 1:
        raise MGCompileError(f"--calibrate-images takes a positive number of images; got {limit}")
    norm.tensors(channels)  # a normalisation of the wrong channel count fails before any image is read
    plan = _Plan(size, channels, norm, limit, seed, augment)
    if isinstance(data, str) and data.startswith(IMAGES_PREFIX):
        _check_channels(3, channels, data)
        files = image_files(data[len(IMAGES_PREFIX):])
        return plan.build(data, "images", *_folder_held_out(len(files)), False, files=files)
    if isinstance(data, str) and data not in DATASETS and not data.startswith("imagefolder:"):
        raise MGCompileError(f"unknown data set {data!r}; choose one of: {', '.join(DATASETS)}, {IMAGES_PREFIX}PATH "
                             "(a folder of unlabelled images)")
    source = data if isinstance(data, Source) else load_source(data, data_dir)
    images = source.train[0] if source.in_memory else source.train  # never source.train[1]: the labels
    fit, held = split_indices(len(images), val_fraction)
    validation = len(held) > 0
    if not validation:
        fit, held = _folder_held_out(len(images))
    if source.in_memory:
        _check_channels(images.shape[1], channels, source.name)
        return plan.build(source.name, "training images", fit, held, validation, images=images,
                          kind=source.augmentation)
    _check_channels(3, channels, source.name)
    files = [Path(path) for path, _ in images.samples]  # the paths alone: the class folders are never read
    return plan.build(source.name, "training images", fit, held, validation, files=files)


@dataclass(frozen=True)
class _Plan:
    """What every calibration set shares: input size, channels, normalisation, subset and augmentation."""

    size: tuple[int, int]
    channels: int
    norm: Normalisation
    limit: int | None
    seed: int
    augment: bool

    def build(self, name: str, unit: str, fit: np.ndarray, held: np.ndarray, validation: bool, *,
              images: torch.Tensor | None = None, files: list[Path] | None = None,
              kind: str = AUGMENTATIONS["imagefolder"]) -> CalibrationImages:
        """The fit set (limited, augmented if asked) and the held-out set over in-memory ``images`` or ``files``."""
        n_fit, chosen = len(fit), limited(fit, self.limit, self.seed)
        options = dict(kind=kind, size=self.size, channels=self.channels, norm=self.norm, seed=self.seed)

        def make(indices: np.ndarray, augmented: bool) -> CalibrationSet:
            if images is not None:
                return TensorImages(images[torch.from_numpy(indices)], indices, augment=augmented, **options)
            return FileImages([files[i] for i in indices], indices, augment=augmented, **options)

        subset = len(chosen) < n_fit
        fit_text = (f"{len(chosen)} of {n_fit} {unit} (fit, a fixed subset by seed {self.seed}" if subset
                    else f"{n_fit} {unit} (fit") + (", augmented)" if self.augment else ")")
        held_text = (f"validation split {len(held)}" if validation else f"a fixed {len(held)} of {n_fit + len(held)}")
        description = (f"{name}: {fit_text}, {held_text} (held out); {self.size[0]}x{self.size[1]}, "
                       f"{self.channels} channel(s), normalised with {self.norm.source}")
        return CalibrationImages(make(chosen, self.augment), make(held, False), description, self.norm)


def limited(indices: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """A fixed random subset of ``limit`` indices chosen by ``seed`` (sorted; nested as ``limit`` grows)."""
    if limit is None or limit >= len(indices):
        return indices
    return np.sort(indices[np.random.default_rng(seed).permutation(len(indices))[:limit]])


def _folder_held_out(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) indices when the data has no validation split: a fixed 10%, at most 5,000, at least one."""
    n_held = min(HELD_OUT_MAX, int(round(n * HELD_OUT_FRACTION)), n - 1)
    n_held = max(n_held, 1 if n >= 2 else 0)
    order = np.random.default_rng(HELD_OUT_SEED).permutation(n)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def image_extensions() -> frozenset[str]:
    """File extensions (lower case, with the dot) of the formats PIL can open."""
    from PIL import Image

    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def image_files(path: str) -> list[Path]:
    """Every image file under ``path`` (any nesting), sorted by relative path; each is opened once to fail early."""
    from PIL import Image

    root = Path(path)
    if not path or not root.is_dir():
        raise MGCompileError(f"{IMAGES_PREFIX}{path}: {root} is not a folder; pass {IMAGES_PREFIX}PATH with PATH a "
                             f"folder of image files, or a data set ({', '.join(DATASETS)})")
    extensions = image_extensions()
    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in extensions and p.is_file()),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise MGCompileError(f"{IMAGES_PREFIX}{path} holds no image files (.png, .jpg, ... any format PIL reads); "
                             "put images in it or pass another folder")
    for f in files:
        try:
            with Image.open(f):
                pass
        except Exception as exc:  # PIL raises many types for truncated or foreign files
            raise MGCompileError(f"image {f} cannot be read ({type(exc).__name__}: {first_line(exc, 80)}); "
                                 "remove or replace it") from None
    return files
