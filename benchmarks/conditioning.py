"""How well-conditioned a converted network is in training mode: its |grad|^2 over its original's, on one batch.

    python benchmarks/conditioning.py [--scale 0.01] [--only resnet18]

For a few torchvision/timm networks (random weights, every BN of the original randomised, 32x32 input,
batch 4, float64, training mode) and both inits, prints the converted network's squared gradient norm
divided by the original's. ``--scale`` sets the initial scale of the BN after each P
(``CORRECTION_BN_SCALE``; 1.0 shows the conditioning before issue 18). Nothing is timed.
"""

from __future__ import annotations

import argparse
import copy
import warnings

import torch
import torch.nn.functional as F

CASES = {  # name -> (constructor, MG options)
    "timm:regnetx_002 g8/θ32": (lambda: __import__("timm").create_model("regnetx_002", num_classes=10),
                                {"group_size": 8, "coarsest": 32}),
    "torchvision:regnet_y_400mf g16/θ64": (lambda: __import__("torchvision").models.regnet_y_400mf(num_classes=10),
                                           {"group_size": 16, "coarsest": 64}),
    "timm:test_convnext g8/θ16": (lambda: __import__("timm").create_model("test_convnext", num_classes=10),
                                  {"group_size": 8, "coarsest": 16}),
    "torchvision:resnet18 g32/θ64": (lambda: __import__("torchvision").models.resnet18(num_classes=10),
                                     {"group_size": 32, "coarsest": 64}),
}


def randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


def grad_norm2(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    m = copy.deepcopy(model).double().train()
    for d in m.modules():
        if "drop" in type(d).__name__.lower():
            d.eval()
    params = [p for p in m.parameters() if p.requires_grad]
    grads = torch.autograd.grad(F.cross_entropy(m(x.double()), y), params, allow_unused=True)
    return sum(float((g * g).sum()) for g in grads if g is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=None, help="initial scale of the BN after each P")
    ap.add_argument("--only", default="", help="only the networks whose name contains this")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import mgcompile
    from mgcompile.backends import torch_module

    if args.scale is not None:
        torch_module.CORRECTION_BN_SCALE = args.scale
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 32, 32, generator=g), torch.arange(4) % 10
    print(f"|grad|^2 converted / original (BN after P starts at {torch_module.CORRECTION_BN_SCALE})")
    print(f"{'network':<36} {'init random':>12} {'init base':>12}")
    for name, (make, options) in CASES.items():
        if args.only not in name:
            continue
        torch.manual_seed(0)
        original = randomize_bn(make())
        base = grad_norm2(original, x, y)
        ratios = [grad_norm2(mgcompile.convert(original, example_input=torch.randn(1, 3, 32, 32), init=init,
                                               **options), x, y) / base for init in ("random", "base")]
        print(f"{name:<36} {ratios[0]:>12.3g} {ratios[1]:>12.3g}", flush=True)


if __name__ == "__main__":
    main()
