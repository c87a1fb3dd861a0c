"""Options shared by several commands: the MG flags and REF resolution."""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from mgcompile.errors import MGCompileError
from mgcompile.spec import ACTIVATIONS, CYCLES, TRANSFERS, TRANSITIONS, UNEVEN_GROUPS


def _int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 64,128,256,512, got {value!r}") from None


def mg_options(fn: Callable) -> Callable:
    """The spec flags every REF-taking command accepts (all optional; unset = the REF's own value)."""
    opts = [
        click.option("--group-size", "-g", type=click.IntRange(min=1), help="MG group size s_g (channels per group on fine levels). Without it: the base network."),
        click.option("--coarsest", "-c", type=click.IntRange(min=2), help="Level threshold θ ('Coarsest c_in' in the paper's tables): widths >= θ are fine levels; the fully coupled step runs at the first halving below θ. Default 2*s_g."),
        click.option("--cycle", type=click.Choice(CYCLES), help="MG cycle (default multiplicative, Algorithm 1)."),
        click.option("--transfer", type=click.Choice(TRANSFERS), help="Restriction/prolongation kind (default sparse, the paper's)."),
        click.option("--transfer-nnz", type=click.IntRange(min=1), help="Nonzeros per row of the sparse P (t; default s_g)."),
        click.option("--transition", type=click.Choice(TRANSITIONS), help="Channel-doubling stage transition (default paper)."),
        click.option("--activation", type=click.Choice(ACTIVATIONS), help="post (torchvision, default) or pre (paper eq. 1)."),
        click.option("--uneven-groups", type=click.Choice(UNEVEN_GROUPS), help="A fine level s_g does not divide: error (ResNet default) or floor (⌊C_j/s_g⌋ wider groups; MobileNetV2 default)."),
        click.option("--channels", callback=_int_list, help="Channels per stage, e.g. 64,128,256,512."),
        click.option("--width-mult", type=click.FloatRange(min=0, min_open=True), help="Multiply every stage width."),
        click.option("--blocks", callback=_int_list, help="Residual steps per stage, e.g. 3,4,6,3."),
        click.option("--num-classes", type=click.IntRange(min=1), help="Classifier outputs."),
        click.option("--input-size", callback=_int_list, help="Input C,H,W (or H,W), e.g. 3,224,224."),
        click.option("--seed", type=int, help="Seed of the init and the sparse transfer permutations."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        keys = ("group_size", "coarsest", "cycle", "transfer", "transfer_nnz", "transition", "activation", "uneven_groups",
                "channels", "width_mult", "blocks", "num_classes", "input_size", "seed")
        overrides = {k: kwargs.pop(k) for k in keys}
        size = overrides.pop("input_size")
        if size is not None:
            if len(size) == 3:
                overrides["in_channels"], size = size[0], size[1:]
            if len(size) != 2:
                raise MGCompileError(f"--input-size takes C,H,W or H,W, got {','.join(map(str, size))}")
            overrides["input_size"] = tuple(size)
        return fn(*args, overrides=overrides, **kwargs)

    return wrapper


def echo_json(data: Any) -> None:
    from mgcompile.atomic import json_text

    click.echo(json_text(data), nl=False)
