"""``mgcompile audit``: parameter / MAC / activation counts, base comparison, width sweeps, paper tables."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json, mg_options

BY = ("stage", "level", "step")
INCLUDE = ("norm", "activation", "pool", "add")


@click.command("audit")
@click.argument("ref", required=False)
@mg_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys: params, macs, input_size, base, ...).")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print CSV; columns use the JSON key names (params, macs, input_size, base.params, ...).")
@click.option("--unit", type=click.Choice(("macs", "flops")), default="macs", show_default=True,
              help="Cost unit of tables and CSV: multiply-accumulates, or FLOPs = 2 x MACs (JSON always has macs).")
@click.option("--count", "include", default="", metavar="GROUPS",
              help=f"Also count these elementwise op groups as MACs, comma-separated: {','.join(INCLUDE)}.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size for the activation memory (elements of every intermediate tensor).")
@click.option("--by", type=click.Choice(BY), default="stage", show_default=True, help="Group the rows by stage, MG level or step.")
@click.option("--per-node", is_flag=True, help="One row per IR node (params, MACs, activations).")
@click.option("--compare", is_flag=True, help="Base network vs this network side by side, with ratios.")
@click.option("--sweep-width", metavar="WIDTHS",
              help="Width sweep from the IR: multipliers 1,2,4,8 or channel lists 32-64-128-256,64-128-256-512; fits the growth exponent.")
@click.option("--plot", type=click.Path(dir_okay=False), help="With --sweep-width: write a log-log plot (.png/.svg/.pdf).")
@click.option("--paper", is_flag=True, help="Every row of the paper's Tables 1-2: paper vs measured params and the gap.")
@click.option("--force", is_flag=True, help="With --plot: replace an existing file that mgcompile did not write.")
def command(ref: str | None, overrides: dict, as_json: bool, as_csv: bool, unit: str, include: str, batch_size: int,
            by: str, per_node: bool, compare: bool, sweep_width: str | None, plot: str | None, paper: bool,
            force: bool) -> None:
    """Count parameters, MACs and activations of REF (registry name, spec file or converted folder).

    Counts come from the IR (no module is built). MACs cover conv, transfer (R/P) and
    linear layers unless --count adds more; parameters count batch norm as 2 per channel.
    """
    from mgcompile.errors import MGCompileError

    if as_json and as_csv:
        raise MGCompileError("--json and --csv exclude each other; pick one output format")
    if plot and not sweep_width:
        raise MGCompileError("--plot draws a width sweep; add --sweep-width 1,2,4,8")
    if plot:
        from mgcompile.provenance import claim_file

        claim_file(plot, force=force)
    if paper:
        _paper(as_json, as_csv)
        return
    if ref is None:
        raise MGCompileError("audit needs a REF (e.g. mg_resnet34_g32c64) or --paper; see `mgcompile list`")
    from mgcompile.refs import resolve

    r = resolve(ref, **overrides)
    if sweep_width:
        _sweep(r, sweep_width, plot, unit, as_json, as_csv)
        return
    from mgcompile.audit import audit
    from mgcompile.audit.tables import audit_rows, render_table, to_csv

    groups = tuple(g.strip() for g in include.split(",") if g.strip())
    a = audit(r.graph, r.spec, batch_size=batch_size, include=groups, per_node=per_node)
    if compare and "base" not in a:
        raise MGCompileError(f"{ref} has no base network to compare with (no spec and no conversion record)")
    if as_json:
        if unit == "flops":
            a["flops"] = 2 * a["macs"]
        echo_json(a)
        return
    cols, rows = audit_rows(a, by=by, unit=unit, compare=compare, per_node=per_node)
    if as_csv:
        click.echo(to_csv(cols, rows), nl=False)
        return
    name = a.get("name") or ref
    size = "x".join(map(str, a["input_size"]))
    what = "FLOPs (2 x MACs)" if unit == "flops" else "MACs"
    caption = (f"{what} of {a['counted']['macs']}; params: {a['counted']['params']}; activations: elements of "
               f"every intermediate tensor at batch {batch_size} ({a['activations']['bytes_fp32'] / 2**20:.1f} MiB fp32)")
    click.echo(render_table(f"{name}  input {size}  ({what})", [c for c in cols if c != "input_size"], rows, caption))
    if "paper" in a:
        click.echo(f"paper: {a['paper']['params_m']}M params ({a['paper']['table']}); measured "
                   f"{a['params'] / 1e6:.3f}M, gap {a['paper']['gap_pct']:+.2f}%")
    for note in a["notes"]:
        click.echo(f"note: {note}")
    if "calibration" in a:
        from mgcompile.audit.calibration import format_calibration

        click.echo(format_calibration(a["calibration"]))


def _paper(as_json: bool, as_csv: bool) -> None:
    from mgcompile.audit.paper import paper_rows
    from mgcompile.audit.tables import render_table, to_csv

    rows = paper_rows()
    if as_json:
        echo_json(rows)
        return
    cols = ["table", "name", "channels", "group_size", "coarsest", "paper_params_m", "params", "gap_pct", "status"]
    if as_csv:
        click.echo(to_csv(cols + ["cycle", "consistent", "paper_test_acc", "note"], rows), nl=False)
        return
    click.echo(render_table("Paper Tables 1-2: paper vs measured parameters", cols, rows,
                            "params: measured from the IR (batch norm = 2 per channel); gap_pct = measured vs paper; "
                            "'reported only': the paper's number is inconsistent or unreproduced (see --json note)"))


def _sweep(r, text: str, plot: str | None, unit: str, as_json: bool, as_csv: bool) -> None:
    from mgcompile.audit.sweep import parse_widths, sweep_width
    from mgcompile.audit.tables import render_table, to_csv
    from mgcompile.errors import MGCompileError

    if r.spec is None:
        raise MGCompileError(f"{r.ref} has no spec; --sweep-width needs a registry name or spec file")
    sw = sweep_width(r.spec, parse_widths(text, r.spec))
    if plot:
        from mgcompile.audit.plot import plot_sweep

        plot_sweep(sw, plot)
    if as_json:
        echo_json(sw.to_dict())
        return
    k = 2 if unit == "flops" else 1
    cols = ["label", "width", "channels", "params", unit, "base.params", f"base.{unit}", "ratio.params", f"ratio.{unit}"]
    rows = [{"label": x["label"], "width": x["width"], "channels": x["channels"], "params": x["params"],
             unit: k * x["macs"], "base.params": x["base"]["params"], f"base.{unit}": k * x["base"]["macs"],
             "ratio.params": round(x["ratio"]["params"], 4), f"ratio.{unit}": round(x["ratio"]["macs"], 4)}
            for x in sw.rows]
    if as_csv:
        click.echo(to_csv(cols, rows), nl=False)
        return
    e = sw.exponents
    net = "MG" if sw.multigrid else "network"
    click.echo(render_table(f"{sw.name}: width sweep ({'FLOPs' if k == 2 else 'MACs'}, θ and s_g fixed)", cols, rows))
    click.echo(f"growth exponent (least squares in log-log): base params {e['base']['params']:.3f}, "
               f"base {unit} {e['base']['macs']:.3f}; {net} params {e['params']:.3f}, {net} {unit} {e['macs']:.3f}")
    if plot:
        click.echo(f"wrote {plot}")
