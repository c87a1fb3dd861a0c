"""How the opaque layers of a converted model are stored so that they reload exactly, without pickles.

A saved model stores, per opaque layer, the importable path of its class and the
constructor arguments read back from the instance (``{"class": "pkg.mod:Name",
"kwargs": {...}}``); :func:`mgcompile.load` rebuilds the layer from that and then
loads its weights from the state dict. Arguments are read from attributes of the
same name as the ``__init__`` parameters (the common ``self.channels = channels``
style); a class may instead define ``mg_init_kwargs() -> dict``. Values are JSON
scalars, lists, or classes (``{"__class__": "torch.nn:ReLU"}``).

Reading arguments back can be wrong (an argument not stored under its own name takes
its default: timm's ``BatchNormAct2d(act_layer=nn.SiLU)`` would come back with ReLU).
So :func:`store_opaque` proves each rebuild at save time: it rebuilds the layer, loads
its weights and compares its output with the layer's own on the input it receives from
the saved model's reference input. A layer that does not reproduce exactly is stored
as TorchScript instead (``torch.jit.trace`` in eval mode, checked the same way at two
batch sizes; its training-mode behaviour, e.g. a dropout inside it, is then the traced
eval behaviour); one that cannot be traced either is refused in one line naming it.
"""

from __future__ import annotations

import importlib
import inspect
import io
import warnings
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from mgcompile.errors import MGCompileError, first_line

if TYPE_CHECKING:
    from mgcompile.ir.graph import Graph

_SCALARS = (bool, int, float, str, type(None))


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _encode(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    if isinstance(value, type) and issubclass(value, nn.Module):
        return {"__class__": _class_path(value)}
    raise TypeError(type(value).__name__)


def _known_kwargs(module: nn.Module) -> dict[str, Any] | None:
    """Constructor arguments of library classes that do not keep them as attributes."""
    try:
        from torchvision.ops.misc import SqueezeExcitation
    except ImportError:  # torchvision is optional for this module
        return None
    if type(module) is SqueezeExcitation:
        return {"input_channels": module.fc1.in_channels, "squeeze_channels": module.fc1.out_channels,
                "activation": type(module.activation), "scale_activation": type(module.scale_activation)}
    return None


def opaque_record(module: nn.Module) -> dict[str, Any]:
    """How to rebuild ``module``: class path plus kwargs, or a reason why it cannot be rebuilt."""
    cls = type(module)
    record: dict[str, Any] = {"class": _class_path(cls), "kwargs": None}
    kwargs = module.mg_init_kwargs() if hasattr(module, "mg_init_kwargs") else _known_kwargs(module)
    if kwargs is None:
        kwargs = {}
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if hasattr(module, p.name):
                kwargs[p.name] = getattr(module, p.name)
            elif p.default is p.empty:
                record["why"] = f"its __init__ argument {p.name!r} is not stored as an attribute"
                return record
    try:
        record["kwargs"] = {k: _encode(v) for k, v in kwargs.items()}
    except TypeError as exc:
        record["why"] = f"an __init__ argument of type {exc} cannot be stored"
    return record


def opaque_records(modules: Mapping[str, nn.Module]) -> dict[str, dict[str, Any]]:
    return {target: opaque_record(m) for target, m in sorted(modules.items())}


def _import(path: str, target: str) -> Any:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise MGCompileError(
            f"opaque layer {target!r} needs {path}, which cannot be imported ({type(exc).__name__}: {exc}); "
            f"make module {module_name!r} importable, or pass opaque={{{target!r}: module}} to mgcompile.load"
        ) from None
    return obj


def _decode(value: Any, target: str) -> Any:
    if isinstance(value, dict) and set(value) == {"__class__"}:
        return _import(value["__class__"], target)
    return value


def rebuild_opaque_modules(records: Mapping[str, Mapping[str, Any]],
                           scripts: Mapping[str, torch.Tensor] | None = None) -> dict[str, nn.Module]:
    """target -> freshly constructed module, or the stored TorchScript (weights come from the state dict afterwards)."""
    out: dict[str, nn.Module] = {}
    for target, data in (scripts or {}).items():
        out[target] = _load_script(data, target)
    for target, rec in records.items():
        if target in out:
            continue
        cls = _import(rec["class"], target)
        if rec.get("kwargs") is None:
            raise MGCompileError(f"opaque layer {target!r} ({rec['class']}) cannot be rebuilt: {rec.get('why')}; "
                                 f"pass opaque={{{target!r}: module}} to mgcompile.load")
        try:
            out[target] = cls(**{k: _decode(v, target) for k, v in rec["kwargs"].items()})
        except Exception as exc:
            raise MGCompileError(f"opaque layer {target!r}: {rec['class']}(**{rec['kwargs']}) failed ({exc}); "
                                 f"pass opaque={{{target!r}: module}} to mgcompile.load") from None
    return out


def _load_script(data: torch.Tensor, target: str) -> nn.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it still loads
            return torch.jit.load(io.BytesIO(data.numpy().tobytes()), map_location="cpu")
    except Exception as exc:
        raise MGCompileError(f"opaque layer {target!r}: its stored TorchScript does not load ({first_line(exc, 120)}); "
                             "the file is damaged, convert the model again") from None


def _script_bytes(module: nn.Module) -> torch.Tensor:
    buffer = io.BytesIO()
    torch.jit.save(module.cpu() if _on_gpu(module) else module, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


def _on_gpu(module: nn.Module) -> bool:
    return any(t.device.type != "cpu" for t in list(module.parameters()) + list(module.buffers()))


def _reproduces(candidate: nn.Module, original: nn.Module, inputs: list[torch.Tensor], exact: bool) -> bool:
    with torch.no_grad():
        for x in inputs:
            want, got = original(x), candidate(x)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                return False
            if not (torch.equal(got, want) if exact else torch.allclose(got, want, rtol=1e-5, atol=1e-6)):
                return False
    return True


def _rebuilt(record: Mapping[str, Any], module: nn.Module, target: str, device: torch.device) -> nn.Module | None:
    if record.get("kwargs") is None:
        return None
    try:
        fresh = rebuild_opaque_modules({target: record})[target]
        fresh.load_state_dict(module.state_dict())
    except (MGCompileError, RuntimeError, TypeError, ValueError):
        return None
    return fresh.to(device).eval()


def store_opaque(model: nn.Module, graph: "Graph", reference: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The model's eval-mode output on ``reference`` and, per opaque layer that does not rebuild exactly from its
    record, its TorchScript bytes (see the module docstring). The model's mode is left as it was."""
    nodes = {graph.attrs(n)["target"]: n for n in graph.nodes("opaque")}
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for target, node in nodes.items():
        def hook(m: nn.Module, args: tuple, target: str = target) -> None:
            if target not in seen and args and isinstance(args[0], torch.Tensor):
                seen[target] = args[0].detach().clone()
        if not isinstance(model.get_submodule(node), torch.jit.ScriptModule):  # (those need no input: kept as they are)
            hooks.append(model.get_submodule(node).register_forward_pre_hook(hook))
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        with torch.no_grad():
            output = model(reference.to(device)).detach().cpu()
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    records = graph.meta_graph.opaque
    scripts: dict[str, torch.Tensor] = {}
    for target, node in nodes.items():
        module = model.get_submodule(node)
        x = seen.get(target)  # on the layer's own device
        if isinstance(module, torch.jit.ScriptModule):  # stored as TorchScript before: keep that form
            scripts[target] = _script_bytes(module)
            continue
        if x is None:
            continue
        inputs = [x, torch.cat([x, x.flip(0) * 0.5])]
        mode = module.training
        module.eval()
        try:
            fresh = _rebuilt(records.get(target, {}), module, target, x.device)
            if fresh is not None and _reproduces(fresh, module, inputs, exact=True):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(module, (x,), check_trace=False)
            except Exception as exc:
                raise MGCompileError(f"opaque layer {target!r} ({type(module).__name__}) cannot be stored so that it "
                                     f"reloads exactly: its constructor arguments cannot be read back and "
                                     f"torch.jit.trace fails ({first_line(exc, 100)}); give the class an "
                                     "mg_init_kwargs() method") from None
            if not _reproduces(traced, module, inputs, exact=False):
                raise MGCompileError(f"opaque layer {target!r} ({type(module).__name__}) cannot be stored so that it "
                                     "reloads exactly (its traced form differs from it); give the class an "
                                     "mg_init_kwargs() method")
            scripts[target] = _script_bytes(traced)
        finally:
            module.train(mode)
    return output, scripts
