"""ONNX cleanup after export, on onnx-ir's pass infrastructure; every pass checked in ONNX Runtime.

What matters for speed is lowered in mgcompile's own IR before export
(:mod:`mgcompile.backends.inference`: BN folding, also the BN after P, permutation
folding, the transfer form of the target), where ``verify`` covers it. What is left
here is exporter debris, removed by these passes, in order (:data:`PASSES`):

1. ``fold_constants`` (:mod:`.fold_constants`): the dynamo exporter's constant
   subgraphs (``Shape``/``Expand`` zero biases, casts of index constants).
2. ``remove_dropout`` (:mod:`.remove_dropout`): inference-mode ``Dropout`` nodes.
3. ``eliminate_identities``: onnx-ir's ``IdentityEliminationPass``.
4. ``remove_unused_nodes``: onnx-ir's ``RemoveUnusedNodesPass``.

:func:`optimize` runs each pass on the model (an ``onnx_ir.Model``), records its
``modified`` flag and node counts, and with ``check`` compares ONNX Runtime's outputs
before and after: a pass that moves them is an error naming it (ONNX optimisers have
known grouped-convolution bugs; none is trusted blindly).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass, RemoveUnusedNodesPass

from mgcompile.errors import MGCompileError
from mgcompile.exporters.onnx_passes.fold_constants import FoldConstantsPass
from mgcompile.exporters.onnx_passes.remove_dropout import RemoveDropoutPass
from mgcompile.progress import logger

PARITY_RTOL = 1e-5

PASSES: list[tuple[str, type]] = [
    ("fold_constants", FoldConstantsPass),
    ("remove_dropout", RemoveDropoutPass),
    ("eliminate_identities", IdentityEliminationPass),
    ("remove_unused_nodes", RemoveUnusedNodesPass),
]


def optimize(model: onnx.ModelProto, passes: list[tuple[str, type]] | None = None,
             check: bool = True) -> tuple[onnx.ModelProto, list[dict]]:
    """Run ``passes`` (default :data:`PASSES`); with ``check``, compare ORT outputs around each changing pass."""
    from mgcompile.exporters.ort_run import random_input, run_model

    x = random_input(model, batch=2, seed=0) if check else None
    ref = run_model(model, x) if check else None
    m = ir.from_proto(model)
    report = []
    for name, cls in passes if passes is not None else PASSES:
        before = _count(m)
        result = cls()(m)
        m = result.model
        entry: dict = {"pass": name, "changed": bool(result.modified), "nodes_before": before, "nodes": _count(m)}
        if result.modified and check:
            out = run_model(ir.to_proto(m), x)
            diff = float(np.max(np.abs(out - ref)))
            entry["max_abs_diff"] = diff
            if not diff <= PARITY_RTOL * float(np.max(np.abs(ref))):
                raise MGCompileError(f"ONNX pass {name} changed the outputs (max abs diff {diff:.3g}); "
                                     "export with --no-optimize and report this bug")
        if result.modified:
            logger.info(f"  ONNX pass {name}: {before} -> {entry['nodes']} nodes")
        report.append(entry)
    return ir.to_proto(m), report


def _count(model: ir.Model) -> int:
    return sum(1 for _ in model.graph)
