"""The ONNX file of the ``ort-*`` targets: written (exported, cleaned up, checked, saved) and verified in ONNX Runtime.

Imported by those targets' functions only: it imports torch and onnx.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import onnx

from mgcompile import __version__
from mgcompile.exporters import onnx_export
from mgcompile.exporters.targets import ExportJob
from mgcompile.progress import stage

PASSES_SKIPPED = ("skipped: the onnx-ir cleanup checks each pass in ONNX Runtime through an in-memory copy, which "
                  "protobuf cannot hold near 2 GiB")


def write(job: ExportJob) -> dict[str, Any]:
    """Export ``job.artifact`` to ONNX at ``job.path``; the report's entries (exporter, opset, passes, op counts)."""
    optimize = job.optimize and job.in_memory_checks  # the onnx-ir passes check each pass through an in-memory copy
    how = "dynamo" if job.opset in onnx_export.DYNAMO_OPSETS else "legacy"
    with stage(f"exporting ONNX (opset {job.opset}, {how} exporter)"):
        proto, exporter = onnx_export.to_onnx(job.artifact, job.example, opset=job.opset,
                                              dynamic_batch=job.dynamic_batch, external_data=job.external)
    info: dict[str, Any] = {"exporter": exporter, "opset": _opset(proto), "nodes_exported": len(proto.graph.node)}
    if optimize:
        from mgcompile.exporters.onnx_passes import optimize as run_passes

        with stage(f"cleaning up ONNX ({len(proto.graph.node)} nodes; onnx-ir passes, each checked in ONNX Runtime)"):
            proto, info["passes"] = run_passes(proto)
    onnx_export.set_metadata(proto, {"mgcompile_version": __version__, **job.metadata})
    _save(proto, job, info)
    info["op_counts"] = dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))
    info["nodes"] = len(proto.graph.node)
    if job.optimize and not job.in_memory_checks:
        info["passes"] = PASSES_SKIPPED
    return info


def verify(job: ExportJob) -> dict[str, Any]:
    """ONNX Runtime on CPU, plus CUDA when available (:func:`mgcompile.exporters.verify.verify_onnx`)."""
    from mgcompile.exporters.verify import verify_onnx

    return verify_onnx(job.path, job.model, job.input_shape, job.batches, reference=job.reference)


def _save(proto: onnx.ModelProto, job: ExportJob, info: dict[str, Any]) -> None:
    """Check and save ``proto`` at ``job.path``; external data in ``<name>.data`` (the name after the rename)."""
    tmp = job.path
    if not job.external:
        onnx_export.check(proto)
        onnx.save(proto, tmp)
        return
    info["external_data"] = tmp.name + ".data"
    onnx.save_model(proto, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=info["external_data"], size_threshold=1024)
    onnx_export.check(str(tmp))
    if not (tmp.parent / info["external_data"]).exists():  # no tensor over 1 KiB: the model holds them all
        del info["external_data"]


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
