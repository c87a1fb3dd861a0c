"""TorchScript and torch.export archives: loadable by their own loaders and equal to the eager module."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from mgcompile.exporters.export import export_model
from mgcompile.exporters.verify import result_path


@pytest.mark.parametrize("fmt, suffix", [("torchscript", ".pt"), ("pt2", ".pt2")])
def test_torch_formats_load_and_match(subset_case, fmt, suffix, tmp_path):
    case, model, shape = subset_case
    path = tmp_path / f"{case}{suffix}"
    report = export_model(model, shape, path, fmt=fmt)
    assert report["verification"]["ok"]
    assert json.loads(result_path(path).read_text())["format"] == fmt

    x = torch.randn(3, *shape)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.jit.load(str(path))
    else:
        loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        ref, out = model(x), loaded(x)
    assert torch.allclose(out, ref, rtol=0, atol=1e-5 * ref.abs().max().item())
