"""CIFAR-10/100 from the "python version" archives, read directly (no torchvision checksum gate).

Layout (as the archives extract): ``cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}`` and ``cifar-100-python/{train, test, meta}``. Each batch is a pickled
dict with ``data`` (N x 3072 uint8, channel-major) and ``labels`` / ``fine_labels``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                "batches.meta", "labels", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names"),
}


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _read(files: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for f in files:
        batch = _unpickle(f)
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def read_cifar(root: Path, name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[str]]:
    """((train images N,3,32,32, labels), (test images, labels), class names); raises FileNotFoundError/KeyError."""
    sub, train, test, meta, label_key, names_key = LAYOUT[name]
    folder = root / sub
    classes = [c.decode() if isinstance(c, bytes) else c for c in _unpickle(folder / meta)[names_key]]
    return _read([folder / f for f in train], label_key), _read([folder / f for f in test], label_key), classes
