"""MnasNet family (torchvision's MNASNet, the B1 variant), one ``inverted`` residual macro per block.

Layout (torchvision ``MNASNet``): 3x3/2 stem conv to 32 + BN + ReLU, a depth-wise 3x3 +
BN + ReLU, a 1x1 conv to 16 + BN (no activation); six stacks of inverted residuals
(kernel, expansion, width, blocks, stride) = (3,3,24,3,2) (5,3,40,3,2) (5,6,80,3,2)
(3,6,96,2,1) (5,6,192,4,2) (3,6,320,1,1), ReLU, no SE, the stride and any width change
on the first block of a stack; a 1x1 conv to 1280 + BN + ReLU; mean pool, dropout 0.2,
linear. Every BatchNorm has momentum 1 - 0.9997 (torchvision's, from the TensorFlow
paper) and the default eps 1e-5.

Spec mapping: ``channels`` are the six stack widths and ``blocks`` the blocks per stack
(any count; a reduced spec takes fewer); ``stem_channels`` is the stem's 32.
``width_mult`` is torchvision's ``alpha``: every width of the stem and the stacks
(32, 16, channels) scales and rounds to a multiple of 8 (never 10% down), the
1280-wide last conv does not. Uneven groups default to ``floor`` (a 40- or 96-wide
level has widths s_g = 32 does not divide).
"""

from __future__ import annotations

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.models.layers import add_input, classifier, conv_bn_act
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.models.mobilenet import make_divisible
from mgcompile.spec import Spec
from mgcompile.steps import make_step

BN_MOMENTUM = 1 - 0.9997
KERNELS = (3, 5, 5, 3, 5, 3)
EXPANSION = (3, 3, 6, 6, 6, 6)
STRIDES = (2, 2, 2, 1, 2, 1)
STEM_CHANNELS = 32
STEM_OUT = 16
LAST_CHANNELS = 1280


def mnasnet_widths(spec: Spec) -> tuple[int, int, list[int]]:
    """(stem conv width, stem output width, stack widths) at the spec's alpha (torchvision's _get_depths)."""
    wm = spec.width_mult
    return (make_divisible((spec.stem_channels or STEM_CHANNELS) * wm), make_divisible(STEM_OUT * wm),
            [make_divisible(c * wm) for c in spec.channels])


def mnasnet_graph(spec: Spec) -> Graph:
    """The base MnasNet of ``spec`` as an IR with one ``residual`` (inverted) macro per block."""
    g = Graph()
    stem, stem_out, widths = mnasnet_widths(spec)
    bn = {"momentum": BN_MOMENTUM}
    meta = {"stage": "stem"}
    x = conv_bn_act(g, "stem", add_input(g, spec), spec.in_channels, stem, 3, stride=2, act="relu", meta=meta, bn=bn)
    x = g.add("stem.dwconv", "conv", [x], in_channels=stem, out_channels=stem, kernel=3, padding=1, groups=stem,
              meta=meta)
    x = g.add("stem.dwbn", "batchnorm", [x], channels=stem, meta=meta, **bn)
    x = g.add("stem.dwrelu", "relu", [x], meta=meta)
    x = g.add("stem.pwconv", "conv", [x], in_channels=stem, out_channels=stem_out, kernel=1, meta=meta)
    x = g.add("stem.pwbn", "batchnorm", [x], channels=stem_out, meta=meta, **bn)
    x, width = add_stages(g, x, stem_out, _stages(spec, widths, stem_out))
    x = conv_bn_act(g, "head", x, width, LAST_CHANNELS, 1, act="relu", meta={"stage": "head"}, bn=bn)
    classifier(g, x, LAST_CHANNELS, spec.num_classes, dropout=0.2)
    return g


def _stages(spec: Spec, widths: list[int], width: int):
    for c, n, k, t, stride in zip(widths, spec.blocks, KERNELS, EXPANSION, STRIDES):
        steps = []
        for b in range(n):
            steps.append(make_step("inverted", in_channels=width, out_channels=c, mid_channels=width * t,
                                   stride=stride if b == 0 else 1, kernel=k, act="relu", bn_momentum=BN_MOMENTUM))
            width = c
        yield steps


def _validate(spec: Spec) -> None:
    if len(spec.channels) != len(KERNELS):
        raise SpecError(f"field 'channels': mnasnet specs have {len(KERNELS)} stages, got {len(spec.channels)}")


register_family(Family("mnasnet", mnasnet_graph, blocks=("inverted",), uneven="floor", validate=_validate,
                       stage_widths=lambda spec: tuple(mnasnet_widths(spec)[2]),
                       module_names=("mnasnet*",),
                       torchvision=("mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"),
                       doc="MnasNet-B1 (inverted residuals, kernels 3/5, no SE; MG groups the 1x1 convs)"))


@register_model("mnasnet1_0", "torchvision MNASNet 1.0 (B1; inverted residuals, kernels 3/5; MG groups the 1x1 convs)")
def mnasnet1_0() -> Spec:
    return Spec(arch="mnasnet", block="inverted", channels=(24, 40, 80, 96, 192, 320), blocks=(3, 3, 3, 2, 4, 1),
                stem="imagenet", stem_channels=STEM_CHANNELS, width_mult=1.0, num_classes=1000,
                input_size=(224, 224), name="mnasnet1_0", only_profitable=True)
