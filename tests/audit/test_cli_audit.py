"""``mgcompile audit`` and ``mgcompile graph`` through the real CLI (click's runner, same process).

Kept under tests/audit/ because they test the audit package's outputs end to end.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from mgcompile.registry import list_spec_files

STABLE = {"params", "macs", "input_size", "base"}


def test_json_has_the_stable_keys_and_flops_doubles(run):
    res = run("audit", "mg_resnet34_g32c64", "--json", "--unit", "flops", "--batch-size", "2")
    assert res.exit_code == 0, res.output
    a = json.loads(res.stdout)
    assert STABLE <= set(a)
    assert a["input_size"] == [3, 224, 224]
    assert a["params"] == 5_041_512 and a["base"]["params"] == 21_797_672
    assert a["flops"] == 2 * a["macs"]
    assert a["activations"]["batch_size"] == 2
    assert "conv, transfer" in a["unit"] and "conv, transfer" in a["counted"]["macs"]


def test_csv_columns_are_the_json_names(run):
    res = run("audit", "mg_resnet34_g32c64", "--csv", "--compare")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert {"params", "macs", "input_size", "base.params", "base.macs", "ratio.params"} <= set(rows[0])
    total = rows[-1]
    assert total["name"] == "total"
    a = json.loads(run("audit", "mg_resnet34_g32c64", "--json").stdout)
    assert int(total["params"]) == a["params"] and int(total["base.params"]) == a["base"]["params"]
    stages = [r for r in rows if r["scope"] == "stage"]
    assert sum(int(r["params"]) for r in stages) == a["params"]
    assert sum(int(r["base.macs"]) for r in stages) == a["base"]["macs"]
    for r in stages:
        assert float(r["ratio.params"]) == pytest.approx(int(r["params"]) / int(r["base.params"]), abs=1e-4)


@pytest.mark.parametrize("by", ["stage", "level", "step"])
def test_groupings_add_up_to_the_total(run, by):
    res = run("audit", "paper/t1_c10_mg_16-128_g8c16", "--csv", "--by", by, "--unit", "flops")
    rows = list(csv.DictReader(io.StringIO(res.output)))
    parts, total = rows[:-1], rows[-1]
    assert sum(int(r["params"]) for r in parts) == int(total["params"])
    assert sum(int(r["flops"]) for r in parts) == int(total["flops"])
    assert sum(int(r["activations"]) for r in parts) == int(total["activations"])


def test_per_node_rows_and_optional_op_counts(run):
    plain = list(csv.DictReader(io.StringIO(run("audit", "cifar_resnet", "--csv", "--per-node").output)))
    assert plain[0]["op"] and any(r["op"] == "restrict" for r in plain) is False
    more = list(csv.DictReader(io.StringIO(run("audit", "cifar_resnet", "--csv", "--per-node",
                                               "--count", "norm,activation").output)))
    relu = next(r for r in more if r["op"] == "relu")
    assert int(relu["macs"]) == int(relu["activations"])
    bn = next(r for r in more if r["op"] == "batchnorm")
    assert int(bn["macs"]) == 2 * int(bn["activations"])


def test_table_says_unit_and_what_is_counted(run):
    res = run("audit", "mg_resnet34_g32c64", "--compare", "--unit", "flops")
    assert res.exit_code == 0
    assert "FLOPs (2 x MACs)" in res.output and "base.flops" in res.output and "ratio.params" in res.output


def test_sweep_cli_json_csv_and_plot(run, tmp_path):
    png = tmp_path / "s.png"
    res = run("audit", "mg_resnet34_g32c64", "--sweep-width", "1,2,4,8", "--json", "--plot", str(png))
    assert res.exit_code == 0, res.output
    sw = json.loads(res.stdout)
    assert sw["exponents"]["params"] < 1.3 and 1.9 <= sw["exponents"]["base"]["params"] <= 2.1
    assert png.read_bytes()[:4] == b"\x89PNG"
    res = run("audit", "resnet34", "--sweep-width", "32-64-128-256,64-128-256-512,128-256-512-1024,256-512-1024-2048",
              "--csv")
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert [int(r["width"]) for r in rows] == [32, 64, 128, 256]
    assert int(rows[1]["params"]) == 21_797_672


def test_paper_table_json_and_csv(run):
    rows = json.loads(run("audit", "--paper", "--json").stdout)
    assert len(rows) == len([n for n in list_spec_files() if n.startswith("paper/")]) >= 24
    assert all({"params", "paper_params_m", "gap_pct"} <= set(r) for r in rows)
    ok = [r for r in rows if r["consistent"]]
    assert all(abs(r["gap_pct"]) <= 3 for r in ok)
    csv_rows = list(csv.DictReader(io.StringIO(run("audit", "--paper", "--csv").output)))
    assert [int(r["params"]) for r in csv_rows] == [r["params"] for r in rows]


@pytest.mark.parametrize("args", [
    ("audit", "no_such_model"),
    ("audit", "resnet34", "--sweep-width", "1,abc"),
    ("audit", "resnet34", "--sweep-width", "2"),
    ("audit", "resnet34", "--plot", "x.png"),
    ("audit", "resnet34", "--count", "softmax"),
    ("audit", "resnet34", "--json", "--csv"),
    ("graph", "mg_resnet34_g32c64", "--block", "stage9.block1", "-o", "x.png"),
    ("graph", "mg_resnet34_g32c64", "-o", "x.bmp"),
    ("graph", "no_such_model", "-o", "x.svg"),
])
def test_bad_input_is_a_one_line_error(run, args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run(*args)
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".svg", ".png", ".dot"])
def test_graph_block_picture_is_written(run, tmp_path, suffix):
    out = tmp_path / f"cycle{suffix}"
    res = run("graph", "mg_resnet34_g32c64", "--block", "stage3.block1", "-o", str(out))
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    else:
        text = data.decode()
        # every level of the cycle (256/128/64 fine, 32 coarsest) and both transfers appear
        for label in ("level 0 (256 ch)", "level 3 (32 ch)", "R 256-&gt;128" if suffix == ".svg" else "R 256->128",
                      "grouped step", "full step"):
            assert label in text, label
        if suffix == ".dot":
            mark, body = text.split("\n", 1)
            assert mark.startswith("// written by mgcompile")  # provenance: a re-run may replace it
            assert body.startswith("digraph") and text.count("rank=same") == 4 and "->" in text
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_graph_whole_network(run, tmp_path):
    out = tmp_path / "net.dot"
    assert run("graph", "mg_resnet34_g32c64", "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert text.count("MG, 5 levels") == 3 and "transition" in text
