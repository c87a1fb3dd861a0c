"""``mgcompile convert``: base network -> its MG version, written to an output folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mgcompile.cli.options import mg_options


@click.command("convert")
@click.argument("base")
@mg_options
@click.option("-o", "--output", "out", type=click.Path(file_okay=False), help="Output folder (default: ./out/<name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON instead of a table.")
def command(base: str, overrides: dict, out: str | None, as_json: bool) -> None:
    """Convert BASE (registry name, spec file) into its MG version.

    Writes spec.yaml, graph.json (the IR), model.pt (IR + weights; reload with
    mgcompile.load(DIR)) and audit.json into the output folder, atomically.
    Without --group-size, BASE is built as the plain base network.
    """
    from mgcompile.api import save
    from mgcompile.atomic import atomic_dir
    from mgcompile.audit import audit, format_audit
    from mgcompile.naming import canonical_name
    from mgcompile.refs import resolve

    r = resolve(base, **overrides)
    name = canonical_name(r.spec) if r.spec is not None else Path(base).stem
    target = Path(out) if out else Path("out") / name
    model = r.model()
    a = audit(r.graph, r.spec)
    a["name"] = name
    with atomic_dir(target) as tmp:
        if r.spec is not None:
            (tmp / "spec.yaml").write_text(r.spec.replace(name=name).to_yaml())
        (tmp / "graph.json").write_text(r.graph.to_json())
        save(model, tmp / "model.pt", r.graph)
        (tmp / "audit.json").write_text(json.dumps(a, indent=2, default=str))
    if as_json:
        click.echo(json.dumps(a, indent=2, default=str))
    else:
        click.echo(format_audit(a))
        click.echo(f"wrote {target}/ (spec.yaml, graph.json, model.pt, audit.json)")
