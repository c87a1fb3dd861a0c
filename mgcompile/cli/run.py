"""``mgcompile run``: load an ONNX model in ONNX Runtime and time it."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json


@click.command("run")
@click.argument("model", type=click.Path())
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size for a model with a dynamic batch axis (a static model uses its own).")
@click.option("--repeat", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs (median reported).")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--level", type=click.Choice(("disable", "basic", "extended", "all")), default="all", show_default=True,
              help="ORT graph optimisation level for the timed session.")
@click.option("--threads", type=click.IntRange(min=1), help="ORT intra-op threads (default: ORT's choice).")
@click.option("--cuda/--cpu", "cuda", default=None, help="Force the provider (default: CUDA when a GPU is present).")
@click.option("--save-optimized", type=click.Path(),
              help="Also save ORT's optimised graph at --save-level. Only basic/extended are portable: 'all' bakes "
                   "in this CPU's memory layouts (NCHWc), so such a file may be wrong or slow elsewhere.")
@click.option("--save-level", type=click.Choice(("basic", "extended")), default="extended", show_default=True)
@click.option("--force", is_flag=True, help="With --save-optimized: replace a file that mgcompile did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(model: str, batch_size: int, repeat: int, warmup: int, level: str, threads: int | None,
            cuda: bool | None, save_optimized: str | None, save_level: str, force: bool, as_json: bool) -> None:
    """Run MODEL (.onnx) on random input in ONNX Runtime; print the median latency and the provider used."""
    from mgcompile.atomic import atomic_path
    from mgcompile.exporters.ort_run import is_dynamic_batch, load_onnx, random_input, session, time_session

    proto = load_onnx(model)
    x = random_input(proto, batch=batch_size, seed=0)
    if save_optimized:
        from mgcompile.exporters.export import check_target

        from mgcompile.provenance import claim_file

        check_target(save_optimized)
        claim_file(save_optimized, force=force)
        with atomic_path(save_optimized) as tmp:
            session(proto, level=save_level, cuda=False, save_optimized=tmp)
    sess = session(proto, level=level, cuda=cuda, threads=threads)
    result = {"model": model, "input_shape": list(x.shape), "dynamic_batch": is_dynamic_batch(proto), "level": level,
              **time_session(sess, x, repeat=repeat, warmup=warmup)}
    if save_optimized:
        result["saved_optimized"] = {"path": save_optimized, "level": save_level}
    if as_json:
        echo_json(result)
        return
    click.echo(f"{model}: input {tuple(x.shape)}, median {result['median_ms']:.2f} ms (min {result['min_ms']:.2f}) "
               f"over {repeat} runs after {warmup} warm-up, ORT level {level}, providers {', '.join(result['providers'])}")
    if save_optimized:
        click.echo(f"wrote ORT-optimised model ({save_level}) to {save_optimized}")
