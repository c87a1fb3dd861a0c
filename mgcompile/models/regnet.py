"""RegNet family (torchvision layout; RegNetX and RegNetY 400MF), one ``bottleneck`` residual macro per block.

Layout (torchvision ``RegNet``): 3x3/2 stem conv to 32 + BN + ReLU; stages of residual
bottleneck blocks; global pool, flatten, linear. A block at width w (bottleneck
multiplier 1, so its inner width is w too) is a ``bottleneck`` step: 1x1 + BN + ReLU,
3x3 (stride 2 on a stage's first block) with cardinality ``w // group_width`` + BN +
ReLU, [RegNetY: squeeze-excite over w with squeeze = ``int(round(se_ratio * block_input_width))``,
ReLU inside and a sigmoid gate], 1x1 + BN; a projection shortcut (1x1 conv with the stride
+ BN) when the width or the stride changes; ReLU after the sum. Every BatchNorm has eps
1e-5 and momentum 0.1, as torchvision's.

Stage widths and depths come from RegNet's quantized linear rule (Radosavovic et al.
2020, as torchvision's ``BlockParams.from_init_params``), computed here by
:func:`regnet_stages` from the published (depth, w_0, w_a, w_m, group width, SE ratio):
block i gets u_i = w_0 + w_a·i, is snapped to w_0·w_m^round(log_{w_m}(u_i / w_0)) and
rounded to a multiple of 8; runs of equal widths are the stages; every stage has stride
2; a stage's group width is min(group width, its width), and its width is rounded to a
multiple of that group width (torchvision's ``_make_divisible``).

* ``x_400mf`` (depth 22, w_0 24, w_a 24.48, w_m 2.54, group width 16):
  widths 32-64-160-400, depths 1-2-7-12.
* ``y_400mf`` (depth 16, w_0 48, w_a 27.89, w_m 2.09, group width 8, SE 0.25):
  widths 48-104-208-440, depths 1-3-6-6.

Spec mapping:

* ``variant``: ``x_400mf`` or ``y_400mf``; it fixes the group width and the SE ratio.
* ``channels``: the stage widths (the registry gives the derived ones). Other widths,
  e.g. narrower ones for a reduced test network, are accepted when each is a multiple
  of its group width, min(variant group width, width); a stage's cardinality is then
  ``width // group_width``. ``width_mult`` is not used (it must stay 1.0): give the
  widths themselves.
* ``blocks``: blocks per stage (the registry gives the derived depths; fewer = a reduced
  network, the first k blocks of each stage).
* ``stem_channels``: the stem width (32, torchvision's). ``stem``: only ``imagenet``.

Uneven groups default to ``floor`` (the widths 160, 400, 104, 208, 440 have levels s_g = 32
does not divide). The registry specs set ``only_profitable``: at s_g = 32, θ = 64 the
narrow stage 2 (RegNetX's 64-wide group-width-16 steps, RegNetY's 104-wide group-width-8
steps) stays base steps, since their grouped 3x3 already is cheap and a cycle with its
transfers costs more; stages 3 and 4 become cycles.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.models.layers import add_input, classifier, conv_bn_act
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.models.mobilenet import make_divisible
from mgcompile.spec import Spec
from mgcompile.steps import make_step

QUANT = 8
STEM_CHANNELS = 32


class RegNetParams(NamedTuple):
    """The published generating parameters of one RegNet."""

    depth: int
    w_0: int
    w_a: float
    w_m: float
    group_width: int
    se_ratio: float | None = None
    bottleneck_multiplier: float = 1.0


VARIANTS: dict[str, RegNetParams] = {
    "x_400mf": RegNetParams(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16),
    "y_400mf": RegNetParams(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25),
}


def regnet_stages(p: RegNetParams) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(stage widths, stage depths, stage group widths) of the quantized linear rule."""
    if p.w_a < 0 or p.w_0 <= 0 or p.w_m <= 1 or p.w_0 % QUANT:
        raise SpecError(f"RegNet parameters {p} are invalid (need w_a >= 0, w_m > 1, w_0 a positive multiple of 8)")
    block_widths = []
    for i in range(p.depth):
        exponent = round(math.log((p.w_0 + p.w_a * i) / p.w_0) / math.log(p.w_m))
        block_widths.append(int(round(p.w_0 * p.w_m ** exponent / QUANT)) * QUANT)
    widths: list[int] = []
    depths: list[int] = []
    for w in block_widths:
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    adjusted, groups = [], []
    for w in widths:
        inner = int(w * p.bottleneck_multiplier)
        g = min(p.group_width, inner)
        adjusted.append(int(make_divisible(inner, g) / p.bottleneck_multiplier))
        groups.append(g)
    return tuple(adjusted), tuple(depths), tuple(groups)


def stage_group_width(variant: str, width: int) -> int:
    """The group width of a stage of ``width`` channels (bottleneck multiplier 1)."""
    return min(VARIANTS[variant].group_width, width)


def regnet_graph(spec: Spec) -> Graph:
    """The base RegNet of ``spec`` as an IR with one ``residual`` (bottleneck) macro per block."""
    params = VARIANTS[spec.variant or ""]
    g = Graph()
    stem = spec.stem_channels or STEM_CHANNELS
    x = conv_bn_act(g, "stem", add_input(g, spec), spec.in_channels, stem, 3, stride=2, act="relu",
                    meta={"stage": "stem"})
    x, width = add_stages(g, x, stem, _stages(spec, params, stem))
    classifier(g, x, width, spec.num_classes)
    return g


def _stages(spec: Spec, params: RegNetParams, width: int):
    for c, n in zip(spec.channels, spec.blocks):
        cardinality = c // stage_group_width(spec.variant or "", c)
        steps = []
        for b in range(n):
            se = None
            if params.se_ratio:
                se = {"squeeze": int(round(params.se_ratio * width)), "activation": "relu", "gate": "sigmoid"}
            steps.append(make_step("bottleneck", in_channels=width, out_channels=c, mid_channels=c,
                                   stride=2 if b == 0 else 1, cardinality=cardinality, se=se))
            width = c
        yield steps


def _validate(spec: Spec) -> None:
    if spec.variant not in VARIANTS:
        raise SpecError(f"field 'variant' is {spec.variant!r} for arch regnet; allowed values: {', '.join(VARIANTS)}")
    if spec.width_mult != 1.0:
        raise SpecError(f"field 'width_mult' is {spec.width_mult!r}; regnet takes its stage widths from 'channels' "
                        "(set the narrower widths there)")
    if spec.stem != "imagenet":
        raise SpecError(f"field 'stem' is {spec.stem!r}; regnet has only the imagenet (3x3/2) stem")
    for s, c in enumerate(spec.channels, start=1):
        gw = stage_group_width(spec.variant, c)
        if c % gw:
            raise SpecError(f"field 'channels': stage{s} width {c} is not a multiple of its group width {gw} "
                            f"(regnet {spec.variant})")


register_family(Family("regnet", regnet_graph, blocks=("bottleneck",), uneven="floor", validate=_validate,
                       stage_widths=lambda spec: tuple(spec.channels),
                       module_names=("regnet*",),
                       torchvision=("regnet_x_400mf", "regnet_y_400mf"),
                       doc="RegNetX/Y 400MF (grouped bottlenecks, SE for Y; quantized linear widths)"))


def _regnet(name: str, variant: str) -> Spec:
    widths, depths, _ = regnet_stages(VARIANTS[variant])
    return Spec(arch="regnet", variant=variant, block="bottleneck", channels=widths, blocks=depths,
                stem="imagenet", stem_channels=STEM_CHANNELS, width_mult=1.0, num_classes=1000,
                input_size=(224, 224), name=name, only_profitable=True)


@register_model("regnet_x_400mf", "torchvision RegNetX-400MF (grouped bottlenecks, group width 16)")
def regnet_x_400mf() -> Spec:
    return _regnet("regnet_x_400mf", "x_400mf")


@register_model("regnet_y_400mf", "torchvision RegNetY-400MF (grouped bottlenecks with SE, group width 8)")
def regnet_y_400mf() -> Spec:
    return _regnet("regnet_y_400mf", "y_400mf")
