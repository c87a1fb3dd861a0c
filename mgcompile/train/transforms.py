"""Per-sample augmentation on tensors, driven by an explicit random generator.

Every random choice comes from a ``numpy.random.Generator`` seeded by
(run seed, epoch, sample index), so the augmentation of a sample does not depend on
the number of loader workers, on the process rank, or on where a run was resumed:
that is what makes an interrupted-and-resumed run bitwise identical to an
uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# Augmentation per data set, as is standard: no flips for digits (a flipped 2 is not a 2).
AUGMENTATIONS = {
    "digits": "crop",
    "mnist": "crop",
    "fashion-mnist": "crop_flip",
    "cifar10": "crop_flip",
    "cifar100": "crop_flip",
    "imagefolder": "resized_crop_flip",
}


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a float image (C,H,W) or batch (N,C,H,W) to ``size`` (bilinear, antialiased)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    batch = images if images.dim() == 4 else images.unsqueeze(0)
    out = F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out if images.dim() == 4 else out[0]


def random_crop(image: torch.Tensor, pad: int, rng: np.random.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` on each side, then crop back to the original size at a random offset."""
    if pad <= 0:
        return image
    h, w = image.shape[-2:]
    padded = F.pad(image, (pad, pad, pad, pad))
    top, left = int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))
    return padded[:, top:top + h, left:left + w]


def random_flip(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    return image.flip(-1) if rng.random() < 0.5 else image


def random_resized_crop(image: torch.Tensor, size: tuple[int, int], rng: np.random.Generator,
                        scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Inception-style crop: random area fraction and aspect ratio, resized to ``size``."""
    h, w = image.shape[-2:]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return resize(image[:, top:top + ch, left:left + cw], size)
    return center_crop_resize(image, size, 1.0)


def center_crop_resize(image: torch.Tensor, size: tuple[int, int], fraction: float = 0.875) -> torch.Tensor:
    """Evaluation view for folder data: the central ``fraction`` of the shorter side, resized."""
    h, w = image.shape[-2:]
    side = max(1, int(min(h, w) * fraction))
    top, left = (h - side) // 2, (w - side) // 2
    return resize(image[:, top:top + side, left:left + side], size)


def augment(image: torch.Tensor, kind: str, size: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """Apply the training augmentation ``kind`` (see :data:`AUGMENTATIONS`) to a float (C,H,W) image."""
    if kind == "resized_crop_flip":
        return random_flip(random_resized_crop(image, size, rng), rng)
    image = resize(image, size)
    image = random_crop(image, max(1, size[0] // 8), rng)
    return random_flip(image, rng) if kind == "crop_flip" else image
