"""``mgcompile audit``: parameter / MAC counts against the base network and the paper."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json, mg_options


@click.command("audit")
@click.argument("ref", required=False)
@mg_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys: params, macs, input_size, base, ...).")
@click.option("--paper", is_flag=True, help="Print every row of the paper's Tables 1-2: paper vs measured params.")
def command(ref: str | None, overrides: dict, as_json: bool, paper: bool) -> None:
    """Count parameters and MACs of REF (registry name, spec file or converted folder) vs its base network."""
    from mgcompile.audit import audit, format_audit
    from mgcompile.errors import MGCompileError
    from mgcompile.refs import resolve

    if paper:
        from mgcompile.audit.paper import format_paper_rows, paper_rows

        rows = paper_rows()
        echo_json(rows) if as_json else click.echo(format_paper_rows(rows))
        return
    if ref is None:
        raise MGCompileError("audit needs a REF (e.g. mg_resnet34_g32c64) or --paper; see `mgcompile list`")
    r = resolve(ref, **overrides)
    a = audit(r.graph, r.spec)
    echo_json(a) if as_json else click.echo(format_audit(a))
