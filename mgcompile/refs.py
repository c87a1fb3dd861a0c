"""Resolve what a user names on the command line (REF) to a spec, an IR and a module.

A REF is, in this order: a folder or ``.pt`` written by ``mgcompile convert``; a spec
file (``.yaml``/``.json``); a registry name, MG name or shipped spec name
(``mgcompile list``); a torchvision model name (``wide_resnet50_2``, or
``torchvision:resnet34`` to force that route); ``module:callable`` returning an
``nn.Module`` (``mypkg.models:make_net``). The last two are converted from the module
(:func:`mgcompile.convert`), keeping the weights of every layer that is not replaced;
``--weights PATH`` loads a trained weights file into the module first. Every conversion
of a module or a saved network records its original (``Resolved.original``, see
:mod:`mgcompile.original`).

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
    original: dict[str, Any] | None = None  # what a conversion converted (mgcompile.original); None: spec routes
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


def resolve(ref: str, *, ignored_layers: tuple[str, ...] = (), min_channels: int = 0, weights: str | None = None,
            **overrides: Any) -> Resolved:
    """Resolve ``ref``; ``overrides`` are spec fields from CLI flags (``None`` = not given).

    ``ignored_layers`` / ``min_channels`` select which residual steps become MG cycles
    (spec fields for spec and registry REFs, converter options for modules). ``weights``
    (``--weights``): a trained weights file loaded into a module route's module before it is
    converted (:mod:`mgcompile.weights`); the other routes refuse it in one line.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides.get("init") == "random":
        overrides.pop("init")  # the default everywhere
    if ignored_layers:
        overrides["ignored_layers"] = tuple(ignored_layers)
    if min_channels:
        overrides["min_channels"] = min_channels
    route, p = route_of(ref), Path(ref)
    if route == "folder":
        raise MGCompileError(f"{ref} is a folder without model.pt; pass a folder written by `mgcompile convert`")
    _check_weight_options(ref, route, overrides.get("init"), weights)
    if route == "saved":
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
                        trained=bool(payload.get("trained", False)),
                        original=(graph.meta_graph.conversion or {}).get("original"))
    if route == "spec":
        spec = Spec.from_file(p)
        spec = spec.replace(**overrides) if overrides else spec
        return Resolved(ref, "spec", spec, expand(spec))
    if route == "registry":
        spec = model_spec(ref, **overrides)
        return Resolved(ref, "registry", spec, expand(spec))
    model = module_of(route, ref, overrides)
    source: dict[str, Any] = {"ref": ref, "route": route, "path": None, "weights": None, "sha256": None}
    if weights is not None:
        from mgcompile.weights import file_sha256, load_weights

        load_weights(model, weights, "--weights")
        source.update(weights=str(Path(weights).resolve()), sha256=file_sha256(weights))
    return _convert_module(ref, module_name(ref), model, overrides, source)


MODULE_ROUTES = ("torchvision", "timm", "module")


def route_of(ref: str) -> str:
    """The route ``ref`` takes, in the module docstring's order: ``saved``, ``folder`` (a folder without model.pt),
    ``spec``, ``torchvision``, ``timm``, ``module`` or ``registry`` (a registry name wins over torchvision's)."""
    p = Path(ref)
    if is_saved_model(ref):
        return "saved"
    if p.is_dir():
        return "folder"
    if p.suffix in (".yaml", ".yml", ".json") or p.is_file():
        return "spec"
    if ref.startswith("torchvision:"):
        return "torchvision"
    if ref.startswith("timm:"):
        return "timm"
    if ":" in ref:
        return "module"
    if ref in {e.name for e in list_models()} or MG_NAME.match(ref) or "/" in ref or ref not in torchvision_models():
        return "registry"
    return "torchvision"


def _check_weight_options(ref: str, route: str, init: str | None, weights: str | None) -> None:
    """``--init base`` needs an existing module's weights, ``--weights`` a module to load them into."""
    if init is not None and route in ("spec", "registry"):
        raise MGCompileError(f"--init {init} starts converted cycles from an existing module's weights; "
                             f"{ref} is built from a spec with fresh weights (use torchvision:NAME, timm:NAME, "
                             "module:callable or a trained run folder)")
    if weights is None or route in MODULE_ROUTES:
        return
    if route == "saved":
        raise MGCompileError(f"--weights is for torchvision:NAME, timm:NAME and module:callable; {ref} is a saved "
                             "network that holds its own weights (drop --weights)")
    raise MGCompileError(f"--weights loads trained weights into an existing module; {ref} is built from a spec with "
                         "fresh weights (use torchvision:NAME, timm:NAME or module:callable with --weights, or "
                         "convert a trained run folder)")


def module_name(ref: str) -> str:
    """The name a module route converts under: the part after ``torchvision:``/``timm:``/``module:``."""
    return ref.split(":", 1)[1] if ":" in ref else ref


def module_of(route: str, ref: str, overrides: dict[str, Any]) -> nn.Module:
    """The fresh module of a module-route ``ref`` (``route`` from :func:`route_of`), built with ``overrides``."""
    if route == "torchvision":
        return torchvision_module(module_name(ref), overrides)
    if route == "timm":
        return timm_module(module_name(ref), overrides)
    return user_module(ref, overrides)


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
    from mgcompile.api import MODEL_FILE
    from mgcompile.weights import file_sha256

    extra = sorted(set(overrides) - set(_CONVERT_KEYS) - {"ignored_layers", "min_channels"})
    if extra:
        raise MGCompileError(f"options {', '.join(extra)} cannot change the saved network {ref}; "
                             "its architecture is fixed (pass only MG options such as --group-size)")
    spec = spec_of(graph)
    name = spec.name if spec is not None and spec.name else Path(ref).name
    model = load(ref).eval()
    overrides = {**overrides, "input_size": tuple(graph.input_shape()[1:]), "in_channels": graph.input_shape()[0]}
    path = Path(ref).resolve()
    source = {"ref": ref, "route": "run", "path": str(path), "weights": None,
              "sha256": file_sha256(path / MODEL_FILE if path.is_dir() else path)}
    return _convert_module(ref, name, model, overrides, source)


def _convert_module(ref: str, name: str, model: nn.Module, overrides: dict[str, Any],
                    source: dict[str, Any]) -> Resolved:
    """Convert ``model``; ``source`` (ref, route, path, weights, sha256) becomes the report's ``original`` record,
    completed with the input shape the conversion used and the classes (see :mod:`mgcompile.original`)."""
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
    graph = converted.mg_graph
    (out,) = graph.nodes("output")
    classes = graph.shape(out)
    original = {**source, "input_shape": list(example.shape[1:]),
                "num_classes": int(classes[0]) if all(d == 1 for d in classes[1:]) else None,  # (N, 1, 1): logits
                "width_mult": overrides.get("width_mult")}
    converted.mg_conversion["original"] = original  # the same dict as graph.meta_graph.conversion: saved with it
    return Resolved(ref, "torch", None, graph, report=converted.mg_conversion, original=original, _model=converted)
