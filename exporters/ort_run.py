"""Load, run and time ONNX models in ONNX Runtime.

ORT can save the graph it optimised. Levels ``basic`` and ``extended`` give a
portable model; ``all`` adds layout transforms (NCHWc blocking) chosen for the
CPU it ran on, so a model saved at ``all`` is only valid on that kind of machine
and is not offered for saving.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

from mgcompile.errors import MGCompileError, first_line
from mgcompile.progress import Progress

LEVELS = ("disable", "basic", "extended", "all")
PORTABLE_LEVELS = ("basic", "extended")
DYNAMIC_BATCH = 2


def providers(cuda: bool | None = None) -> list:
    """CPU always; CUDA first when ORT has it and a GPU is present (``cuda=None``: auto)."""
    import onnxruntime as ort

    if cuda is None:
        cuda = "CUDAExecutionProvider" in ort.get_available_providers() and _gpu_present()
    # TF32 would break the 1e-4 parity bound; ask for full float32.
    return [("CUDAExecutionProvider", {"use_tf32": 0}), "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]


def _gpu_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def session(model: onnx.ModelProto | str | os.PathLike, *, level: str = "disable", cuda: bool | None = False,
            threads: int | None = None, save_optimized: str | os.PathLike | None = None):
    """An ``InferenceSession``; ``save_optimized`` writes ORT's optimised graph (portable levels only)."""
    import onnxruntime as ort

    if level not in LEVELS:
        raise MGCompileError(f"unknown ORT optimisation level {level!r}; use one of {', '.join(LEVELS)}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    if save_optimized is not None:
        if level not in PORTABLE_LEVELS:
            raise MGCompileError(f"saving an ORT-optimised model needs a portable level ({', '.join(PORTABLE_LEVELS)}), "
                                 f"not {level!r}: 'all' bakes in this machine's CPU layout")
        opts.optimized_model_filepath = str(save_optimized)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=providers(cuda))
    except Exception as exc:
        first = first_line(exc)
        raise MGCompileError(f"ONNX Runtime cannot load the model: {first}") from None


def input_shape(model: onnx.ModelProto, batch: int) -> tuple[int, ...]:
    """The first graph input's shape with symbolic dims (the batch) set to ``batch``."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else batch for d in dims)


def is_dynamic_batch(model: onnx.ModelProto) -> bool:
    return not model.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")


def random_input(model: onnx.ModelProto, batch: int = DYNAMIC_BATCH, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(input_shape(model, batch)).astype(np.float32)


def run_model(model: onnx.ModelProto, x: np.ndarray, level: str = "disable") -> np.ndarray:
    """One CPU run of the first output (the parity oracle of the optimisation passes)."""
    sess = session(model, level=level)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def time_session(sess, x: np.ndarray, repeat: int = 20, warmup: int = 3) -> dict:
    """Median/min latency in milliseconds after ``warmup`` untimed runs."""
    feed = {sess.get_inputs()[0].name: x}
    times = []
    with Progress(warmup + repeat, f"timing in ONNX Runtime (batch {x.shape[0]})", "runs") as progress:
        for _ in range(warmup):
            sess.run(None, feed)
            progress.update()
        for _ in range(repeat):
            t0 = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - t0) * 1e3)
            progress.update(median_ms=f"{statistics.median(times):.2f}")
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeat": repeat, "warmup": warmup,
            "batch": int(x.shape[0]), "providers": sess.get_providers()}


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    p = Path(path)
    if not p.is_file():
        raise MGCompileError(f"{p} does not exist or is not a file; pass an .onnx file written by `mgcompile export`")
    try:
        proto = onnx.load(p)
    except Exception:
        raise MGCompileError(f"{p} is not a valid ONNX model; re-export it with `mgcompile export`") from None
    if not proto.graph.node or not proto.graph.input or not proto.graph.output:
        raise MGCompileError(f"{p} is empty or has no graph inputs/outputs, so it is not a usable ONNX model; "
                             "re-export it with `mgcompile export`")
    return proto
