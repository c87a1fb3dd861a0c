"""``mgcompile export``: a REF -> ONNX / TorchScript / torch.export file, verified against PyTorch."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json, mg_options, multigrid_metadata
from mgcompile.exporters import targets


@click.command("export")
@click.argument("ref")
@mg_options
@click.option("--format", "fmt", default=None,
              help="onnx (ONNX Runtime; the default), pt2 (torch.export archive, the modern PyTorch artifact) or "
                   "torchscript (deprecated upstream; kept for old deployments).")
@click.option("--target", type=click.Choice(targets.names()), default=None,
              help="Where it will run; picks the IR lowering measured best there (BN folding, permutation "
                   "folding, transfer form). ort-* imply --format onnx, torch goes with pt2 (default) or "
                   "torchscript. Default: ort-cpu for onnx, torch otherwise.")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output file (.onnx / .pt2 / .pt). The verification result goes to <output>.verify.json.")
@click.option("--opset", type=int, default=18, show_default=True,
              help="ONNX opset: 18-23 use the dynamo exporter, 13-17 the legacy one.")
@click.option("--dynamic-batch/--static", default=True, show_default=True,
              help="Symbolic batch axis, or a fixed batch of 1.")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Lower for the target in the IR first (BN folded, also the BN after P; permutations folded "
                   "where exact) and, for ONNX, clean up with onnx-ir passes (each checked in ONNX Runtime).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare with PyTorch (eval mode) at two batch sizes: max|out-torch| <= 1e-4*max|torch|. "
                   "A failed check is an error and writes no file.")
@click.option("--external-data/--embedded-data", "external_data", default=None,
              help="ONNX: write the weights to OUTPUT.data beside the model instead of inside it. Default: only "
                   "when they exceed 1.5 GiB (an ONNX file cannot hold more than 2 GiB).")
@click.option("--force", is_flag=True, help="Replace an existing output file that mgcompile did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def command(ref: str, overrides: dict, fmt: str | None, target: str | None, out: str, opset: int,
            dynamic_batch: bool, optimize: bool, verify: bool, external_data: bool | None, force: bool,
            as_json: bool) -> None:
    """Export REF (converted folder, .pt, spec file or registry name) for deployment.

    ONNX uses torch.onnx.export(dynamo=True) with one self-contained file (weights over
    1.5 GiB, or --external-data: OUTPUT plus OUTPUT.data, written together), input
    `input` and output `logits`; the spec, the resolved MG record (`mgcompile_multigrid`, JSON) and the
    mgcompile version are stored in the model's metadata. ONNX Runtime runs on CUDA too when a GPU is present.
    """
    from mgcompile.exporters.export import check_target, export_model, resolve_target
    from mgcompile.exporters.onnx_export import check_opset
    from mgcompile.exporters.verify import result_path
    from mgcompile.provenance import claim_file
    from mgcompile.refs import resolve

    fmt, target = resolve_target(fmt, target)
    if fmt == "onnx":
        check_opset(opset)
    check_target(out)
    claim_file(out, force=force)
    claim_file(result_path(out), force=force)
    r = resolve(ref, **overrides)
    shape = r.graph.input_shape()
    metadata = {"mgcompile_ref": ref}
    if r.spec is not None:
        metadata["mgcompile_spec"] = r.spec.to_json()
    if r.graph.meta_graph.multigrid is not None:  # every route: the MG record the network was built with, resolved
        metadata["mgcompile_multigrid"] = multigrid_metadata(r.graph)
    report = export_model(r.model(), shape, out, fmt=fmt, opset=opset, dynamic_batch=dynamic_batch,
                          optimize=optimize, verify=verify, metadata=metadata, reference=r.reference, target=target,
                          external_data=external_data)
    if as_json:
        echo_json(report)
        return
    click.echo(_summary(report))


def _summary(report: dict) -> str:
    lines = [f"wrote {report['path']} ({report['format']} for {report['target']}"
             + (f", {report['exporter']} exporter, opset {report['opset']}, {report['nodes']} nodes" if "nodes" in report else "")
             + ")"]
    if "lowering" in report:
        low = report["lowering"]
        lines.append("IR lowering: " + ", ".join(f"{p['pass']} {p['changed']}" for p in low["passes"])
                     + f" ({low['transfers']} transfers)" + (f"; note: {low['note']}" if "note" in low else ""))
    if "external_data" in report:
        lines.append(f"weights in {report['external_data']} beside it (keep the two files together)")
    if "op_counts" in report:
        lines.append("ops: " + ", ".join(f"{k} {v}" for k, v in report["op_counts"].items()))
    v = report.get("verification")
    if v is None:
        lines.append("not verified (--no-verify)")
    else:
        lines.append(f"verified with {v['runtime']} on {', '.join(v['providers'])}: max abs diff "
                     f"{v['max_abs_diff']:.3g}, max rel diff {v['max_rel_diff']:.3g} -> {report['verification_json']}")
    return "\n".join(lines)
