"""Label-free calibration (issue 19): what always holds, not accuracy thresholds (those are `make bench-convert`'s).

The oracle is the original network itself: a step's error is its output's distance to the original step's output,
measured on held-out images in eval mode, before and after the fit.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn
from torchvision.models import convnext as tv_convnext

import mgcompile
from mgcompile.errors import MGCompileError
from mgcompile.calibration import CalibrationConfig, calibrate, fitted_steps, recompute_batchnorm


def _trained_like(model: nn.Module, images: torch.Tensor, seed: int = 0) -> nn.Module:
    """A stand-in for training: BN affine weights away from their identity init, and running statistics those of
    the images (as a trained network's are of its data; random statistics would make eval and training mode two
    different functions, which no fit in training mode can match)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):  # ConvNeXt's starts at 1e-6: a step that computes (almost) nothing
            p.data.copy_(torch.rand(p.shape, generator=g) + 0.5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    recompute_batchnorm(model, iter(images.split(64)), len(images), torch.device("cpu"))
    return model.eval()


class _OddBody(nn.Module):
    """A residual step whose body is no template (an imported body): conv, GELU, depth-wise conv, BN."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.dw(nn.functional.gelu(self.a(x))))


def _imported_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), _OddBody(32), _OddBody(32),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _cifar_resnet() -> nn.Module:
    spec = mgcompile.model_spec("cifar_resnet", channels=(16, 32), blocks=(2, 2), input_size=(16, 16), num_classes=10)
    return mgcompile.build(spec)


def _tv_convnext() -> nn.Module:
    cfg = [tv_convnext.CNBlockConfig(32, 64, 1), tv_convnext.CNBlockConfig(64, None, 1)]
    return tv_convnext.ConvNeXt(cfg, stochastic_depth_prob=0.0, num_classes=10)


# step kind -> (the original, MG flags, input size): every kind the conversion produces, a transition included
CASES = {
    "basic_and_transition": (_cifar_resnet, {"group_size": 8, "coarsest": 8}, 16),
    "bottleneck": (lambda: timm.create_model("resnet26", pretrained=False, num_classes=10, channels=(16, 32, 64, 128)),
                   {"group_size": 16, "coarsest": 32}, 32),
    "inverted_se": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10, width_mult=0.75),
                    {"group_size": 8, "coarsest": 16}, 32),
    "convnext": (_tv_convnext, {"group_size": 8, "coarsest": 16}, 32),
    "imported": (_imported_net, {"group_size": 8, "coarsest": 8}, 16),
}


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _forced_errors(pair, x: torch.Tensor) -> list[float]:
    """Each fitted step's error fed the original's input to it, in training mode (the local phase's objective)."""
    from mgcompile.calibration import _nmse

    with torch.no_grad():
        _, t_in, t_out = pair.targets(x)
        _, ys = pair.forced(x, *pair.forced_inputs(t_in))
    return [float(_nmse(y, t)) for y, t in zip(ys, t_out)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_fit_lowers_every_fitted_steps_error(case):
    """Every step kind's new layers are found by role, fed the original's input and fitted: each step's own error
    (on a batch held out from the fit, training mode) goes down; the whole calibration then reports per step."""
    from mgcompile.calibration import _fit, _Pair, batches, teacher_of

    make, flags, size = CASES[case]
    torch.manual_seed(0)
    original = _trained_like(make(), _images(256, size, 1))
    mg = mgcompile.convert(original, **flags, example_input=torch.zeros(1, 3, size, size), init="base")
    kinds = {r["kind"] for r in mg.mg_conversion["blocks"] if r["status"] in ("converted", "transition")}
    statuses = {r["status"] for r in mg.mg_conversion["blocks"]}
    assert kinds and ("transition" in statuses or case != "basic_and_transition"), (kinds, statuses)
    steps = fitted_steps(mg.mg_graph)
    pair = _Pair(mg, teacher_of(mg, original), steps)
    held = _images(64, size, 2)
    mg.train()
    before = _forced_errors(pair, held)
    cfg = CalibrationConfig(presentations=30 * 32, batch_size=32, local_fraction=1.0)
    _fit(pair, mg, batches(_images(256, size, 1), 32, 0), cfg, torch.device("cpu"))
    after = _forced_errors(pair, held)
    worse = [(s, b, a) for s, b, a in zip(steps, before, after) if not a < b]
    assert not worse, f"{case} ({sorted(kinds)}): the fit did not lower these steps' errors: {worse}"
    report = calibrate(mg, original, _images(64, size, 1), heldout=_images(32, size, 2),
                       config=CalibrationConfig(presentations=32, batch_size=32, bn_images=64))
    assert [s["step"] for s in report["steps"]] == steps and not mg.training
    assert mg.mg_conversion["calibration"] is report


def _digits_images(garbage_labels: bool):
    from mgcompile.train.calibration_data import calibration_images, source_normalisation
    from mgcompile.train.data import load_source

    source = load_source("digits")
    if garbage_labels:
        images, labels = source.train
        source.train = (images, torch.randint(-10**6, 10**6, labels.shape, generator=torch.Generator().manual_seed(3)))
    return calibration_images(source, data_dir=None, size=(16, 16), channels=1, norm=source_normalisation(load_source("digits")))


def _digits_pair():
    spec = mgcompile.model_spec("cifar_resnet", channels=(8, 16), blocks=(1, 1), input_size=(16, 16), in_channels=1, num_classes=10)
    torch.manual_seed(0)
    original = _trained_like(mgcompile.build(spec), torch.randn(128, 1, 16, 16))
    return original, mgcompile.convert(original, group_size=4, coarsest=4, example_input=torch.zeros(1, 1, 16, 16),
                                       init="base")


def test_labels_are_never_read_and_the_same_seed_gives_the_same_weights():
    original, mg = _digits_pair()
    cfg = CalibrationConfig(presentations=6 * 32, batch_size=32, bn_images=64, heldout_images=64)
    runs = {}
    for key, garbage, seed in (("a", False, 0), ("garbage", True, 0), ("seed1", False, 1)):
        model = _digits_pair()[1]  # the same conversion again (a deep copy would lose the module's IR)
        images = _digits_images(garbage)
        calibrate(model, original, images.fit, heldout=images.heldout, config=cfg.__class__(**{**cfg.to_dict(),
                                                                                               "seed": seed}))
        runs[key] = model.state_dict()
    same = all(torch.equal(runs["a"][k], runs["garbage"][k]) for k in runs["a"])
    assert same, "a data set whose labels are garbage must give bit-identical weights"
    assert any(not torch.equal(runs["a"][k], runs["seed1"][k]) for k in runs["a"]), "the seed must matter"


def test_batchnorm_statistics_are_those_of_the_calibration_images():
    original, mg = _digits_pair()
    x = torch.randn(96, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    seen = recompute_batchnorm(mg, iter([x[:32], x[32:64], x[64:]]), 96, torch.device("cpu"))
    assert seen == 96 and not mg.training
    bn = next(m for m in mg.modules() if isinstance(m, nn.BatchNorm2d))
    inputs = []
    hook = bn.register_forward_hook(lambda m, i, o: inputs.append(i[0]))
    with torch.no_grad():
        mg(x)
    hook.remove()
    got = inputs[0].transpose(0, 1).flatten(1)
    torch.testing.assert_close(bn.running_mean, got.mean(1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, got.var(1), rtol=1e-3, atol=1e-5)  # batch-averaged (unbiased) variances


def test_a_wrong_original_and_a_network_never_converted_are_one_line_errors():
    original, mg = _digits_pair()
    other = mgcompile.build(mgcompile.model_spec("cifar_resnet", channels=(8, 16), blocks=(1, 1),
                                                 input_size=(16, 16), in_channels=1, num_classes=10, seed=7)).eval()
    with pytest.raises(MGCompileError, match="does not reproduce|not the network"):
        calibrate(mg, other, torch.randn(8, 1, 16, 16), config=CalibrationConfig(presentations=8, batch_size=8))
    spec_built = mgcompile.build(mgcompile.model_spec("cifar_resnet", channels=(8, 16), blocks=(1, 1), group_size=4,
                                                      coarsest=4, input_size=(16, 16), in_channels=1))
    with pytest.raises(MGCompileError, match="no converted step"):
        calibrate(spec_built, original, torch.randn(8, 1, 16, 16))
    with pytest.raises(MGCompileError, match="unknown options"):
        calibrate(mg, original, torch.randn(8, 1, 16, 16), presentation=3)


def test_convert_with_calibrate_fits_through_the_python_api():
    original, _ = _digits_pair()
    images = torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    mg = mgcompile.convert(original, group_size=4, coarsest=4, example_input=torch.zeros(1, 1, 16, 16),
                           calibrate=[images[:32], (images[32:], torch.zeros(32))],  # an (x, y) batch: x only
                           calibrate_config=CalibrationConfig(presentations=8 * 32, batch_size=32, bn_images=64))
    assert mg.mg_conversion["init"] == "base" and mg.mg_conversion["calibration"]["fitted_steps"] >= 2
