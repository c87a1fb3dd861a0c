"""Every cycle configuration against a reference written straight from the equations.

The reference reads the lowered model's weights but none of its code: restriction
z_{j+1} = R_j z_j (with R's fixed permutation), the full step on the coarsest level, then
going up the τ-correction BN(P_j(y_{j+1} - R_j z_j)), added to z_j before the grouped
step (multiplicative, Algorithm 1) or into the step's sum (additive, eqs. 5-8 generalised).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from cycle_graphs import one_step_model  # noqa: E402


def bn(mod, t):
    return F.batch_norm(t, mod.running_mean, mod.running_var, mod.weight, mod.bias, False, 0.0, mod.eps)


def conv(mod, t):
    return F.conv2d(t, mod.weight, padding=mod.padding, groups=mod.groups)


def restrict(level, t):
    r = level.restrict
    if r.perm is not None:
        t = t[:, r.perm]
    return F.conv2d(t, r.weight, groups=r.groups)


def prolong(level, t):
    p = level.prolong
    y = F.conv2d(t, p.weight, groups=p.groups)
    if p.inv_perm is not None:
        y = y[:, p.inv_perm]
    return y


def step(level, t, activation, extra=None):
    """One ResNet step (eq. 1 for pre-activation; torchvision's v1 step for post)."""
    if activation == "pre":
        h = conv(level.conv2, F.relu(bn(level.bn1, conv(level.conv1, F.relu(bn(level.bn0, t))))))
        return t + h + (extra if extra is not None else 0)
    h = bn(level.bn2, conv(level.conv2, F.relu(bn(level.bn1, conv(level.conv1, t)))))
    return F.relu(t + h + (extra if extra is not None else 0))


def reference_cycle(m, x, n_fine, cycle, activation):
    levels = [getattr(m, f"level{j}") for j in range(n_fine + 1)]
    z = [x]
    for j in range(n_fine):
        z.append(restrict(levels[j], z[j]))
    y = step(levels[n_fine], z[n_fine], activation)
    for j in reversed(range(n_fine)):
        correction = bn(levels[j].prolong_bn, prolong(levels[j], y - z[j + 1]))
        if cycle == "multiplicative":
            y = step(levels[j], z[j] + correction, activation)
        else:
            y = step(levels[j], z[j], activation, extra=correction)
    return y


@pytest.mark.parametrize("cycle", ["multiplicative", "additive"])
@pytest.mark.parametrize("transfer", ["sparse", "grouped"])
@pytest.mark.parametrize("activation", ["post", "pre"])
def test_four_level_cycle_matches_the_equations(cycle, transfer, activation, with_random_bn):
    torch.manual_seed(0)
    model, graph = one_step_model(64, group_size=8, theta=16, cycle=cycle, transfer=transfer, activation=activation)
    assert graph.meta_graph.steps["step"].fine == [64, 32, 16]
    with_random_bn(model)
    x = torch.randn(2, 64, 5, 5)
    with torch.no_grad():
        expected = reference_cycle(model.step, x, 3, cycle, activation)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    # the fine level is really grouped and the coarsest fully coupled
    assert model.step.level0.conv1.groups == 8 and model.step.level3.conv1.groups == 1
