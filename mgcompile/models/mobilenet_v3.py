"""MobileNetV3 family (torchvision layout, Small and Large), one ``inverted`` residual macro per block.

Layout (torchvision ``MobileNetV3``): 3x3/2 stem conv + BN + Hardswish; the variant's
table of inverted residual blocks (kernel 3 or 5, ReLU or Hardswish per block, an
optional squeeze-excite over the expanded width with squeeze = ``make_divisible(exp // 4)``,
ReLU inside and a Hardsigmoid gate); a 1x1 conv to 6x the last block width + BN +
Hardswish; global pool, flatten, linear -> Hardswish -> dropout 0.2 -> linear. Every
BatchNorm has eps 1e-3 and momentum 0.01, as torchvision's.

Spec mapping. The block table is fixed per ``variant`` (``small`` or ``large``) and is
grouped into stages of consecutive blocks with the same output width:

* ``channels``: the stage output widths, which must be the variant's own
  (small 16-24-40-48-96, large 16-24-40-80-112-160); widths are changed with
  ``width_mult`` only.
* ``blocks``: blocks per stage, at most the variant's (small 1-2-3-2-3, large
  1-2-3-4-2-3); fewer means the first k blocks of that stage.
* ``width_mult``: scales every width (block in/expanded/out, the stem, the last
  linear's 1024/1280) and rounds to a multiple of 8 as torchvision's
  ``_make_divisible``; the last conv stays 6x the last block width.
* ``stem_channels``: the stem width before scaling (16, torchvision's).

Uneven groups default to ``floor`` (widths such as 40, 112 or 160 have levels s_g does
not divide).
"""

from __future__ import annotations

from typing import NamedTuple

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.models.layers import add_input, conv_bn_act
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.models.mobilenet import make_divisible
from mgcompile.spec import Spec
from mgcompile.steps import make_step

BN = {"eps": 1e-3, "momentum": 0.01}
STEM_CHANNELS = 16
LAST_CONV_EXPANSION = 6


class Block(NamedTuple):
    """One row of torchvision's table (widths before the width multiplier)."""

    kernel: int
    expanded: int
    out: int
    se: bool
    act: str
    stride: int


def _table(rows: list[tuple[int, int, int, bool, str, int]]) -> tuple[Block, ...]:
    return tuple(Block(k, e, o, se, "hardswish" if a == "HS" else "relu", s) for k, e, o, se, a, s in rows)


TABLES: dict[str, tuple[Block, ...]] = {
    "small": _table([
        (3, 16, 16, True, "RE", 2),
        (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
        (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
        (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1),
        (5, 288, 96, True, "HS", 2), (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1),
    ]),
    "large": _table([
        (3, 16, 16, False, "RE", 1),
        (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
        (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
        (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
        (3, 184, 80, False, "HS", 1),
        (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
        (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
    ]),
}
LAST_CHANNELS = {"small": 1024, "large": 1280}


def stages(variant: str) -> list[list[Block]]:
    """The variant's table grouped into stages: runs of consecutive blocks with the same output width."""
    out: list[list[Block]] = []
    for block in TABLES[variant]:
        if out and out[-1][-1].out == block.out:
            out[-1].append(block)
        else:
            out.append([block])
    return out


def stage_channels(variant: str) -> tuple[int, ...]:
    return tuple(stage[0].out for stage in stages(variant))


def stage_blocks(variant: str) -> tuple[int, ...]:
    return tuple(len(stage) for stage in stages(variant))


def _scaled(spec: Spec, c: int) -> int:
    return make_divisible(c * spec.width_mult)


def mobilenet_v3_graph(spec: Spec) -> Graph:
    """The base MobileNetV3 of ``spec`` as an IR with one ``residual`` (inverted) macro per block."""
    variant = spec.variant or ""
    g = Graph()
    stem = _scaled(spec, spec.stem_channels or STEM_CHANNELS)
    x = conv_bn_act(g, "stem", add_input(g, spec), spec.in_channels, stem, 3, stride=2, act="hardswish",
                    meta={"stage": "stem"}, bn=BN)
    x, width = add_stages(g, x, stem, _stages(spec, variant, stem))
    last_conv = LAST_CONV_EXPANSION * width
    last = _scaled(spec, LAST_CHANNELS[variant])
    meta = {"stage": "head"}
    x = conv_bn_act(g, "head", x, width, last_conv, 1, act="hardswish", meta=meta, bn=BN)
    x = g.add("head.pool", "global_avgpool", [x], meta=meta)
    x = g.add("head.flatten", "flatten", [x], meta=meta)
    x = g.add("head.fc1", "linear", [x], in_features=last_conv, out_features=last, meta=meta)
    x = g.add("head.fc1_hardswish", "hardswish", [x], meta=meta)
    x = g.add("head.dropout", "dropout", [x], p=0.2, meta=meta)
    x = g.add("head.fc", "linear", [x], in_features=last, out_features=spec.num_classes, meta=meta)
    g.add("output", "output", [x])
    return g


def _stages(spec: Spec, variant: str, width: int):
    for rows, n in zip(stages(variant), spec.blocks):
        steps = []
        for row in rows[:n]:
            mid, out = _scaled(spec, row.expanded), _scaled(spec, row.out)
            se = {"squeeze": make_divisible(mid // 4), "activation": "relu", "gate": "hardsigmoid"} if row.se else None
            steps.append(make_step("inverted", in_channels=width, out_channels=out, mid_channels=mid, stride=row.stride,
                                   kernel=row.kernel, act=row.act, se=se, bn_eps=BN["eps"],
                                   bn_momentum=BN["momentum"]))
            width = out
        yield steps


def _validate(spec: Spec) -> None:
    if spec.variant not in TABLES:
        raise SpecError(f"field 'variant' is {spec.variant!r} for arch mobilenet_v3; allowed values: "
                        f"{', '.join(TABLES)}")
    channels, blocks = stage_channels(spec.variant), stage_blocks(spec.variant)
    if tuple(spec.channels) != channels:
        raise SpecError(f"field 'channels': mobilenet_v3 {spec.variant} has stage widths {list(channels)} "
                        f"(scale them with width_mult), got {list(spec.channels)}")
    if any(n > m for n, m in zip(spec.blocks, blocks)):
        raise SpecError(f"field 'blocks': mobilenet_v3 {spec.variant} has at most {list(blocks)} blocks per stage, "
                        f"got {list(spec.blocks)}")


register_family(Family("mobilenet_v3", mobilenet_v3_graph, blocks=("inverted",), uneven="floor", validate=_validate,
                       stage_widths=lambda spec: tuple(_scaled(spec, c) for c in stage_channels(spec.variant)),
                       module_names=("mobilenet_v3*", "mobilenetv3*"),
                       torchvision=("mobilenet_v3_small", "mobilenet_v3_large"),
                       doc="MobileNetV3 Small/Large (inverted residuals with SE and Hardswish; MG groups the 1x1 convs)"))


def _mobilenet_v3(name: str, variant: str) -> Spec:
    return Spec(arch="mobilenet_v3", variant=variant, block="inverted", channels=stage_channels(variant),
                blocks=stage_blocks(variant), stem="imagenet", stem_channels=STEM_CHANNELS, width_mult=1.0,
                num_classes=1000, input_size=(224, 224), name=name, only_profitable=True)


@register_model("mobilenet_v3_small", "torchvision MobileNetV3-Small (SE, Hardswish; MG groups the 1x1 convs)")
def mobilenet_v3_small() -> Spec:
    return _mobilenet_v3("mobilenet_v3_small", "small")


@register_model("mobilenet_v3_large", "torchvision MobileNetV3-Large (SE, Hardswish; MG groups the 1x1 convs)")
def mobilenet_v3_large() -> Spec:
    return _mobilenet_v3("mobilenet_v3_large", "large")
