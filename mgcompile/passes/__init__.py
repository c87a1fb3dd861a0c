"""Passes: plain ``Graph -> Graph`` functions with one job each (see each module's docstring)."""

from mgcompile.passes.count import CountReport, count
from mgcompile.passes.expand_multigrid_cycles import expand_multigrid_cycles
from mgcompile.passes.expand_steps import expand_steps
from mgcompile.passes.infer_shapes import infer_shapes
from mgcompile.passes.pipeline import LOWERING, run_passes
from mgcompile.passes.replace_transitions import replace_transitions

__all__ = ["CountReport", "LOWERING", "count", "expand_multigrid_cycles", "expand_steps", "infer_shapes",
           "replace_transitions", "run_passes"]
