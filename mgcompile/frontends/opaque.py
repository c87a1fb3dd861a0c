"""Recipes for the opaque layers of a converted model: how to rebuild them without pickles.

A saved model stores, per opaque layer, the importable path of its class and the
constructor arguments read back from the instance (``{"class": "pkg.mod:Name",
"kwargs": {...}}``); :func:`mgcompile.load` rebuilds the layer from that and then
loads its weights from the state dict. Arguments are read from attributes of the
same name as the ``__init__`` parameters (the common ``self.channels = channels``
style); a class may instead define ``mg_init_kwargs() -> dict``. Values are JSON
scalars, lists, or classes (``{"__class__": "torch.nn:ReLU"}``).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping

from torch import nn

from mgcompile.errors import MGCompileError

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


def rebuild_opaque_modules(records: Mapping[str, Mapping[str, Any]]) -> dict[str, nn.Module]:
    """target -> freshly constructed module (weights come from the state dict afterwards)."""
    out: dict[str, nn.Module] = {}
    for target, rec in records.items():
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
