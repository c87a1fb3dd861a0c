"""Latency-aware MG: keep a step's MG cycle only where it runs faster than the base step.

An MG cycle always has fewer MACs than its step, but on a real runtime a cycle of
many small grouped convolutions can take longer than one dense step (MobileNetV2's
narrow inverted steps, ResNet50's bottlenecks on a 2-core CPU; see
``docs/performance.md``). This module measures every cycle against its base step on a
target, each cut out of its network at its real input shape (:func:`mgcompile.ir.slice.step_graph`),
and returns a *different* spec: the original one with the slow steps added to
``ignored_layers`` and a name that says so. The paper's spec is never changed, and the
result is an ordinary spec file: building it again needs no measurement.

Timing: per round, each step's base and MG versions run back to back (median of
``repeat`` runs each) and their ratio is taken; a step's ratio is the median over
``rounds``. All in one process: good enough to rank steps, not a benchmark
(``make bench`` times whole networks, one process each).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from mgcompile.errors import MGCompileError
from mgcompile.exporters import targets
from mgcompile.ir.graph import Graph
from mgcompile.ir.slice import step_graph
from mgcompile.progress import Progress, stage
from mgcompile.spec import Spec


@dataclass(frozen=True)
class StepTiming:
    """One cycle against its base step: median times (ms) and the median of per-round ratios."""

    step: str
    base_ms: float
    mg_ms: float
    ratio: float  # MG / base; below ``threshold``: the cycle stays
    keep_cycle: bool


def latency_aware(spec: Spec, target: str = "ort-cpu", *, batch: int = 1, rounds: int = 5, repeat: int = 20,
                  threshold: float = 1.0, threads: int | None = None) -> tuple[Spec | None, list[StepTiming]]:
    """The spec with every cycle that is not faster than its base step on ``target`` left a base step.

    Returns the new spec (named ``<canonical name>_latency_<target>``; ``None`` when no cycle
    was faster: the variant would be the base network) and one timing per cycle.
    """
    from mgcompile.api import expand
    from mgcompile.naming import canonical_name

    _runner(target)
    if not spec.is_multigrid:
        raise MGCompileError("latency-aware conversion needs MG parameters; give --group-size")
    if batch < 1 or rounds < 1 or repeat < 1:
        raise MGCompileError("batch, rounds and repeat must be at least 1")
    mg, base = expand(spec), expand(spec.base())
    cycles = [s for s, info in mg.meta_graph.steps.items() if info.status == "cycle"]
    if not cycles:
        raise MGCompileError(f"{canonical_name(spec)} has no MG cycle to measure")
    with stage(f"timing {len(cycles)} MG cycles against their base steps on {target}"):
        timings = time_steps(base, mg, cycles, target, batch=batch, rounds=rounds, repeat=repeat,
                             threshold=threshold, threads=threads)
    return variant(spec, timings, target), timings


def variant(spec: Spec, timings: list[StepTiming], target: str) -> Spec | None:
    """``spec`` with the steps whose cycle was not kept added to ``ignored_layers`` and a name that says so;
    ``None`` when no cycle was kept (the variant would be the base network)."""
    from mgcompile.naming import canonical_name

    slow = tuple(t.step for t in timings if not t.keep_cycle)
    if len(slow) == len(timings):
        return None
    name = f"{canonical_name(spec)}_latency_{target.replace('-', '_')}"
    return spec.replace(ignored_layers=spec.ignored_layers + slow, name=name)


def time_steps(base: Graph, mg: Graph, steps: list[str], target: str, *, batch: int = 1, rounds: int = 5,
               repeat: int = 20, threshold: float = 1.0, threads: int | None = None) -> list[StepTiming]:
    """Each step of ``steps`` in ``base`` and in ``mg``, timed on ``target`` (``keep_cycle``: ratio < ``threshold``)."""
    runner = _runner(target)
    with tempfile.TemporaryDirectory(prefix="mgcompile-latency-") as tmp:
        runners: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}
        with Progress(len(steps), f"preparing {len(steps)} steps for {target}", unit="step") as bar:
            for step in steps:
                runners[step] = (runner(step_graph(base, step), batch, Path(tmp) / f"{step}.base.onnx", threads),
                                 runner(step_graph(mg, step), batch, Path(tmp) / f"{step}.mg.onnx", threads))
                bar.update()
        times: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in steps}
        with Progress(rounds, f"timing base step vs MG cycle on {target}", unit="round") as bar:
            for _ in range(rounds):
                for step in steps:
                    for run, out in zip(runners[step], times[step]):
                        out.append(_median_ms(run, repeat))
                bar.update()
    result = []
    for step in steps:
        b, m = times[step]
        ratio = statistics.median(mi / bi for mi, bi in zip(m, b))
        result.append(StepTiming(step, statistics.median(b), statistics.median(m), ratio, ratio < threshold))
    return result


def _runner(target: str) -> targets.LatencyRunner:
    """The latency runner of ``target`` (:attr:`~mgcompile.exporters.targets.Target.latency_runner`)."""
    runner = targets.get(target).latency_runner if target in targets.latency_targets() else None
    if runner is None:
        raise MGCompileError(f"unknown latency target {target!r}; use one of {', '.join(targets.latency_targets())}")
    return runner


def _median_ms(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm-up (allocations, ORT's first-run planning)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def format_timings(timings: list[StepTiming], target: str) -> str:
    """A table: one row per cycle, and what was decided."""
    lines = [f"per-step latency on {target} (MG cycle / base step, median of per-round ratios)",
             f"{'step':<18} {'base ms':>9} {'MG ms':>9} {'ratio':>7}  decision"]
    for t in timings:
        lines.append(f"{t.step:<18} {t.base_ms:>9.3f} {t.mg_ms:>9.3f} {t.ratio:>7.2f}  "
                     + ("MG cycle" if t.keep_cycle else "base step (cycle not faster)"))
    kept = sum(t.keep_cycle for t in timings)
    lines.append(f"{kept} of {len(timings)} cycles kept")
    return "\n".join(lines)


def timings_json(timings: list[StepTiming], target: str, **settings: Any) -> dict[str, Any]:
    return {"target": target, **settings, "steps": [asdict(t) for t in timings]}
