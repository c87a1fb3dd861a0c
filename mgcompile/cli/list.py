"""``mgcompile list``: registry names and shipped spec files."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(as_json: bool) -> None:
    """List registry model names and shipped spec files (usable wherever a REF is taken)."""
    from mgcompile.registry import list_models, list_spec_files

    models = list_models()
    specs = list_spec_files()
    if as_json:
        echo_json({"models": {m.name: m.description for m in models}, "specs": specs,
                   "mg_names": "mg_<base>_g<s_g>c<θ>[_add][_grouped][_dw|_keep][_pre]"})
        return
    click.echo("Registry models (add MG flags, or use mg_<base>_g<s_g>c<θ>[_add][_grouped][_dw|_keep][_pre]):")
    for m in models:
        click.echo(f"  {m.name:<22} {m.description}")
    click.echo("Spec files (specs/):")
    for s in specs:
        click.echo(f"  {s}")
