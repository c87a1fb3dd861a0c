"""One entry point for every format: produce the artifact, optimise, verify, then write it atomically.

The artifact is written to a temporary file beside the target and verified from
there; only a verified artifact is renamed onto the target, and only then is the
verification JSON written next to it. Any failure leaves neither behind.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import onnx
import torch
from torch import nn

from mgcompile import __version__
from mgcompile.atomic import atomic_path
from mgcompile.errors import MGCompileError
from mgcompile.exporters import onnx_export
from mgcompile.exporters.verify import BATCH_SIZES, compare, raise_unless_ok, result_path, verify_onnx, write_result

FORMATS = ("onnx", "torchscript", "pt2")
EXAMPLE_BATCH = 2  # a dynamic batch is traced at 2: exporters specialise sizes 0 and 1


def check_target(path: str | os.PathLike) -> Path:
    """Fail fast (before a slow export, creating nothing) if ``path`` cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise MGCompileError(f"output {p} is a folder; pass a file path such as {p / 'model.onnx'}")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise MGCompileError(f"cannot write to {p} ({ancestor} is not a writable folder); choose a writable -o path")
    return p


def export_model(model: nn.Module, input_shape: Sequence[int], path: str | os.PathLike, *, fmt: str = "onnx",
                 opset: int = onnx_export.DEFAULT_OPSET, dynamic_batch: bool = True, optimize: bool = True,
                 verify: bool = True, metadata: Mapping[str, Any] | None = None) -> dict:
    """Export eval-mode ``model`` (input ``(C, H, W)``) to ``path``; returns a report (and writes the JSON)."""
    if fmt not in FORMATS:
        raise MGCompileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        onnx_export.check_opset(opset)
    target = check_target(path)
    model = model.eval()
    example = torch.randn(EXAMPLE_BATCH if dynamic_batch else 1, *input_shape)
    batches = BATCH_SIZES if dynamic_batch else (1, 1)
    report: dict[str, Any] = {"format": fmt, "path": str(target), "dynamic_batch": dynamic_batch,
                              "input_shape": ["batch" if dynamic_batch else 1, *input_shape]}
    with atomic_path(target) as tmp:
        if fmt == "onnx":
            report.update(_write_onnx(model, example, tmp, opset, dynamic_batch, optimize, metadata))
            result = verify_onnx(tmp, model, input_shape, batches) if verify else None
        elif fmt == "torchscript":
            from mgcompile.exporters.torchscript import save_torchscript, torchscript_runner

            report["method"] = save_torchscript(model, example, tmp)
            result = _verify_torch(torchscript_runner(tmp), model, input_shape, batches, "torchscript") if verify else None
        else:
            from mgcompile.exporters.pt2 import pt2_runner, save_pt2

            save_pt2(model, example, tmp, dynamic_batch)
            result = _verify_torch(pt2_runner(tmp), model, input_shape, batches, "pt2") if verify else None
        if result is not None:
            raise_unless_ok(result, f"the {fmt} export")
    if result is not None:
        report["verification"] = result
        report["verification_json"] = str(write_result(target, {**result, "file": target.name}))
    else:  # an older verification beside the file would now describe a different model
        result_path(target).unlink(missing_ok=True)
    return report


def _verify_torch(run, model: nn.Module, shape: Sequence[int], batches: Sequence[int], fmt: str) -> dict:
    result = compare(run, model, shape, batches)
    return {"format": fmt, "runtime": f"torch {torch.__version__}", "providers": ["torch-cpu"], **result}


def _write_onnx(model: nn.Module, example: torch.Tensor, tmp: Path, opset: int, dynamic_batch: bool,
                optimize: bool, metadata: Mapping[str, Any] | None) -> dict:
    proto, exporter = onnx_export.to_onnx(model, example, opset=opset, dynamic_batch=dynamic_batch)
    info: dict[str, Any] = {"exporter": exporter, "opset": _opset(proto), "nodes_exported": len(proto.graph.node)}
    if optimize:
        from mgcompile.exporters.onnx_optimize import optimize as run_passes

        proto, info["passes"] = run_passes(proto)
    onnx_export.set_metadata(proto, {"mgcompile_version": __version__, **(metadata or {})})
    onnx_export.check(proto)
    onnx.save(proto, tmp)
    info["op_counts"] = dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))
    info["nodes"] = len(proto.graph.node)
    return info


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
