"""Recipe: paper defaults, YAML file, CLI overrides on top, clear errors."""

from __future__ import annotations

import pytest

from mgcompile.errors import MGCompileError
from mgcompile.train.recipe import Recipe, load_recipe


def test_paper_defaults():
    r = Recipe()
    assert (r.lr, r.momentum, r.weight_decay, r.schedule, r.step_size, r.gamma) == (0.1, 0.9, 1e-4, "step", 30, 0.1)


def test_file_then_cli_overrides(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("epochs: 12\nlr: 0.05\nschedule: cosine\n")
    r = load_recipe(f, {"lr": 0.2, "batch_size": None})
    assert (r.epochs, r.lr, r.schedule, r.batch_size) == (12, 0.2, "cosine", 128)


@pytest.mark.parametrize("text, message", [
    ("epochz: 3\n", "unknown key"),
    ("schedule: linear\n", "allowed values: step, cosine"),
    ("epochs: 0\n", "positive integer"),
    ("[1, 2]\n", "mapping"),
])
def test_bad_recipe_files(tmp_path, text, message):
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(MGCompileError, match=message):
        load_recipe(f)
