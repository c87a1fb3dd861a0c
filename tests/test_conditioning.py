"""A converted network is as well-conditioned in training mode as its original, from either init (issue 18 §0).

The oracle is the original network itself: on one fixed batch, in training mode (batch statistics) and float64,
the converted network's squared gradient norm must stay within 100x of the original's. Before the BN after each
P started small (``CORRECTION_BN_SCALE``), a converted timm RegNetX-002 at g8/θ32 had 7e10 times its original's
|grad|^2 and no gradient step lowered its loss.
"""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models import convnext as tv_convnext

import mgcompile
from mgcompile.backends.torch_module import CORRECTION_BN_SCALE
from mgcompile.ir.roles import Role


def _tv_convnext_small() -> torch.nn.Module:
    cfg = [tv_convnext.CNBlockConfig(32, 64, 2), tv_convnext.CNBlockConfig(64, None, 2)]
    return tv_convnext.ConvNeXt(cfg, stochastic_depth_prob=0.1, num_classes=10)


# the zoo members that were worst conditioned before the fix (ratios 7e10, 1e7, 1e3), and a plain ResNet
CASES = {
    "timm_regnetx_002": (lambda: timm.create_model("regnetx_002", pretrained=False, num_classes=10),
                         {"group_size": 8, "coarsest": 32}),
    "tv_convnext": (_tv_convnext_small, {"group_size": 8, "coarsest": 16}),
    "tv_regnet_y_400mf": (lambda: torchvision.models.regnet_y_400mf(num_classes=10), {"group_size": 16, "coarsest": 64}),
    "tv_resnet18": (lambda: torchvision.models.resnet18(num_classes=10), {"group_size": 32, "coarsest": 64}),
}


def _grad_norm2(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, dict[str, float]]:
    m = copy.deepcopy(model).double().train()
    for d in m.modules():  # the same function at every call: no random branch dropping
        if "drop" in type(d).__name__.lower():
            d.eval()
    named = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(F.cross_entropy(m(x.double()), y), [p for _, p in named], allow_unused=True)
    per = {n: (0.0 if g is None else float((g * g).sum())) for (n, _), g in zip(named, grads)}
    return sum(per.values()), per


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 32, 32, generator=g), torch.arange(4) % 10


@pytest.mark.parametrize("init", ["random", "base"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_converted_network_has_its_originals_gradient_scale_and_every_parameter_learns(case, init, batch,
                                                                                          with_random_bn):
    make, options = CASES[case]
    torch.manual_seed(0)
    original = with_random_bn(make())  # nothing zero-initialised
    converted = mgcompile.convert(original, example_input=torch.randn(1, 3, 32, 32), init=init, **options)
    base, _ = _grad_norm2(original, *batch)
    mg, per = _grad_norm2(converted, *batch)
    assert mg <= 100 * base, f"|grad|^2 {mg:.3g} is {mg / base:.3g}x the original's {base:.3g}"
    # every first gradient is non-zero: the restrictions, prolongations and coarse levels learn from step one
    dead = [n for n, v in per.items() if not v > 0]
    assert not dead, dead[:5]
    assert any(".restrict." in n for n in per) and any(".prolong." in n for n in per)


def test_the_correction_starts_small_but_shows_in_the_output():
    spec = mgcompile.model_spec("mg_cifar_resnet_g8c16", channels=(16, 32), blocks=(1, 1), input_size=(16, 16),
                                num_classes=10)
    model = mgcompile.build(spec).eval()
    corrections = model.mg_graph.nodes("batchnorm", role=Role.CORRECTION_BN)
    assert corrections
    for n in corrections:
        assert torch.all(model.get_submodule(n).weight == CORRECTION_BN_SCALE)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
        for n in corrections:
            model.get_submodule(n).weight.zero_()
        assert not torch.allclose(model(x), out)


def test_warm_start_copies_a_channels_last_linear_into_its_1x1_conv():
    """ConvNeXt's pointwise Linear layers become 1x1 convs: ``--init base`` copies their weights (it crashed)."""
    torch.manual_seed(0)
    original = _tv_convnext_small().eval()
    converted = mgcompile.convert(original, example_input=torch.randn(1, 3, 32, 32), group_size=8, coarsest=16,
                                  init="base")
    row = next(r for r in converted.mg_conversion["blocks"] if r["status"] == "converted")
    linear = next(m for m in map(original.get_submodule, row["modules"])  # CNBlock's Linear(C, 4C)
                  if isinstance(m, torch.nn.Linear) and m.out_features == 4 * m.in_features)
    conv = converted.get_submodule(f"{row['block']}.level0.pwconv1")
    w, groups = conv.weight[:, :, 0, 0], conv.groups
    rows, cols = w.shape[0] // groups, w.shape[1]
    for k in range(groups):  # each group's block is the Linear's block on the diagonal
        assert torch.equal(w[k * rows:(k + 1) * rows], linear.weight[k * rows:(k + 1) * rows, k * cols:(k + 1) * cols])
