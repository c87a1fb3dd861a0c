"""The deterministic training check every converted or built network must pass.

Not "the loss went down after a few SGD steps from one random init" (a coin toss), but
three properties a correct implementation always has and a broken one does not:

1. **Every parameter learns**: one backward pass gives every parameter a finite,
   not-all-zero gradient (a layer cut off from the loss, or a NaN, fails).
2. **Each part's gradient is the derivative of the forward**: for every group of
   parameters (one per top-level layer), the central finite difference of the
   eval-mode loss along a random direction d equals autograd's ``g . d`` (a sign
   error, a backward that disagrees with the forward fail). Eval mode, with BatchNorm's
   running statistics set to the batch's: with batch statistics of a few images a deep
   network's loss is too sharp for finite differences; frozen statistics make it smooth.
3. **It trains**: gradient steps chosen by a backtracking line search (Armijo
   condition ``L(w - a g) <= L(w) - c a |g|^2``) lower the loss at every step.

Deterministic: float64, fixed inputs, and the same random stream (dropout, DropPath)
at every evaluation, so the loss is one fixed function of the weights; BatchNorm runs
in training mode (batch statistics), which is also a fixed function of the weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

ARMIJO_C = 1e-4


def fixed_batch(shape: tuple[int, ...], classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.arange(shape[0]) % classes


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``x`` (so eval mode normalises like training does)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [n.momentum for n in norms]
    for n in norms:
        n.momentum = 1.0
    model.train()
    torch.manual_seed(1234)
    model(x)
    for n, momentum in zip(norms, saved):
        n.momentum = momentum


def _group(name: str) -> str:
    """One group per top-level layer (``layer1``, ``stage3``, ``features``, ``fc``): few finite differences per model."""
    return name.split(".")[0]


def _match_finite_differences(m: nn.Module, x: torch.Tensor, loss, named: list, params: list) -> None:
    """Property 2, one random direction per top-level layer."""
    calibrate_batchnorm(m, x)
    m.eval()
    value_eval = loss()
    grads_eval = torch.autograd.grad(value_eval, params)
    total = sum(float((g * g).sum()) for g in grads_eval) ** 0.5
    gen = torch.Generator().manual_seed(0)
    groups: dict[str, list[int]] = {}
    for i, (n, _) in enumerate(named):
        groups.setdefault(_group(n), []).append(i)
    with torch.no_grad():
        for group, idx in groups.items():
            d = [torch.randn(params[i].shape, generator=gen, dtype=torch.float64) for i in idx]
            scale = sum(float((v * v).sum()) for v in d) ** 0.5
            d = [v / scale for v in d]
            slope = sum(float((grads_eval[i] * v).sum()) for i, v in zip(idx, d))
            # A ladder of steps, each changing the loss by 1e-4 ... 1e-8: a correct gradient matches at some
            # step before round-off wins (a deep net's loss can be sharp at the larger ones); a wrong one at none.
            tried = []
            for k in range(4, 9):
                eps = 10.0 ** -k / max(1e-2, abs(slope))
                for i, v in zip(idx, d):
                    params[i].add_(eps * v)
                up = float(loss())
                for i, v in zip(idx, d):
                    params[i].sub_(2 * eps * v)
                down = float(loss())
                for i, v in zip(idx, d):
                    params[i].add_(eps * v)
                numeric = (up - down) / (2 * eps)
                tried.append(numeric)
                if abs(numeric - slope) <= 1e-3 * max(abs(numeric), abs(slope)) + 1e-8 * total:
                    break
            else:
                raise AssertionError(f"gradient of {group} disagrees with the forward: autograd {slope:.6g}, "
                                     f"finite differences {', '.join(f'{t:.6g}' for t in tried)}")



def check_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 2,
                   allow_zero_grad: tuple[str, ...] = (), finite_differences: bool = True) -> list[float]:
    """Raise AssertionError unless ``model`` has all three properties; returns the losses along the way.

    ``finite_differences=False`` skips property 2: at full ImageNet size millions of ReLU kinks make the
    loss too rough for a 1e-3 finite-difference match (the reduced-size tests check it).
    """
    m = copy.deepcopy(model).double().train()
    x = x.double()
    named = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    assert params, "the model has no trainable parameters"

    def loss() -> torch.Tensor:
        torch.manual_seed(1234)  # the same dropout / DropPath masks at every evaluation
        return F.cross_entropy(m(x), y)

    # Property 1 with dropout and DropPath off: a randomly dropped branch rightly gets no gradient in one step.
    drops = [d for d in m.modules() if "drop" in type(d).__name__.lower()]
    for d in drops:
        d.eval()
    value = loss()
    grads = [torch.zeros_like(p) if g is None else g
             for p, g in zip(params, torch.autograd.grad(value, params, allow_unused=True))]
    bad = [n for (n, _), g in zip(named, grads) if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients in {bad[:5]}"
    dead = [n for (n, _), g in zip(named, grads) if not g.abs().sum() > 0 and not n.endswith(allow_zero_grad)]
    assert not dead, f"parameters that get no gradient (cut off from the loss): {dead[:5]}"
    for d in drops:
        d.train()
    value = loss()
    grads = torch.autograd.grad(value, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    if finite_differences:
        _match_finite_differences(m, x, loss, named, params)
    m.train()
    losses = [float(value.detach())]
    for step in range(steps):
        if step:
            value = loss()
            grads = [torch.zeros_like(p) if g is None else g
                     for p, g in zip(params, torch.autograd.grad(value, params, allow_unused=True))]
        g2 = sum(float((g * g).sum()) for g in grads)
        start = [p.detach().clone() for p in params]
        lr, new = 1.0, None
        with torch.no_grad():
            for _ in range(60):
                for p, p0, g in zip(params, start, grads):
                    p.copy_(p0 - lr * g)
                trial = float(loss())
                if trial <= float(value.detach()) - ARMIJO_C * lr * g2:
                    new = trial
                    break
                lr /= 2
        assert new is not None, f"step {step}: no step along -gradient lowers the loss (|g|^2 = {g2:.3g})"
        losses.append(new)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    return losses
