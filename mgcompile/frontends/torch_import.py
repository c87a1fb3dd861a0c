"""nn.Module -> primitive IR, by torch.fx tracing plus one shape-propagation run.

Rules:

1. Trace the module with torch.fx. Modules an import rule knows
   (:data:`~mgcompile.frontends.torch_rules.MODULE_RULES`: convs, norms, fused
   norm+activation, activations, pools, DropPath, ...) are leaves; every other module
   is traced through. A submodule whose ``forward`` fx cannot trace (data-dependent
   control flow, ...) is retried as a leaf, and so is the innermost module whose traced
   body uses a call no rule models (tuple indexing, ...): it becomes one ``opaque``
   node, so every part of the network survives import.
2. A module call becomes the IR nodes of its rule, named after the module's qualified
   name (``layer1.0.conv1``; a fused norm+activation adds ``<name>.act``); a second call
   of the same module gets ``_1``, ``_2``. Function and method calls (``F.relu``, ``+``,
   ``x.view(n, -1)``) follow :data:`~mgcompile.frontends.torch_rules.FUNCTION_RULES` and
   are named ``<scope>.<fx name>`` where scope is the module they ran in; a direct
   parameter use (layer scale, LayerNorm2d's weights) is named after the parameter.
3. Tensors carry a layout while importing: channels-last regions (``permute`` to NHWC,
   LayerNorm and Linear over channels, ``permute`` back: ConvNeXt) become layernorm
   and 1x1 convs on NCHW. The IR shape is the per-sample shape as (C, H, W);
   (N, F) -> (F, 1, 1). Opaque nodes take their ``out_shape`` from a forward run.
4. Recognised compound layers are fused on the IR (:mod:`mgcompile.passes.fuse_layers`:
   squeeze-excitation).
5. Each parametric node records where its weights come from (``meta["weights"]``:
   lowered state-dict key -> the original's key) and its module (``meta["source"]``),
   so a converter copies any kept layer exactly. :func:`check_import` proves the import
   right: the imported network, lowered with those weights, reproduces the module.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from mgcompile.errors import MGCompileError, first_line
from mgcompile.passes.fuse_layers import fuse_layers
from mgcompile.frontends.torch_rules import (FLAT, NCHW, NHWC, Call, Param, Site, Value, forced_leaf, function_rule,
                                             module_rule)
from mgcompile.ir.graph import Graph

_MAX_RETRACES = 64


@dataclass
class ImportedModule:
    """The imported IR, the (copied, eval-mode) module it came from, and its opaque leaves by target name."""

    graph: Graph
    module: nn.Module
    opaque: dict[str, nn.Module] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _LeafTracer(fx.Tracer):
    def __init__(self, leaves: set[str]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self.leaves or forced_leaf(m) or super().is_leaf_module(m, qualname)


def import_module(model: nn.Module, example_input: torch.Tensor) -> ImportedModule:
    """Trace a copy of ``model`` into a primitive IR (shapes inferred from ``example_input``)."""
    if not isinstance(model, nn.Module):
        raise MGCompileError(f"convert needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        raise MGCompileError("example_input must be one NCHW tensor, e.g. torch.randn(1, 3, 224, 224)")
    module = copy.deepcopy(model).cpu().eval()
    leaves: set[str] = set()
    notes: list[str] = []
    for _ in range(_MAX_RETRACES):
        gm = _trace(module, leaves, notes)
        _propagate_shapes(gm, example_input)
        graph, opaque, unknown = _to_ir(gm, module, example_input)
        if "" in unknown:
            raise MGCompileError(f"the model's own forward uses {unknown['']}, which the IR does not model; "
                                 "move it into a submodule so it can be kept as an opaque layer")
        if unknown:
            for scope, what in sorted(unknown.items()):
                leaves.add(scope)
                notes.append(f"{scope}: kept as an opaque layer ({type(module.get_submodule(scope)).__name__} "
                             f"uses {what})")
            continue
        graph = fuse_layers(graph)
        return ImportedModule(graph, module, opaque, notes)
    raise MGCompileError("could not import the model: too many untraceable parts; pass a simpler module")


def _trace(module: nn.Module, leaves: set[str], notes: list[str]) -> fx.GraphModule:
    """Trace, turning the minimal untraceable submodules into leaves (the fallback)."""
    try:
        return fx.GraphModule(module, _LeafTracer(leaves).trace(module))
    except Exception as first:  # fx raises TraceError, TypeError, ... for untraceable code
        failing = _untraceable_submodules(module, leaves)
        if not failing:
            reason = first_line(first, 160)
            raise MGCompileError(f"torch.fx cannot trace the model's forward ({reason}); "
                                 "make its top-level forward free of data-dependent control flow") from None
        for name in failing:
            notes.append(f"{name}: kept as an opaque layer (torch.fx cannot trace its forward)")
        leaves.update(failing)
        return _trace(module, leaves, notes)


def _untraceable_submodules(module: nn.Module, leaves: set[str]) -> list[str]:
    """The outermost-failing, innermost-possible submodules: those that fail while all their children trace."""
    failing: list[str] = []
    for name, sub in module.named_modules():
        if not name or name in leaves or any(name.startswith(f + ".") for f in failing + sorted(leaves)):
            continue
        if isinstance(sub, nn.Sequential) or _LeafTracer(set()).is_leaf_module(sub, name):
            continue
        try:
            _LeafTracer(set()).trace(sub)
        except Exception:
            kids = [f"{name}.{c}" for c, _ in sub.named_children()]
            if not any(_fails(module.get_submodule(k)) for k in kids):
                failing.append(name)
    return failing


def _fails(sub: nn.Module) -> bool:
    if isinstance(sub, nn.Sequential) or _LeafTracer(set()).is_leaf_module(sub, ""):
        return False
    try:
        _LeafTracer(set()).trace(sub)
        return False
    except Exception:
        return True


def _propagate_shapes(gm: fx.GraphModule, example_input: torch.Tensor) -> None:
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input.detach().cpu())
    except Exception as exc:
        reason = first_line(exc, 160)
        raise MGCompileError(f"the model fails on example_input of shape {tuple(example_input.shape)} ({reason}); "
                             "pass an example_input the model accepts") from None


# ---- fx graph -> IR -----------------------------------------------------------------------------

def _tensor_shape(node: Any) -> tuple[int, ...] | None:
    if not isinstance(node, fx.Node):
        return None
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        return None
    return tuple(int(s) for s in tm.shape)


def ir_shape(shape: tuple[int, ...], layout: str = NCHW) -> list[int]:
    """Per-sample shape as (C, H, W): (N, F) -> (F, 1, 1); channels-last (N, H, W, C) -> (C, H, W)."""
    rest = list(shape[1:])
    if len(rest) > 3 or not rest:
        raise MGCompileError(f"a layer outputs a tensor of shape {shape}; the IR models NCHW and NF tensors only")
    if layout == NHWC:
        rest = [rest[2], rest[0], rest[1]]
    return rest + [1] * (3 - len(rest))


def _layout_of(shape: tuple[int, ...] | None) -> str | None:
    if shape is None:
        return None
    return {4: NCHW, 2: FLAT}.get(len(shape))


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    qualname = list(stack.values())[-1][0]
    if node.op == "call_module":
        entries = list(stack.values())
        return entries[-2][0] if len(entries) > 1 else ""
    return qualname


def _describe(node: fx.Node) -> str:
    t = node.target
    if node.op == "call_method":
        return f"Tensor.{t}"
    if node.op == "get_attr":
        return f"a direct attribute access ({t})"
    name = getattr(t, "__name__", None) or getattr(t, "__qualname__", None) or str(t)
    return f"torch.{name}" if getattr(torch, name, None) is t else name


_SIZE_CALLS = {getattr, operator.getitem, "size", "dim"}
_POISON = object()  # a value that depends on a call the IR cannot model


def _args(node: fx.Node) -> list[fx.Node]:
    out: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), out.append)
    return out


def _to_ir(gm: fx.GraphModule, root: nn.Module, example_input: torch.Tensor
           ) -> tuple[Graph, dict[str, nn.Module], dict[str, str]]:
    """The IR of a traced module, its opaque leaves, and scope -> first call no rule models (empty when done)."""
    return _Importer(root, example_input).run(gm)


class _Importer:
    """Reads a traced module node by node, one method per fx opcode (like ``torch.fx.Interpreter``).

    Each opcode method records the node's value (a :class:`Value` on an IR node, a :class:`Param`, or a
    passthrough) or calls :meth:`fail`; a node reading a failed value fails too, without a call.
    """

    def __init__(self, root: nn.Module, example_input: torch.Tensor) -> None:
        self.root = root
        self.example_input = example_input
        self.g = Graph()
        self.values: dict[fx.Node, Any] = {}
        self.opaque: dict[str, nn.Module] = {}
        self.unknown: dict[str, str] = {}  # scope -> the first call no rule models
        self.calls: dict[str, int] = {}  # module target -> calls seen

    def run(self, gm: fx.GraphModule) -> tuple[Graph, dict[str, nn.Module], dict[str, str]]:
        for node in gm.graph.nodes:
            scope = _scope(node)
            if any(self.values.get(a) is _POISON for a in _args(node)):
                self.values[node] = _POISON
                continue
            getattr(self, node.op)(node, scope)
        return self.g, self.opaque, self.unknown

    def fail(self, node: fx.Node, scope: str, what: str) -> None:
        self.unknown.setdefault(scope, what)
        self.values[node] = _POISON

    def unique(self, name: str) -> str:
        candidate, k = name, 0
        while candidate in self.g:
            k += 1
            candidate = f"{name}_{k}"
        return candidate

    @staticmethod
    def meta(source: str | None, scope: str, weights: dict[str, str] | None = None, cls: str | None = None) -> dict:
        path = source or scope
        m: dict[str, Any] = {"stage": path.split(".")[0] if path else "other"}
        if source:
            m["source"] = source
        if cls:
            m["class"] = cls
        if weights:
            m["weights"] = dict(weights)
        return m

    def placeholder(self, node: fx.Node, scope: str) -> None:
        if self.values:
            raise MGCompileError("the model's forward takes more than one input; convert needs a single-input model")
        _, c, h, w = self.example_input.shape
        self.values[node] = Value(self.g.add("input", "input", channels=int(c), height=int(h), width=int(w),
                                             meta={"stage": "input"}), NCHW)

    def output(self, node: fx.Node, scope: str) -> None:
        out = self.values.get(node.args[0]) if isinstance(node.args[0], fx.Node) else None
        if not isinstance(out, Value):
            raise MGCompileError("the model must return one tensor (not a tuple or dict) to be converted")
        if out.layout == NHWC:
            self.fail(node, scope, "a channels-last output")
            return
        self.g.add("output", "output", [out.node], meta={"stage": "head"})

    def get_attr(self, node: fx.Node, scope: str) -> None:
        attr = _get(self.root, str(node.target))
        if isinstance(attr, torch.Tensor):
            self.values[node] = Param(str(node.target), tuple(attr.shape))
        else:
            self.fail(node, scope, _describe(node))

    def call_module(self, node: fx.Node, scope: str) -> None:
        target = str(node.target)
        sub = self.root.get_submodule(target)
        n_call = self.calls.get(target, 0)
        self.calls[target] = n_call + 1
        name = self.unique(target if n_call == 0 else f"{target}_{n_call}")
        shape = _tensor_shape(node)
        ins = [self.values.get(a) for a in node.args]
        if shape is None or node.kwargs or not ins or not all(isinstance(v, Value) for v in ins):
            self.fail(node, scope, f"module {target} called with non-tensor arguments or returning a non-tensor")
            return
        layout = ins[0].layout
        rule = module_rule(sub)
        in_shape = _tensor_shape(node.args[0]) or (0, 0)
        site = Site(layout, in_shape[-1] if layout == NHWC else in_shape[1])
        emitted = rule[2](sub, site) if rule is not None and len(ins) == 1 else None
        if emitted is None:
            self._opaque_module(node, scope, name, sub, ins, shape)
            return
        x = ins[0].node
        for e in emitted:
            weights = {k: f"{target}.{v}" for k, v in e.weights.items()}
            m = self.meta(target, "", weights, type(sub).__name__)
            x = self.g.add(self.unique(name + e.suffix), e.op, [x], meta=m, **e.attrs)
        out_layout = FLAT if any(e.op == "flatten" for e in emitted) else layout
        self.values[node] = Value(x, out_layout)

    def _opaque_module(self, node: fx.Node, scope: str, name: str, sub: nn.Module, ins: list[Value],
                       shape: tuple[int, ...]) -> None:
        """A module no rule models (or called with several tensors): one ``opaque`` node, its output shape measured."""
        target = str(node.target)
        out_layout = _layout_of(shape)
        if out_layout is None or any(v.layout == NHWC for v in ins):
            self.fail(node, scope, f"module {target} ({type(sub).__name__}) on a {ins[0].layout} tensor")
            return
        params = sum(p.numel() for p in sub.parameters())
        self.values[node] = Value(self.g.add(name, "opaque", [v.node for v in ins],
                                             meta=self.meta(target, "", cls=type(sub).__name__), target=target,
                                             out_shape=ir_shape(shape), params=int(params)), out_layout)
        self.opaque[target] = sub

    def call_function(self, node: fx.Node, scope: str) -> None:
        shape = _tensor_shape(node)
        if shape is None and node.target in _SIZE_CALLS:
            return  # shape arithmetic feeding a view/reshape
        rule = function_rule(node)
        res = rule[2](Call(node, _tensor_shape, self.values)) if rule is not None else None
        if res is None:
            self.fail(node, scope, _describe(node))
            return
        if res.passthrough is not None:
            self.values[node] = res.passthrough
            return
        if shape is None:
            self.fail(node, scope, _describe(node))
            return
        layout = res.layout or res.inputs[0].layout
        owner = next(iter(res.weights.values()), "").rsplit(".", 1)[0] if res.weights else None
        base = (f"{scope}.{node.name}" if scope else node.name) if not res.weights else (
            next(iter(res.weights.values())) if res.op == "layer_scale" else owner)
        m = self.meta(owner, scope, res.weights)
        ins = [v.node for v in res.inputs]
        if res.op == "global_avgpool+flatten":
            pooled = self.g.add(self.unique(base + "_pool"), "global_avgpool", ins, meta=m)
            self.values[node] = Value(self.g.add(self.unique(base), "flatten", [pooled], meta=m), FLAT)
        else:
            self.values[node] = Value(self.g.add(self.unique(base), res.op, ins, meta=m, **res.attrs), layout)

    call_method = call_function  # FUNCTION_RULES key methods (``x.view``) and functions alike


def _get(root: nn.Module, path: str) -> Any:
    obj: Any = root
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


# ---- weights and the import check ---------------------------------------------------------------

def copy_weights(graph: Graph, original: nn.Module, lowered: nn.Module, nodes: list[str] | None = None) -> list[str]:
    """Load every imported node's weights from the original module (``meta["weights"]``); returns their sources.

    Weights are reshaped where the IR writes a layer differently (a channels-last Linear
    is a 1x1 conv); a lowered key the original lacks keeps its initial value.
    """
    state = original.state_dict()
    copied: list[str] = []
    with torch.no_grad():
        for n in nodes if nodes is not None else graph.nodes():
            weights = graph.meta(n).get("weights")
            if not weights:
                continue
            target = lowered.get_submodule(n)
            own = target.state_dict()
            for key, src in weights.items():
                if key not in own or src not in state:
                    continue
                value = state[src]
                if own[key].numel() != value.numel():
                    raise MGCompileError(f"cannot copy {src} {tuple(value.shape)} into {n}.{key} {tuple(own[key].shape)}")
                _set(target, key, value.reshape(own[key].shape))
            copied.append(graph.meta(n).get("source", n))
    return copied


def _set(module: nn.Module, key: str, value: torch.Tensor) -> None:
    *path, leaf = key.split(".")
    for p in path:
        module = getattr(module, p)
    getattr(module, leaf).copy_(value)


def check_import(imported: ImportedModule, example_input: torch.Tensor, atol: float = 1e-4) -> None:
    """The imported network, lowered with the original's weights, must reproduce the original (in eval mode).

    A mismatch means an import rule misread a layer: an internal error, never a silently different network.
    """
    from mgcompile.backends.torch_module import lower_to_torch
    from mgcompile.errors import InternalError
    from mgcompile.passes.pipeline import run_passes

    base = lower_to_torch(run_passes(imported.graph.copy()), opaque=imported.opaque)
    copy_weights(imported.graph, imported.module, base)
    base.eval()
    x = example_input.detach().cpu()
    with torch.no_grad():
        want, got = imported.module(x), base(x)
    err = (want - got).abs().max().item() / max(1e-12, want.abs().max().item())
    if not err <= atol:
        raise InternalError(f"the imported network differs from the module (max rel. error {err:.2e}): an import rule "
                            "misread a layer; please report it with the model")


@torch.no_grad()
def fingerprint(module: nn.Module, input_shape: tuple[int, ...]) -> list[float]:
    """The original's eval-mode output on one fixed input: 16 values and the norm, stored with the conversion so
    that a calibration can tell the network it was converted from from another of the same architecture."""
    x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(20261208))
    was = module.training
    out = module.eval()(x).flatten().double()
    module.train(was)
    return [float(v) for v in out[:16]] + [float(out.norm())]
