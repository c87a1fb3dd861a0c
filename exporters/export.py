"""One entry point for every format: lower for the target, produce the artifact, verify, write it atomically.

With ``optimize`` (the default) an mgcompile module is first lowered for inference in
mgcompile's IR for its *target* (:data:`TARGETS`; :mod:`mgcompile.backends.inference`:
BN folded, also after P, permutations folded where exact, the transfer form measured
fastest on that target), and an ONNX export then gets the onnx-ir cleanup passes
(:mod:`mgcompile.exporters.onnx_passes`). The artifact is always verified against the
module as given (unlowered), plus a saved model's stored reference output.

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
from mgcompile.atomic import atomic_files, atomic_path
from mgcompile.errors import MGCompileError
from mgcompile.progress import stage
from mgcompile.provenance import EXTRA_FILE, stamp, written_by_mgcompile
from mgcompile.backends.inference import BEST_TRANSFERS
from mgcompile.exporters import onnx_export
from mgcompile.exporters.verify import BATCH_SIZES, compare, raise_unless_ok, result_path, verify_onnx, write_result

FORMATS = ("onnx", "torchscript", "pt2")
PROTO_LIMIT = 2**31  # protobuf cannot serialise a message over 2 GiB: ONNX weights go to a .data file beside the model
EXTERNAL_DATA_BYTES = 3 * 2**29  # 1.5 GiB of weights: external data automatically (graph and metadata need room)
EXAMPLE_BATCH = 2  # a dynamic batch is traced at 2: exporters specialise sizes 0 and 1

#: target -> (formats it takes, the inference lowering's transfer form, a note for the report).
#: The transfer forms were chosen by measurement (``BEST_TRANSFERS``; docs/performance.md).
TARGETS: dict[str, dict[str, Any]] = {
    "ort-cpu": {"formats": ("onnx",), "transfers": BEST_TRANSFERS["ort-cpu"], "note": ""},
    "ort-cuda": {"formats": ("onnx",), "transfers": BEST_TRANSFERS["ort-cpu"],
                 "note": "no GPU with onnxruntime-gpu has been measured yet: the ort-cpu lowering is applied"},
    "torch": {"formats": ("torchscript", "pt2"), "transfers": BEST_TRANSFERS["torch"], "note": ""},
}


def resolve_target(fmt: str | None, target: str | None) -> tuple[str, str]:
    """(format, target) from what the user gave: ort-* implies onnx, torch goes with torchscript/pt2."""
    if target is not None and target not in TARGETS:
        raise MGCompileError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    if fmt is not None and fmt not in FORMATS:
        raise MGCompileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if target is None:
        fmt = fmt or "onnx"
        return fmt, "ort-cpu" if fmt == "onnx" else "torch"
    allowed = TARGETS[target]["formats"]
    if fmt is None:
        return allowed[-1], target
    if fmt not in allowed:
        raise MGCompileError(f"--target {target} exports {' or '.join(allowed)}, not {fmt}; drop --format or pick "
                             f"the target of {fmt} ({'ort-cpu or ort-cuda' if fmt == 'onnx' else 'torch'})")
    return fmt, target


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


def export_model(model: nn.Module, input_shape: Sequence[int], path: str | os.PathLike, *, fmt: str | None = None,
                 opset: int = onnx_export.DEFAULT_OPSET, dynamic_batch: bool = True, optimize: bool = True,
                 verify: bool = True, metadata: Mapping[str, Any] | None = None,
                 reference: Mapping[str, torch.Tensor] | None = None, target: str | None = None,
                 external_data: bool | None = None) -> dict:
    """Export eval-mode ``model`` (input ``(C, H, W)``) to ``path``; returns a report (and writes the JSON).

    ``target`` (``ort-cpu``, ``ort-cuda``, ``torch``; default from ``fmt``) picks the inference lowering.
    ``reference``: a saved model's stored input and output, which the module and the artifact must reproduce.
    ``external_data`` (ONNX): the weights in ``<path>.data`` beside the model; ``None`` decides by size
    (over :data:`EXTERNAL_DATA_BYTES`: an ONNX file cannot hold more than 2 GiB).
    """
    fmt, deploy = resolve_target(fmt, target)
    if fmt == "onnx":
        onnx_export.check_opset(opset)
    elif external_data:
        raise MGCompileError(f"external data is an ONNX feature; drop --external-data for {fmt}")
    out_path = check_target(path)
    data_file = out_path.with_name(out_path.name + ".data")
    owned_data = fmt == "onnx" and _weights_of(out_path, data_file)  # ours to replace or remove
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    external = fmt == "onnx" and (external_data if external_data is not None else weight_bytes > EXTERNAL_DATA_BYTES)
    if fmt == "onnx" and not external and weight_bytes >= PROTO_LIMIT:
        raise MGCompileError(f"the weights ({weight_bytes / 2**30:.1f} GiB) exceed the 2 GiB one ONNX file can hold; "
                             f"drop --embedded-data (they then go to {data_file.name} beside the model)")
    if external and data_file.exists() and not owned_data:
        raise MGCompileError(f"{data_file} exists and does not hold the weights of an ONNX model mgcompile wrote as "
                             f"{out_path.name}; move it away or choose another output path")
    model = model.eval()
    report: dict[str, Any] = {"format": fmt, "target": deploy, "path": str(out_path), "dynamic_batch": dynamic_batch,
                              "input_shape": ["batch" if dynamic_batch else 1, *input_shape]}
    artifact = model
    if optimize and getattr(model, "mg_graph", None) is not None:
        from mgcompile.backends.inference import lower_for_inference, passes_report

        form, expansion = TARGETS[deploy]["transfers"]
        with stage(f"lowering for {deploy} in the IR (BN and permutation folding, {form} transfers)"):
            artifact = lower_for_inference(model, transfers=form, max_expansion=expansion)
        report["lowering"] = {"transfers": form, "max_expansion": expansion, "passes": list(passes_report(artifact))}
        if TARGETS[deploy]["note"]:
            report["lowering"]["note"] = TARGETS[deploy]["note"]
    target = out_path
    example = torch.randn(EXAMPLE_BATCH if dynamic_batch else 1, *input_shape)
    batches = BATCH_SIZES if dynamic_batch else (1, 1)
    extra = {EXTRA_FILE: json.dumps({**stamp(), **(metadata or {})})}
    small = weight_bytes <= EXTERNAL_DATA_BYTES  # the onnx-ir passes check each pass through an in-memory copy
    with atomic_files(target, (".data",)) if external else atomic_path(target) as tmp:
        if fmt == "onnx":
            report.update(_write_onnx(artifact, example, tmp, opset, dynamic_batch, optimize and small, metadata,
                                      external))
            if optimize and not small:
                report["passes"] = ("skipped: the onnx-ir cleanup checks each pass in ONNX Runtime through an "
                                    "in-memory copy, which protobuf cannot hold near 2 GiB")
            run = None
        elif fmt == "torchscript":
            from mgcompile.exporters.torchscript import save_torchscript, torchscript_runner

            with stage("exporting TorchScript"):
                report["method"] = save_torchscript(artifact, example, tmp, extra)
            run = torchscript_runner
        else:
            from mgcompile.exporters.pt2 import pt2_runner, save_pt2

            with stage("exporting with torch.export (pt2)"):
                save_pt2(artifact, example, tmp, dynamic_batch, extra)
            run = pt2_runner
        result = None
        if verify:
            with stage(f"verifying the {fmt} file against PyTorch at batch sizes {', '.join(map(str, batches))}"):
                if fmt == "onnx":
                    result = verify_onnx(tmp, model, input_shape, batches, reference=reference)
                else:
                    result = _verify_torch(run(tmp), model, input_shape, batches, fmt, reference)
            raise_unless_ok(result, f"the {fmt} export")
    if owned_data and "external_data" not in report:
        data_file.unlink(missing_ok=True)  # the new model holds its weights: the old .data describes nothing now
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
                optimize: bool, metadata: Mapping[str, Any] | None, external: bool = False) -> dict:
    how = "dynamo" if opset in onnx_export.DYNAMO_OPSETS else "legacy"
    with stage(f"exporting ONNX (opset {opset}, {how} exporter)"):
        proto, exporter = onnx_export.to_onnx(model, example, opset=opset, dynamic_batch=dynamic_batch,
                                              external_data=external)
    info: dict[str, Any] = {"exporter": exporter, "opset": _opset(proto), "nodes_exported": len(proto.graph.node)}
    if optimize:
        from mgcompile.exporters.onnx_passes import optimize as run_passes

        with stage(f"cleaning up ONNX ({len(proto.graph.node)} nodes; onnx-ir passes, each checked in ONNX Runtime)"):
            proto, info["passes"] = run_passes(proto)
    onnx_export.set_metadata(proto, {"mgcompile_version": __version__, **(metadata or {})})
    if external:  # weights in <name>.data beside the model (the name it will have after the rename)
        info["external_data"] = tmp.name + ".data"
        onnx.save_model(proto, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=info["external_data"], size_threshold=1024)
        onnx_export.check(str(tmp))
        if not (tmp.parent / info["external_data"]).exists():  # no tensor over 1 KiB: the model holds them all
            del info["external_data"]
    else:
        onnx_export.check(proto)
        onnx.save(proto, tmp)
    info["op_counts"] = dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))
    info["nodes"] = len(proto.graph.node)
    return info


def _weights_of(model_path: Path, data_file: Path) -> bool:
    """Whether ``data_file`` holds the weights of the mgcompile-written ONNX model at ``model_path``."""
    if not (data_file.is_file() and written_by_mgcompile(model_path)):
        return False
    try:
        proto = onnx.load(model_path, load_external_data=False)
    except Exception:
        return False
    return any(e.key == "location" and e.value == data_file.name
               for t in proto.graph.initializer for e in t.external_data)


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
