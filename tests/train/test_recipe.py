"""Recipe: named recipes (default adapts to the data, paper), YAML file, CLI overrides on top, clear errors."""

from __future__ import annotations

import pytest

from mgcompile.errors import MGCompileError
from mgcompile.train.recipe import Recipe, load_recipe


def test_the_paper_recipe_is_the_papers_imagenet_recipe():
    r = load_recipe("paper").resolve(train_images=1_281_167)
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay, r.schedule, r.step_size, r.gamma) == (
        180, 128, 0.1, 0.9, 1e-4, "step", 30, 0.1)
    assert r.warmup_epochs == 0 and not r.zero_init_residual
    assert [r.lr_factor(e * 10, 10) for e in (0, 29, 30, 60, 179)] == pytest.approx([1, 1, 0.1, 0.01, 1e-5])


def test_the_default_recipe_adapts_to_the_data_and_the_batch():
    digits = load_recipe().resolve(train_images=1293)
    assert (digits.batch_size, digits.lr, digits.schedule) == (16, pytest.approx(0.4 * 16 / 256), "cosine")
    fashion = load_recipe(None, {"epochs": 40}).resolve(train_images=54_000, world_size=2)
    assert fashion.batch_size == 128 and fashion.lr == pytest.approx(0.4 * 256 / 256)  # global batch 2 x 128
    assert (fashion.schedule, fashion.step_size, fashion.warmup_epochs) == ("step", 13, 1.0)
    r = Recipe(epochs=3).resolve(1000)
    steps = [r.lr_factor(t, 10) for t in range(30)]
    assert steps[0] == pytest.approx(1 / 3) and steps[2] == 1.0  # warm-up over 0.3 epochs = 3 steps
    assert all(a >= b for a, b in zip(steps[2:], steps[3:])) and steps[-1] < 0.01  # cosine to ~0


def test_a_name_wins_over_a_file_and_dot_slash_means_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paper").write_text("epochs: 7\n")
    assert load_recipe("paper").epochs == 180
    assert load_recipe("./paper").epochs == 7


def test_file_then_cli_overrides(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("epochs: 12\nlr: 0.05\nschedule: cosine\n")
    r = load_recipe(f, {"lr": 0.2, "batch_size": None})
    assert (r.epochs, r.lr, r.schedule, r.batch_size) == (12, 0.2, "cosine", None)
    assert r.resolve(100_000).batch_size == 128


@pytest.mark.parametrize("text, message", [
    ("epochz: 3\n", "unknown key"),
    ("schedule: linear\n", "allowed values: auto, step, cosine"),
    ("epochs: 0\n", "positive integer"),
    ("[1, 2]\n", "mapping"),
])
def test_bad_recipe_files(tmp_path, text, message):
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(MGCompileError, match=message):
        load_recipe(f)
