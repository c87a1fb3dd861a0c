"""ONNX Runtime CPU latency of base vs MG networks, next to their MAC ratio, measured in one run.

    .venv/bin/python benchmarks/onnx_latency.py [--threads 2] [--repeat 15]

Each model is built (random init), exported with `mgcompile.exporters` (dynamo,
optimised: BN and permutations folded), and timed in ORT at optimisation level
`all` on CPUExecutionProvider: median over `--repeat` runs after 3 warm-up runs,
at batch 1 and 8. MACs come from the IR (`mgcompile.passes.count`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

import mgcompile
from mgcompile.naming import canonical_name
from mgcompile.errors import MGCompileError
from mgcompile.exporters.export import export_model
from mgcompile.exporters.ort_run import session, time_session
from mgcompile.passes import count

BATCHES = (1, 8)
# (base name, MG candidates as (group size, θ)); the first MG config the registry accepts is used.
# MobileNetV2 at the paper's g32/θ64 needs 32 | 80 (the 160-wide blocks' second level); until the
# registry accepts it, g32/θ128 (160- and 320-wide blocks only) stands in, and the output says so.
PAIRS = [("resnet34", [(32, 64)]), ("mobilenet_v2", [(32, 64), (32, 128)])]


def _measure(spec: mgcompile.Spec, workdir: Path, threads: int, repeat: int) -> dict:
    graph = mgcompile.expand(spec)
    model = mgcompile.build(graph).eval()
    path = workdir / f"{spec.name or 'model'}.onnx"
    shape = graph.input_shape()
    export_model(model, shape, path, verify=False)
    sess = session(onnx.load(path), level="all", cuda=False, threads=threads)
    rng = np.random.default_rng(0)
    ms = {b: time_session(sess, rng.standard_normal((b, *shape)).astype(np.float32), repeat=repeat)["median_ms"]
          for b in BATCHES}
    return {"macs": count(graph).macs, "ms": ms}


def _mg_spec(base: str, candidates: list[tuple[int, int]]) -> tuple[mgcompile.Spec | None, str]:
    reasons = []
    for g, c in candidates:
        try:
            spec = mgcompile.model_spec(base, group_size=g, coarsest=c)
            spec = spec.replace(name=canonical_name(spec))
            return spec, "; ".join(reasons)
        except MGCompileError as exc:
            reasons.append(f"g{g}c{c} rejected: {exc}")
    return None, "; ".join(reasons)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="ORT intra-op threads (default 2)")
    ap.add_argument("--repeat", type=int, default=15, help="timed runs per batch size (median reported)")
    args = ap.parse_args(argv)
    import onnxruntime

    print(f"ONNX Runtime {onnxruntime.__version__} CPUExecutionProvider, level all, {args.threads} threads, "
          f"median of {args.repeat} runs after 3 warm-up")
    header = f"{'model':<26}{'GMACs':>8}" + "".join(f"{f'b{b} ms':>10}" for b in BATCHES)
    rows, ratios, notes = [header], [], []
    with tempfile.TemporaryDirectory(prefix="mgcompile-bench-") as tmp:
        for base, candidates in PAIRS:
            try:
                base_spec = mgcompile.model_spec(base)
            except MGCompileError as exc:
                rows.append(f"{base:<26}skipped: {exc}")
                continue
            mg_spec, why = _mg_spec(base, candidates)
            results = {base: _measure(base_spec.replace(name=base), Path(tmp), args.threads, args.repeat)}
            if mg_spec is not None:
                results[mg_spec.name] = _measure(mg_spec, Path(tmp), args.threads, args.repeat)
            for name, r in results.items():
                rows.append(f"{name:<26}{r['macs'] / 1e9:>8.3f}" + "".join(f"{r['ms'][b]:>10.2f}" for b in BATCHES))
            if why:
                notes.append(f"{base}: {why}" + ("" if mg_spec is None else f"; used {mg_spec.name}"))
            if mg_spec is not None:
                b, m = results[base], results[mg_spec.name]
                lat = ", ".join(f"b{k} {m['ms'][k] / b['ms'][k]:.2f}x" for k in BATCHES)
                ratios.append(f"{mg_spec.name} / {base}: MACs {m['macs'] / b['macs']:.3f}x, latency {lat}")
    print("\n".join(rows))
    print("\n".join(["MG / base ratios (same run):", *ratios]))
    if notes:
        print("\n".join(["notes:", *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
