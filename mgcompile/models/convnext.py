"""ConvNeXt family (torchvision layout), one ``convnext`` residual macro per block.

Layout (torchvision ``ConvNeXt``): a 4x4/4 "patchify" stem conv (bias) + LayerNorm over
channels (eps 1e-6); stages of ConvNeXt blocks (7x7 depth-wise conv with bias ->
LayerNorm -> 1x1 to 4C with bias -> GELU -> 1x1 back with bias -> layer scale 1e-6 ->
stochastic depth, plus x); between stages a LayerNorm + 2x2/2 conv (bias) to the next
width; head: global average pool -> LayerNorm -> flatten -> linear (torchvision's
``avgpool`` then ``classifier = LayerNorm2d, Flatten, Linear``: the norm comes *after*
the pool). torchvision's channels-last ``Linear`` layers are written as 1x1 convs with
bias (same parameters, same map).

Spec fields:

* ``channels``: the stage widths (tiny: 96, 192, 384, 768); the stem outputs the first.
  ``width_mult`` scales them with :func:`mgcompile.spec.scale_width` (rounded to an
  even width, 1.0 = torchvision). ``stem_channels`` must be unset or equal to the
  first stage width.
* ``blocks``: blocks per stage (tiny: 3, 3, 9, 3). Any positive counts and any number of
  stages build: fewer blocks / stages give a reduced network with the same block and
  downsampling layout.
* ``variant`` picks torchvision's stochastic-depth rate (tiny 0.1, small 0.4, base 0.5,
  large 0.5); block i of the N blocks of the whole network (counted over all stages)
  drops its branch with probability ``rate * i / (N - 1)`` (0 when N = 1, which
  torchvision cannot build); a block with rate 0 carries no ``drop_path`` node.
* ``stem`` must be ``imagenet`` (the patchify stem; no CIFAR stem) and ``activation``
  ``post`` (ConvNeXt has no pre-activation form).

Uneven groups default to ``floor``: 96, 192, 384, 768 are 3·2^k, so s_g = 64 or a level
of 48 etc. may not divide them.
"""

from __future__ import annotations

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.models.base import Family, add_stages, register_family, register_model
from mgcompile.spec import Spec
from mgcompile.steps import make_step

#: torchvision's ``stochastic_depth_prob`` per variant
STOCHASTIC_DEPTH = {"tiny": 0.1, "small": 0.4, "base": 0.5, "large": 0.5}
LAYER_SCALE = 1e-6
NORM_EPS = 1e-6
STEM_PATCH = 4


def drop_path_rates(blocks: tuple[int, ...], rate: float) -> list[float]:
    """torchvision's linearly increasing stochastic-depth rates, one per block over the whole network."""
    total = sum(blocks)
    if total == 1:
        return [0.0]
    return [rate * i / (total - 1.0) for i in range(total)]


def convnext_graph(spec: Spec) -> Graph:
    """The base ConvNeXt of ``spec`` as an IR with one ``residual`` (convnext) macro per block."""
    g = Graph()
    h, w = spec.input_size
    widths = spec.stage_channels
    rates = iter(drop_path_rates(spec.blocks, STOCHASTIC_DEPTH[spec.variant or "tiny"]))
    x = g.add("input", "input", channels=spec.in_channels, height=h, width=w)
    meta = {"stage": "stem"}
    x = g.add("stem.conv", "conv", [x], in_channels=spec.in_channels, out_channels=widths[0], kernel=STEM_PATCH,
              stride=STEM_PATCH, padding=0, bias=True, meta=meta)
    x = g.add("stem.norm", "layernorm", [x], channels=widths[0], eps=NORM_EPS, meta=meta)

    def downsample(s: int, x: str, width: int) -> tuple[str, int]:  # torchvision's, ahead of the stage it feeds
        c = widths[s - 1]
        if c == width:
            return x, width
        meta = {"stage": f"stage{s}"}
        x = g.add(f"stage{s}.downsample.norm", "layernorm", [x], channels=width, eps=NORM_EPS, meta=meta)
        x = g.add(f"stage{s}.downsample.conv", "conv", [x], in_channels=width, out_channels=c, kernel=2,
                  stride=2, padding=0, bias=True, meta=meta)
        return x, c

    stages = ([make_step("convnext", channels=c, kernel=7, expansion=4, layer_scale=LAYER_SCALE,
                         drop_path=next(rates)) for _ in range(n)] for c, n in zip(widths, spec.blocks))
    x, width = add_stages(g, x, widths[0], stages, enter=downsample)
    meta = {"stage": "head"}
    x = g.add("head.pool", "global_avgpool", [x], meta=meta)
    x = g.add("head.norm", "layernorm", [x], channels=width, eps=NORM_EPS, meta=meta)
    x = g.add("head.flatten", "flatten", [x], meta=meta)
    x = g.add("head.fc", "linear", [x], in_features=width, out_features=spec.num_classes, meta=meta)
    g.add("output", "output", [x])
    return g


def _validate(spec: Spec) -> None:
    if (spec.variant or "tiny") not in STOCHASTIC_DEPTH:
        raise SpecError(f"field 'variant' is {spec.variant!r} for arch convnext; allowed values: "
                        f"{', '.join(STOCHASTIC_DEPTH)}")
    if spec.stem != "imagenet":
        raise SpecError(f"field 'stem' is {spec.stem!r}: convnext has only the 4x4/4 patchify stem (use imagenet)")
    if spec.activation != "post":
        raise SpecError(f"field 'activation' is {spec.activation!r}: convnext blocks have no pre-activation form "
                        "(use post)")
    if spec.stem_channels is not None and spec.stem_channels != spec.channels[0]:
        raise SpecError(f"field 'stem_channels' is {spec.stem_channels}: the convnext stem outputs the first stage "
                        f"width {spec.channels[0]} (leave it unset)")


register_family(Family("convnext", convnext_graph, blocks=("convnext",), uneven="floor", validate=_validate,
                       module_names=("convnext*",),
                       torchvision=("convnext_tiny",),
                       doc="ConvNeXt (patchify stem, 7x7 depth-wise + LayerNorm + MLP blocks; MG groups the 1x1s)"))


@register_model("convnext_tiny", "torchvision ConvNeXt-T (96-192-384-768, blocks 3-3-9-3, stochastic depth 0.1)")
def convnext_tiny() -> Spec:
    return Spec(arch="convnext", variant="tiny", block="convnext", channels=(96, 192, 384, 768), blocks=(3, 3, 9, 3),
                stem="imagenet", num_classes=1000, input_size=(224, 224), name="convnext_tiny",
                only_profitable=True)
