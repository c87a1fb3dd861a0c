"""Options shared by several commands: the MG flags and REF resolution."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import click

from mgcompile.errors import MGCompileError
from mgcompile.multigrid import cli_fields
from mgcompile.spec import ACTIVATIONS


def _int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 64,128,256,512, got {value!r}") from None


def _mg_option(f: dataclasses.Field) -> Callable:
    """The click option of one MG field, from its ``metadata["cli"]`` (``--group-size`` for ``group_size``)."""
    cli = f.metadata["cli"]
    if cli["choices"] is not None:
        kind: Any = click.Choice(cli["choices"])
    elif cli["least"] is not None:
        kind = click.IntRange(min=cli["least"])
    else:
        kind = int
    names = ["--" + f.name.replace("_", "-")] + ([cli["short"]] if cli["short"] else [])
    return click.option(*names, f.name, type=kind, help=cli["help"])


# Spec flags of the base network (hand-written: they are Spec fields, not MG parameters)
_SPEC_OPTIONS = {
    "activation": click.option("--activation", type=click.Choice(ACTIVATIONS), help="post (torchvision, default) or pre (paper eq. 1)."),
    "channels": click.option("--channels", callback=_int_list, help="Channels per stage, e.g. 64,128,256,512."),
    "width_mult": click.option("--width-mult", type=click.FloatRange(min=0, min_open=True), help="Multiply every stage width."),
    "blocks": click.option("--blocks", callback=_int_list, help="Residual steps per stage, e.g. 3,4,6,3."),
    "num_classes": click.option("--num-classes", type=click.IntRange(min=1), help="Classifier outputs."),
    "input_size": click.option("--input-size", callback=_int_list, help="Input C,H,W (or H,W), e.g. 3,224,224."),
    "seed": click.option("--seed", type=int, help="Seed of the init and the sparse transfer permutations."),
}
# --help lists the MG flags first, --activation after --transition (where it always stood)
_AFTER = {"transition": ("activation",)}


def mg_options(fn: Callable) -> Callable:
    """The spec flags every REF-taking command accepts (all optional; unset = the REF's own value): one per MG
    field with ``cli`` metadata (:func:`mgcompile.multigrid.cli_fields`), then the base network's."""
    opts: list[tuple[str, Callable]] = []
    for f in cli_fields():
        opts.append((f.name, _mg_option(f)))
        opts.extend((k, _SPEC_OPTIONS[k]) for k in _AFTER.get(f.name, ()))
    opts.extend((k, o) for k, o in _SPEC_OPTIONS.items() if k not in {n for n, _ in opts})
    for _, opt in reversed(opts):
        fn = opt(fn)
    keys = tuple(k for k, _ in opts)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
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


def multigrid_metadata(graph: Any) -> str:
    """The resolved MG record of a built network (θ, t, uneven policy and seed as used), as export metadata JSON."""
    import json

    return json.dumps(graph.meta_graph.multigrid.to_meta(), sort_keys=True)


def echo_json(data: Any) -> None:
    from mgcompile.atomic import json_text

    click.echo(json_text(data), nl=False)
