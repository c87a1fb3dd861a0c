"""``torch.export`` archive (``.pt2``): the modern PyTorch deployment artifact, and its loader-runner."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from mgcompile import interrupts
from mgcompile.errors import MGCompileError, first_line


def save_pt2(model: nn.Module, example: torch.Tensor, path: str | os.PathLike, dynamic_batch: bool = True,
             extra_files: dict[str, str] | None = None) -> None:
    """Export with a symbolic batch dimension (unless ``dynamic_batch`` is False) and save the archive.

    ``extra_files`` are stored in the archive (mgcompile's mark and metadata, see ``provenance``).
    """
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    try:
        program = torch.export.export(model.eval(), (example,), dynamic_shapes=shapes)
    except Exception as exc:
        interrupts.check(exc)
        raise MGCompileError(f"torch.export cannot export this model ({first_line(exc, 160)}); "
                             "use --format onnx") from None
    with open(path, "wb") as f:  # a file object: torch.export insists on a .pt2 suffix for paths, and temp files lack it
        torch.export.save(program, f, extra_files=extra_files)


def pt2_runner(path: str | os.PathLike):
    with open(path, "rb") as f:
        module = torch.export.load(f).module()

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(x)).numpy()

    return run
