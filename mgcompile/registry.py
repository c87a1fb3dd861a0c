"""One registry of model names, timm style.

Names resolve to a :class:`~mgcompile.spec.Spec`:

* registered base networks (``resnet34``, ``cifar_resnet``, ...; ``mgcompile list``),
* self-describing MG names ``mg_<base>_g<s_g>c<θ>[_add][_grouped][_dw|_keep][_pre]``,
  e.g. ``mg_resnet34_g32c64`` (multiplicative cycle, sparse transfer, paper transition),
* spec files shipped in ``specs/`` by their path without suffix (``paper/c10_mg_16-128_g8c16``).
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any

from mgcompile.errors import MGCompileError
from mgcompile.models import MODELS as _MODELS
from mgcompile.models import family_of
from mgcompile.models import ModelEntry, register_model  # noqa: F401  (the public names)
from mgcompile.spec import Spec

MG_NAME = re.compile(r"^mg_(?P<base>[a-z0-9_]+?)_g(?P<g>\d+)c(?P<c>\d+)(?P<suffix>(?:_[a-z]+)*)$")
_SUFFIXES = {"_add": {"cycle": "additive"}, "_grouped": {"transfer": "grouped"}, "_dw": {"transition": "dw_stride"},
             "_keep": {"transition": "keep"}, "_pre": {"activation": "pre"}}


def list_models() -> list[ModelEntry]:
    return sorted(_MODELS.values(), key=lambda e: e.name)


def spec_dir() -> Path:
    """The folder of shipped spec files (``specs/`` in the source tree, package data when installed)."""
    return Path(str(resources.files("mgcompile.specs")))


def list_spec_files() -> list[str]:
    root = spec_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def model_spec(name: str, **overrides: Any) -> Spec:
    """Resolve a registry name, MG name or shipped spec name to a Spec, then apply ``overrides``."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if name in _MODELS:
        spec = _MODELS[name].make()
    elif (m := MG_NAME.match(name)) and m["base"] in _MODELS:
        spec = _MODELS[m["base"]].make().replace(group_size=int(m["g"]), coarsest=int(m["c"]))
        suffix = m["suffix"]
        for token in re.findall(r"_[a-z]+", suffix):
            if token not in _SUFFIXES:
                raise MGCompileError(f"unknown MG name suffix {token!r} in {name!r}; allowed: {', '.join(_SUFFIXES)}")
            spec = spec.replace(**_SUFFIXES[token])
    elif (spec_file := spec_dir() / f"{name}.yaml").is_file():
        spec = Spec.from_file(spec_file)
    else:
        known = [e.name for e in _MODELS.values()] + list_spec_files()
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise MGCompileError(f"unknown model {name!r}; {hint}run `mgcompile list` for registry names and spec files")
    spec = spec.replace(**overrides) if overrides else spec
    family_of(spec)  # the family's own checks (block, stages, divisibility), named by field
    return spec
