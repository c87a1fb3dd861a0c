"""nn.Module -> primitive IR, by torch.fx tracing plus one shape-propagation run.

Rules:

1. ``torch.fx.symbolic_trace`` the module. A submodule whose ``forward`` fx cannot
   trace (data-dependent control flow, ...) is retried as a leaf: it becomes one
   ``opaque`` node. A submodule whose traced body uses an op the IR does not know
   (``torch.sigmoid``, ``x * s``, tuple indexing, ...) also becomes a leaf, the
   innermost such module, so every part of the network survives import.
2. A module call becomes one IR node named after the module's qualified name
   (``layer1.0.conv1``); a second call of the same module gets ``_1``, ``_2``.
   Function and method calls (``F.relu``, ``torch.add``, ``+``, ``x.view(n, -1)``)
   are named ``<scope>.<fx name>`` where scope is the module they ran in.
3. The IR shape of a tensor is its per-sample shape padded to (C, H, W):
   (N, F) -> (F, 1, 1). Opaque nodes take their ``out_shape`` from a forward run
   with ``example_input``.
4. Each node remembers the original module in ``meta["source"]`` so a converter can
   copy its weights into the lowered model.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from mgcompile.errors import MGCompileError, first_line
from mgcompile.ir.graph import Graph

_MAX_RETRACES = 64


@dataclass
class ImportedModule:
    """The imported IR, the (copied) module it came from, and its opaque leaves by target name."""

    graph: Graph
    module: nn.Module
    opaque: dict[str, nn.Module] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Unknown(Exception):
    """An fx node the IR has no op for; carries the module scope it ran in."""

    def __init__(self, scope: str, what: str) -> None:
        super().__init__(what)
        self.scope = scope
        self.what = what


class _LeafTracer(fx.Tracer):
    def __init__(self, leaves: set[str]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self.leaves or super().is_leaf_module(m, qualname)


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
        unknown = _unknown_scopes(gm)
        if unknown and "" not in unknown:
            for scope, what in sorted(unknown.items()):
                leaves.add(scope)
                notes.append(f"{scope}: kept as an opaque layer (uses {what})")
            continue
        try:
            graph, opaque = _to_ir(gm, module, example_input)
        except _Unknown as exc:
            if not exc.scope:
                raise MGCompileError(
                    f"the model's own forward uses {exc.what}, which the IR does not model; "
                    "move it into a submodule so it can be kept as an opaque layer"
                ) from None
            leaves.add(exc.scope)
            notes.append(f"{exc.scope}: kept as an opaque layer (uses {exc.what})")
            continue
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


# ---- fx node -> IR op ----------------------------------------------------------------------------

def _tensor_shape(node: fx.Node) -> tuple[int, ...] | None:
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        return None
    return tuple(int(s) for s in tm.shape)


def ir_shape(shape: tuple[int, ...]) -> list[int]:
    """Per-sample shape padded to (C, H, W); (N, F) -> (F, 1, 1)."""
    rest = list(shape[1:])
    if len(rest) > 3 or not rest:
        raise MGCompileError(f"a layer outputs a tensor of shape {shape}; the IR models NCHW and NF tensors only")
    return rest + [1] * (3 - len(rest))


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    qualname = list(stack.values())[-1][0]
    if node.op == "call_module":
        entries = list(stack.values())
        return entries[-2][0] if len(entries) > 1 else ""
    return qualname


def _pair(v: Any) -> int | None:
    """An int from an int or a square pair; ``None`` for non-square values."""
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1] and isinstance(v[0], int):
        return v[0]
    return None


def module_op(m: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """(IR op, attrs) for a module the IR models exactly; ``None`` keeps it opaque."""
    if type(m) is nn.Conv2d:
        k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
        if None in (k, s, p) or _pair(m.dilation) != 1 or m.padding_mode != "zeros":
            return None
        return "conv", dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel=k, stride=s, padding=p,
                            groups=m.groups, bias=m.bias is not None)
    if type(m) is nn.BatchNorm2d:
        if not (m.affine and m.track_running_stats) or m.momentum is None:
            return None
        return "batchnorm", dict(channels=m.num_features, eps=float(m.eps), momentum=float(m.momentum))
    if type(m) is nn.ReLU:
        return "relu", {}
    if type(m) is nn.ReLU6:
        return "relu6", {}
    if type(m) is nn.Linear:
        return "linear", dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    if type(m) in (nn.MaxPool2d, nn.AvgPool2d):
        k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
        if None in (k, s, p) or m.ceil_mode:
            return None
        if isinstance(m, nn.MaxPool2d) and (_pair(m.dilation) != 1 or m.return_indices):
            return None
        if isinstance(m, nn.AvgPool2d) and (not m.count_include_pad or m.divisor_override is not None):
            return None
        return ("maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"), dict(kernel=k, stride=s, padding=p)
    if type(m) is nn.AdaptiveAvgPool2d and _pair(m.output_size) == 1:
        return "global_avgpool", {}
    if type(m) is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
        return "flatten", {}
    if type(m) is nn.Dropout:
        return "dropout", dict(p=float(m.p))
    if type(m) is nn.Identity:
        return "identity", {}
    return None


_RELU = {F.relu, torch.relu, torch.relu_}
_ADD = {operator.add, operator.iadd, torch.add}
_SUB = {operator.sub, operator.isub, torch.sub}


def _arg(node: fx.Node, i: int, key: str, default: Any) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def function_op(node: fx.Node, shapes: Callable[[Any], tuple[int, ...] | None]) -> tuple[str, dict, list] | None:
    """(IR op, attrs, tensor inputs) for a call_function/call_method node, or ``None`` when unknown."""
    t, args = node.target, node.args
    x = args[0] if args else None
    method = node.op == "call_method"
    if (not method and t in _RELU) or (method and t in ("relu", "relu_")):
        return "relu", {}, [x]
    if not method and t is F.relu6:
        return "relu6", {}, [x]
    if ((not method and t in _ADD) or (method and t in ("add", "add_"))) and len(args) == 2 and "alpha" not in node.kwargs:
        if all(isinstance(a, fx.Node) and shapes(a) is not None for a in args):
            return "add", {}, list(args)
        return None
    if ((not method and t in _SUB) or (method and t in ("sub", "sub_"))) and len(args) == 2 and "alpha" not in node.kwargs:
        if all(isinstance(a, fx.Node) and shapes(a) is not None for a in args):
            return "sub", {}, list(args)
        return None
    if not method and t is torch.cat:
        parts = _arg(node, 0, "tensors", [])
        if _arg(node, 1, "dim", 0) in (1, -3) and len(parts) >= 2 and all(len(shapes(p) or ()) == 4 for p in parts):
            return "concat", {}, list(parts)
        return None
    if (not method and t is torch.flatten) or (method and t == "flatten"):
        if _arg(node, 1, "start_dim", 0) == 1 and _arg(node, 2, "end_dim", -1) == -1:
            return "flatten", {}, [x]
        return None
    if method and t in ("view", "reshape") or (not method and t is torch.reshape):
        out, inp = shapes(node), shapes(x)
        if out is not None and inp is not None and len(out) == 2 and out[0] == inp[0]:
            return "flatten", {}, [x]
        return None
    if not method and t is F.adaptive_avg_pool2d and _pair(_arg(node, 1, "output_size", None)) == 1:
        return "global_avgpool", {}, [x]
    if (not method and t is torch.mean) or (method and t == "mean"):
        dims = _arg(node, 1, "dim", None)
        if isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3] and len(shapes(x) or ()) == 4:
            keep = bool(_arg(node, 2, "keepdim", False))
            return ("global_avgpool" if keep else "global_avgpool+flatten"), {}, [x]
        return None
    if not method and t in (F.max_pool2d, F.avg_pool2d):
        k = _pair(_arg(node, 1, "kernel_size", None))
        s = _arg(node, 2, "stride", None)
        s = k if s is None or s == [] or s == () else _pair(s)
        p = _pair(_arg(node, 3, "padding", 0))
        ceil = _arg(node, 5 if t is F.max_pool2d else 4, "ceil_mode", False)
        if None in (k, s, p) or ceil:
            return None
        if t is F.max_pool2d and (_pair(_arg(node, 4, "dilation", 1)) != 1 or _arg(node, 6, "return_indices", False)):
            return None
        if t is F.avg_pool2d and (not _arg(node, 5, "count_include_pad", True) or _arg(node, 6, "divisor_override", None)):
            return None
        return ("maxpool" if t is F.max_pool2d else "avgpool"), dict(kernel=k, stride=s, padding=p), [x]
    if not method and t is F.dropout:
        return "dropout", dict(p=float(_arg(node, 1, "p", 0.5))), [x]
    return None


def _unknown_scopes(gm: fx.GraphModule) -> dict[str, str]:
    """Innermost module scope -> first op in it that the IR cannot model."""
    found: dict[str, str] = {}
    for node in gm.graph.nodes:
        what = None
        if node.op == "get_attr":
            what = _describe(node)
        elif node.op in ("call_function", "call_method"):
            if _tensor_shape(node) is None and node.target in (getattr, "size", "dim"):
                continue
            if _tensor_shape(node) is None or function_op(node, lambda v: _tensor_shape(v) if isinstance(v, fx.Node) else None) is None:
                what = _describe(node)
        if what is not None:
            found.setdefault(_scope(node), what)
    return found


def _describe(node: fx.Node) -> str:
    t = node.target
    if node.op == "call_method":
        return f"Tensor.{t}"
    if node.op == "get_attr":
        return f"a direct parameter access ({t})"
    return getattr(t, "__qualname__", None) or getattr(t, "__name__", None) or str(t)


def _to_ir(gm: fx.GraphModule, root: nn.Module, example_input: torch.Tensor) -> tuple[Graph, dict[str, nn.Module]]:
    g = Graph({"notes": [], "steps": {}})
    values: dict[fx.Node, str] = {}
    opaque: dict[str, nn.Module] = {}
    calls: dict[str, int] = {}

    def shapes(v: Any) -> tuple[int, ...] | None:
        return _tensor_shape(v) if isinstance(v, fx.Node) else None

    def unique(name: str) -> str:
        candidate, k = name, 0
        while candidate in g:
            k += 1
            candidate = f"{name}_{k}"
        return candidate

    def meta(source: str | None, scope: str) -> dict:
        path = source or scope
        m: dict[str, Any] = {"stage": path.split(".")[0] if path else "other"}
        if source:
            m["source"] = source
        return m

    def ins(args: list) -> list[str]:
        out = []
        for a in args:
            if not isinstance(a, fx.Node) or a not in values:
                raise _Unknown(_scope_of_user, "a non-tensor argument")
            out.append(values[a])
        return out

    for node in gm.graph.nodes:
        _scope_of_user = _scope(node)
        if node.op == "placeholder":
            if values:
                raise MGCompileError("the model's forward takes more than one input; convert needs a single-input model")
            _, c, h, w = example_input.shape
            values[node] = g.add("input", "input", channels=int(c), height=int(h), width=int(w), meta={"stage": "input"})
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node) or out not in values:
                raise MGCompileError("the model must return one tensor (not a tuple or dict) to be converted")
            g.add("output", "output", [values[out]], meta={"stage": "head"})
        elif node.op == "call_module":
            target = str(node.target)
            sub = root.get_submodule(target)
            n_call = calls.get(target, 0)
            calls[target] = n_call + 1
            name = unique(target if n_call == 0 else f"{target}_{n_call}")
            shape = _tensor_shape(node)
            found = module_op(sub)
            if shape is None:
                raise _Unknown(_scope_of_user, f"module {target} returning a non-tensor")
            if found is None:
                inputs = ins(list(node.args))
                if node.kwargs:
                    raise _Unknown(_scope_of_user, f"module {target} called with keyword arguments")
                params = sum(p.numel() for p in sub.parameters())
                values[node] = g.add(name, "opaque", inputs, meta=meta(target, ""), target=target,
                                     out_shape=ir_shape(shape), params=int(params))
                opaque[target] = sub
                continue
            op, attrs = found
            (x,) = ins(list(node.args[:1]))
            if op == "identity":
                values[node] = x
                continue
            values[node] = g.add(name, op, [x], meta=meta(target, ""), **attrs)
        elif node.op in ("call_function", "call_method"):
            if _tensor_shape(node) is None and node.target in (getattr, "size", "dim"):
                continue  # shape arithmetic feeding a view/reshape
            found = function_op(node, shapes)
            if found is None or _tensor_shape(node) is None:
                raise _Unknown(_scope_of_user, _describe(node))
            op, attrs, args = found
            base = f"{_scope_of_user}.{node.name}" if _scope_of_user else node.name
            m = meta(None, _scope_of_user)
            if op == "global_avgpool+flatten":
                pooled = g.add(unique(base + "_pool"), "global_avgpool", ins(args), meta=m)
                values[node] = g.add(unique(base), "flatten", [pooled], meta=m)
            else:
                values[node] = g.add(unique(base), op, ins(args), meta=m, **attrs)
        elif node.op == "get_attr":
            raise _Unknown(_scope_of_user, _describe(node))
    return g, opaque
