"""mgcompile: a compiler for multigrid-in-channels CNNs.

spec / torch module  --frontends-->  IR (networkx)  --passes-->  expanded IR  --backends-->  nn.Module / ONNX

>>> import mgcompile
>>> spec = mgcompile.model_spec("mg_resnet34_g32c64")
>>> model = mgcompile.build(spec)
"""

__version__ = "0.1.0"

from mgcompile.errors import GraphError, MGCompileError, SpecError  # noqa: E402
from mgcompile.spec import Spec, mg_levels  # noqa: E402
from mgcompile.ir import Graph, verify  # noqa: E402
from mgcompile.registry import list_models, model_spec, register_model  # noqa: E402
from mgcompile.api import build, expand, load, save  # noqa: E402
from mgcompile.convert import convert  # noqa: E402

__all__ = [
    "Graph", "GraphError", "MGCompileError", "Spec", "SpecError", "__version__", "build", "convert", "expand",
    "list_models", "load", "mg_levels", "model_spec", "register_model", "save", "verify",
]
