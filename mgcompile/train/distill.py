"""Logit distillation from a teacher: the network being converted teaches its MG version.

``loss = (1 - w) * CE(student, y) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))``
(Hinton et al. 2015), with temperature ``T`` and weight ``w`` from the recipe
(``distill_temperature``, ``distill_weight``). The teacher runs in eval mode without
gradients on the same batch.

A teacher is ``original`` (the network a converted student was converted from, as its
conversion recorded it), a trained run or saved model folder (its weights are in it), or
``torchvision:NAME`` / ``timm:NAME`` / ``module:callable`` with ``--teacher-weights PATH``
(a ``state_dict``, a checkpoint holding one, or ``.safetensors``: :mod:`mgcompile.weights`;
nothing is downloaded). It must take the student's input and predict the same classes:
anything else is a one-line error.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from mgcompile.errors import MGCompileError, first_line

Criterion = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def load_teacher(ref: str, weights: str | None, num_classes: int, student: Any = None) -> nn.Module:
    """The teacher module of ``ref`` (see the module docstring), in eval mode, its parameters frozen.

    ``original``: the network the student (a converted folder, its IR ``student``) was converted from, as its
    conversion recorded it (:func:`mgcompile.original.load_original`)."""
    from mgcompile.api import load
    from mgcompile.refs import is_saved_model, timm_module, torchvision_module, user_module
    from mgcompile.weights import load_weights

    if ref == "original":
        from mgcompile.original import load_original

        if weights is not None:
            raise MGCompileError("--teacher original is the network the student was converted from, with the weights "
                                 "its conversion recorded; drop --teacher-weights (or name the teacher explicitly)")
        conversion = (student.meta_graph.conversion if student is not None else None) or {}
        if not conversion:
            raise MGCompileError("--teacher original needs a converted network (a folder written by `mgcompile "
                                 "convert` from a trained run or a module with --weights); name the teacher instead")
        model = load_original(conversion.get("original"))
    elif is_saved_model(ref):
        if weights is not None:
            raise MGCompileError(f"--teacher-weights is for torchvision:/timm:/module: teachers; {ref} holds its own")
        model = load(ref)
    elif ref.startswith(("torchvision:", "timm:")) or ":" in ref:
        if weights is None:
            raise MGCompileError(f"teacher {ref} needs --teacher-weights PATH (its trained state_dict): a teacher "
                                 "with fresh weights teaches nothing")
        name = ref.split(":", 1)[1]
        if ref.startswith("torchvision:"):
            model = torchvision_module(name, {"num_classes": num_classes})
        elif ref.startswith("timm:"):
            model = timm_module(name, {"num_classes": num_classes})
        else:
            model = user_module(ref, {})
        load_weights(model, weights, "--teacher-weights")
    else:
        raise MGCompileError(f"teacher {ref!r} is neither a trained run folder nor torchvision:NAME / timm:NAME / "
                             "module:callable (with --teacher-weights)")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def check_teacher(teacher: nn.Module, input_shape: tuple[int, int, int], num_classes: int, ref: str) -> None:
    """The teacher must take the student's input and predict its classes (one line naming both)."""
    graph = getattr(teacher, "mg_graph", None)
    if graph is not None and tuple(graph.input_shape()) != tuple(input_shape):
        raise MGCompileError(f"teacher {ref} was built for input {tuple(graph.input_shape())} but the student takes "
                             f"{tuple(input_shape)}; distil from a teacher trained on the same data and input size")
    try:
        with torch.no_grad():
            out = teacher(torch.zeros(2, *input_shape))
    except Exception as exc:
        raise MGCompileError(f"teacher {ref} does not take the student's input {tuple(input_shape)} "
                             f"({first_line(exc, 100)}); give the teacher the data set the student trains on") from None
    if not isinstance(out, torch.Tensor) or out.shape != (2, num_classes):
        got = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MGCompileError(f"teacher {ref} predicts {got} outputs but the student {num_classes} classes; "
                             "use a teacher trained on the same data set")


def criterion(label_smoothing: float, teacher: nn.Module | None = None, temperature: float = 4.0,
              weight: float = 0.5) -> Criterion:
    """Cross-entropy, or the distillation loss when there is a teacher."""
    def plain(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)

    if teacher is None:
        return plain

    def distilled(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = F.softmax(teacher(x).float() / temperature, dim=1)
        soft = F.kl_div(F.log_softmax(logits.float() / temperature, dim=1), target, reduction="batchmean")
        return (1 - weight) * plain(logits, x, y) + weight * temperature ** 2 * soft

    return distilled
