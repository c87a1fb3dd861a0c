"""``mgcompile list``: model families, registry names and shipped spec files."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json

ROUTES = ("A registry name builds its network from the spec, every layer freshly initialised from --seed; "
          "torchvision:NAME (any torchvision classification model), timm:NAME (any timm model, fresh weights; "
          "needs pip install 'mgcompile[timm]') or module:callable converts an existing module instead, keeping "
          "the weights of every layer it does not replace.")


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(as_json: bool) -> None:
    """List model families, registry model names and shipped spec files (usable wherever a REF is taken)."""
    from mgcompile.models import FAMILIES
    from mgcompile.registry import list_models, list_spec_files

    models = list_models()
    specs = list_spec_files()
    families = {f.arch: {"blocks": list(f.blocks), "uneven_groups": f.uneven, "torchvision": list(f.torchvision),
                         "doc": f.doc} for f in sorted(FAMILIES.values(), key=lambda f: f.arch)}
    if as_json:
        echo_json({"models": {m.name: m.description for m in models}, "specs": specs, "families": families,
                   "mg_names": "mg_<base>_g<s_g>c<θ>[_add][_grouped][_dw|_keep][_pre]", "routes": ROUTES})
        return
    click.echo("Families (arch: step kinds; uneven-groups default):")
    for arch, f in families.items():
        click.echo(f"  {arch:<14} {', '.join(f['blocks'])}; {f['uneven_groups']}  {f['doc']}")
    click.echo("Registry models (add MG flags, or use mg_<base>_g<s_g>c<θ>[_add][_grouped][_dw|_keep][_pre]):")
    for m in models:
        click.echo(f"  {m.name:<22} {m.description}")
    click.echo("Spec files (specs/):")
    for s in specs:
        click.echo(f"  {s}")
    click.echo(ROUTES)
