"""EfficientNet family (torchvision layout, B0), one ``inverted`` residual macro per MBConv block.

Layout (torchvision ``efficientnet_b0``): 3x3/2 stem conv to 32 + BN + SiLU; seven MBConv
stages (expand ratio, kernel, stride, output width, layers) = (1,3,1,16,1) (6,3,2,24,2)
(6,5,2,40,2) (6,3,2,80,3) (6,5,1,112,3) (6,5,2,192,4) (6,3,1,320,1); a 1x1 conv to 4x the
last stage width (1280) + BN + SiLU; global pool, flatten, dropout 0.2, linear.

An MBConv block is an ``inverted`` step with SiLU: a 1x1 expand conv to
``make_divisible(in * ratio)`` (absent at expand ratio 1, as torchvision's), the k x k
depth-wise conv (stride on a stage's first block), squeeze-excite over the expanded width
with squeeze = ``max(1, block_input_width // 4)``, SiLU inside and a sigmoid gate, the 1x1
projection, and, on blocks with an identity shortcut, stochastic depth with torchvision's
linearly increasing rate ``0.2 * block_index / total_blocks`` (block 0 gets 0). Every
BatchNorm has torchvision's B0 settings: ``nn.BatchNorm2d`` defaults, eps 1e-5, momentum 0.1
(the 1e-3 eps is EfficientNetV2's).

Spec mapping:

* ``variant``: ``b0`` (the only one built; B1-B7 differ in width/depth multipliers,
  resolution and dropout).
* ``channels``: the seven stage output widths before scaling (B0: 16-24-40-80-112-192-320).
* ``blocks``: MBConv layers per stage (B0: 1-2-2-3-3-4-1). Fewer gives a reduced
  network (the first k blocks of each stage); more is a deeper one, which is what
  torchvision's depth multiplier produces. The stochastic-depth rates follow the
  blocks actually built (``total_blocks = sum(blocks)``), as torchvision's would.
* ``width_mult``: scales the stem, every stage width (and with them the expanded widths
  and the last conv, 4x the last stage width) and rounds to a multiple of 8 as
  torchvision's ``_make_divisible``; torchvision's own ``width_mult`` gives the same network.
* ``stem_channels``: the stem width before scaling (32, torchvision's).
* ``stem``: only ``imagenet`` (the 3x3/2 stem above).

Uneven groups default to ``floor`` (widths 40, 80, 112, 192 have levels s_g = 32 does not
divide).
"""

from __future__ import annotations

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.models.layers import add_input, classifier, conv_bn_act
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.models.mobilenet import make_divisible
from mgcompile.spec import Spec
from mgcompile.steps import make_step

VARIANTS = ("b0",)
B0_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
B0_BLOCKS = (1, 2, 2, 3, 3, 4, 1)
EXPANSION = (1, 6, 6, 6, 6, 6, 6)
KERNELS = (3, 3, 5, 3, 5, 5, 3)
STRIDES = (1, 2, 2, 2, 1, 2, 1)
STEM_CHANNELS = 32
LAST_CONV_EXPANSION = 4
STOCHASTIC_DEPTH = 0.2
DROPOUT = 0.2
BN = {"eps": 1e-5, "momentum": 0.1}


def efficientnet_widths(spec: Spec) -> tuple[int, list[int]]:
    """(stem width, stage output widths) at the spec's width multiplier (multiples of 8)."""
    wm = spec.width_mult
    return make_divisible((spec.stem_channels or STEM_CHANNELS) * wm), [make_divisible(c * wm) for c in spec.channels]


def efficientnet_graph(spec: Spec) -> Graph:
    """The base EfficientNet of ``spec`` as an IR with one ``residual`` (inverted, MBConv) macro per block."""
    g = Graph()
    stem, widths = efficientnet_widths(spec)
    x = conv_bn_act(g, "stem", add_input(g, spec), spec.in_channels, stem, 3, stride=2, act="silu",
                    meta={"stage": "stem"}, bn=BN)
    x, width = add_stages(g, x, stem, _stages(spec, widths, stem))
    last = LAST_CONV_EXPANSION * width
    x = conv_bn_act(g, "head", x, width, last, 1, act="silu", meta={"stage": "head"}, bn=BN)
    classifier(g, x, last, spec.num_classes, dropout=DROPOUT)
    return g


def _stages(spec: Spec, widths: list[int], width: int):
    total = sum(spec.blocks)
    index = 0
    for c, n, t, k, stride in zip(widths, spec.blocks, EXPANSION, KERNELS, STRIDES):
        steps = []
        for b in range(n):
            se = {"squeeze": max(1, width // 4), "activation": "silu", "gate": "sigmoid"}
            steps.append(make_step("inverted", in_channels=width, out_channels=c, mid_channels=make_divisible(width * t),
                                   stride=stride if b == 0 else 1, kernel=k, act="silu", se=se,
                                   drop_path=STOCHASTIC_DEPTH * index / total, bn_eps=BN["eps"],
                                   bn_momentum=BN["momentum"]))
            width = c
            index += 1
        yield steps


def _validate(spec: Spec) -> None:
    if spec.variant not in VARIANTS:
        raise SpecError(f"field 'variant' is {spec.variant!r} for arch efficientnet; allowed values: "
                        f"{', '.join(VARIANTS)}")
    if len(spec.channels) != len(EXPANSION):
        raise SpecError(f"field 'channels': efficientnet specs have {len(EXPANSION)} MBConv stages, "
                        f"got {len(spec.channels)}")
    if spec.stem != "imagenet":
        raise SpecError(f"field 'stem' is {spec.stem!r}; efficientnet has only the imagenet (3x3/2) stem")


register_family(Family("efficientnet", efficientnet_graph, blocks=("inverted",), uneven="floor", validate=_validate,
                       stage_widths=lambda spec: tuple(efficientnet_widths(spec)[1]),
                       module_names=("efficientnet*",),
                       torchvision=("efficientnet_b0",),
                       doc="EfficientNet-B0 (MBConv: inverted residuals with SE, SiLU, stochastic depth; "
                           "MG groups the 1x1 convs)"))


@register_model("efficientnet_b0", "torchvision EfficientNet-B0 (MBConv with SE, SiLU; MG groups the 1x1 convs)")
def efficientnet_b0() -> Spec:
    return Spec(arch="efficientnet", variant="b0", block="inverted", channels=B0_CHANNELS, blocks=B0_BLOCKS,
                stem="imagenet", stem_channels=STEM_CHANNELS, width_mult=1.0, num_classes=1000,
                input_size=(224, 224), name="efficientnet_b0", only_profitable=True)
