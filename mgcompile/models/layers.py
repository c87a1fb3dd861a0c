"""Stem and head pieces several families share (node names are module names: keep them stable)."""

from __future__ import annotations

from typing import Any, Mapping

from mgcompile.ir.graph import Graph
from mgcompile.spec import Spec


def add_input(g: Graph, spec: Spec) -> str:
    h, w = spec.input_size
    return g.add("input", "input", channels=spec.in_channels, height=h, width=w)


def conv_bn_act(g: Graph, prefix: str, x: str, cin: int, cout: int, kernel: int, *, stride: int = 1, groups: int = 1,
                act: str | None = None, meta: Mapping[str, Any], bn: Mapping[str, Any] | None = None) -> str:
    """``prefix.conv`` (same padding) -> ``prefix.bn`` [-> ``prefix.<act>``]."""
    x = g.add(f"{prefix}.conv", "conv", [x], in_channels=cin, out_channels=cout, kernel=kernel, stride=stride,
              padding=kernel // 2, groups=groups, meta=meta)
    x = g.add(f"{prefix}.bn", "batchnorm", [x], channels=cout, meta=meta, **(bn or {}))
    if act:
        x = g.add(f"{prefix}.{act}", act, [x], meta=meta)
    return x


def classifier(g: Graph, x: str, features: int, num_classes: int, *, dropout: float | None = None) -> str:
    """``head.pool`` -> ``head.flatten`` [-> ``head.dropout``] -> ``head.fc`` -> ``output``."""
    meta = {"stage": "head"}
    x = g.add("head.pool", "global_avgpool", [x], meta=meta)
    x = g.add("head.flatten", "flatten", [x], meta=meta)
    if dropout:
        x = g.add("head.dropout", "dropout", [x], p=float(dropout), meta=meta)
    x = g.add("head.fc", "linear", [x], in_features=features, out_features=num_classes, meta=meta)
    return g.add("output", "output", [x])
