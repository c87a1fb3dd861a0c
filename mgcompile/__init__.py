"""mgcompile: a compiler for multigrid-in-channels CNNs.

spec / torch module  --frontends-->  IR (networkx)  --passes-->  expanded IR  --backends-->  nn.Module / ONNX

>>> import mgcompile
>>> spec = mgcompile.model_spec("mg_resnet34_g32c64")
>>> model = mgcompile.build(spec)

The public names load on first use (PEP 562), so ``import mgcompile`` and the CLI's
``--help`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from mgcompile.errors import GraphError, MGCompileError, NothingConverted, SpecError  # noqa: E402

_LAZY = {
    "Spec": "mgcompile.spec", "mg_levels": "mgcompile.spec",
    "Graph": "mgcompile.ir", "verify": "mgcompile.ir",
    "list_models": "mgcompile.registry", "model_spec": "mgcompile.registry", "register_model": "mgcompile.registry",
    "build": "mgcompile.api", "expand": "mgcompile.api", "load": "mgcompile.api", "save": "mgcompile.api",
    "convert": "mgcompile.conversion", "latency_aware": "mgcompile.latency", "calibrate": "mgcompile.calibration",
}

__all__ = ["GraphError", "MGCompileError", "NothingConverted", "SpecError", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mgcompile' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
