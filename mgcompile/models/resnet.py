"""ResNet family: the paper's CIFAR ResNets and torchvision's ImageNet ResNets (basic and bottleneck steps).

The frontend emits the *base* network, one ``residual`` macro per step; multigrid is
applied later by passes, so base and MG versions come from the same graph and are
compared on equal terms. This is the one family whose uneven-groups default is
``error``: the paper's ResNets name widths s_g divides.
"""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.models.layers import add_input, classifier
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.spec import Spec
from mgcompile.steps import make_step

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
    return classifier(g, x, channels, spec.num_classes)


def resnet_graph(spec: Spec) -> Graph:
    """The base ResNet of ``spec`` as an IR with one ``residual`` macro per step."""
    g = Graph()
    x = add_stem(g, spec, add_input(g, spec))
    x, width = add_stages(g, x, spec.stem_width, _stages(spec))
    add_head(g, spec, x, width)
    return g


def _stages(spec: Spec):
    width = spec.stem_width
    for s, (channels, n_blocks) in enumerate(zip(spec.stage_channels, spec.blocks), start=1):
        yield [_step(spec, width if b == 0 else channels, channels, 2 if (b == 0 and s > 1) else 1)
               for b in range(n_blocks)]
        width = channels


def _step(spec: Spec, width: int, channels: int, stride: int) -> dict:
    if spec.block == "bottleneck":
        return make_step("bottleneck", in_channels=width, out_channels=channels,
                         mid_channels=channels // BOTTLENECK_EXPANSION, stride=stride, activation=spec.activation)
    return make_step("basic", in_channels=width, out_channels=channels, stride=stride, activation=spec.activation)


register_family(Family("resnet", resnet_graph, blocks=("basic", "bottleneck"), uneven="error",
                       module_names=("resnet*", "resnext*", "wide_resnet*", "seresnet*", "seresnext*", "ecaresnet*"),
                       torchvision=("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
                       doc="ResNets with CIFAR (3x3) or ImageNet (7x7 + max-pool) stems; basic or bottleneck steps"))


@register_model("cifar_resnet", "CIFAR ResNet: 3x3 stem, basic steps (default 16-32-64-128, blocks 2-3-3-3, 32x32)")
def cifar_resnet() -> Spec:
    return Spec(arch="resnet", block="basic", channels=(16, 32, 64, 128), blocks=(2, 3, 3, 3), stem="cifar",
                num_classes=10, input_size=(32, 32), name="cifar_resnet")


def _imagenet(name: str, block: str, blocks: tuple[int, ...]) -> Spec:
    channels = (256, 512, 1024, 2048) if block == "bottleneck" else (64, 128, 256, 512)
    return Spec(arch="resnet", block=block, channels=channels, blocks=blocks, stem="imagenet",
                stem_channels=64 if block == "bottleneck" else None, num_classes=1000, input_size=(224, 224),
                transition="keep" if block == "bottleneck" else "paper", name=name)


@register_model("resnet18", "torchvision ResNet-18 layout (7x7 stem, basic steps 2-2-2-2)")
def resnet18() -> Spec:
    return _imagenet("resnet18", "basic", (2, 2, 2, 2))


@register_model("resnet34", "torchvision ResNet-34 layout (7x7 stem, basic steps 3-4-6-3)")
def resnet34() -> Spec:
    return _imagenet("resnet34", "basic", (3, 4, 6, 3))


@register_model("resnet50", "torchvision ResNet-50 layout (bottleneck steps 3-4-6-3; MG wraps whole bottlenecks)")
def resnet50() -> Spec:
    return _imagenet("resnet50", "bottleneck", (3, 4, 6, 3))


@register_model("resnet101", "torchvision ResNet-101 layout (bottleneck steps 3-4-23-3)")
def resnet101() -> Spec:
    return _imagenet("resnet101", "bottleneck", (3, 4, 23, 3))


@register_model("resnet152", "torchvision ResNet-152 layout (bottleneck steps 3-8-36-3)")
def resnet152() -> Spec:
    return _imagenet("resnet152", "bottleneck", (3, 8, 36, 3))
