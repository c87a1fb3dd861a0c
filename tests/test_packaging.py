"""pyproject's explicit package list must cover every package folder (or installs miss code)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mgcompile").rglob("__init__.py")}
    found |= {".".join(("mgcompile", *p.parent.relative_to(ROOT).parts))
              for p in (ROOT / "exporters").rglob("__init__.py")}
    found |= {"mgcompile.specs"}
    assert found <= listed, f"add to [tool.setuptools].packages: {sorted(found - listed)}"
    assert cfg["package-dir"] == {"mgcompile.exporters": "exporters", "mgcompile.specs": "specs"}


def test_shipped_specs_resolve_through_the_package():
    from mgcompile.registry import list_spec_files, spec_dir

    assert spec_dir().resolve() == (ROOT / "specs").resolve() or "site-packages" in str(spec_dir())
    assert len([s for s in list_spec_files() if s.startswith("paper/")]) >= 24


def test_import_is_light_and_public_names_resolve():
    import subprocess
    import sys

    code = ("import sys, mgcompile.cli; assert 'torch' not in sys.modules, 'CLI start-up imports torch'; "
            "import mgcompile; import mgcompile.conversion; "
            "assert callable(mgcompile.convert) and mgcompile.Spec and mgcompile.build and mgcompile.load")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ir_and_passes_compile_and_count_without_torch():
    import subprocess
    import sys

    code = ("import sys; from mgcompile.registry import model_spec; from mgcompile.models import graph_from_spec; "
            "from mgcompile.passes import count, run_passes; "
            "g = run_passes(graph_from_spec(model_spec('mg_resnet34_g32c64'))); "
            "assert count(g).params == 5_041_512; assert 'torch' not in sys.modules, 'the IR layer imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
