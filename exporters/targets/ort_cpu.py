"""``ort-cpu``: ONNX Runtime on the CPU (an ONNX file; the default target of ``--format onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mgcompile.exporters.targets import ExportJob, Lowering, Target

if TYPE_CHECKING:
    from mgcompile.ir.graph import Graph


def write(job: ExportJob) -> dict[str, Any]:
    from mgcompile.exporters.targets import _onnx

    return _onnx.write(job)


def verify(job: ExportJob) -> dict[str, Any]:
    from mgcompile.exporters.targets import _onnx

    return _onnx.verify(job)


def latency_runner(graph: Graph, batch: int, path: Path, threads: int | None) -> Callable[[], Any]:
    """The graph exported (unverified) to ``path`` and run in an ORT CPU session at full graph optimisation."""
    import numpy as np

    from mgcompile.api import build
    from mgcompile.exporters.export import export_model
    from mgcompile.exporters.ort_run import session
    from mgcompile.progress import muted

    with muted():  # one export per step: the caller reports progress, not each export's stages
        export_model(build(graph).eval(), graph.input_shape(), path, target=target.name, verify=False)
    sess = session(path, level="all", cuda=False, threads=threads)
    name = sess.get_inputs()[0].name
    feed = {name: np.random.default_rng(0).standard_normal((batch, *graph.input_shape())).astype(np.float32)}
    return lambda: sess.run(None, feed)


#: The transfer form measured fastest on ONNX Runtime CPU (benchmarks/bench.py, docs/performance.md): dense 1x1
#: transfers of up to 4 groups beat the Gather + grouped conv by 5-20%.
target = Target(name="ort-cpu", formats=("onnx",), lowering=Lowering(transfers="dense", max_expansion=4), note="",
                write=write, verify=verify, latency_runner=latency_runner)
