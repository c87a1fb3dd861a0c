"""``mgcompile.convert()``: an existing nn.Module -> its multigrid-in-channels version.

Steps: import the module into the IR (:mod:`mgcompile.frontends.torch_import`, which
checks that the import reproduces the module), find every residual sum by dataflow
(:mod:`mgcompile.passes.residual_steps`), collapse the steps that change into
``residual`` macros carrying their bodies, run the same lowering passes as a spec,
lower to a GraphModule and copy the weights of every layer that was kept.

Every residual sum gets a row in the report, with a status and a reason:

* ``converted``: a constant-width step at least θ wide becomes its MG cycle (new layers).
* ``transition``: a channel-doubling strided basic step becomes the MG transition
  (``transition`` ``paper``/``dw_stride``) followed by a cycle at the new width.
* ``kept``: the step stays as it was, weights included: channel-changing, narrower
  than θ, its cycle would not pay (as many or more parameters or MACs), or the user
  excluded it (``min_channels``, ``ignored_layers``).
* ``skipped``: a constant-width step that cannot become a cycle: the group size does not
  divide its widths, or an op in it cannot be re-instantiated on a level (the first
  such op, named by module path and class); and a sum that is no residual step (why).

Stems, heads and layers the IR does not know (opaque) are kept with their weights.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from mgcompile.backends.torch_module import attach, lower_to_torch
from mgcompile.errors import MGCompileError, NothingConverted, SpecError
from mgcompile.backends.opaque import opaque_records
from mgcompile.passes.residual_steps import FoundStep, collapse, find_sums
from mgcompile.frontends.torch_import import check_import, copy_weights, fingerprint, import_module
from mgcompile.ir.graph import Graph
from mgcompile.ir.meta import GraphMeta
from mgcompile.ir.roles import Role, mark_step
from mgcompile.progress import stage
from mgcompile.passes.count import count
from mgcompile.passes.infer_shapes import infer_shapes
from mgcompile.multigrid import INITS, ConversionOptions, MGParams, resolve_uneven
from mgcompile.passes.expand_multigrid_cycles import plan_cycle, reasons_summary
from mgcompile.passes.pipeline import run_passes
from mgcompile.spec import skip_reason
from mgcompile.steps import STEP_KINDS, remake


def convert(model: nn.Module, *, group_size: int, coarsest: int | None = None, cycle: str = "multiplicative",
            transfer: str = "sparse", transfer_nnz: int | None = None, transition: str = "paper",
            uneven_groups: str | None = None,
            width_mult: float | None = None, ignored_layers: Iterable[str] = (), min_channels: int = 0,
            example_input: torch.Tensor | None = None, seed: int = 0, name: str | None = None,
            paper_width_mult: float = 1.0, init: str | None = None, calibrate: Any = None,
            calibrate_config: Any = None) -> nn.Module:
    """Return the MG version of ``model`` (a ``torch.fx.GraphModule``; ``model`` is not changed).

    The result carries ``.mg_graph`` (the expanded IR), ``.mg_spec`` (``None``: it
    came from a module, not a spec) and ``.mg_conversion`` (the conversion report); the
    IR keeps the original network's IR in ``meta_graph.base_graph`` for audits.
    ``example_input`` (default ``1x3x224x224``) fixes the shapes recorded in the IR.
    ``ignored_layers`` are fnmatch patterns of block names (``layer4.*``) never converted.
    ``name`` (default: the class name) and ``paper_width_mult`` find the paper row to report against;
    ``name`` also finds the module's family, whose uneven-groups default applies when ``uneven_groups`` is None
    (a step of no known family takes its step kind's). The result is in the mode ``model`` was in
    (``model.training``), like ``model`` itself.

    ``init``: ``random`` (default) initialises every MG cycle afresh from ``seed``; ``base`` starts each
    cycle as its base step's block-diagonal (see :func:`warm_start`), for converting a trained network.
    The keywords make an :class:`MGParams` and a :class:`ConversionOptions`; :func:`convert_with` takes those.

    ``calibrate``: images (a tensor, a Dataset or any iterable of image batches, normalised as ``model`` expects)
    to fit the result to ``model`` on, without labels (:func:`mgcompile.calibrate`, default budget); ``init`` then
    defaults to ``base``; ``calibrate_config`` (a :class:`~mgcompile.calibration.CalibrationConfig`) sets its
    budget and seed. The report is in ``.mg_conversion["calibration"]``; the result is in eval mode.
    """
    init = init or ("base" if calibrate is not None else "random")
    if init not in INITS:
        raise MGCompileError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if width_mult not in (None, 1, 1.0):
        raise MGCompileError("width_mult cannot rescale an existing module's trained layers; build the base network "
                             "at the width you want (e.g. torchvision.models.mobilenet_v2(width_mult=1.4)) and convert it")
    params = MGParams(group_size=group_size, coarsest=coarsest, transfer_nnz=transfer_nnz, cycle=cycle,
                      transfer=transfer, transition=transition, uneven_groups=uneven_groups, seed=seed)
    options = ConversionOptions(ignored_layers=tuple(ignored_layers), min_channels=min_channels, init=init)
    converted = convert_with(model, params, options, example_input=example_input, name=name,
                             paper_width_mult=paper_width_mult)
    if calibrate is not None:
        from mgcompile.calibration import calibrate as fit

        fit(converted, model, calibrate, config=calibrate_config)
    return converted


def convert_with(model: nn.Module, params: MGParams, options: ConversionOptions | None = None, *,
                 example_input: torch.Tensor | None = None, name: str | None = None,
                 paper_width_mult: float = 1.0) -> nn.Module:
    """:func:`convert` from its two records (the module route; a conversion record's ``multigrid`` and
    ``options`` rebuild the same network). ``only_profitable`` is forced on: an existing network never gets
    a step that costs more; the uneven policy is resolved with the module's family default."""
    what, options = name or type(model).__name__, options or ConversionOptions()
    from mgcompile.models import family_of_module

    family = family_of_module(what)
    mg = params.replace(only_profitable=True, seed=params.seed if params.seed is not None else 0,
                        uneven_groups=resolve_uneven(params.uneven_groups, family.uneven) if family else
                        params.uneven_groups)
    if example_input is None:
        example_input = torch.randn(1, 3, 224, 224)
    with stage(f"importing {what} with torch.fx"):
        imported = import_module(model, example_input)
        check_import(imported, example_input)
    graph = imported.graph
    base_graph = run_passes(graph.copy())  # the original network, for side-by-side audits
    rows, converted, skip = _collapse_steps(graph, base_graph, mg, options)
    expanded = _expand(graph, imported, mg, options, rows, skip, what)
    with stage(f"building the MG network ({len(expanded)} IR nodes) and copying the kept layers' weights"):
        lowered = lower_to_torch(expanded, opaque=imported.opaque, seed=mg.seed)
        kept = copy_weights(expanded, imported.module, lowered)
        if options.init == "base":
            warm_start(expanded, imported.module, lowered, converted)
    report = _report(rows, kept, imported, expanded, model, mg, options, name)
    report["fingerprint"] = fingerprint(imported.module, tuple(example_input.shape[1:]))
    paper = paper_match(report["name"], mg, paper_width_mult, report["base_params"], report["params"])
    if paper is not None:
        report["paper"] = paper
    expanded.meta_graph.conversion = report
    expanded.meta_graph.base_graph = base_graph.to_dict()  # saved with the IR: audits compare against it
    lowered.mg_conversion = report  # type: ignore[attr-defined]
    lowered.train(bool(getattr(model, "training", True)))
    return attach(lowered, expanded, None)


def _collapse_steps(graph: Graph, base_graph: Graph, mg: MGParams,
                    options: ConversionOptions) -> tuple[list[dict], dict, dict[str, str]]:
    """Decide every residual sum (a report row each), mark each step's input and output in both graphs and
    collapse the steps that change into macros. Returns the rows, per cycled step its template nodes' original
    weights, and the steps after a transition that stay base (with why)."""
    rows: list[dict[str, Any]] = []
    skip: dict[str, str] = {}
    outputs: dict[str, str] = {}  # a collapsed block's old output node -> its macro node
    converted: dict[str, dict[str, dict[str, str]]] = {}
    shapes = infer_shapes(graph)
    for found in find_sums(graph):
        block = found.step
        if block is None:
            c = shapes.shape(found.add)[0]
            rows.append({"block": found.name, "kind": "-", "in_channels": c, "out_channels": c, "stride": 1,
                         "modules": [], "status": "skipped", "reason": found.reason})
            continue
        mark_step(base_graph, block.name, block.input, block.output)
        block.input = outputs.get(block.input, block.input)
        mark_step(graph, block.name, block.input, block.output)
        row = {"block": block.name, "kind": block.kind, "in_channels": block.in_channels,
               "out_channels": block.out_channels, "stride": block.stride, "modules": block.replaced}
        rows.append(row)
        status, reason, after = _decide(block, mg, options)
        row.update(status=status, reason=reason)
        if status in ("converted", "transition"):  # a transition's cycle starts from its strided step where it can
            converted[block.name] = block.weights
        if status in ("converted", "transition"):
            outputs[block.output] = collapse(graph, block, meta={"stage": _stage(block.name)})
            if after is not None:
                skip[block.name] = after
                row["reason"] += f"; the step after it stays a base step ({after})"
    return rows, converted, skip


def _expand(graph: Graph, imported: Any, mg: MGParams, options: ConversionOptions, rows: list[dict],
            skip: dict[str, str], what: str) -> Graph:
    """Run the spec route's passes on the collapsed graph; no cycle at all is :class:`NothingConverted`."""
    graph.meta_graph = GraphMeta(multigrid=mg, skip=skip, notes=list(imported.notes),
                                 opaque=opaque_records(imported.opaque), overrides=options.step_overrides.to_dict())
    try:
        expanded = run_passes(graph)
    except SpecError as exc:
        raise MGCompileError(f"conversion failed: {exc}") from None
    if not any(info.status == "cycle" for info in expanded.meta_graph.steps.values()):
        why = reasons_summary([(r["block"], r["reason"]) for r in rows]) if rows else "the network has no residual sum"
        meta = mg.to_meta()
        raise NothingConverted(f"no residual step of {what} became an MG cycle at group size {meta['group_size']}, "
                               f"θ={meta['theta']} ({why}); nothing was converted",
                               {"name": what, "multigrid": meta, "blocks": rows, "notes": list(imported.notes)})
    return expanded


@torch.no_grad()
def warm_start(graph: Graph, original: nn.Module, lowered: nn.Module, steps: dict[str, dict[str, dict[str, str]]]) -> None:
    """Start every cycle as its base step's block-diagonal: level 0 (the step's own width) takes the base
    weights (a grouped conv the blocks of the base conv that fall inside its groups; depth-wise, norms and SE
    exactly), and every level's correction starts small (the BN after P at its lowering scale,
    :data:`~mgcompile.backends.torch_module.CORRECTION_BN_SCALE`), so each cycle initially computes its base step
    with the cross-group couplings cut, plus a small coarse correction through which R, P and the coarse levels
    get their first gradients; they learn the couplings back."""
    state = original.state_dict()
    level0 = {(step, graph.meta(n).get("template")): n for step in steps
              for n in graph.nodes(role=Role.LEVEL_BODY, step=step) if graph.meta(n).get("level") == 0}
    for step, weights in steps.items():
        for tname, wmap in weights.items():
            node = level0.get((step, tname))
            if node is None:
                continue
            own = lowered.get_submodule(node).state_dict()
            for key, src in wmap.items():
                if key not in own or src not in state:
                    continue
                value, target = state[src], own[key]
                if value.dim() == 2 and target.dim() == 4:  # a channels-last Linear imported as a 1x1 conv
                    value = value[:, :, None, None]
                if value.numel() == target.numel():
                    target.copy_(value.reshape(target.shape))
                elif graph.op(node) == "conv" and key == "weight" and value.shape[0] == target.shape[0]:
                    _copy_diagonal_blocks(value, target, graph.attrs(node)["in_channels"], graph.attrs(node)["groups"])


def _copy_diagonal_blocks(value: torch.Tensor, target: torch.Tensor, in_channels: int, groups: int) -> None:
    """Copy into a conv with ``groups`` groups the part of a (less) grouped conv's weight inside each group."""
    out = target.shape[0]
    in_t, in_b = target.shape[1], value.shape[1]
    out_t, out_b = out // groups, out // (in_channels // in_b)
    for o in range(0, out, out_t):
        k, j = o // out_t, o // out_b  # the row block's group in the target and in the base conv
        start = k * in_t - j * in_b  # its input columns, relative to the base group's
        if 0 <= start and start + in_t <= in_b and (o + out_t - 1) // out_b == j:
            target[o:o + out_t] = value[o:o + out_t, start:start + in_t]


def _stage(block: str) -> str:
    return block.rsplit(".", 1)[0] if "." in block else block


def _decide(block: FoundStep, mg: MGParams, options: ConversionOptions) -> tuple[str, str, str | None]:
    """(status, reason, skip reason for the step after a transition); :func:`plan_cycle` decides the cycles.

    A step the selectors exclude, or overridden ``base``, stays; one overridden ``{coarsest: θ}`` is planned
    with that θ (the cycle pass reads the same override)."""
    excluded = skip_reason(block.name, block.out_channels, options.ignored_layers, options.min_channels)
    override = options.step_overrides.get(block.name)
    if excluded is None and override is not None:
        if override.base:
            excluded = "overridden: base"
        else:
            mg = mg.replace(coarsest=override.coarsest)
    kind = STEP_KINDS.get(block.kind)
    doubling = (kind is not None and kind.transition and block.stride == 2
                and block.out_channels == 2 * block.in_channels)
    if block.problem is not None:
        if not block.constant_width:
            return "kept", "channel-changing step (no MG transition for it): original layers and weights kept", None
        return "skipped", block.problem, None
    step = block.attrs
    assert step is not None
    if not block.constant_width:
        if not doubling or mg.transition == "keep":
            why = "transition=keep" if doubling else "channel-changing step (no MG transition for it)"
            return "kept", f"{why}: original layers and weights kept", None
        if excluded:
            return "kept", excluded, None
        plan = plan_cycle(remake(step, in_channels=block.out_channels, stride=1), mg, block.name)
        after = plan.reason if plan.status in ("problem", "kept") else None
        return "transition", f"MG {mg.transition} transition {block.in_channels}->{block.out_channels}", after
    if excluded:
        return "kept", f"{excluded}; original layers and weights kept", None
    plan = plan_cycle(step, mg, block.name)
    if plan.status in ("kept", "coarse"):
        return "kept", f"{plan.reason}; original layers and weights kept", None
    if plan.status != "cycle":
        return "skipped", plan.reason, None
    return "converted", f"MG {mg.cycle} cycle, fine levels {plan.fine}, coarsest {plan.coarsest}", None


def _report(rows: list[dict], kept: list[str], imported: Any, expanded: Graph, model: nn.Module, mg: MGParams,
            options: ConversionOptions, name: str | None) -> dict[str, Any]:
    by_status = {s: sum(r["status"] == s for r in rows) for s in ("converted", "transition", "kept", "skipped")}
    params = count(expanded).params
    base = sum(p.numel() for p in model.parameters())
    report: dict[str, Any] = {
        "name": name or type(model).__name__,
        "multigrid": mg.to_meta(),
        "blocks": rows,
        **by_status,
        "layers_kept": kept,
        "opaque": sorted(imported.opaque),
        "notes": list(expanded.meta_graph.notes),
        "params": params,
        "base_params": base,
        "init": options.init,
        "options": options.to_dict(),  # with "multigrid": what rebuilds the network (convert_with)
    }
    return report


def paper_match(name: str, mg: MGParams, width_mult: float, base_params: int, params: int) -> dict[str, Any] | None:
    """The paper row for a converted module, when it is the registry network ``name`` exactly.

    ``name`` is a registry name or a class name (``MobileNetV2`` -> ``mobilenet_v2``); the
    module counts as that network only if its parameter count equals the registry base's.
    """
    from mgcompile.api import expand
    from mgcompile.audit.paper import paper_comparison
    from mgcompile.passes.count import count
    from mgcompile.registry import list_models

    key = name.lower().replace("_", "")
    entry = next((e for e in list_models() if e.name.replace("_", "") == key), None)
    if entry is None:
        return None
    base = entry.make().replace(width_mult=width_mult)
    if count(expand(base)).params != base_params:
        return None
    return paper_comparison(base.replace(multigrid=mg), params)


def format_report(report: dict[str, Any]) -> str:
    """One line per block plus totals, for the CLI."""
    lines = [f"{'block':<22} {'kind':<11} {'width':>11}  {'status':<10} reason"]
    for r in report["blocks"]:
        width = f"{r['in_channels']}->{r['out_channels']}"
        lines.append(f"{r['block']:<22} {r['kind']:<11} {width:>11}  {r['status']:<10} {r['reason']}")
    lines.append(f"converted {report['converted']}, transitions {report['transition']}, kept {report['kept']}, "
                 f"skipped {report['skipped']}; {len(report['layers_kept'])} layers keep their weights; "
                 f"opaque layers kept: {', '.join(report['opaque']) or 'none'}")
    lines.append(f"params {report['params']:,} (base {report['base_params']:,}, "
                 f"ratio {report['params'] / max(1, report['base_params']):.3f})")
    if "paper" in report:
        p = report["paper"]
        lines.append(f"paper: {p['params_m']}M params ({p['table']}, {p['spec']}); measured {report['params'] / 1e6:.3f}M, "
                     f"gap {p['gap_pct']:+.2f}%" + ("" if p["consistent"] else f" (reported only: {p['note']})"))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)
