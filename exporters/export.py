"""One entry point for every format: produce the artifact, optimise, verify, then write it atomically.

The artifact is written to a temporary file beside the target and verified from
there; only a verified artifact is renamed onto the target, and only then is the
verification JSON written next to it. Any failure leaves neither behind.
"""

from __future__ import annotations

import json
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
from mgcompile.progress import stage
from mgcompile.provenance import EXTRA_FILE, stamp, written_by_mgcompile
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
                 verify: bool = True, metadata: Mapping[str, Any] | None = None,
                 reference: Mapping[str, torch.Tensor] | None = None) -> dict:
    """Export eval-mode ``model`` (input ``(C, H, W)``) to ``path``; returns a report (and writes the JSON).

    ``reference``: a saved model's stored input and output, which the module and the artifact must reproduce.
    """
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
    extra = {EXTRA_FILE: json.dumps({**stamp(), **(metadata or {})})}
    with atomic_path(target) as tmp:
        if fmt == "onnx":
            report.update(_write_onnx(model, example, tmp, opset, dynamic_batch, optimize, metadata))
            run = None
        elif fmt == "torchscript":
            from mgcompile.exporters.torchscript import save_torchscript, torchscript_runner

            with stage("exporting TorchScript"):
                report["method"] = save_torchscript(model, example, tmp, extra)
            run = torchscript_runner
        else:
            from mgcompile.exporters.pt2 import pt2_runner, save_pt2

            with stage("exporting with torch.export (pt2)"):
                save_pt2(model, example, tmp, dynamic_batch, extra)
            run = pt2_runner
        result = None
        if verify:
            with stage(f"verifying the {fmt} file against PyTorch at batch sizes {', '.join(map(str, batches))}"):
                if fmt == "onnx":
                    result = verify_onnx(tmp, model, input_shape, batches, reference=reference)
                else:
                    result = _verify_torch(run(tmp), model, input_shape, batches, fmt, reference)
            raise_unless_ok(result, f"the {fmt} export")
    if result is not None:
        report["verification"] = result
        report["verification_json"] = str(write_result(target, {**result, "file": target.name}))
    elif written_by_mgcompile(result_path(target)):  # an older verification would now describe another model
        result_path(target).unlink()
    return report


def _verify_torch(run, model: nn.Module, shape: Sequence[int], batches: Sequence[int], fmt: str,
                  reference: Mapping[str, torch.Tensor] | None = None) -> dict:
    result = compare(run, model, shape, batches, reference=reference)
    return {"format": fmt, "runtime": f"torch {torch.__version__}", "providers": ["torch-cpu"], **result}


def _write_onnx(model: nn.Module, example: torch.Tensor, tmp: Path, opset: int, dynamic_batch: bool,
                optimize: bool, metadata: Mapping[str, Any] | None) -> dict:
    how = "dynamo" if opset in onnx_export.DYNAMO_OPSETS else "legacy"
    with stage(f"exporting ONNX (opset {opset}, {how} exporter)"):
        proto, exporter = onnx_export.to_onnx(model, example, opset=opset, dynamic_batch=dynamic_batch)
    info: dict[str, Any] = {"exporter": exporter, "opset": _opset(proto), "nodes_exported": len(proto.graph.node)}
    if optimize:
        from mgcompile.exporters.onnx_optimize import optimize as run_passes

        with stage(f"optimising ONNX ({len(proto.graph.node)} nodes; each pass checked in ONNX Runtime)"):
            proto, info["passes"] = run_passes(proto)
    onnx_export.set_metadata(proto, {"mgcompile_version": __version__, **(metadata or {})})
    onnx_export.check(proto)
    onnx.save(proto, tmp)
    info["op_counts"] = dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))
    info["nodes"] = len(proto.graph.node)
    return info


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
