"""The pass pipeline: run passes in order, checking each one's contract and verifying the graph after it."""

from __future__ import annotations

import os
from typing import Callable, Sequence

from mgcompile.errors import GraphError, InputTooSmall, InternalError
from mgcompile.ir.graph import Graph
from mgcompile.ir.verify import verify
from mgcompile.passes.contract import unmet
from mgcompile.passes.expand_multigrid_cycles import expand_multigrid_cycles
from mgcompile.passes.expand_steps import expand_steps
from mgcompile.passes.infer_shapes import infer_shapes
from mgcompile.passes.replace_transitions import replace_transitions

Pass = Callable[[Graph], Graph]

#: The standard lowering of a step-level graph to primitive ops.
LOWERING: tuple[Pass, ...] = (replace_transitions, expand_multigrid_cycles, expand_steps, infer_shapes)


def run_passes(graph: Graph, passes: Sequence[Pass] = LOWERING, *, check: bool = True) -> Graph:
    """Apply ``passes`` in order; verify after each. Set ``MGCOMPILE_DUMP_IR=1`` to print each result.

    A pass that rejects its input (a group size that does not divide a level, an input too
    small) raises the user's one-line error. A graph that fails ``verify`` *after* a pass
    is mgcompile's bug, not the user's: :class:`InternalError`, with its traceback; so is a
    graph that misses what a pass ``requires`` before it or ``ensures`` after it
    (:mod:`mgcompile.passes.contract`). The returned graph's ``meta_graph.pass_log`` ends
    with one ``(pass, changed)`` pair per pass run here.
    """
    done: list[str] = []
    log: list[tuple[str, bool]] = []
    start = graph
    verify(graph)
    for p in passes:
        name = getattr(p, "__name__", repr(p))
        after = f" (after {', '.join(done)})" if done else ""
        problem = unmet(graph, getattr(p, "requires", ()))
        if problem is not None:
            raise InternalError(f"pass {name}{after} requires {problem}, which its input does not meet; this is a "
                                "bug in mgcompile: please report it with the command that triggered it")
        try:
            result = p(graph)
        except GraphError as exc:
            raise type(exc)(f"pass {name}{after}: {exc}") from None
        log.append((name, _changed(graph, result)))
        graph = result
        if check:
            problem = unmet(graph, getattr(p, "ensures", ()))
            if problem is not None:
                raise InternalError(f"pass {name}{after} should ensure {problem}, and its output does not; this is a "
                                    "bug in mgcompile: please report it with the command that triggered it")
            try:
                verify(graph)
            except InputTooSmall as exc:
                raise InputTooSmall(f"pass {name}{after}: {exc}") from None
            except GraphError as exc:
                raise InternalError(f"pass {name}{after} produced an ill-formed graph ({exc}); this is a bug in "
                                    "mgcompile: please report it with the command that triggered it") from exc
        done.append(name)
        if os.environ.get("MGCOMPILE_DUMP_IR"):
            print(f"# --- after {name} ---\n{graph.format()}")
    if graph is start:  # every pass left its input as it was: record on a copy, never on the caller's graph
        graph = graph.copy()
    graph.meta_graph.pass_log.extend(log)
    return graph


def _changed(before: Graph, after: Graph) -> bool:
    """Did a pass change the graph (its nodes, their data or the graph meta)?"""
    if after is before:
        return False
    return (dict(after.nx.nodes(data=True)) != dict(before.nx.nodes(data=True))
            or set(after.nx.edges) != set(before.nx.edges) or after.meta_graph != before.meta_graph)
