"""``mgcompile train``: train a base or MG network on a data set, with resumable checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mgcompile.cli.options import mg_options


@click.command("train")
@click.argument("ref")
@click.option("--data", required=True, help="digits | mnist | fashion-mnist | cifar10 | cifar100 | imagefolder:PATH")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the data set's files (CIFAR: torchvision's layout).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (default recipe 20; --recipe paper 180).")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Images per step and process (default: from the data set's size, 16..128; paper 128).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate (default: 0.4 x global batch / 256; paper 0.1).")
@click.option("--schedule", type=click.Choice(["auto", "step", "cosine"]),
              help="auto (default): cosine under 30 epochs, else /10 at 1/3 and 2/3; paper: /10 every 30 epochs.")
@click.option("--limit-train", type=click.IntRange(min=1), help="Train on a fixed subset of N images (quick runs).")
@click.option("--workers", type=click.IntRange(min=0), help="Loader worker processes (default 8 on CUDA, 0 on CPU).")
@click.option("--recipe", "recipe_file", type=click.Path(dir_okay=False),
              help="A recipe name, 'default' (adapts to the data: batch, lr scaling, warm-up, cosine, zero-init "
                   "residuals) or 'paper' (the paper's ImageNet recipe), or a YAML file of recipe keys (epochs, lr, "
                   "momentum, ...); a name wins over a file of that name (./paper is the file).")
@click.option("--teacher", help="Distil from this network: 'original' (the trained network REF, a converted folder, "
                                "was converted from), a trained run folder, or torchvision:NAME / timm:NAME / "
                                "module:callable with --teacher-weights. Stored in the recipe (--resume continues it).")
@click.option("--teacher-weights", type=click.Path(dir_okay=False),
              help="The teacher's weights: a state_dict file (.pt/.pth), a checkpoint holding one, or .safetensors.")
@click.option("--distill-temperature", type=click.FloatRange(min=0, min_open=True),
              help="Softmax temperature of the distillation term (default 4).")
@click.option("--distill-weight", type=click.FloatRange(0, 1),
              help="Weight of the distillation term; 1 - weight goes to the labels (default 0.5).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default runs/<model>-<data>).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.pt.")
@click.option("--distributed", is_flag=True, help="DDP; launch with torchrun (implied when run under torchrun).")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the training forward.")
@click.option("--checkpointing", is_flag=True, help="Activation checkpointing per stage (less memory, more compute).")
@click.option("--plot", is_flag=True, help="Also draw the learning curves to RUN_DIR/curves.png.")
@click.option("--debug-fault", hidden=True, help="Testing: KIND@N (TERM, INT, KILL, NAN) after global batch N.")
@mg_options
def command(ref: str, data: str, data_dir: str | None, epochs: int | None, batch_size: int | None, lr: float | None,
            schedule: str | None, limit_train: int | None, workers: int | None, recipe_file: str | None, out: str | None, device: str,
            resume: bool, distributed: bool, use_compile: bool, checkpointing: bool, plot: bool,
            debug_fault: str | None, overrides: dict, teacher: str | None, teacher_weights: str | None,
            distill_temperature: float | None, distill_weight: float | None) -> None:
    """Train REF (registry name, MG name, spec file or converted folder) on --data.

    The stem and head adapt to the data (input channels, classes; images keep their
    native size unless --input-size is given). Writes RUN_DIR/checkpoint.pt every epoch
    and on SIGINT/SIGTERM (then exits 130/143: continue with --resume), metrics.csv and
    metrics.jsonl, and at the end results.json and model.pt for `mgcompile eval/export RUN_DIR`.
    """
    from mgcompile.train.run import Fault, Stopped, train

    fault = Fault.parse(debug_fault) if debug_fault else None
    recipe_overrides = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "schedule": schedule, "workers": workers,
                        "limit_train": limit_train,
                        "compile": True if use_compile else None, "checkpointing": True if checkpointing else None,
                        "seed": overrides.get("seed"),
                        "teacher": str(Path(teacher).resolve())
                        if teacher and teacher != "original" and Path(teacher).exists() else teacher,
                        "teacher_weights": str(Path(teacher_weights).resolve()) if teacher_weights else None,
                        "distill_temperature": distill_temperature, "distill_weight": distill_weight}
    try:
        train(ref, data, recipe_file=recipe_file, recipe_overrides=recipe_overrides, data_dir=data_dir, out=out,
              device=device, resume=resume, distributed=distributed, overrides=overrides, plot=plot, fault=fault,
              log=click.echo)
    except Stopped as exc:
        click.echo(str(exc), err=True)
        sys.exit(128 + exc.signum)
