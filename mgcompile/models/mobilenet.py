"""MobileNetV2 family specs (torchvision layout; paper §5 / Table 2)."""

from __future__ import annotations

from mgcompile.registry import register_model
from mgcompile.spec import Spec


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
