"""The inference lowering: a trained (or fresh) module -> the same function with BN folded, for exports and eager use.

:func:`lower_for_inference` runs the inference passes on the module's IR
(:mod:`~mgcompile.passes.fold_batchnorm`, :mod:`~mgcompile.passes.fold_permutations`,
optionally :mod:`~mgcompile.passes.densify_transfers`), lowers the result and computes
its weights from the module's with :func:`derive_state`, which replays each folded
node's ``meta["derive"]`` steps. The training module, its state dict and the audit
counts are unchanged; the result is an eval-mode module whose outputs match (rel. 1e-4,
tested on every registry model).
"""

from __future__ import annotations

import functools

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.passes.densify_transfers import DEFAULT_MAX_EXPANSION, densify_transfers
from mgcompile.passes.fold_batchnorm import fold_batchnorm
from mgcompile.passes.fold_permutations import fold_permutations
from mgcompile.passes.pipeline import run_passes

TRANSFER_FORMS = ("gather", "dense")


def inference_passes(transfers: str = "gather", max_expansion: int = DEFAULT_MAX_EXPANSION) -> list:
    """The inference pass list: BN folding, exact permutation folding, and (``dense``) dense transfers."""
    if transfers not in TRANSFER_FORMS:
        raise MGCompileError(f"unknown transfer form {transfers!r}; use one of {', '.join(TRANSFER_FORMS)}")
    passes: list = [fold_batchnorm, fold_permutations]
    if transfers == "dense":
        @functools.wraps(densify_transfers)  # its name and its contract
        def densify(g: Graph) -> Graph:
            return densify_transfers(g, max_expansion)

        passes.append(densify)
    return passes


@torch.no_grad()
def derive_state(graph: Graph, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The folded graph's state dict from the unfolded module's ``state`` (see the passes' ``meta["derive"]``)."""
    out: dict[str, torch.Tensor] = {}
    for n in graph.nodes():
        steps = graph.meta(n).get("derive")
        own = {k[len(n) + 1:]: v for k, v in state.items() if k.startswith(n + ".")}
        if not steps:
            out.update({f"{n}.{k}": v for k, v in own.items()})
            continue
        w = own["weight"].clone()
        b = own["bias"].clone() if "bias" in own else None
        for step in steps:
            w, b = _apply(step, w, b, state)
        out[f"{n}.weight"] = w
        if b is not None:
            out[f"{n}.bias"] = b
        for key in ("perm", "inv_perm"):  # a transfer that kept its permutation keeps its index buffer
            if key in own and graph.attrs(n).get("permutation") is not None:
                out[f"{n}.{key}"] = own[key]
    return out


def _apply(step: dict[str, Any], w: torch.Tensor, b: torch.Tensor | None, state: Mapping[str, torch.Tensor]
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    if "bn" in step:
        bn = step["bn"]
        gamma, beta = state[f"{bn}.weight"], state[f"{bn}.bias"]
        mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
        if "channel_order" in step:  # conv channel k feeds BN channel order[k]
            order = torch.tensor(step["channel_order"], dtype=torch.long)
            gamma, beta, mean, var = gamma[order], beta[order], mean[order], var[order]
        s = gamma / torch.sqrt(var + step["eps"])
        w = w * s.view(-1, *([1] * (w.dim() - 1)))
        b = ((b if b is not None else torch.zeros_like(mean)) - mean) * s + beta
        return w, b
    if "densify" in step:
        groups = step["densify"]
        out_c, in_g = w.shape[0], w.shape[1]
        dense = w.new_zeros(out_c, in_g * groups, *w.shape[2:])
        og = out_c // groups
        for k in range(groups):
            dense[k * og:(k + 1) * og, k * in_g:(k + 1) * in_g] = w[k * og:(k + 1) * og]
        return dense, b
    if "permute_in" in step:  # forward read x[:, perm]: column i of W reads input channel perm[i]
        perm = torch.tensor(step["permute_in"], dtype=torch.long)
        moved = torch.zeros_like(w)
        moved[:, perm] = w
        return moved, b
    if "permute_out" in step:  # forward output[c] = conv[inv[c]], inv the inverse of perm
        perm = torch.tensor(step["permute_out"], dtype=torch.long)
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(len(perm))
        return w[inv], (b[inv] if b is not None else None)
    raise MGCompileError(f"unknown derive step {step!r}")


def lower_for_inference(model: nn.Module, *, transfers: str = "dense",
                        max_expansion: int = DEFAULT_MAX_EXPANSION) -> nn.Module:
    """The inference form of an mgcompile module (built, converted or loaded): BN folded, eval mode.

    The defaults are the form measured fastest in eager PyTorch, the ``torch`` export target's lowering
    (``mgcompile/exporters/targets/torch.py``; a test keeps the two equal). Export targets pass their own.
    """
    from mgcompile.backends.torch_module import attach, lower_to_torch

    import copy

    graph = getattr(model, "mg_graph", None)
    if graph is None:
        raise MGCompileError("this module has no mgcompile IR; build it with mgcompile.build/convert/load")
    if graph.meta_graph.inference is not None:  # already lowered (build/load with fold_bn=True): nothing left to fold
        return model.eval()
    folded, report = graph, []
    for p in inference_passes(transfers, max_expansion):
        before = _steps(folded)
        folded = run_passes(folded, [p])
        after = _steps(folded)
        report.append({"pass": p.__name__, "changed": sum(after[n] > before.get(n, 0) for n in after)})
    # copies: the lowered module's eval() must not switch the training module's layers
    opaque = {graph.attrs(n)["target"]: copy.deepcopy(model.get_submodule(n)) for n in graph.nodes("opaque")}
    lowered = lower_to_torch(folded, opaque=opaque)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    lowered.load_state_dict(derive_state(folded, state), strict=True)
    folded.meta_graph.inference = {"transfers": transfers, "passes": report}
    return attach(lowered.eval(), folded, getattr(model, "mg_spec", None))


def _steps(graph: Graph) -> dict[str, int]:
    """Derive steps recorded per node (a pass that rewrites a node appends to its list)."""
    return {n: len(graph.meta(n).get("derive", [])) for n in graph.nodes()}


def passes_report(model: nn.Module) -> Sequence[dict]:
    """What each inference pass changed: ``[{"pass": name, "changed": rewrites}, ...]``."""
    return (model.mg_graph.meta_graph.inference or {}).get("passes", [])
