"""``mgcompile eval``: top-1 / top-5 of a trained run (or any REF) on a data set."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json, mg_options


@click.command("eval")
@click.argument("ref")
@click.option("--data", help="Data set (default: the run's, from RUN_DIR/run.json).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the data set's files.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@mg_options
def command(ref: str, data: str | None, data_dir: str | None, split: str, batch_size: int, device: str,
            as_json: bool, overrides: dict) -> None:
    """Evaluate REF_OR_RUN: a `mgcompile train` run folder, a converted folder, a spec or a registry name."""
    from mgcompile.train.evaluation import evaluate_ref

    result = evaluate_ref(ref, data, data_dir=data_dir, split=split, batch_size=batch_size, device=device,
                          overrides=overrides)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{ref} on {result['data']} {split} ({result['n']} images): top-1 {result['top1']:.4f}  "
                   f"top-5 {result['top5']:.4f}  loss {result['loss']:.4f}")
