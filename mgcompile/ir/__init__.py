"""The graph IR: op vocabulary (:mod:`.ops`), graph (:mod:`.graph`), well-formedness (:mod:`.verify`)."""

from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import OPS, OpDef, Shape, opdef
from mgcompile.ir.verify import verify

__all__ = ["Graph", "OPS", "OpDef", "Shape", "opdef", "verify"]
