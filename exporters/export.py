"""One entry point for every format: lower for the target, produce the artifact, verify, write it atomically.

With ``optimize`` (the default) an mgcompile module is first lowered for inference in
mgcompile's IR for its *target* (a :class:`~mgcompile.exporters.targets.Target` record,
one file per target in :mod:`mgcompile.exporters.targets`; :mod:`mgcompile.backends.inference`:
BN folded, also after P, permutations folded where exact, the transfer form measured
fastest on that target), and an ONNX export then gets the onnx-ir cleanup passes
(:mod:`mgcompile.exporters.onnx_passes`). The target writes the artifact and verifies
it against the module as given (unlowered), plus a saved model's stored reference output.

The artifact is written to a temporary file beside the target and verified from
there; only a verified artifact is renamed onto the target, and only then is the
verification JSON written next to it. Any failure leaves neither behind.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import onnx
import torch
from torch import nn

from mgcompile.atomic import atomic_files, atomic_path
from mgcompile.errors import MGCompileError
from mgcompile.exporters import onnx_export, targets
from mgcompile.exporters.targets import ExportJob, Target
from mgcompile.exporters.verify import BATCH_SIZES, raise_unless_ok, result_path, write_result
from mgcompile.progress import stage
from mgcompile.provenance import written_by_mgcompile

FORMATS = targets.formats()  # ("onnx", "torchscript", "pt2")
DEFAULT_FORMAT = "onnx"
PROTO_LIMIT = 2**31  # protobuf cannot serialise a message over 2 GiB: ONNX weights go to a .data file beside the model
EXTERNAL_DATA_BYTES = 3 * 2**29  # 1.5 GiB of weights: external data automatically (graph and metadata need room)
EXAMPLE_BATCH = 2  # a dynamic batch is traced at 2: exporters specialise sizes 0 and 1


def resolve_target(fmt: str | None, target: str | None) -> tuple[str, str]:
    """(format, target) from what the user gave: ort-* implies onnx, torch goes with torchscript/pt2."""
    if target is not None and target not in targets.names():
        raise MGCompileError(f"unknown target {target!r}; use one of {', '.join(targets.names())}")
    if fmt is not None and fmt not in FORMATS:
        raise MGCompileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if target is None:
        fmt = fmt or DEFAULT_FORMAT
        return fmt, targets.targets_of(fmt)[0]
    allowed = targets.get(target).formats
    if fmt is None:
        return allowed[-1], target
    if fmt not in allowed:
        raise MGCompileError(f"--target {target} exports {' or '.join(allowed)}, not {fmt}; drop --format or pick "
                             f"the target of {fmt} ({' or '.join(targets.targets_of(fmt))})")
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
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    external, owned_data = _external_data(fmt, out_path, external_data, weight_bytes)
    model = model.eval()
    report: dict[str, Any] = {"format": fmt, "target": deploy, "path": str(out_path), "dynamic_batch": dynamic_batch,
                              "input_shape": ["batch" if dynamic_batch else 1, *input_shape]}
    tgt = targets.get(deploy)
    artifact = _lower(model, tgt, report) if optimize and getattr(model, "mg_graph", None) is not None else model
    job = ExportJob(fmt=fmt, model=model, artifact=artifact,
                    example=torch.randn(EXAMPLE_BATCH if dynamic_batch else 1, *input_shape),
                    input_shape=tuple(input_shape), path=out_path, opset=opset, dynamic_batch=dynamic_batch,
                    optimize=optimize, in_memory_checks=weight_bytes <= EXTERNAL_DATA_BYTES, external=external,
                    metadata=dict(metadata or {}), reference=reference,
                    batches=BATCH_SIZES if dynamic_batch else (1, 1))
    with atomic_files(out_path, (".data",)) if external else atomic_path(out_path) as tmp:
        result = _write_and_verify(tgt, replace(job, path=tmp), report, verify)
    _settle(out_path, report, result, owned_data)
    return report


def _external_data(fmt: str, out_path: Path, external_data: bool | None, weight_bytes: int) -> tuple[bool, bool]:
    """(whether the ONNX weights go to ``<out_path>.data``, whether an existing such file is ours to replace)."""
    data_file = out_path.with_name(out_path.name + ".data")
    owned_data = fmt == "onnx" and _weights_of(out_path, data_file)  # ours to replace or remove
    external = fmt == "onnx" and (external_data if external_data is not None else weight_bytes > EXTERNAL_DATA_BYTES)
    if fmt == "onnx" and not external and weight_bytes >= PROTO_LIMIT:
        raise MGCompileError(f"the weights ({weight_bytes / 2**30:.1f} GiB) exceed the 2 GiB one ONNX file can hold; "
                             f"drop --embedded-data (they then go to {data_file.name} beside the model)")
    if external and data_file.exists() and not owned_data:
        raise MGCompileError(f"{data_file} exists and does not hold the weights of an ONNX model mgcompile wrote as "
                             f"{out_path.name}; move it away or choose another output path")
    return external, owned_data


def _lower(model: nn.Module, target: Target, report: dict[str, Any]) -> nn.Module:
    """``model`` lowered for inference on ``target`` in the IR; what it did goes to ``report["lowering"]``."""
    from mgcompile.backends.inference import lower_for_inference, passes_report

    form, expansion = target.lowering.transfers, target.lowering.max_expansion
    with stage(f"lowering for {target.name} in the IR (BN and permutation folding, {form} transfers)"):
        artifact = lower_for_inference(model, transfers=form, max_expansion=expansion)
    report["lowering"] = {"transfers": form, "max_expansion": expansion, "passes": list(passes_report(artifact))}
    if target.note:
        report["lowering"]["note"] = target.note
    return artifact


def _write_and_verify(target: Target, job: ExportJob, report: dict[str, Any], verify: bool) -> dict | None:
    """Write ``job.path`` (its entries go to ``report``) and, with ``verify``, check it; a failed check raises."""
    report.update(target.write(job))
    if not verify:
        return None
    batches = ", ".join(map(str, job.batches))
    with stage(f"verifying the {job.fmt} file against PyTorch at batch sizes {batches}"):
        result = target.verify(job)
    raise_unless_ok(result, f"the {job.fmt} export")
    return result


def _settle(out_path: Path, report: dict[str, Any], result: dict | None, owned_data: bool) -> None:
    """After the rename: drop a ``.data`` file the new model no longer uses, write or drop the verification JSON."""
    if owned_data and "external_data" not in report:
        out_path.with_name(out_path.name + ".data").unlink(missing_ok=True)  # the old .data describes nothing now
    if result is not None:
        report["verification"] = result
        report["verification_json"] = str(write_result(out_path, {**result, "file": out_path.name}))
    elif written_by_mgcompile(result_path(out_path)):  # an older verification would now describe another model
        result_path(out_path).unlink()


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
