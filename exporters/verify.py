"""Numerical verification of an exported artifact against the PyTorch module in eval mode.

Random float32 inputs at two batch sizes; the artifact passes when
``max|artifact - torch| <= 1e-4 * max|torch|`` on every input and provider. A saved
model also carries a reference input and the output the model had when it was saved
(``mgcompile.save``): both the reloaded module and the artifact must reproduce that
output too, so a module that reloads differently from what was converted fails
verification instead of verifying against itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mgcompile.atomic import atomic_write_json
from mgcompile.errors import MGCompileError

RTOL = 1e-4
BATCH_SIZES = (1, 7)

Runner = Callable[[np.ndarray], np.ndarray]


def _inputs(shape: Sequence[int], batch_sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, *shape)).astype(np.float32) for b in batch_sizes]


def _row(batch: Any, out: np.ndarray, ref: np.ndarray) -> dict:
    if out.shape != ref.shape:
        raise MGCompileError(f"exported model returns shape {out.shape}, PyTorch {ref.shape}; the export is broken")
    abs_diff = float(np.max(np.abs(out - ref)))
    scale = float(np.max(np.abs(ref)))
    return {"batch": batch, "max_abs_diff": abs_diff, "max_abs_torch": scale,
            "max_rel_diff": abs_diff / scale if scale else abs_diff, "ok": bool(abs_diff <= RTOL * scale)}


@torch.no_grad()
def compare(run: Runner, model: nn.Module, shape: Sequence[int], batch_sizes: Sequence[int] = BATCH_SIZES,
            seed: int = 0, reference: Mapping[str, torch.Tensor] | None = None) -> dict:
    """Run ``run`` and eval-mode ``model`` on the same random inputs; the worst differences and the verdict.

    With ``reference`` (a saved model's ``{"input", "output"}``), the module and the artifact
    must also reproduce the stored output (rows ``saved-model`` and ``saved-artifact``).
    """
    model = model.eval()
    rows = []
    for x in _inputs(shape, batch_sizes, seed):
        rows.append(_row(int(x.shape[0]), np.asarray(run(x)), model(torch.from_numpy(x)).numpy()))
    if reference is not None:
        x, want = reference["input"].float(), reference["output"].float().numpy()
        rows.append(_row("saved-model", model(x).numpy(), want))
        rows.append(_row("saved-artifact", np.asarray(run(x.numpy())), want))
    return {"ok": all(r["ok"] for r in rows), "tolerance": f"max|out-torch| <= {RTOL:g}*max|torch|",
            "max_abs_diff": max(r["max_abs_diff"] for r in rows), "max_rel_diff": max(r["max_rel_diff"] for r in rows),
            "batches": rows}


def verify_onnx(path: str | os.PathLike, model: nn.Module, shape: Sequence[int],
                batch_sizes: Sequence[int] = BATCH_SIZES, cuda: bool | None = None,
                reference: Mapping[str, torch.Tensor] | None = None) -> dict:
    """ORT on CPU, plus CUDA when available, at default graph optimisation (what users get)."""
    import onnxruntime as ort

    from mgcompile.exporters.ort_run import providers, session

    runs = {}
    use_cuda = [False] + ([True] if len(providers(cuda)) > 1 else [])
    for c in use_cuda:
        sess = session(path, level="all", cuda=c)
        name = sess.get_inputs()[0].name
        result = compare(lambda x: sess.run(None, {name: x})[0], model, shape, batch_sizes, reference=reference)
        result["providers"] = sess.get_providers()
        runs["cuda" if c else "cpu"] = result
    return {"format": "onnx", "runtime": f"onnxruntime {ort.__version__}", "ok": all(r["ok"] for r in runs.values()),
            "max_abs_diff": max(r["max_abs_diff"] for r in runs.values()),
            "max_rel_diff": max(r["max_rel_diff"] for r in runs.values()),
            "providers": sorted({p for r in runs.values() for p in r["providers"]}), "runs": runs}


def raise_unless_ok(result: dict, what: str) -> None:
    runs = result.get("runs", {"": result}).values()
    saved = [r for run in runs for r in run["batches"] if r["batch"] == "saved-model"]
    if saved and not saved[0]["ok"]:
        raise MGCompileError(f"the reloaded model does not reproduce the output stored when it was saved (max rel diff "
                             f"{saved[0]['max_rel_diff']:.3g}); no file was written: convert the model again")
    if not result["ok"]:
        raise MGCompileError(f"{what} does not match PyTorch: max rel diff {result['max_rel_diff']:.3g} > {RTOL:g}; "
                             "no file was written (try --no-optimize, or another --format)")


def result_path(path: str | os.PathLike) -> Path:
    """Where the verification JSON of ``path`` goes: ``<path>.verify.json`` beside it."""
    p = Path(path)
    return p.with_name(p.name + ".verify.json")


def write_result(path: str | os.PathLike, result: dict) -> Path:
    target = result_path(path)
    atomic_write_json(target, result)
    return target
