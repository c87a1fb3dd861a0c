"""``mgcompile graph``: draw the IR (one box per step) or one MG cycle as in the paper's Fig. 1."""

from __future__ import annotations

import click

from mgcompile.cli.options import mg_options


@click.command("graph")
@click.argument("ref")
@mg_options
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Picture file: .svg, .png, .pdf (matplotlib) or .dot (Graphviz text; no graphviz needed).")
@click.option("--block", help="Draw one step's MG cycle, e.g. stage3.block1 (levels as rows, R/P edges between them).")
@click.option("--force", is_flag=True, help="Replace an existing file that mgcompile did not write.")
def command(ref: str, overrides: dict, out: str, block: str | None, force: bool) -> None:
    """Draw REF's IR: the network by step, or with --block one MG cycle."""
    from mgcompile.audit.graph_picture import FORMATS, cycle_picture, network_picture, render
    from mgcompile.errors import MGCompileError
    from mgcompile.naming import model_name
    from mgcompile.provenance import claim_file
    from mgcompile.refs import resolve

    if not out.lower().endswith(FORMATS):
        raise MGCompileError(f"-o {out}: unsupported picture type; use one of {', '.join(FORMATS)}")
    claim_file(out, force=force)
    r = resolve(ref, **overrides)
    pic = cycle_picture(r.graph, block) if block else network_picture(r.graph, model_name(r))
    render(pic, out)
    click.echo(f"wrote {out}")
