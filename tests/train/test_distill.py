"""Converting a trained run and distilling from it: `convert RUN -g`, `train FOLDER --teacher RUN` (issue 13)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from mgcompile.cli import main
from mgcompile.train.distill import criterion

TINY = ["cifar_resnet", "--channels", "8,16", "--blocks", "1,1", "--data", "digits", "--limit-train", "256",
        "--epochs", "1", "--batch-size", "32"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    r = invoke("--quiet", "train", *TINY, "--out", str(run))
    assert r.exit_code == 0, r.output
    return run


def test_a_trained_run_converts_keeping_its_trained_layers(trained_base, tmp_path):
    out = tmp_path / "mg"
    r = invoke("--quiet", "convert", str(trained_base), "-g", "4", "-c", "8", "-o", str(out))
    assert r.exit_code == 0, r.output
    trained = torch.load(trained_base / "model.pt", weights_only=True)["state_dict"]
    mg = torch.load(out / "model.pt", weights_only=True)
    assert not mg["trained"] and mg["graph"]["graph"]["conversion"]["converted"] >= 1
    for key in ("stem.conv.weight", "head.fc.weight", "head.fc.bias"):  # kept layers keep their trained weights
        assert torch.equal(mg["state_dict"][key], trained[key])
    again = invoke("convert", str(trained_base), "--num-classes", "3", "-o", str(tmp_path / "x"))
    assert again.exit_code == 2 and "cannot change it" in again.output


def test_training_with_a_teacher_stores_it_and_resumes_it(trained_base, tmp_path):
    mg_dir = tmp_path / "mg"
    assert invoke("--quiet", "convert", str(trained_base), "-g", "4", "-c", "8", "-o", str(mg_dir)).exit_code == 0
    run = tmp_path / "ft"
    r = invoke("train", str(mg_dir), "--data", "digits", "--limit-train", "256", "--epochs", "1", "--batch-size",
               "32", "--teacher", str(trained_base), "--distill-temperature", "2", "--distill-weight", "0.7",
               "--out", str(run))
    assert r.exit_code == 0, r.output
    assert "distilled from" in r.output
    recipe = json.loads((run / "results.json").read_text())["recipe"]
    assert recipe["teacher"] == str(trained_base.resolve()) and recipe["distill_temperature"] == 2.0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["recipe"]["distill_weight"] == 0.7
    more = invoke("train", str(mg_dir), "--data", "digits", "--resume", "--epochs", "2", "--out", str(run))
    assert more.exit_code == 0 and "distilled from" in more.output  # --resume continues with the teacher


def test_a_teacher_that_does_not_fit_is_a_one_line_error(trained_base, tmp_path):
    r = invoke("train", "cifar_resnet", "--channels", "8,16", "--blocks", "1,1", "--data", "mnist", "--epochs", "1",
               "--limit-train", "64", "--teacher", str(trained_base), "--out", str(tmp_path / "a"))
    assert r.exit_code == 2 and "was built for input (1, 8, 8)" in r.output and not (tmp_path / "a").exists()
    r = invoke("train", *TINY, "--teacher", "torchvision:resnet18", "--out", str(tmp_path / "b"))
    assert r.exit_code == 2 and "needs --teacher-weights" in r.output
    r = invoke("train", *TINY, "--teacher", "torchvision:resnet18", "--teacher-weights", str(tmp_path / "none.pt"),
               "--out", str(tmp_path / "c"))
    assert r.exit_code == 2 and "does not exist" in r.output


def test_the_distillation_loss_is_hintons():
    torch.manual_seed(0)
    s, t, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    teacher = lambda x: t  # noqa: E731
    loss = criterion(0.0, teacher, temperature=3.0, weight=0.25)(s, None, y)
    p, q = torch.softmax(t / 3, 1), torch.log_softmax(s / 3, 1)
    kl = (p * (p.log() - q)).sum(1).mean()
    expected = 0.75 * torch.nn.functional.cross_entropy(s, y) + 0.25 * 9 * kl
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    assert criterion(0.0)(s, None, y).item() == pytest.approx(torch.nn.functional.cross_entropy(s, y).item())


def test_report_overlays_runs_and_takes_a_log_loss_axis_when_losses_span_decades(trained_base, tmp_path):
    from mgcompile.train.report import log_axis

    assert log_axis([6.1e9, 98.0, 2.1]) and not log_axis([2.3, 1.1, 0.4])
    other = tmp_path / "other"
    assert invoke("--quiet", "train", *TINY, "--seed", "1", "--out", str(other)).exit_code == 0
    assert invoke("report", str(trained_base), str(other)).exit_code == 2  # several runs need -o
    png = tmp_path / "both.png"
    r = invoke("report", str(trained_base), str(other), "-o", str(png))
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_resume_refuses_to_change_the_schedule_mid_run(trained_base, tmp_path):
    run = tmp_path / "r"
    assert invoke("--quiet", "train", *TINY, "--out", str(run)).exit_code == 0
    r = invoke("train", *TINY, "--resume", "--lr", "0.3", "--epochs", "2", "--out", str(run))
    assert r.exit_code == 2 and "lr cannot change mid-run" in r.output


def test_init_base_on_a_spec_is_a_one_line_error(tmp_path):
    spec = tmp_path / "s.yaml"
    assert invoke("convert", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "-o", str(tmp_path / "c")).exit_code == 0
    (tmp_path / "c" / "spec.yaml").rename(spec)
    r = invoke("convert", str(spec), "-g", "8", "--init", "base", "-o", str(tmp_path / "x"))
    assert r.exit_code == 2 and "built from a spec with fresh weights" in r.output
