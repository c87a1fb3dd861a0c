"""``mgcompile report``: draw a training run's learning curves to a PNG."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="PNG to write (default RUN_DIR/curves.png).")
@click.option("--force", is_flag=True, help="Replace an existing file that mgcompile did not write.")
def command(run_dir: str, output: str | None, force: bool) -> None:
    """Plot loss and top-1 per epoch (train and validation) of RUN_DIR (from its metrics.jsonl)."""
    from mgcompile.train.metrics import read_metrics
    from mgcompile.train.report import plot_curves

    from mgcompile.provenance import claim_file

    history = read_metrics(run_dir)
    target = claim_file(output or Path(run_dir) / "curves.png", force=force)
    target = plot_curves(history, target, title=Path(run_dir).name)
    click.echo(f"wrote {target}")
