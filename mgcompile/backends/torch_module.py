"""IR -> PyTorch: codegen to a ``torch.fx.GraphModule``.

Every parametric IR node becomes a module whose dotted path is the node's name
(``stage3.block2.level1.conv1``), so ``state_dict`` keys point back to the IR. The
forward is an fx graph generated node by node: print ``model.code`` to read it. The
result is fx-traceable and ``torch.compile``-able like any GraphModule.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.ir.roles import Role
from mgcompile.spec import Spec


#: In training, a permuted transfer of at most this many groups runs as one dense 1x1 conv whose weight carries the
#: permutation (built from the grouped weight each step: zeros off the blocks, no activation gather; `groups` times
#: the transfer's MACs, so at 1 group it is free). Measured whole training steps, channels_last, 2-core CPU,
#: img/s against the gather form (benchmarks/train_transfers.py --limit N; wide CIFAR / narrow / MG-ResNet34):
#: limit 1: 1.10 / 1.13 / 1.20; limit 2: 1.01 / 1.14 / 1.16; limit 4: 0.48 / 1.22 / 1.30 (the wide network's
#: 256-channel 4-group transfers at 32x32 pay 4x their MACs). Evaluation keeps the gather (the inference lowering
#: in ``backends.inference`` chooses per export target).
TRAINING_DENSE_GROUPS = 1


def block_diagonal(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped 1x1 conv's weight ``(out, in/groups, 1, 1)`` as the dense ``(out, in, 1, 1)`` one it equals."""
    out, per_group = weight.shape[:2]
    return torch.block_diag(*weight.reshape(groups, out // groups, per_group).unbind(0))[:, :, None, None]


class Restriction(nn.Module):
    """R = G_R ∘ Π: a fixed channel permutation (a buffer, never re-drawn), then a grouped 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, permutation: list[int] | None,
                 bias: bool = False) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("perm", None if permutation is None else torch.tensor(permutation, dtype=torch.long))
        positive_row_stochastic_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.perm is not None and self.training and self.groups <= TRAINING_DENSE_GROUPS:
            dense = block_diagonal(self.weight, self.groups)  # conv(x[:, perm], W) = conv(x, W with permuted columns)
            return F.conv2d(x, torch.zeros_like(dense).index_copy(1, self.perm, dense), self.bias)
        if self.perm is not None:
            x = x.index_select(1, self.perm)
        return F.conv2d(x, self.weight, self.bias, groups=self.groups)


class Prolongation(nn.Module):
    """P = Πᵀ ∘ G_P: a grouped 1x1 conv, then the inverse of R's permutation (a folded BN's shift is the conv's bias,
    in the conv's channel order)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, permutation: list[int] | None,
                 bias: bool = False) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        inverse = None
        if permutation is not None:
            inverse = torch.empty(len(permutation), dtype=torch.long)
            inverse[torch.tensor(permutation)] = torch.arange(len(permutation))
        self.register_buffer("inv_perm", inverse)
        positive_row_stochastic_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inv_perm is not None and self.training and self.groups <= TRAINING_DENSE_GROUPS:
            dense = block_diagonal(self.weight, self.groups)  # conv(x, W)[:, inv] = conv(x, W's rows permuted)
            bias = None if self.bias is None else self.bias.index_select(0, self.inv_perm)
            return F.conv2d(x, dense.index_select(0, self.inv_perm), bias)
        x = F.conv2d(x, self.weight, self.bias, groups=self.groups)
        if self.inv_perm is not None:
            x = x.index_select(1, self.inv_perm)
        return x


@torch.no_grad()
def positive_row_stochastic_(weight: torch.Tensor) -> torch.Tensor:
    """The paper's transfer init: positive random weights, each row summing to 1 (mean 1/nnz)."""
    weight.uniform_(0.5, 1.5)
    weight /= weight.sum(dim=(1, 2, 3), keepdim=True)
    return weight


class SqueezeExcite(nn.Module):
    """Channel attention: x * gate(fc2(act(fc1(mean_hw(x))))); fc1/fc2 are 1x1 convs with bias (torchvision's names)."""

    def __init__(self, channels: int, squeeze: int, activation: str, gate: str) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = _ACTIVATIONS[activation]
        self.gate = _ACTIVATIONS[gate]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.activation(self.fc1(s))))


class EfficientChannelAttention(nn.Module):
    """ECA: x * sigmoid(conv1d(mean_hw(x))) with the 1-D conv sliding over the channel axis (timm's ``conv`` name)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3)).unsqueeze(1)
        return x * torch.sigmoid(self.conv(y)).squeeze(1)[:, :, None, None]


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of every pixel (ConvNeXt's LayerNorm2d), on NCHW tensors."""

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.channels = channels
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (self.channels,), self.weight, self.bias, self.eps)  # a static shape exports everywhere
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """A learned per-channel scale, initialised to ``init`` (ConvNeXt's 1e-6)."""

    def __init__(self, channels: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * x


class DropPath(nn.Module):
    """Stochastic depth: in training, zero the whole branch of a sample with probability p (rescaled); eval: identity."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
        return x * mask / keep


_ACTIVATIONS: dict[str, Callable] = {"relu": torch.relu, "relu6": F.relu6, "silu": F.silu, "gelu": F.gelu,
                                     "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "sigmoid": torch.sigmoid}


def _avgpool(a: Mapping[str, Any]) -> tuple[Callable, tuple]:
    return F.avg_pool2d, (a["kernel"], a["stride"], a["padding"], a["ceil_mode"], a["count_include_pad"])


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _conv(a: Mapping[str, Any]) -> nn.Module:
    conv = nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel"], a["stride"], a["padding"],
                     groups=a["groups"], bias=a["bias"])
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


#: The initial scale of the BN after each P (an MG cycle's correction BN(P(y - R z))). At scale 1 every correction
#: enters its level at unit variance and, in training mode, each level's BNs divide the gradient by batch statistics
#: of the levels below: down a cycle of 4-5 levels the gains multiply (a converted timm RegNetX-002 at g8/θ32 had
#: 7e10 times its original's |grad|^2 on one batch, ConvNeXt 1e7). At 0.01 each cycle starts close to its fine-level
#: step plus a small coarse correction: every parameter still gets a first gradient and the correction still shows in
#: the output, and the converted zoo's |grad|^2 stays within 0.02-2.3x of the original's (tests/test_conditioning.py).
CORRECTION_BN_SCALE = 0.01

#: lowering key -> a module built from the node's attributes (parametric and stateful ops)
MODULES: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "conv": _conv,
    "batchnorm": lambda a: nn.BatchNorm2d(a["channels"], eps=a["eps"], momentum=a["momentum"]),
    "layernorm": lambda a: ChannelLayerNorm(a["channels"], a["eps"]),
    "squeeze_excite": lambda a: SqueezeExcite(a["channels"], a["squeeze"], a["activation"], a["gate"]),
    "layer_scale": lambda a: LayerScale(a["channels"], a["init"]),
    "eca": lambda a: EfficientChannelAttention(a["channels"], a["kernel"]),
    "drop_path": lambda a: DropPath(a["p"]),
    "dropout": lambda a: nn.Dropout(a["p"]),
    "linear": lambda a: nn.Linear(a["in_features"], a["out_features"], bias=a["bias"]),
    "restrict": lambda a: Restriction(a["in_channels"], a["out_channels"], a["groups"], a["permutation"], a["bias"]),
    "prolong": lambda a: Prolongation(a["in_channels"], a["out_channels"], a["groups"], a["permutation"], a["bias"]),
}

#: lowering key -> (callable, extra positional args) for parameter-free ops
FUNCTIONS: dict[str, Callable[[Mapping[str, Any]], tuple[Callable, tuple]]] = {
    **{key: (lambda fn: lambda a: (fn, ()))(fn) for key, fn in _ACTIVATIONS.items() if key != "gelu"},
    "gelu": lambda a: (F.gelu, ()) if a["approximate"] == "none" else (_gelu_tanh, ()),
    "leaky_relu": lambda a: (F.leaky_relu, (a["negative_slope"],)),
    "avgpool": _avgpool,
    "mul": lambda a: (operator.mul, ()),
    "maxpool": lambda a: (F.max_pool2d, (a["kernel"], a["stride"], a["padding"])),
    "global_avgpool": lambda a: (F.adaptive_avg_pool2d, (1,)),
    "flatten": lambda a: (torch.flatten, (1,)),
}

#: lowering keys with their own code in :func:`lower_to_torch` (graph structure, not layers)
STRUCTURAL = frozenset({"input", "output", "opaque", "add", "sub", "concat"})


def implemented() -> frozenset[str]:
    """Every lowering key this backend implements (a test compares it with ``ir.ops.LOWERINGS``)."""
    return frozenset(MODULES) | frozenset(FUNCTIONS) | STRUCTURAL


def _py(name: str) -> str:
    """A Python identifier for a node name, so generated code reads like the IR."""
    return name.replace(".", "_")


def _install(root: nn.Module, path: str, module: nn.Module) -> None:
    parent = root
    *scopes, leaf = path.split(".")
    for s in scopes:
        if not hasattr(parent, s):
            parent.add_module(s, nn.Module())
        parent = getattr(parent, s)
    parent.add_module(leaf, module)


def lower_to_torch(graph: Graph, *, opaque: Mapping[str, nn.Module] | None = None, seed: int | None = None) -> fx.GraphModule:
    """Build the module of a fully expanded graph (no macros; shapes inferred).

    ``opaque`` maps the ``target`` of each ``opaque`` node to the original module it
    stands for. ``seed`` makes the initialisation deterministic (default: the spec's).
    """
    if seed is None:
        seed = int((graph.meta_graph.spec or {}).get("seed", 0))
    root = nn.Module()
    fg = fx.Graph()
    values: dict[str, fx.Node] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in graph.nodes():
            op, a, args = graph.op(name), graph.attrs(name), [values[i] for i in graph.inputs(name)]
            key = opdef(op).lowering
            if key == "input":
                values[name] = fg.placeholder(_py(name))
            elif key == "output":
                fg.output(args[0])
            elif key == "opaque":
                if opaque is None or a["target"] not in opaque:
                    raise GraphError(f"opaque node {name!r} needs module {a['target']!r}, which was not supplied")
                _install(root, name, opaque[a["target"]])
                values[name] = fg.call_module(name, tuple(args))
            elif key in MODULES:
                module = MODULES[key](a)
                if Role.CORRECTION_BN in graph.roles(name):
                    nn.init.constant_(module.weight, CORRECTION_BN_SCALE)
                _install(root, name, module)
                values[name] = fg.call_module(name, tuple(args))
            elif key in ("add", "sub"):
                fn = operator.add if key == "add" else operator.sub
                acc = args[0]
                for other in args[1:]:
                    acc = fg.create_node("call_function", fn, (acc, other), name=_py(name))
                values[name] = acc
            elif key == "concat":
                values[name] = fg.create_node("call_function", torch.cat, (args, 1), name=_py(name))
            elif key in FUNCTIONS:
                fn, extra = FUNCTIONS[key](a)
                values[name] = fg.create_node("call_function", fn, (*args, *extra), name=_py(name))
            else:
                raise GraphError(f"op {op!r} (lowering {key!r}) has no PyTorch lowering; expand macros first")
    fg.lint()
    gm = fx.GraphModule(root, fg, class_name="MGNet")
    gm.mg_values = {name: node.name for name, node in values.items()}  # IR node -> fx node (taps, calibration)
    return gm


class TorchBackend:
    """The PyTorch backend (:class:`~mgcompile.backends.backend.Backend`): an ``fx.GraphModule`` per graph."""

    name = "torch"

    def lowerings(self) -> frozenset[str]:
        return implemented()

    def lower(self, graph: Graph, *, opaque: Mapping[str, nn.Module] | None = None,
              seed: int | None = None) -> fx.GraphModule:
        return lower_to_torch(graph, opaque=opaque, seed=seed)


backend = TorchBackend()


def attach(model: nn.Module, graph: Graph, spec: Spec | None) -> nn.Module:
    """Remember where a module came from, so :func:`mgcompile.save` can store it."""
    model.mg_graph = graph  # type: ignore[attr-defined]
    model.mg_spec = spec  # type: ignore[attr-defined]
    return model
