"""MobileNetV2 family (torchvision layout; paper §5 / Table 2), one ``inverted`` residual macro per block.

Layout (torchvision ``MobileNetV2``): 3x3/2 stem conv + BN + ReLU6; inverted residual
stages (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2)
(6,320,1,1); a 1x1 conv to 1280 + BN + ReLU6; global pool, dropout 0.2, linear.

Widths at a width multiplier round to multiples of 8 as torchvision does. The base
network's last conv grows with the multiplier (torchvision's own); the MG version
keeps it at 1280 outputs, the only reading under which the paper's counts fit.
Uneven groups default to ``floor``: the 160-wide blocks have an 80-wide level that
s_g = 32 does not divide, and the paper's Table 2 counts only fit ⌊80/32⌋ = 2 groups.
"""

from __future__ import annotations

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.models.layers import add_input, classifier, conv_bn_act
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.spec import Spec
from mgcompile.steps import make_step

EXPANSION = (1, 6, 6, 6, 6, 6, 6)
STRIDES = (1, 2, 2, 2, 1, 2, 1)
LAST_CHANNELS = 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's rounding of scaled widths: nearest multiple of 8, never 10% below the value."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def mobilenet_widths(spec: Spec) -> tuple[int, list[int], int]:
    """(stem width, block widths per stage, last conv width) at the spec's width multiplier."""
    wm = spec.width_mult
    stem = make_divisible((spec.stem_channels or 32) * wm)
    widths = [make_divisible(c * wm) for c in spec.channels]
    last = LAST_CHANNELS if spec.is_multigrid else make_divisible(LAST_CHANNELS * max(1.0, wm))
    return stem, widths, last


def mobilenet_v2_graph(spec: Spec) -> Graph:
    """The base MobileNetV2 of ``spec`` as an IR with one ``residual`` (inverted) macro per block."""
    g = Graph()
    stem, widths, last = mobilenet_widths(spec)
    x = conv_bn_act(g, "stem", add_input(g, spec), spec.in_channels, stem, 3, stride=2, act="relu6",
                    meta={"stage": "stem"})
    x, width = add_stages(g, x, stem, _stages(spec, widths, stem))
    x = conv_bn_act(g, "head", x, width, last, 1, act="relu6", meta={"stage": "head"})
    classifier(g, x, last, spec.num_classes, dropout=0.2)
    return g


def _stages(spec: Spec, widths: list[int], width: int):
    for c, n, t, stride in zip(widths, spec.blocks, EXPANSION, STRIDES):
        steps = []
        for b in range(n):
            steps.append(make_step("inverted", in_channels=width, out_channels=c, mid_channels=int(round(width * t)),
                                   stride=stride if b == 0 else 1))
            width = c
        yield steps


def _validate(spec: Spec) -> None:
    if len(spec.channels) != len(EXPANSION):
        raise SpecError(f"field 'channels': mobilenet_v2 specs have {len(EXPANSION)} stages, got {len(spec.channels)}")


register_family(Family("mobilenet_v2", mobilenet_v2_graph, blocks=("inverted",), uneven="floor", validate=_validate,
                       stage_widths=lambda spec: tuple(mobilenet_widths(spec)[1]),
                       module_names=("mobilenet_v2*", "mobilenetv2*"),
                       torchvision=("mobilenet_v2",), doc="MobileNetV2 (inverted residuals; MG groups the 1x1 convs)"))


def _mobilenet_v2(name: str, width_mult: float) -> Spec:
    return Spec(arch="mobilenet_v2", block="inverted", channels=(16, 24, 32, 64, 96, 160, 320),
                blocks=(1, 2, 3, 4, 3, 3, 1), stem="imagenet", stem_channels=32, width_mult=width_mult,
                num_classes=1000, input_size=(224, 224), name=name)


@register_model("mobilenet_v2", "torchvision MobileNetV2 1.0 (inverted residuals; MG groups the 1x1 convs)")
def mobilenet_v2() -> Spec:
    return _mobilenet_v2("mobilenet_v2", 1.0)


@register_model("mobilenet_v2_140", "torchvision MobileNetV2 at width 1.4 (last conv 1792 in the base)")
def mobilenet_v2_140() -> Spec:
    return _mobilenet_v2("mobilenet_v2_140", 1.4)


@register_model("mobilenet_v2_200", "MobileNetV2 at width 2.0 (the paper's MG 2.0 row; MG keeps the last conv at 1280)")
def mobilenet_v2_200() -> Spec:
    return _mobilenet_v2("mobilenet_v2_200", 2.0)
