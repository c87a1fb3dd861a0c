"""PyTorch module -> one self-contained ONNX model (``input`` -> ``logits``).

The dynamo exporter (``torch.onnx.export(dynamo=True)``) is the default; it only
targets opset 18 and newer. The legacy TorchScript-based exporter handles opsets
13-17 and is the explicit fallback when the dynamo exporter fails. Weights are
always embedded (``external_data=False``): a side ``.onnx.data`` file has its name
baked into the model, which breaks write-to-temp-then-rename.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import onnx
import torch
from torch import nn

from mgcompile import interrupts
from mgcompile.errors import MGCompileError, first_line
from mgcompile.progress import logger

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DYNAMO_OPSETS = range(18, 24)  # what the dynamo exporter emits and ONNX Runtime loads
LEGACY_OPSETS = range(13, 18)  # the legacy exporter stops at 17
DEFAULT_OPSET = 18


def check_opset(opset: int) -> None:
    """Reject opsets no exporter here can produce, with the allowed range in the message."""
    if opset not in DYNAMO_OPSETS and opset not in LEGACY_OPSETS:
        raise MGCompileError(
            f"opset {opset} is not supported; use {LEGACY_OPSETS.start}-{DYNAMO_OPSETS.stop - 1} "
            f"(>= {DYNAMO_OPSETS.start}: dynamo exporter, {LEGACY_OPSETS.start}-{LEGACY_OPSETS.stop - 1}: legacy exporter)"
        )


def _dynamo(model: nn.Module, x: torch.Tensor, f: Path, opset: int, dynamic_batch: bool,
            external_data: bool = False) -> None:
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    torch.onnx.export(model, (x,), f, dynamo=True, external_data=external_data, optimize=False, opset_version=opset,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=shapes, verbose=False)


def _legacy(model: nn.Module, x: torch.Tensor, f: Path, opset: int, dynamic_batch: bool,
            external_data: bool = False) -> None:  # (the legacy exporter writes external data itself when it must)
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation warning
        torch.onnx.export(model, (x,), f, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes=axes, do_constant_folding=True)


def to_onnx(model: nn.Module, example: torch.Tensor, *, opset: int = DEFAULT_OPSET,
            dynamic_batch: bool = True, external_data: bool = False) -> tuple[onnx.ModelProto, str]:
    """Export an eval-mode ``model``; returns the model proto (weights loaded) and which exporter produced it.

    ``external_data``: let the exporter write the weights beside its file (a model over 2 GiB)."""
    check_opset(opset)
    model = model.eval()
    with tempfile.TemporaryDirectory(prefix="mgcompile-onnx-") as tmp:
        f = Path(tmp) / "model.onnx"
        exporter = "dynamo" if opset in DYNAMO_OPSETS else "legacy"
        try:
            (_dynamo if exporter == "dynamo" else _legacy)(model, example, f, opset, dynamic_batch, external_data)
        except Exception as exc:
            interrupts.check(exc)  # torch wraps a Ctrl-C inside its own errors: never fall back after one
            if exporter != "dynamo":
                raise MGCompileError(f"the legacy ONNX exporter failed at opset {opset}: {first_line(exc)}") from None
            fallback = LEGACY_OPSETS.stop - 1
            logger.warning(f"the dynamo ONNX exporter failed ({first_line(exc)}); falling back to the legacy "
                           f"exporter at opset {fallback}")
            try:
                _legacy(model, example, f, fallback, dynamic_batch)
            except Exception as exc2:
                interrupts.check(exc2)
                raise MGCompileError(f"both ONNX exporters failed: {first_line(exc2)}") from None
            exporter = "legacy"
        proto = onnx.load(f)
    return proto, exporter


def set_metadata(proto: onnx.ModelProto, props: Mapping[str, Any]) -> onnx.ModelProto:
    """Store key/value metadata (strings; other values as JSON) in ``metadata_props``."""
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in props.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if key in existing:
            existing[key].value = text
        else:
            proto.metadata_props.add(key=key, value=text)
    return proto


def check(proto: onnx.ModelProto | str) -> None:
    """``onnx.checker`` with full shape-inference checks; a failure is an exporter bug, reported in one line.

    A path checks a saved model with external data (a proto over 2 GiB cannot be checked in memory)."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise MGCompileError(f"the exported ONNX model fails onnx.checker: {first_line(exc)}") from None
