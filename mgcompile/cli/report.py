"""``mgcompile report``: draw learning curves of one or several training runs to a PNG."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="PNG to write (default RUN_DIR/curves.png for one run; required for several).")
@click.option("--force", is_flag=True, help="Replace an existing file that mgcompile did not write.")
def command(run_dirs: tuple[str, ...], output: str | None, force: bool) -> None:
    """Plot loss and top-1 per epoch (train solid, validation dashed) of one or more RUN_DIRS, overlaid
    (e.g. a base run and its MG version); the loss axis is logarithmic when losses span decades."""
    from mgcompile.errors import MGCompileError
    from mgcompile.provenance import claim_file
    from mgcompile.train.metrics import read_metrics
    from mgcompile.train.report import plot_runs

    if len(run_dirs) > 1 and output is None:
        raise MGCompileError("several runs need -o FILE.png for the overlaid plot")
    runs = {Path(d).name if len(run_dirs) > 1 else "": read_metrics(d) for d in run_dirs}
    if len(runs) != len(run_dirs):
        raise MGCompileError("two runs share a folder name; pass run folders with distinct names")
    target = claim_file(output or Path(run_dirs[0]) / "curves.png", force=force)
    target = plot_runs(runs, target, title=Path(run_dirs[0]).name if len(run_dirs) == 1 else "")
    click.echo(f"wrote {target}")
