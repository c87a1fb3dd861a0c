"""TorchScript export (``torch.jit``; deprecated upstream: prefer ``pt2``) and its loader-runner."""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from torch import nn

from mgcompile import interrupts
from mgcompile.errors import MGCompileError, first_line


def save_torchscript(model: nn.Module, example: torch.Tensor, path: str | os.PathLike,
                     extra_files: dict[str, str] | None = None) -> str:
    """Script the module (fx GraphModules script cleanly); trace it if scripting fails. Returns the method.

    ``extra_files`` are stored in the archive (mgcompile's mark and metadata, see ``provenance``).
    """
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            scripted, how = torch.jit.script(model), "script"
        except Exception as exc:
            interrupts.check(exc)
            try:
                with torch.no_grad():
                    scripted, how = torch.jit.trace(model, (example,)), "trace"
            except Exception as exc:
                interrupts.check(exc)
                raise MGCompileError(f"TorchScript cannot script or trace this model ({first_line(exc, 160)}); "
                                     "use --format pt2 or onnx") from None
        torch.jit.save(scripted, str(path), _extra_files=extra_files or {})
    return how


def torchscript_runner(path: str | os.PathLike):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        return loaded(torch.from_numpy(x)).numpy()

    return run
