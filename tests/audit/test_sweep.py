"""Width sweeps: counted from the IR, exponents ≈2 for base ResNets and ≈1 for MG ResNets (eq. 15)."""

from __future__ import annotations

import pytest

from mgcompile.audit.plot import plot_sweep
from mgcompile.audit.sweep import fit_exponent, parse_widths, sweep_width
from mgcompile.errors import MGCompileError
from mgcompile.registry import model_spec

MG = ["mg_resnet34_g32c64", "mg_resnet18_g32c64", "paper/t1_c10_mg_16-128_g8c16", "paper/t1_c100_mg_64-512_g32c64"]


def test_fit_exponent_recovers_a_power_law():
    assert fit_exponent([1, 2, 4, 8], [3 * w**1.5 for w in [1, 2, 4, 8]]) == pytest.approx(1.5)


@pytest.mark.parametrize("name", MG)
def test_exponents_base_quadratic_mg_linear(name):
    spec = model_spec(name)
    sw = sweep_width(spec, parse_widths("1,2,4,8", spec))
    assert sw.rows[-1]["width"] / sw.rows[0]["width"] >= 8
    assert 1.9 <= sw.exponents["base"]["params"] <= 2.1
    assert 1.9 <= sw.exponents["base"]["macs"] <= 2.1
    assert sw.exponents["params"] < 1.3
    assert sw.exponents["macs"] < 1.3
    # MG stays cheaper at every width and the saving grows with width
    ratios = [r["ratio"]["params"] for r in sw.rows]
    assert all(a > b for a, b in zip(ratios, ratios[1:]))


def test_base_resnet34_at_8x_is_counted_without_building():
    spec = model_spec("resnet34")
    sw = sweep_width(spec, parse_widths("1,8", spec))
    assert sw.rows[0]["params"] == 21_797_672
    assert 1.3e9 < sw.rows[1]["params"] < 1.45e9
    assert sw.rows[1]["params"] == sw.rows[1]["base"]["params"]


def test_channel_lists_and_multipliers_agree():
    spec = model_spec("mg_resnet34_g32c64")
    a = sweep_width(spec, parse_widths("1,2", spec)).rows
    b = sweep_width(spec, parse_widths("64-128-256-512,128-256-512-1024", spec)).rows
    assert [(r["params"], r["macs"]) for r in a] == [(r["params"], r["macs"]) for r in b]


@pytest.mark.parametrize("text", ["1", "1,a", "1,-2", "64-128,128-256", "1,1", "1,x-y-z-w"])
def test_bad_widths_are_user_errors(text):
    spec = model_spec("resnet34")
    with pytest.raises(MGCompileError):
        parse_widths(text, spec)


def test_plot_is_a_real_png(tmp_path):
    spec = model_spec("mg_resnet18_g32c64")
    out = plot_sweep(sweep_width(spec, parse_widths("1,2,4,8", spec)), tmp_path / "sweep.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind
