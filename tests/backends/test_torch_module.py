"""Lowering to PyTorch: shapes, names, counts, the cycle's maths, transfers, coupling, compile, save/load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mgcompile
from mgcompile.passes import count

sys.path.insert(0, str(Path(__file__).parent))
from cycle_graphs import grouped_step_model, one_step_model  # noqa: E402


def bn(mod: torch.nn.BatchNorm2d, t: torch.Tensor) -> torch.Tensor:
    """Eval-mode batch norm written out, for the hand-written cycle oracles."""
    return F.batch_norm(t, mod.running_mean, mod.running_var, mod.weight, mod.bias, False, 0.0, mod.eps)


@pytest.mark.parametrize("cycle", ["multiplicative", "additive"])
@pytest.mark.parametrize("transfer", ["sparse", "grouped"])
@pytest.mark.parametrize("activation", ["post", "pre"])
def test_forward_shapes_and_param_count_equal_ir(cycle, transfer, activation, tiny_mg_spec):
    spec = tiny_mg_spec.replace(cycle=cycle, transfer=transfer, activation=activation)
    model = mgcompile.build(spec)
    out = model(torch.randn(3, 3, 16, 16))
    assert out.shape == (3, 10)
    assert sum(p.numel() for p in model.parameters()) == count(model.mg_graph).params
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("transition", ["paper", "dw_stride", "keep"])
def test_transitions_build_and_run(transition, tiny_mg_spec):
    model = mgcompile.build(tiny_mg_spec.replace(transition=transition))
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_parameter_names_follow_ir_node_names():
    model = mgcompile.build(mgcompile.model_spec("mg_cifar_resnet_g8c16"))
    names = dict(model.named_parameters())
    assert "stage4.block1.level0.conv1.weight" in names
    assert "stage4.block1.level0.restrict.weight" in names
    assert "stage4.block1.level0.prolong_bn.weight" in names
    buffers = dict(model.named_buffers())
    assert buffers["stage4.block1.level0.restrict.perm"].tolist() == \
        model.mg_graph.attrs("stage4.block1.level0.restrict")["permutation"]


def test_additive_cycle_matches_hand_written_eqs_5_to_8(with_random_bn):
    torch.manual_seed(0)
    model, graph = one_step_model(16, group_size=8, theta=16, cycle="additive")
    with_random_bn(model)
    m = model.step
    x = torch.randn(2, 16, 6, 6)

    def R(t):
        return F.conv2d(t[:, m.level0.restrict.perm], m.level0.restrict.weight, groups=m.level0.restrict.groups)

    def P(t):
        y = F.conv2d(t, m.level0.prolong.weight, groups=m.level0.prolong.groups)
        return y[:, m.level0.prolong.inv_perm]

    def step(lvl, t, groups):  # pre-activation ResNet step, eq. (1)
        h = F.relu(bn(lvl.bn0, t))
        h = F.conv2d(h, lvl.conv1.weight, padding=1, groups=groups)
        h = F.relu(bn(lvl.bn1, h))
        return F.conv2d(h, lvl.conv2.weight, padding=1, groups=groups)

    xc = R(x)                                              # (5)
    xc2 = xc + step(m.level1, xc, 1)                       # (6) fully coupled on the coarse level
    z = bn(m.level0.prolong_bn, P(xc2 - R(x)))             # (7)
    expected = x + z + step(m.level0, x, 16 // 8)          # (8) grouped on the fine level
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_multiplicative_cycle_matches_hand_written_algorithm_1(with_random_bn):
    torch.manual_seed(0)
    model, graph = one_step_model(32, group_size=8, theta=16, cycle="multiplicative", transfer="grouped")
    with_random_bn(model)
    m = model.step
    x = torch.randn(2, 32, 6, 6)

    def step(lvl, t, groups):
        h = F.conv2d(F.relu(bn(lvl.bn0, t)), lvl.conv1.weight, padding=1, groups=groups)
        return t + F.conv2d(F.relu(bn(lvl.bn1, h)), lvl.conv2.weight, padding=1, groups=groups)

    levels = [getattr(m, f"level{j}") for j in range(3)]     # fine 32, 16; coarsest 8
    z = [x]
    for j in range(2):                                        # down: z_{j+1} = R_j z_j
        r = levels[j].restrict
        z.append(F.conv2d(z[j], r.weight, groups=r.groups))
    restricted = list(z[1:])
    z[2] = step(levels[2], z[2], 1)                           # coarsest: fully coupled
    for j in (1, 0):                                          # up: τ-correction, then grouped step
        p = levels[j].prolong
        z[j] = z[j] + bn(levels[j].prolong_bn, F.conv2d(z[j + 1] - restricted[j], p.weight, groups=p.groups))
        z[j] = step(levels[j], z[j], z[j].shape[1] // 8)
    torch.testing.assert_close(model(x), z[0], rtol=1e-5, atol=1e-5)


def _dense(module: torch.nn.Module, width: int) -> torch.Tensor:
    """The transfer as a dense matrix, by applying it to the standard basis."""
    eye = torch.eye(width).reshape(width, width, 1, 1)
    with torch.no_grad():
        return module(eye).reshape(width, -1).T


@pytest.mark.parametrize("width, t", [(32, 8), (64, 16), (16, 8)])
def test_sparse_transfer_patterns_and_init(width, t):
    model, graph = one_step_model(width, group_size=t, theta=width, transfer="sparse")
    R = _dense(model.step.level0.restrict, width)         # (width/2) x width
    P = _dense(model.step.level0.prolong, width // 2)     # width x (width/2)
    assert R.shape == (width // 2, width) and P.shape == (width, width // 2)
    assert torch.equal(R != 0, P.T != 0)                   # pattern(R) = pattern(Pᵀ)
    assert ((P != 0).sum(1) == t).all()                     # t nonzeros per row of P
    assert ((R != 0).sum(1) == 2 * t).all()                 # 2t per row of R
    assert (R[R != 0] > 0).all() and (P[P != 0] > 0).all()  # positive init
    torch.testing.assert_close(P.sum(1), torch.ones(width))
    torch.testing.assert_close(R.sum(1), torch.ones(width // 2))
    # a real permutation: with several groups, a coarse channel's fine channels are not one contiguous block
    if width > 2 * t:
        assert not all(torch.nonzero(R[i]).flatten().diff().eq(1).all() for i in range(width // 2))


def test_mg_cycle_couples_all_channels_while_a_grouped_step_does_not():
    torch.manual_seed(0)
    cycle_model, _ = one_step_model(32, group_size=8, theta=16)
    grouped = grouped_step_model(32, groups=4)
    x = torch.randn(1, 32, 6, 6)
    x2 = x.clone()
    x2[:, 0] += 5.0
    for model, expect_all in ((cycle_model, True), (grouped, False)):
        model.eval()
        with torch.no_grad():
            changed = (model(x2) - model(x)).abs().amax(dim=(0, 2, 3)) > 1e-6
        if expect_all:
            assert changed.all()
        else:
            assert changed[:8].all() and not changed[8:].any()


def test_fx_traceable_and_torch_compile():
    model = mgcompile.build(mgcompile.model_spec("cifar_resnet", channels=(16,), blocks=(1,), input_size=(8, 8),
                                                 group_size=8, coarsest=16)).eval()
    x = torch.randn(2, 3, 8, 8)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x))
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)


def test_save_load_round_trip_keeps_weights_and_permutations(tmp_path, tiny_mg_spec, with_random_bn):
    model = mgcompile.build(tiny_mg_spec.replace(seed=7)).eval()
    with_random_bn(model)
    path = mgcompile.save(model, tmp_path)
    assert path == tmp_path / "model.pt"
    raw = torch.load(path, weights_only=True)  # no pickled classes
    assert raw["format"] == "mgcompile-model"
    loaded = mgcompile.load(tmp_path).eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(loaded(x), model(x))
    name = "stage2.block0.level0.restrict.perm"
    assert torch.equal(dict(loaded.named_buffers())[name], dict(model.named_buffers())[name])


def test_seed_changes_permutations_but_build_is_deterministic(tiny_mg_spec):
    a = mgcompile.build(tiny_mg_spec)
    b = mgcompile.build(tiny_mg_spec)
    c = mgcompile.build(tiny_mg_spec.replace(seed=1))
    key = "stage2.block0.level0.restrict.perm"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_corrupt_or_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(mgcompile.MGCompileError, match="does not exist"):
        mgcompile.load(tmp_path / "nope")
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(mgcompile.MGCompileError, match="corrupt or not an mgcompile model"):
        mgcompile.load(tmp_path)



@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_training_transfers_with_the_permutation_in_a_dense_weight_equal_gather_and_grouped_conv(groups, monkeypatch):
    from mgcompile.backends import torch_module
    from mgcompile.backends.torch_module import Prolongation, Restriction

    monkeypatch.setattr(torch_module, "TRAINING_DENSE_GROUPS", 8)  # every group count takes the dense form here

    g = torch.Generator().manual_seed(groups)
    perm = torch.randperm(64, generator=g).tolist()
    r = Restriction(64, 32, groups, perm, bias=True)
    p = Prolongation(32, 64, groups, perm, bias=True)
    with torch.no_grad():
        r.bias.normal_(generator=g)
        p.bias.normal_(generator=g)
    x = torch.randn(3, 64, 5, 5, generator=g).contiguous(memory_format=torch.channels_last)
    for module, inp in ((r, x), (p, x[:, :32])):
        grads = []
        for training in (True, False):  # training: the dense weight; eval: gather and grouped conv
            module.train(training)
            module.zero_grad()
            xi = inp.detach().clone().requires_grad_()
            out = module(xi)
            (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
            grads.append((out.detach(), xi.grad, module.weight.grad.clone(), module.bias.grad.clone()))
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_training_step_of_an_mg_network_is_the_same_with_either_transfer_form(tiny_mg_spec, monkeypatch):
    from mgcompile.backends import torch_module

    model = mgcompile.build(tiny_mg_spec).train()
    x = torch.randn(4, 3, 16, 16)
    results = []
    for limit in (8, 0):  # 8: every transfer of the tiny network takes the dense form; 0: every transfer gathers
        monkeypatch.setattr(torch_module, "TRAINING_DENSE_GROUPS", limit)
        model.zero_grad()
        out = model(x)
        out.logsumexp(1).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
