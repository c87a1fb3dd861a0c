"""The target registry: one record per file, a names-only index, and the lists that used to be kept by hand."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from mgcompile.errors import MGCompileError
from mgcompile.exporters import targets
from mgcompile.exporters.targets import Lowering, Target


def test_the_names_only_index_matches_the_records_when_they_are_imported():
    assert targets.names() == ("ort-cpu", "ort-cuda", "torch")
    assert tuple(t.name for t in targets.targets()) == targets.names()
    files = [m.name for m in pkgutil.iter_modules(targets.__path__) if not m.name.startswith("_")]
    for file in files:  # each file holds the record of the target it is named after
        record = importlib.import_module(f"{targets.__name__}.{file}").target
        assert isinstance(record, Target) and targets.module_name(record.name) == file


@pytest.mark.parametrize("name", targets.names())
def test_every_target_states_every_field(name):
    from mgcompile.backends.inference import TRANSFER_FORMS

    t = targets.get(name)
    assert t.formats and set(t.formats) <= set(targets.formats())
    assert isinstance(t.lowering, Lowering) and t.lowering.transfers in TRANSFER_FORMS and t.lowering.max_expansion >= 1
    assert isinstance(t.note, str) and callable(t.write) and callable(t.verify)
    assert t.latency_runner is None or callable(t.latency_runner)


def test_what_the_records_say_today():
    cpu, cuda, torch_ = (targets.get(n) for n in targets.names())
    assert (cpu.formats, cuda.formats, torch_.formats) == (("onnx",), ("onnx",), ("torchscript", "pt2"))
    assert cpu.lowering == cuda.lowering == torch_.lowering == Lowering("dense", 4)
    assert cpu.note == torch_.note == "" and "no GPU with onnxruntime-gpu has been measured yet" in cuda.note
    assert targets.latency_targets() == ("ort-cpu", "torch")
    assert targets.formats() == ("onnx", "torchscript", "pt2")


def test_build_fold_bn_applies_the_torch_targets_lowering():
    from mgcompile.backends.inference import lower_for_inference

    defaults = {k: p.default for k, p in inspect.signature(lower_for_inference).parameters.items()
                if p.kind is p.KEYWORD_ONLY}
    assert Lowering(**defaults) == targets.get("torch").lowering


@pytest.mark.parametrize("fmt, target, want", [
    (None, None, ("onnx", "ort-cpu")), ("pt2", None, ("pt2", "torch")), ("torchscript", None, ("torchscript", "torch")),
    (None, "torch", ("pt2", "torch")), (None, "ort-cuda", ("onnx", "ort-cuda")),
    ("onnx", "ort-cuda", ("onnx", "ort-cuda")),
])
def test_resolve_target_defaults(fmt, target, want):
    from mgcompile.exporters.export import resolve_target

    assert resolve_target(fmt, target) == want


@pytest.mark.parametrize("fmt, target, message", [
    (None, "gpu", "unknown target 'gpu'; use one of ort-cpu, ort-cuda, torch"),
    ("tflite", None, "unknown format 'tflite'; use one of onnx, torchscript, pt2"),
    ("pt2", "ort-cpu", "--target ort-cpu exports onnx, not pt2; drop --format or pick the target of pt2 (torch)"),
    ("onnx", "torch", "--target torch exports torchscript or pt2, not onnx; drop --format or pick the target of onnx "
                      "(ort-cpu or ort-cuda)"),
])
def test_resolve_target_errors_are_unchanged(fmt, target, message):
    from mgcompile.exporters.export import resolve_target

    with pytest.raises(MGCompileError) as err:
        resolve_target(fmt, target)
    assert str(err.value) == message


def _choices(command: str, option: str) -> tuple[str, ...]:
    from mgcompile.cli import main

    param = next(p for p in main.commands[command].params if p.name == option)
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


def test_cli_choices_are_the_registrys_names():
    assert _choices("export", "target") == targets.names()
    assert _choices("convert", "latency") == targets.latency_targets()


def test_an_unknown_target_is_one_line_on_the_cli(tmp_path):
    from mgcompile.cli import main

    res = CliRunner().invoke(main, ["export", "cifar_resnet", "--target", "gpu", "-o", str(tmp_path / "m.onnx")])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0] == ("Error: Invalid value for '--target': 'gpu' is not one of 'ort-cpu', 'ort-cuda', 'torch'. "
                        "(see 'mgcompile export --help')")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_latency_target_keeps_its_message(tiny_mg_spec):
    from mgcompile.latency import latency_aware, time_steps

    with pytest.raises(MGCompileError, match=r"^unknown latency target 'ort-cuda'; use one of ort-cpu, torch$"):
        latency_aware(tiny_mg_spec, "ort-cuda")
    with pytest.raises(MGCompileError, match="unknown latency target 'gpu'"):
        time_steps(None, None, [], "gpu")


@pytest.mark.parametrize("command", ["export", "convert"])
def test_help_imports_neither_torch_nor_onnx(command):
    code = ("import sys; from click.testing import CliRunner; from mgcompile.cli import main; "
            f"r = CliRunner().invoke(main, [{command!r}, '--help']); assert r.exit_code == 0, r.output; "
            "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules); "
            "assert not heavy, f'--help imported {heavy}'")
    subprocess.run([sys.executable, "-c", code], check=True)
