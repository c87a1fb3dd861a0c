"""``mgcompile export``: a REF -> ONNX / TorchScript / torch.export file, verified against PyTorch."""

from __future__ import annotations

import click

from mgcompile.cli.options import echo_json, mg_options

_FORMATS = ("onnx", "torchscript", "pt2")


@click.command("export")
@click.argument("ref")
@mg_options
@click.option("--format", "fmt", default="onnx", show_default=True,
              help="onnx (ONNX Runtime), pt2 (torch.export archive, the modern PyTorch artifact) or torchscript "
                   "(deprecated upstream; kept for old deployments).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output file (.onnx / .pt2 / .pt). The verification result goes to <output>.verify.json.")
@click.option("--opset", type=int, default=18, show_default=True,
              help="ONNX opset: 18-23 use the dynamo exporter, 13-17 the legacy one.")
@click.option("--dynamic-batch/--static", default=True, show_default=True,
              help="Symbolic batch axis, or a fixed batch of 1.")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="ONNX only: constant folding, BN folding (also the BN after P), permutation folding; "
                   "every pass is checked numerically in ONNX Runtime.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare with PyTorch (eval mode) at two batch sizes: max|out-torch| <= 1e-4*max|torch|. "
                   "A failed check is an error and writes no file.")
@click.option("--force", is_flag=True, help="Replace an existing output file that mgcompile did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def command(ref: str, overrides: dict, fmt: str, out: str, opset: int, dynamic_batch: bool, optimize: bool,
            verify: bool, force: bool, as_json: bool) -> None:
    """Export REF (converted folder, .pt, spec file or registry name) for deployment.

    ONNX uses torch.onnx.export(dynamo=True) with one self-contained file, input
    `input` and output `logits`; the spec and mgcompile version are stored in the
    model's metadata. ONNX Runtime runs on CUDA too when a GPU is present.
    """
    from mgcompile.errors import MGCompileError
    from mgcompile.exporters.export import check_target, export_model
    from mgcompile.exporters.onnx_export import check_opset
    from mgcompile.exporters.verify import result_path
    from mgcompile.provenance import claim_file
    from mgcompile.refs import resolve

    if fmt not in _FORMATS:
        raise MGCompileError(f"unknown format {fmt!r}; use one of {', '.join(_FORMATS)}")
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
    report = export_model(r.model(), shape, out, fmt=fmt, opset=opset, dynamic_batch=dynamic_batch,
                          optimize=optimize, verify=verify, metadata=metadata, reference=r.reference)
    if as_json:
        echo_json(report)
        return
    click.echo(_summary(report))


def _summary(report: dict) -> str:
    lines = [f"wrote {report['path']} ({report['format']}"
             + (f", {report['exporter']} exporter, opset {report['opset']}, {report['nodes']} nodes" if "nodes" in report else "")
             + ")"]
    if "op_counts" in report:
        lines.append("ops: " + ", ".join(f"{k} {v}" for k, v in report["op_counts"].items()))
    v = report.get("verification")
    if v is None:
        lines.append("not verified (--no-verify)")
    else:
        lines.append(f"verified with {v['runtime']} on {', '.join(v['providers'])}: max abs diff "
                     f"{v['max_abs_diff']:.3g}, max rel diff {v['max_rel_diff']:.3g} -> {report['verification_json']}")
    return "\n".join(lines)
