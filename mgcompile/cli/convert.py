"""``mgcompile convert``: base network -> its MG version, written to an output folder."""

from __future__ import annotations

from pathlib import Path

import click

from mgcompile.cli.options import mg_options


@click.command("convert")
@click.argument("base")
@mg_options
@click.option("--ignored-layers", "ignored", multiple=True, metavar="PATTERN",
              help="Never convert residual steps whose block name matches this fnmatch pattern (repeatable), "
                   "e.g. 'layer4.*'.")
@click.option("--min-channels", type=click.IntRange(min=0), default=0,
              help="Convert only steps at least this wide (where MG pays).")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False), help="Output folder (default: ./out/<name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON instead of a table.")
def command(base: str, overrides: dict, ignored: tuple[str, ...], min_channels: int, out: str | None,
            as_json: bool) -> None:
    """Convert BASE into its MG version.

    BASE is a registry or spec name, a spec file, a torchvision model name
    (resnet18/34/50/101/152, wide_resnet50_2, resnext50_32x4d, mobilenet_v2,
    mobilenet_v3_small/large; torchvision:NAME forces converting torchvision's module
    rather than building the registry spec of the same name), or module:callable
    returning an nn.Module. Writes spec.yaml (spec routes), graph.json (the IR),
    model.pt (IR + weights; reload with mgcompile.load(DIR)), audit.json and, for
    converted modules, conversion.json, atomically. A module with no convertible
    residual step fails with exit code 2 and writes nothing.
    """
    from mgcompile.api import save
    from mgcompile.atomic import atomic_dir, json_text
    from mgcompile.audit import audit, format_audit
    from mgcompile.conversion import format_report
    from mgcompile.errors import MGCompileError
    from mgcompile.naming import model_name
    from mgcompile.refs import is_saved_model, resolve

    r = resolve(base, ignored_layers=tuple(ignored), min_channels=min_channels, **overrides)
    if r.kind == "torch":
        rep = r.report
        click.echo(format_report(rep), err=as_json)
        if rep["converted"] + rep["transition"] == 0:
            raise MGCompileError(f"no residual step of {base} could be converted (see the report above); nothing written")
    name = model_name(r)
    target = Path(out) if out else Path("out") / name
    if target.is_dir() and any(target.iterdir()) and not is_saved_model(str(target)):
        raise MGCompileError(f"{target} exists and is not a folder written by `mgcompile convert`; "
                             "choose another -o or empty it first (it would be replaced as a whole)")
    model = r.model()
    a = audit(r.graph, r.spec)
    a["name"] = name
    if r.kind == "torch":
        a["conversion"] = r.report
    with atomic_dir(target) as tmp:
        if r.spec is not None:
            (tmp / "spec.yaml").write_text(r.spec.replace(name=name).to_yaml())
        (tmp / "graph.json").write_text(r.graph.to_json())
        save(model, tmp / "model.pt", r.graph)
        (tmp / "audit.json").write_text(json_text(a))
        if r.kind == "torch":
            (tmp / "conversion.json").write_text(json_text(r.report))
    if as_json:
        click.echo(json_text(a), nl=False)
    else:
        click.echo(format_audit(a))
        click.echo(f"wrote {target}/")
