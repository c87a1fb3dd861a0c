"""``mgcompile convert``: base network -> its MG version, written to an output folder."""

from __future__ import annotations

from pathlib import Path

import click

from mgcompile.cli.calibrate import calibration_options
from mgcompile.cli.options import mg_options
from mgcompile.exporters import targets
from mgcompile.provenance import register_file_set
from mgcompile.train import RUN_FOLDER

CONVERT_FILES = register_file_set(
    "convert", ("spec.yaml", "graph.json", "model.pt", "audit.json", "conversion.json", "latency.json")).names
_RUN_FOLDER_HINT = "convert writes a new folder: choose another -o (to convert a trained network, pass the run folder as BASE)"

@click.command("convert")
@click.argument("base")
@mg_options
@click.option("--ignored-layers", "ignored", multiple=True, metavar="PATTERN",
              help="Never convert residual steps whose block name matches this fnmatch pattern (repeatable), "
                   "e.g. 'layer4.*'.")
@click.option("--min-channels", type=click.IntRange(min=0), default=0,
              help="Convert only steps at least this wide (where MG pays).")
@click.option("--init", type=click.Choice(["random", "base"]),
              help="Modules and runs only: 'base' starts each MG cycle as the base step's block-diagonal (level 0 "
                   "takes the step's weights, the coarse corrections start small), for converting a trained network; "
                   "'random' inits cycles afresh from --seed. Default: base with --calibrate, else random.")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Modules only (torchvision:NAME, timm:NAME, module:callable): load this trained weights file into "
                   "the module before converting it, so kept layers (and --init base cycles) carry its weights: a "
                   "state_dict saved with torch.save, a checkpoint holding one under state_dict/model/"
                   "model_state_dict, or .safetensors. A file that does not fit the module is an error.")
@click.option("--calibrate", "calibrate_data", metavar="DATA",
              help="After converting, fit the MG network to the trained original on DATA's images, without labels "
                   "(digits, mnist, fashion-mnist, cifar10, cifar100, imagefolder:PATH, images:PATH): each converted "
                   "step and transition learns its original step's output back. Trained runs, and modules given their "
                   "trained --weights (the folder records them, so `mgcompile calibrate` can rebuild the original).")
@calibration_options
@click.option("--latency-aware", "latency", type=click.Choice(targets.latency_targets()),
              help="Spec routes: time every MG cycle against its base step on this target (on this machine) and keep "
                   "only the faster cycles; the result is a different network (name suffix _latency_<target>, the "
                   "slow steps in its spec's ignored_layers) and latency.json holds the measurements.")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False), help="Output folder (default: ./out/<name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON instead of a table.")
def command(base: str, overrides: dict, ignored: tuple[str, ...], min_channels: int, init: str | None,
            weights: str | None, calibrate_data: str | None, data_dir: str | None, calibrate_steps: int | None,
            calibrate_batch: int, calibrate_images: int | None, device: str, latency: str | None, out: str | None,
            as_json: bool) -> None:
    """Convert BASE into its MG version.

    BASE is a registry or spec name (`mgcompile list`: built from the spec with fresh
    weights), a spec file, a torchvision classification model name (any in
    torchvision.models.list_models(); torchvision:NAME forces converting torchvision's
    module, keeping its weights, rather than building the registry spec of the same
    name: mobilenet_v3_small builds the spec, torchvision:mobilenet_v3_small converts), timm:NAME (a
    timm model with fresh weights, when timm is installed), or module:callable returning an
    nn.Module; --weights PATH gives those three trained weights. Every residual sum of a module is
    listed with what happened to it and why. Writes spec.yaml (spec routes), graph.json (the IR),
    model.pt (IR + weights; reload with mgcompile.load(DIR)), audit.json, for converted modules
    and runs conversion.json (with the original it was converted from: REF, path, sha256), and with
    --latency-aware latency.json. --calibrate DATA then fits the converted network to the trained
    original on DATA's images, without labels, and stores its report in conversion.json
    (`mgcompile calibrate FOLDER` does it later). Only these files are replaced in an existing folder (each
    only if mgcompile wrote it); everything else in it stays. A network
    in which no residual step becomes an MG cycle fails with exit code 2 and writes nothing.
    """
    from mgcompile.api import save
    from mgcompile.cli.calibrate import config_of, run_calibration
    from mgcompile.errors import MGCompileError
    from mgcompile.atomic import json_text, write_file_set
    from mgcompile.audit import audit, format_audit
    from mgcompile.conversion import format_report
    from mgcompile.naming import model_name
    from mgcompile.provenance import YAML_MARK, claim_folder, marked_json
    from mgcompile.refs import resolve
    from mgcompile import __version__

    if out:
        claim_folder(out, CONVERT_FILES, refuse=RUN_FOLDER, hint=_RUN_FOLDER_HINT)  # before the slow part: fail fast, touch nothing
    cfg = None
    if calibrate_data is not None:
        cfg = config_of(calibrate_steps, calibrate_batch, overrides.get("seed"), device)  # bad flags fail first
        init = init or "base"
        if weights is None and base.startswith(("torchvision:", "timm:")):
            raise MGCompileError(f"--calibrate fits the MG network to a trained original; {base} without --weights "
                                 "has fresh weights (nothing learned to keep): give its trained weights with "
                                 "--weights PATH")
        if latency is not None:
            raise MGCompileError("--calibrate and --latency-aware exclude each other: latency-aware conversion works "
                                 "on specs (fresh weights), calibration on trained networks")
    r = resolve(base, ignored_layers=tuple(ignored), min_channels=min_channels, init=init, weights=weights, **overrides)
    if cfg is not None and r.kind != "torch":
        raise MGCompileError(f"--calibrate fits a converted network to its trained original; {base} is built from a "
                             "spec with fresh weights (nothing learned to keep): convert a trained run folder, or "
                             "torchvision:NAME / timm:NAME / module:callable with --weights")
    timings = None
    if latency is not None:
        r, timings = _latency_aware(r, latency, as_json)
    if r.kind == "torch":
        click.echo(format_report(r.report), err=as_json)
    name = model_name(r)
    target = claim_folder(Path(out) if out else Path("out") / name, CONVERT_FILES, refuse=RUN_FOLDER, hint=_RUN_FOLDER_HINT)
    model = r.model()
    if cfg is not None:
        run_calibration(model, calibrate_data, data_dir=data_dir, cfg=cfg, limit=calibrate_images)
        model = model.cpu()
    a = audit(r.graph, r.spec)
    a["name"] = name
    if r.kind == "torch":
        a["conversion"] = r.report
    files = {
        "graph.json": lambda p: p.write_text(r.graph.to_json()),
        "model.pt": lambda p: save(model, p, r.graph, trained=cfg is not None),
        "audit.json": lambda p: p.write_text(json_text(marked_json(a))),
    }
    if r.spec is not None:
        spec_text = f"{YAML_MARK} {__version__}\n" + r.spec.replace(name=name).to_yaml()
        files["spec.yaml"] = lambda p: p.write_text(spec_text)
    if timings is not None:
        files["latency.json"] = lambda p: p.write_text(json_text(marked_json(timings)))
    if r.kind == "torch":
        files["conversion.json"] = lambda p: p.write_text(json_text(marked_json(r.report)))
    write_file_set(target, files, CONVERT_FILES)
    if as_json:
        click.echo(json_text(a), nl=False)
    else:
        click.echo(format_audit(a))
        click.echo(f"wrote {target}/")


def _latency_aware(r, target: str, as_json: bool):
    """Re-resolve ``r`` with the cycles that are not faster on ``target`` left base steps."""
    from mgcompile.api import expand
    from mgcompile.errors import MGCompileError
    from mgcompile.latency import format_timings, latency_aware, timings_json
    from mgcompile.refs import Resolved

    if r.kind not in ("spec", "registry") or r.spec is None:
        raise MGCompileError(f"--latency-aware works on specs (a registry name or a spec file); {r.ref} is "
                             f"{'a converted module' if r.kind == 'torch' else 'a saved model'}: convert its spec, "
                             "or pass the slow steps with --ignored-layers")
    spec, timings = latency_aware(r.spec, target)
    click.echo(format_timings(timings, target), err=as_json)
    if spec is None:
        raise MGCompileError(f"no MG cycle of {r.spec.name or r.ref} ran faster than its base step on {target}: "
                             "the latency-aware network would be the base network; convert without --latency-aware")
    return Resolved(r.ref, r.kind, spec, expand(spec)), timings_json(timings, target, batch=1)
