"""``mgcompile calibrate FOLDER --data DATA``: fit a converted network to its original, without labels.

Also the glue ``convert --calibrate`` shares: the calibration flags, finding the original,
its input normalisation and the images (:mod:`mgcompile.train.calibration_data`), and the
fit itself (:mod:`mgcompile.calibration`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from mgcompile.provenance import register_file_set

CALIBRATE_FILES = register_file_set("calibrate", ("model.pt", "graph.json", "audit.json", "conversion.json")).names


def calibration_options(fn: Callable) -> Callable:
    """The flags of a calibration, shared by ``convert --calibrate`` and ``calibrate``."""
    for opt in reversed([
        click.option("--data-dir", help="Folder of cifar10/cifar100 (torchvision's layout) or another data set's files."),
        click.option("--calibrate-steps", type=click.IntRange(min=1),
                     help="Optimizer steps of the fit (default: 20,000 image presentations / --calibrate-batch)."),
        click.option("--calibrate-batch", type=click.IntRange(min=1), default=128, show_default=True,
                     help="Images per calibration step."),
        click.option("--calibrate-images", type=click.IntRange(min=1),
                     help="Fit on a fixed random subset of this many images (default: all of the split; a small set "
                          "is cycled)."),
        click.option("--device", default="cpu", show_default=True,
                     help="Where the fit runs: cpu, cuda, cuda:N (float32 on both; no AMP)."),
    ]):
        fn = opt(fn)
    return fn


def config_of(steps: int | None, batch: int, seed: int | None, device: str) -> Any:
    from mgcompile.calibration import CalibrationConfig

    cfg = CalibrationConfig(batch_size=batch, seed=seed or 0, device=_device(device))
    return cfg if steps is None else CalibrationConfig(**{**cfg.to_dict(), "presentations": steps * batch})


def _device(name: str) -> str:
    import torch

    from mgcompile.errors import MGCompileError

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MGCompileError(f"--device {name}: no CUDA device is visible here; use --device cpu")
    if not (name == "cpu" or name.startswith("cuda")):
        raise MGCompileError(f"--device takes cpu, cuda or cuda:N, got {name!r}")
    return name


def normalisation_of(record: dict[str, Any], original: Any) -> Any:
    """How the original expects its inputs: its run's data set statistics, or its module route's (ImageNet, timm)."""
    from mgcompile.train.calibration_data import Normalisation, module_normalisation, run_normalisation

    if record.get("normalize"):
        return Normalisation.from_dict(record["normalize"])
    route = record.get("route")
    if route == "run":
        path = Path(record["path"])
        return run_normalisation(path if path.is_dir() else path.parent)
    name = str(record.get("ref", "")).split(":", 1)[-1]
    return module_normalisation(route or "module", original, name)


def run_calibration(model: Any, data: str, *, original_ref: str | None = None, weights: str | None = None,
                    data_dir: str | None, cfg: Any, limit: int | None) -> dict[str, Any]:
    """Fit ``model`` (a converted network, changed in place) to its recorded original on DATA's images; the report
    is stored in its conversion record (``calibration``) and returned."""
    from mgcompile.errors import MGCompileError
    from mgcompile.original import load_original
    from mgcompile.audit.calibration import format_calibration
    from mgcompile.calibration import calibrate
    from mgcompile.progress import logger
    from mgcompile.train.calibration_data import calibration_images

    graph = model.mg_graph
    conversion = graph.meta_graph.conversion
    if not conversion:
        raise MGCompileError("this network was not converted from a module or a trained run (no conversion record); "
                             "calibration fits a converted network to its original: convert a trained network first")
    record = dict(conversion.get("original") or {})
    original = load_original(record, ref=original_ref, weights=weights)
    if original_ref is not None:  # the user's original: its own normalisation, not the record's
        from mgcompile.refs import route_of

        route = route_of(original_ref)
        record = {"ref": original_ref, "route": "run" if route in ("saved", "folder") else route,
                  "path": str(Path(original_ref).resolve()) if Path(original_ref).exists() else None,
                  "weights": str(Path(weights).resolve()) if weights else None}
    norm = normalisation_of(record, original)
    c, h, w = graph.input_shape()
    images = calibration_images(data, data_dir=data_dir, size=(h, w), channels=c, norm=norm, limit=limit,
                                seed=cfg.seed)
    report = calibrate(model, original, images.fit, heldout=images.heldout, config=cfg)
    report.update(data=images.description, normalize=norm.to_dict(), images=data)
    record["normalize"] = norm.to_dict()
    conversion["original"] = record  # calibrate() stored the report in the same record
    for line in format_calibration(report).splitlines():
        logger.info(line)
    return report


@click.command("calibrate")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--data", required=True, help="Images to fit on (labels are never read): digits, mnist, fashion-mnist, "
                                             "cifar10, cifar100, imagefolder:PATH, or images:PATH (a folder of "
                                             "unlabelled images, any nesting).")
@click.option("--original", "original_ref", help="The network FOLDER was converted from, when its record cannot "
                                                 "reproduce it: a run folder, torchvision:NAME, timm:NAME or "
                                                 "module:callable (with --weights).")
@click.option("--weights", type=click.Path(dir_okay=False), help="The original's trained weights file (module routes).")
@calibration_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the image order and the subset.")
def command(folder: str, data: str, original_ref: str | None, weights: str | None, data_dir: str | None,
            calibrate_steps: int | None, calibrate_batch: int, calibrate_images: int | None, device: str,
            seed: int) -> None:
    """Fit the converted network in FOLDER to the network it was converted from, on --data's images.

    The original is the one FOLDER's conversion recorded (a run folder, or a module with the
    --weights file it was converted with; its file must be unchanged), or --original REF
    [--weights PATH]. Per fitted step the output error relative to the original's, before
    and after, and the top-1 agreement and KL with the original on held-out images are
    printed and stored in conversion.json; model.pt, graph.json, audit.json and
    conversion.json are replaced atomically at the end (Ctrl-C leaves FOLDER as it was).
    """
    from mgcompile.api import load, save
    from mgcompile.atomic import json_text, write_file_set
    from mgcompile.audit import audit, format_audit
    from mgcompile.errors import MGCompileError
    from mgcompile.provenance import claim_folder, marked_json
    from mgcompile.refs import is_saved_model

    target = Path(folder)
    if not is_saved_model(folder) or not target.is_dir():
        raise MGCompileError(f"{folder} is not a folder written by `mgcompile convert`; pass the converted folder")
    claim_folder(target, CALIBRATE_FILES)
    model = load(target)
    if model.mg_graph.meta_graph.multigrid is None:
        raise MGCompileError(f"{folder} holds a base network, not an MG conversion; convert it first "
                             "(mgcompile convert RUN -g N --calibrate DATA)")
    run_calibration(model, data, original_ref=original_ref, weights=weights, data_dir=data_dir,
                    cfg=config_of(calibrate_steps, calibrate_batch, seed, device), limit=calibrate_images)
    graph = model.mg_graph
    a = audit(graph, None)
    a["name"] = target.name
    a["conversion"] = graph.meta_graph.conversion
    files = {
        "graph.json": lambda p: p.write_text(graph.to_json()),
        "model.pt": lambda p: save(model.cpu(), p, graph, trained=True),
        "audit.json": lambda p: p.write_text(json_text(marked_json(a))),
        "conversion.json": lambda p: p.write_text(json_text(marked_json(graph.meta_graph.conversion))),
    }
    write_file_set(target, files, CALIBRATE_FILES)
    click.echo(format_audit(a))
    click.echo(f"wrote {target}/")
