"""The Python API that the CLI mirrors: expand, build, save, load."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mgcompile import __version__
from mgcompile.atomic import atomic_path
from mgcompile.errors import InputTooSmall, MGCompileError, first_line
from mgcompile.models import graph_from_spec
from mgcompile.ir.graph import Graph
from mgcompile.passes.expand_multigrid_cycles import require_cycles
from mgcompile.passes.pipeline import run_passes
from mgcompile.spec import Spec
from mgcompile.backends.backend import get_backend
from mgcompile.backends.torch_module import attach

MODEL_FORMAT = "mgcompile-model"
MODEL_FILE = "model.pt"


def as_spec(spec: Spec | Mapping[str, Any]) -> Spec:
    """A :class:`Spec` from a Spec or a mapping of spec fields (what ``Spec.to_dict`` / a spec file holds)."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, Mapping):
        return Spec.from_dict(spec)
    raise MGCompileError(f"expected a mgcompile.Spec or a dict of spec fields, got {type(spec).__name__}; "
                         "e.g. mgcompile.model_spec('resnet34', group_size=32) or {'arch': 'resnet', 'group_size': 32}")


def expand(spec: Spec | Mapping[str, Any]) -> Graph:
    """Compile a spec to the fully expanded IR (primitive ops, shapes inferred, verified).

    An MG spec in which no residual step becomes a cycle raises
    :class:`~mgcompile.errors.NothingConverted` (its ``report`` says why per step).
    """
    spec = as_spec(spec)
    try:
        graph = run_passes(graph_from_spec(spec))
    except InputTooSmall:
        h, w = spec.input_size
        least = smallest_input(spec)
        fix = f"use --input-size {least},{least} or larger" if least else "this network cannot take any input size"
        raise MGCompileError(f"input size {h}x{w} is too small for {spec.name or spec.arch}: a feature map shrinks "
                             f"below a kernel; {fix}") from None
    return require_cycles(graph, spec.name or spec.arch)


def smallest_input(spec: Spec, limit: int = 4096) -> int | None:
    """The smallest square input size the network accepts (searched on the IR; no module is built)."""
    def fits(size: int) -> bool:
        try:
            run_passes(graph_from_spec(spec.replace(input_size=(size, size))))
            return True
        except InputTooSmall:
            return False

    if not fits(limit):
        return None
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def build(spec_or_graph: Spec | Mapping[str, Any] | Graph, *, opaque: Mapping[str, nn.Module] | None = None,
          fold_bn: bool = False) -> nn.Module:
    """Lower a spec (a Spec or a dict of its fields) or an expanded IR to a ``torch.fx.GraphModule``.

    ``fold_bn=True`` returns the eval-mode inference form instead (BN folded into the op before it,
    also the BN after P; :func:`mgcompile.backends.inference.lower_for_inference`): faster eager
    inference, a different state dict, not for training.
    """
    if isinstance(spec_or_graph, Graph):
        graph = spec_or_graph
        spec = spec_of(graph)
    else:
        spec = as_spec(spec_or_graph)
        graph = expand(spec)
    check_memory(graph)
    try:
        module = get_backend().lower(graph, opaque=opaque)
    except (RuntimeError, MemoryError) as exc:
        if not isinstance(exc, MemoryError) and "alloc" not in str(exc).lower():
            raise
        raise MGCompileError(f"out of memory while building the network ({first_line(exc, 120)}); "
                             "choose a smaller --width-mult or --channels") from None
    module = attach(module, graph, spec)
    if fold_bn:
        from mgcompile.backends.inference import lower_for_inference

        return lower_for_inference(module)
    return module


def check_memory(graph: Graph) -> None:
    """Refuse, in one line, a network whose float32 weights cannot fit in this machine's available memory."""
    from mgcompile.ir.ops import opdef

    need = 4 * sum(opdef(graph.op(n)).params(graph.attrs(n)) for n in graph.nx.nodes)
    available = _available_memory()
    if available is not None and need > available:
        raise MGCompileError(f"this network has {need / 4:,.0f} parameters and needs {need / 2**30:.1f} GiB for its "
                             f"float32 weights alone, more than the {available / 2**30:.1f} GiB available; "
                             "choose a smaller --width-mult or --channels")


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def spec_of(graph: Graph) -> Spec | None:
    data = graph.meta_graph.spec
    return Spec.from_dict(data) if data else None


def save(model: nn.Module, path: str | os.PathLike, graph: Graph | None = None, *, trained: bool = False) -> Path:
    """Save IR + state dict (+ spec) to ``path`` (a ``.pt`` file, or a folder -> ``folder/model.pt``).

    No classes are pickled: :func:`load` rebuilds the module from the IR, so the file
    loads with ``torch.load(weights_only=True)``. Opaque layers (kept from a converted
    module) are stored so that they reload exactly (:mod:`mgcompile.backends.opaque`).
    The file also holds a reference input and the model's eval-mode output on it, which
    ``export`` checks a reloaded model against, and the mode (train/eval) the model was in;
    ``trained`` marks weights that training produced (``train`` then never re-initialises them).
    The write is atomic.
    """
    graph = graph if graph is not None else getattr(model, "mg_graph", None)
    if graph is None:
        raise MGCompileError("this module has no mgcompile IR; build it with mgcompile.build/convert, or pass graph=")
    target = Path(path)
    if target.suffix != ".pt":
        target = target / MODEL_FILE
    from mgcompile.backends.opaque import store_opaque

    x = reference_input(graph)
    output, scripts = store_opaque(model, graph, x)
    payload = {
        "format": MODEL_FORMAT,
        "mgcompile_version": __version__,
        "graph": graph.to_dict(),
        "opaque": dict(graph.meta_graph.opaque),
        "opaque_scripts": scripts,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "training": bool(model.training),
        "trained": bool(trained),
        "reference": {"input": x, "output": output},
    }
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return target


def reference_input(graph: Graph, seed: int = 0) -> torch.Tensor:
    """The fixed input a saved model's reference output is computed on (one sample, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, *graph.input_shape(), generator=gen)


def load_payload(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a saved model file; one clear error for missing or corrupt files."""
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise MGCompileError(f"{p} does not exist; pass a folder written by `mgcompile convert` or its model.pt")
    try:
        with warnings.catch_warnings():  # a TorchScript archive makes torch.load warn before failing
            warnings.simplefilter("ignore")
            payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise MGCompileError(f"{p} is corrupt or not an mgcompile model ({type(exc).__name__}); "
                             "pass a folder written by `mgcompile convert` or `mgcompile train`") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise MGCompileError(f"{p} is not an mgcompile model file; pass a folder written by `mgcompile convert`")
    return payload


def load(path: str | os.PathLike, *, opaque: Mapping[str, nn.Module] | None = None, fold_bn: bool = False) -> nn.Module:
    """Rebuild a saved model from its IR and load its weights (the sparse permutations come from the file).

    The model comes back in the mode it was saved in (``training``; files written before
    mgcompile stored it load in train mode, PyTorch's default). ``fold_bn=True``: its
    eval-mode inference form, as :func:`build`'s.
    """
    payload = load_payload(path)
    graph = Graph.from_dict(payload["graph"])
    if opaque is None and payload.get("opaque"):
        from mgcompile.backends.opaque import rebuild_opaque_modules

        opaque = rebuild_opaque_modules(payload["opaque"], payload.get("opaque_scripts", {}))
    model = build(graph, opaque=opaque)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = first_line(exc)
        raise MGCompileError(f"{path}: weights do not match the stored IR ({first}); the file is damaged") from None
    if fold_bn:
        from mgcompile.backends.inference import lower_for_inference

        return lower_for_inference(model)
    return model.train(bool(payload.get("training", True)))
