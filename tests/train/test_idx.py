"""The IDX reader on small files written here, gzipped and raw, plus damaged ones."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from mgcompile.errors import MGCompileError
from mgcompile.train.idx import read_idx


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_images_and_labels_round_trip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(5,), dtype=np.uint8)
    for name, arr in (("img", images), ("lab", labels)):
        raw = idx_bytes(arr, 0x08)
        (tmp_path / name).write_bytes(gzip.compress(raw) if compress else raw)
    got = read_idx(tmp_path / "img")
    assert got.shape == (5, 4, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(read_idx(tmp_path / "lab"), labels)


def test_big_endian_int32_and_float(tmp_path):
    ints = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    floats = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    (tmp_path / "i").write_bytes(idx_bytes(ints, 0x0C))
    (tmp_path / "f").write_bytes(idx_bytes(floats, 0x0D))
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), ints)
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), floats)


def test_truncated_and_foreign_files_are_one_line_errors(tmp_path):
    raw = idx_bytes(np.zeros((4, 2, 2), dtype=np.uint8), 0x08)
    (tmp_path / "short").write_bytes(raw[:-3])
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + raw)
    with pytest.raises(MGCompileError, match="truncated"):
        read_idx(tmp_path / "short")
    with pytest.raises(MGCompileError, match="not an IDX file"):
        read_idx(tmp_path / "png")
