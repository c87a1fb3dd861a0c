"""Spec -> IR for ResNet-family specs (CIFAR and ImageNet stems, basic and bottleneck steps).

The frontend always emits the *base* network: each residual step is one ``residual``
macro node. Multigrid is applied later by passes, so base and MG versions come from
the same graph and are compared on equal terms.
"""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.spec import Spec

BOTTLENECK_EXPANSION = 4


def add_stem(g: Graph, spec: Spec, x: str) -> str:
    c = spec.stem_width
    meta = {"stage": "stem"}
    if spec.stem == "cifar":
        x = g.add("stem.conv", "conv", [x], in_channels=spec.in_channels, out_channels=c, kernel=3, padding=1, meta=meta)
    else:
        x = g.add("stem.conv", "conv", [x], in_channels=spec.in_channels, out_channels=c, kernel=7, stride=2,
                  padding=3, meta=meta)
    x = g.add("stem.bn", "batchnorm", [x], channels=c, meta=meta)
    x = g.add("stem.relu", "relu", [x], meta=meta)
    if spec.stem == "imagenet":
        x = g.add("stem.maxpool", "maxpool", [x], kernel=3, stride=2, padding=1, meta=meta)
    return x


def add_head(g: Graph, spec: Spec, x: str, channels: int) -> str:
    meta = {"stage": "head"}
    if spec.activation == "pre":  # pre-activation steps end un-normalised: the final BN + ReLU of ResNet v2
        x = g.add("head.bn", "batchnorm", [x], channels=channels, meta=meta)
        x = g.add("head.relu", "relu", [x], meta=meta)
    x = g.add("head.pool", "global_avgpool", [x], meta=meta)
    x = g.add("head.flatten", "flatten", [x], meta=meta)
    x = g.add("head.fc", "linear", [x], in_features=channels, out_features=spec.num_classes, meta=meta)
    return g.add("output", "output", [x])


def resnet_graph(spec: Spec) -> Graph:
    """The base ResNet of ``spec`` as an IR with one ``residual`` macro per step."""
    g = Graph()
    h, w = spec.input_size
    x = g.add("input", "input", channels=spec.in_channels, height=h, width=w)
    x = add_stem(g, spec, x)
    width = spec.stem_width
    for s, (channels, n_blocks) in enumerate(zip(spec.stage_channels, spec.blocks), start=1):
        for b in range(n_blocks):
            stride = 2 if (b == 0 and s > 1) else 1
            mid = channels // BOTTLENECK_EXPANSION if spec.block == "bottleneck" else channels
            name = f"stage{s}.block{b}"
            x = g.add(name, "residual", [x], kind=spec.block, in_channels=width, out_channels=channels,
                      mid_channels=mid, stride=stride, activation=spec.activation,
                      meta={"stage": f"stage{s}", "step": name})
            width = channels
    add_head(g, spec, x, width)
    return g
