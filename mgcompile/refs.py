"""Resolve what a user names on the command line (REF) to a spec, an IR and a module.

A REF is, in this order: a folder or ``.pt`` written by ``mgcompile convert``; a spec
file (``.yaml``/``.json``); a registry name, MG name or shipped spec name
(``mgcompile list``); a torchvision model name (``wide_resnet50_2``, or
``torchvision:resnet34`` to force that route); ``module:callable`` returning an
``nn.Module`` (``mypkg.models:make_net``). The last two are converted from the module
(:func:`mgcompile.convert`), keeping the weights of every layer that is not replaced.

A name that is both a registry name and a torchvision model (``resnet34``,
``mobilenet_v2``) takes the spec route: the same architecture and parameter count as
converting torchvision's module, but every layer freshly initialised from the seed.
``torchvision:resnet34`` converts the torchvision module instead (layers kept from it,
which is what matters once it holds trained weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from mgcompile.api import build, expand, load, load_payload, spec_of
from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.multigrid import ConversionOptions, MGParams, cli_fields
from mgcompile.registry import MG_NAME, list_models, model_spec
from mgcompile.spec import Spec


@dataclass
class Resolved:
    """A resolved REF: its spec (when it has one), expanded IR, and a way to get the module."""

    ref: str
    kind: str  # "saved" | "spec" | "registry" | "torch"
    spec: Spec | None
    graph: Graph
    path: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] | None = None  # a saved model's reference input and output (``mgcompile.save``)
    trained: bool = False  # a saved model written by ``mgcompile train`` (its weights are trained, not fresh)
    _model: nn.Module | None = None

    @property
    def fresh_cycles(self) -> bool:
        """Its MG cycles hold fresh (random-init) weights: not trained, not warm-started from a base network."""
        if self.kind == "saved" and self.trained:
            return False
        return (self.graph.meta_graph.conversion or {}).get("init", "random") == "random"

    def model(self) -> nn.Module:
        """The module (weights loaded for saved models; fresh, seeded init otherwise)."""
        if self._model is None:
            self._model = load(self.path) if self.kind == "saved" else build(self.graph)
        return self._model


def is_saved_model(ref: str) -> bool:
    p = Path(ref)
    return (p.is_dir() and (p / "model.pt").is_file()) or (p.is_file() and p.suffix == ".pt")


def torchvision_models() -> list[str]:
    """Every classification model torchvision registers (its own registry, not a hand-kept list)."""
    from torchvision import models

    return models.list_models(module=models)


# What the module route passes on: the MG fields that are flags (MGParams' ``cli`` metadata), ``seed`` (``--seed``,
# the MG seed) and ``init``; ``ignored_layers``/``min_channels`` join ``init`` in a ConversionOptions.
_MG_KEYS = tuple(f.name for f in cli_fields())
_CONVERT_KEYS = (*_MG_KEYS, "seed", "init")


def resolve(ref: str, *, ignored_layers: tuple[str, ...] = (), min_channels: int = 0, **overrides: Any) -> Resolved:
    """Resolve ``ref``; ``overrides`` are spec fields from CLI flags (``None`` = not given).

    ``ignored_layers`` / ``min_channels`` select which residual steps become MG cycles
    (spec fields for spec and registry REFs, converter options for modules).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides.get("init") == "random":
        overrides.pop("init")  # the default everywhere
    if ignored_layers:
        overrides["ignored_layers"] = tuple(ignored_layers)
    if min_channels:
        overrides["min_channels"] = min_channels
    p = Path(ref)
    if "init" in overrides and not (is_saved_model(ref) or ref.startswith(("torchvision:", "timm:"))
                                    or (":" in ref and not p.exists())
                                    or (ref not in {e.name for e in list_models()} and not p.exists()
                                        and ref in torchvision_models())):
        raise MGCompileError(f"--init {overrides['init']} starts converted cycles from an existing module's weights; "
                             f"{ref} is built from a spec with fresh weights (use torchvision:NAME, timm:NAME, "
                             "module:callable or a trained run folder)")
    if is_saved_model(ref):
        payload = load_payload(ref)
        graph = Graph.from_dict(payload["graph"])
        if overrides and "group_size" in overrides and graph.meta_graph.multigrid is None:
            return _convert_saved(ref, graph, overrides)  # a trained base network: convert it, keeping its weights
        if overrides:
            what = "an already converted model" if graph.meta_graph.multigrid is not None else "a saved network"
            raise MGCompileError(
                f"{ref} is {what}; options {', '.join(sorted(overrides))} cannot change it. "
                + ("Convert the base network again with the new options" if graph.meta_graph.multigrid is not None
                   else "Give --group-size to convert it to its MG version (its trained layers are kept)")
            )
        return Resolved(ref, "saved", spec_of(graph), graph, path=p, reference=payload.get("reference"),
                        trained=bool(payload.get("trained", False)))
    if p.is_dir():
        raise MGCompileError(f"{ref} is a folder without model.pt; pass a folder written by `mgcompile convert`")
    if p.suffix in (".yaml", ".yml", ".json") or p.is_file():
        spec = Spec.from_file(p)
        spec = spec.replace(**overrides) if overrides else spec
        return Resolved(ref, "spec", spec, expand(spec))
    registered = {e.name for e in list_models()}
    if ref.startswith("torchvision:"):
        name = ref.split(":", 1)[1]
        return _convert_module(ref, name, torchvision_module(name, overrides), overrides)
    if ref.startswith("timm:"):
        name = ref.split(":", 1)[1]
        return _convert_module(ref, name, timm_module(name, overrides), overrides)
    if ":" in ref:
        return _convert_module(ref, ref.split(":", 1)[1], user_module(ref, overrides), overrides)
    if ref in registered or MG_NAME.match(ref) or "/" in ref or ref not in torchvision_models():
        spec = model_spec(ref, **overrides)
        return Resolved(ref, "registry", spec, expand(spec))
    return _convert_module(ref, ref, torchvision_module(ref, overrides), overrides)


def torchvision_module(name: str, overrides: dict[str, Any]) -> nn.Module:
    import difflib

    import torchvision

    known = torchvision_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise MGCompileError(f"torchvision has no classification model {name!r}; {hint}"
                             f"torchvision {torchvision.__version__} registers {len(known)} (torchvision.models.list_models())")
    kwargs: dict[str, Any] = {"weights": None}
    if "num_classes" in overrides:
        kwargs["num_classes"] = overrides["num_classes"]
    if "width_mult" in overrides:
        if not name.startswith("mobilenet"):
            raise MGCompileError(f"--width-mult applies to mobilenet models, not torchvision {name}")
        kwargs["width_mult"] = float(overrides["width_mult"])
    return torchvision.models.get_model(name, **kwargs)


def timm_module(name: str, overrides: dict[str, Any]) -> nn.Module:
    """A timm model with fresh weights (nothing is downloaded: ``pretrained=False``)."""
    import difflib
    import importlib.util

    if importlib.util.find_spec("timm") is None:
        raise MGCompileError(f"timm:{name} needs timm, which is not installed; pip install 'mgcompile[timm]'")
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise MGCompileError(f"timm has no model {name!r}; {hint}timm.list_models() lists them")
    if "width_mult" in overrides:
        raise MGCompileError(f"--width-mult cannot be passed to timm:{name}; pick the timm model of the width you want")
    kwargs: dict[str, Any] = {"pretrained": False}
    if "num_classes" in overrides:
        kwargs["num_classes"] = overrides["num_classes"]
    if "in_channels" in overrides:
        kwargs["in_chans"] = overrides["in_channels"]
    return timm.create_model(name, **kwargs)


def user_module(ref: str, overrides: dict[str, Any]) -> nn.Module:
    import importlib

    module_name, _, attr = ref.partition(":")
    extra = sorted(set(overrides) & {"num_classes", "width_mult"})
    if extra:
        raise MGCompileError(f"options {', '.join(extra)} cannot be passed to {ref}; build the module as you need it")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise MGCompileError(f"cannot import {ref} ({type(exc).__name__}: {exc}); pass module:callable "
                             "with the module on PYTHONPATH") from None
    model = fn() if callable(fn) and not isinstance(fn, nn.Module) else fn
    if not isinstance(model, nn.Module):
        raise MGCompileError(f"{ref} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _convert_saved(ref: str, graph: Graph, overrides: dict[str, Any]) -> Resolved:
    """A saved base network (a trained run, a converted-but-not-MG folder) -> its MG version, trained layers kept."""
    extra = sorted(set(overrides) - set(_CONVERT_KEYS) - {"ignored_layers", "min_channels"})
    if extra:
        raise MGCompileError(f"options {', '.join(extra)} cannot change the saved network {ref}; "
                             "its architecture is fixed (pass only MG options such as --group-size)")
    spec = spec_of(graph)
    name = spec.name if spec is not None and spec.name else Path(ref).name
    model = load(ref).eval()
    overrides = {**overrides, "input_size": tuple(graph.input_shape()[1:]), "in_channels": graph.input_shape()[0]}
    return _convert_module(ref, name, model, overrides)


def _convert_module(ref: str, name: str, model: nn.Module, overrides: dict[str, Any]) -> Resolved:
    import torch

    from mgcompile.conversion import convert_with

    extra = sorted(set(overrides) - set(_CONVERT_KEYS) - {"num_classes", "width_mult", "input_size", "in_channels",
                                                           "ignored_layers", "min_channels"})
    if extra:
        raise MGCompileError(f"options {', '.join(extra)} cannot change an existing module ({ref}); "
                             "they apply to spec and registry names only")
    if "group_size" not in overrides:
        raise MGCompileError(f"converting {ref} needs --group-size (the MG group size s_g)")
    h, w = overrides.get("input_size", (224, 224))
    example = torch.randn(1, overrides.get("in_channels", 3), h, w)
    params = MGParams(**{k: overrides[k] for k in (*_MG_KEYS, "seed") if k in overrides})
    options = ConversionOptions(ignored_layers=tuple(overrides.get("ignored_layers", ())),
                                min_channels=overrides.get("min_channels", 0), init=overrides.get("init", "random"))
    converted = convert_with(model, params, options, example_input=example, name=name,
                             paper_width_mult=float(overrides.get("width_mult", 1.0)))
    return Resolved(ref, "torch", None, converted.mg_graph, report=converted.mg_conversion, _model=converted)
