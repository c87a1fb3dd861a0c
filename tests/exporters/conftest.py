"""Fixtures for the exporter tests: tiny specs of every family and BN layers with non-trivial statistics."""

from __future__ import annotations

from typing import Callable

import pytest
from torch import nn

import mgcompile

TINY_CIFAR = dict(channels=(16, 32, 64), blocks=(1, 1, 1), input_size=(16, 16))
TINY_MG = dict(TINY_CIFAR, group_size=8, coarsest=16)
TINY_BOTTLENECK = dict(channels=(64, 128), blocks=(1, 1), input_size=(32, 32), num_classes=10)
TINY_MOBILENET = dict(blocks=(1, 2, 1, 2, 2, 2, 1), input_size=(32, 32), num_classes=10)

# id -> (registry name, overrides): every family, cycle, transfer, transition and activation at reduced size.
MATRIX = {
    "base": ("cifar_resnet", TINY_CIFAR),
    "mg": ("cifar_resnet", TINY_MG),
    "mg_additive": ("cifar_resnet", dict(TINY_MG, cycle="additive")),
    "mg_grouped": ("cifar_resnet", dict(TINY_MG, transfer="grouped")),
    "mg_dw_stride": ("cifar_resnet", dict(TINY_MG, transition="dw_stride")),
    "mg_keep": ("cifar_resnet", dict(TINY_MG, transition="keep")),
    "mg_pre": ("cifar_resnet", dict(TINY_MG, activation="pre")),
    "bottleneck": ("resnet50", TINY_BOTTLENECK),
    "mg_bottleneck": ("resnet50", dict(TINY_BOTTLENECK, group_size=16, coarsest=32)),
    "mobilenet_v2": ("mobilenet_v2", TINY_MOBILENET),
    "mg_mobilenet_v2": ("mobilenet_v2", dict(TINY_MOBILENET, group_size=16, coarsest=64)),
}


def tiny_model(case: str, randomize_bn: Callable[[nn.Module], nn.Module]) -> tuple[nn.Module, tuple[int, ...]]:
    name, overrides = MATRIX[case]
    spec = mgcompile.model_spec(name, **overrides)
    model = randomize_bn(mgcompile.build(spec))
    graph = model.mg_graph
    return model, graph.input_shape()


@pytest.fixture(params=list(MATRIX))
def matrix_case(request, with_random_bn) -> tuple[str, nn.Module, tuple[int, ...]]:
    """(case id, eval-mode model with random BN statistics, input (C, H, W)) for every MATRIX entry."""
    return (request.param, *tiny_model(request.param, with_random_bn))


@pytest.fixture(params=["base", "mg", "mg_grouped", "mg_bottleneck", "mg_mobilenet_v2"])
def subset_case(request, with_random_bn) -> tuple[str, nn.Module, tuple[int, ...]]:
    """A smaller subset of MATRIX for the PyTorch-side formats."""
    return (request.param, *tiny_model(request.param, with_random_bn))


@pytest.fixture
def tiny(with_random_bn) -> Callable[[str], tuple[nn.Module, tuple[int, ...]]]:
    return lambda case: tiny_model(case, with_random_bn)
