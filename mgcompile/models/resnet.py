"""ResNet family specs: the paper's CIFAR ResNets and torchvision's ImageNet ResNets."""

from __future__ import annotations

from mgcompile.registry import register_model
from mgcompile.spec import Spec


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
