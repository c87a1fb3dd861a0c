"""``torch``: PyTorch runtimes (a torch.export archive, the default, or TorchScript), eager PyTorch for latency.

This file is ``mgcompile.exporters.targets.torch``; ``import torch`` inside it still means PyTorch (imports are
absolute).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mgcompile.exporters.targets import ExportJob, Lowering, Target

if TYPE_CHECKING:
    from mgcompile.ir.graph import Graph


def _torchscript(job: ExportJob, extra: dict[str, str]) -> dict[str, Any]:
    from mgcompile.exporters.torchscript import save_torchscript

    return {"method": save_torchscript(job.artifact, job.example, job.path, extra)}


def _load_torchscript(path: Path) -> Callable:
    from mgcompile.exporters.torchscript import torchscript_runner

    return torchscript_runner(path)


def _pt2(job: ExportJob, extra: dict[str, str]) -> dict[str, Any]:
    from mgcompile.exporters.pt2 import save_pt2

    save_pt2(job.artifact, job.example, job.path, job.dynamic_batch, extra)
    return {}


def _load_pt2(path: Path) -> Callable:
    from mgcompile.exporters.pt2 import pt2_runner

    return pt2_runner(path)


#: format -> (the progress line, the writer: the report's entries, the loader: a numpy -> numpy runner)
_FORMATS: dict[str, tuple[str, Callable[[ExportJob, dict[str, str]], dict[str, Any]], Callable[[Path], Callable]]] = {
    "torchscript": ("exporting TorchScript", _torchscript, _load_torchscript),
    "pt2": ("exporting with torch.export (pt2)", _pt2, _load_pt2),
}


def write(job: ExportJob) -> dict[str, Any]:
    """Save ``job.artifact`` in ``job.fmt`` with mgcompile's mark and the metadata stored in the archive."""
    from mgcompile.progress import stage
    from mgcompile.provenance import EXTRA_FILE, stamp

    what, save, _ = _FORMATS[job.fmt]
    with stage(what):
        return save(job, {EXTRA_FILE: json.dumps({**stamp(), **job.metadata})})


def verify(job: ExportJob) -> dict[str, Any]:
    """The reloaded archive against ``job.model`` in PyTorch on the CPU."""
    import torch

    from mgcompile.exporters.verify import compare

    run = _FORMATS[job.fmt][2](job.path)
    result = compare(run, job.model, job.input_shape, job.batches, reference=job.reference)
    return {"format": job.fmt, "runtime": f"torch {torch.__version__}", "providers": ["torch-cpu"], **result}


def latency_runner(graph: Graph, batch: int, path: Path, threads: int | None) -> Callable[[], Any]:
    """The graph built for inference (BN folded), channels_last, run eagerly (``path`` and ``threads`` unused)."""
    import torch

    from mgcompile.api import build

    model = build(graph, fold_bn=True).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, *graph.input_shape()).contiguous(memory_format=torch.channels_last)

    def run() -> Any:
        with torch.inference_mode():
            return model(x)

    return run


#: The transfer form measured fastest in eager PyTorch (benchmarks/bench.py, docs/performance.md): dense 1x1
#: transfers of up to 4 groups; also what ``mgcompile.build(..., fold_bn=True)`` applies.
target = Target(name="torch", formats=tuple(_FORMATS), lowering=Lowering(transfers="dense", max_expansion=4),
                note="", write=write, verify=verify, latency_runner=latency_runner)
