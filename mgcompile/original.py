"""The network a converted folder was converted from, rebuilt from the record the conversion kept.

Calibrating a converted network later, or distilling from its original, needs that
original exactly: the same architecture and the same trained weights. Every conversion
of a module or a saved run records (``conversion.json`` and the graph's
``meta_graph.conversion`` under ``"original"``, see :func:`mgcompile.refs.resolve`)::

    {"ref": REF as given, "route": "run" | "torchvision" | "timm" | "module",
     "path": absolute run folder / .pt (run route) or None,
     "weights": absolute --weights file or None,
     "sha256": of the run's model.pt / of the --weights file, or None,
     "input_shape": [C, H, W] the conversion used, "num_classes": int or None,
     "width_mult": torchvision's --width-mult or None}

A record whose weights were fresh (a module converted without ``--weights``), a folder
written before records were kept, or a file that is gone or changed cannot be
reproduced: a one-line error naming ``--original REF [--weights PATH]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch import nn

from mgcompile.errors import MGCompileError

_FIX = "pass --original REF [--weights PATH] (the trained network it was converted from)"


def load_original(record: Mapping[str, Any] | None, *, ref: str | None = None,
                  weights: str | None = None) -> nn.Module:
    """The original module of a conversion ``record`` (the format above), in eval mode.

    The file it reads must have the recorded sha256. ``ref`` / ``weights`` (the user's
    ``--original REF [--weights PATH]``) override the record and are not sha-checked; the
    caller checks that such a module takes the recorded ``input_shape`` and predicts
    ``num_classes`` (this function does not run it). ``weights`` alone reloads the recorded
    module route from another weights file. For a folder without a record, pass ``ref`` and
    a partial record of what the converted network shows (``{"num_classes": N,
    "input_shape": [C, H, W]}``): torchvision and timm modules are built with those.
    """
    if ref is not None:
        return _explicit(ref, weights, record).eval()
    if not record or "route" not in record:
        raise MGCompileError(f"this converted network records no original (written before mgcompile kept one); {_FIX}")
    if weights is not None:
        if record.get("route") == "run":
            raise MGCompileError(f"--weights cannot change the original run {record.get('path')}: it holds its own "
                                 "weights; pass --original REF to use another network")
        return _module(record, record["ref"], weights).eval()
    if record.get("route") == "run":
        return _run(record).eval()
    if record.get("weights") is None:
        raise MGCompileError(f"the original {record.get('ref')} was converted without --weights (its weights were "
                             f"fresh, nothing to reproduce); {_FIX}")
    _check_unchanged(record["weights"], record.get("sha256"), record.get("ref"))
    return _module(record, record["ref"], record["weights"]).eval()


def _check_unchanged(path: str, sha256: str | None, ref: Any) -> None:
    """The recorded file must still be there with the recorded content."""
    from mgcompile.weights import file_sha256

    if not Path(path).is_file():
        raise MGCompileError(f"the original's file {path} (of {ref}) is gone; {_FIX}")
    if sha256 is not None and file_sha256(path) != sha256:
        raise MGCompileError(f"the original's file {path} (of {ref}) changed since the conversion (its sha256 "
                             f"differs); {_FIX}")


def _run(record: Mapping[str, Any]) -> nn.Module:
    from mgcompile.api import MODEL_FILE, load

    path = Path(record["path"])
    model_file = path / MODEL_FILE if path.is_dir() or path.suffix != ".pt" else path  # a run folder or its .pt
    _check_unchanged(str(model_file), record.get("sha256"), record.get("ref"))
    return load(path)


def _module(record: Mapping[str, Any] | None, ref: str, weights: str | None) -> nn.Module:
    """The module route's fresh module, built as the record's conversion built it, with ``weights`` loaded."""
    from mgcompile.refs import MODULE_ROUTES, module_of, route_of
    from mgcompile.weights import load_weights

    route = route_of(ref)
    if route not in MODULE_ROUTES:
        raise MGCompileError(f"{ref} is not a network with trained weights to rebuild; {_FIX}")
    model = module_of(route, ref, _build_overrides(route, record or {}))
    if weights is not None:
        load_weights(model, weights, "--weights")
    return model


def _build_overrides(route: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """What the module was built with: its classes (and width, input channels) where its builder takes them."""
    if route == "module":
        return {}  # a user's callable takes no options
    out: dict[str, Any] = {}
    if record.get("num_classes") is not None:
        out["num_classes"] = record["num_classes"]
    if route == "torchvision" and record.get("width_mult") is not None:
        out["width_mult"] = record["width_mult"]
    if route == "timm" and record.get("input_shape"):
        out["in_channels"] = record["input_shape"][0]
    return out


def _explicit(ref: str, weights: str | None, record: Mapping[str, Any] | None) -> nn.Module:
    """The user's ``--original REF [--weights PATH]``: a saved run needs no weights, torchvision/timm need them."""
    from mgcompile.api import load
    from mgcompile.refs import route_of

    route = route_of(ref)
    if route == "saved":
        if weights is not None:
            raise MGCompileError(f"--original {ref} is a saved network that holds its own weights; drop --weights")
        return load(ref)
    if route in ("torchvision", "timm") and weights is None:
        raise MGCompileError(f"--original {ref} has fresh weights without --weights PATH (its trained weights file); "
                             "nothing learned to reproduce")
    return _module(record, ref, weights)  # module:callable without --weights: the callable may load its own
