"""Which files mgcompile wrote: what decides whether an output may replace an existing file.

Rules (issue 9: an output never destroys a file mgcompile did not write):

1. A folder output (``convert -o``, ``train --out``) replaces or removes only the
   members of its command's fixed file set, and only members that
   :func:`written_by_mgcompile` claims; every other file in the folder stays.
   ``convert -o`` refuses a training run folder. Each command registers its own file
   set (:func:`register_file_set`, at import of its own module: ``cli/convert.py``,
   ``mgcompile.train``), so this module imports no command.
2. A single-file output (``export -o``, ``--plot``, ``graph -o``, ``report -o``)
   replaces an existing file only if it carries mgcompile's mark, unless ``--force``.
3. Every file mgcompile writes carries a mark that survives on its own: a
   ``mgcompile_version`` key (JSON), ONNX metadata, a ``# mgcompile`` first line
   (YAML, DOT), a PNG ``Software`` text chunk / SVG and PDF creator metadata, a
   ``format`` key in ``.pt`` payloads, an ``extra/mgcompile.json`` member in
   TorchScript and pt2 archives. Files of earlier versions are recognised by their
   content (legacy key sets) so upgrading users are not refused.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from mgcompile import __version__
from mgcompile.errors import MGCompileError

VERSION_KEY = "mgcompile_version"
YAML_MARK = "# written by mgcompile"
DOT_MARK = "// written by mgcompile"
CREATOR = f"mgcompile {__version__}"
EXTRA_FILE = "mgcompile.json"  # member of TorchScript / pt2 archives



@dataclass(frozen=True)
class FileSet:
    """The fixed file set of one command's output folder (rule 1)."""

    command: str
    names: tuple[str, ...]
    markers: tuple[str, ...] = ()  # members only this command's folders hold
    what: str = ""  # how an error names such a folder, e.g. "a training run folder"


FILE_SETS: dict[str, FileSet] = {}

# Files written before marks existed: recognised by keys only mgcompile writes together.
_LEGACY_JSON_KEYS = (
    {"params", "macs", "counted"},  # audit.json
    {"blocks", "multigrid", "layers_kept"},  # conversion.json
    {"recipe", "argv", "world_size"},  # run.json
    {"rank_digests", "world_size"},  # results.json
    {"tolerance", "max_rel_diff", "runtime"},  # <export>.verify.json
)


# spec.yaml files of mgcompile 0.1.0 (spec format 1) list these fields and more, all of them
_LEGACY_SPEC_KEYS = {"arch", "block", "channels", "blocks", "stem", "stem_channels", "width_mult", "in_channels",
                     "num_classes", "input_size", "group_size", "coarsest", "cycle", "transfer", "transfer_nnz",
                     "transition", "activation", "uneven_groups", "ignored_layers", "min_channels", "seed", "name",
                     "paper", "version"}


def stamp() -> dict[str, str]:
    """The mark to put in every JSON object mgcompile writes."""
    return {VERSION_KEY: __version__}


def register_file_set(command: str, names: tuple[str, ...], *, markers: tuple[str, ...] = (), what: str = "",
                      checks: Mapping[str, Callable[[Path], bool]] | None = None) -> FileSet:
    """A command's output folder: the members it owns (rule 1) and, in ``checks``, how to recognise by content
    (suffix -> predicate) the file types only it writes (rule 3). Called at import of the command's own module."""
    file_set = FileSet(command, tuple(names), tuple(markers), what)
    FILE_SETS[command] = file_set
    for suffix, check in (checks or {}).items():
        _EXTRA_CHECKS[suffix.lower()] = check
    return file_set


def written_by_mgcompile(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` carries mgcompile's mark (rule 3). Never raises."""
    p = Path(path)
    try:
        if not p.is_file():
            return False
        suffix = p.suffix.lower()
        return bool((_CHECKS.get(suffix) or _EXTRA_CHECKS.get(suffix, lambda _: False))(p))
    except Exception:  # unreadable, truncated, garbage: not ours to replace
        return False


def _json(p: Path) -> bool:
    data = json.loads(p.read_text())
    if not isinstance(data, dict):
        return False
    if VERSION_KEY in data or str(data.get("graph", {}).get("format", "")).startswith("mgcompile") \
            or str(data.get("format", "")).startswith("mgcompile"):
        return True
    return any(keys <= data.keys() for keys in _LEGACY_JSON_KEYS)


def _jsonl(p: Path) -> bool:  # metrics.jsonl: one epoch row per line
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return all(isinstance(r, dict) and {"epoch", "train_loss"} <= r.keys() for r in rows)


def _yaml(p: Path) -> bool:
    text = p.read_text()
    if text.startswith(YAML_MARK):
        return True
    import yaml

    from mgcompile.spec import SPEC_KEYS

    data = yaml.safe_load(text)  # a spec.yaml of an older mgcompile: every field it had, as to_yaml wrote them
    return isinstance(data, dict) and _LEGACY_SPEC_KEYS <= set(data) <= set(SPEC_KEYS)


def _pt(p: Path) -> bool:
    if not zipfile.is_zipfile(p):
        return False
    if _archive_has_mark(p):  # TorchScript
        return True
    import torch

    payload = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    return isinstance(payload, dict) and str(payload.get("format", "")).startswith("mgcompile")


def _archive_has_mark(p: Path) -> bool:
    with zipfile.ZipFile(p) as z:
        return any(n.endswith(f"extra/{EXTRA_FILE}") for n in z.namelist())


def _onnx(p: Path) -> bool:
    import onnx

    proto = onnx.load(p, load_external_data=False)
    return any(m.key == VERSION_KEY for m in proto.metadata_props)


def _png(p: Path) -> bool:
    with p.open("rb") as f:
        data = f.read(1 << 16)
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"tEXt", b"iTXt") and body.startswith(b"Software\x00") and b"mgcompile" in body:
            return True
        if kind == b"IDAT":
            return False
        pos += 12 + length
    return False


def _text_contains(limit: int):
    def check(p: Path) -> bool:
        with p.open("rb") as f:
            head = f.read(limit)
        return CREATOR.split()[0].encode() in head

    return check


def _pdf(p: Path) -> bool:
    data = p.read_bytes()
    return data.startswith(b"%PDF") and b"(mgcompile" in data


def _dot(p: Path) -> bool:
    return p.read_text().startswith(DOT_MARK)


_CHECKS = {".json": _json, ".jsonl": _jsonl, ".yaml": _yaml, ".yml": _yaml, ".pt": _pt,
           ".pt2": lambda p: zipfile.is_zipfile(p) and _archive_has_mark(p), ".onnx": _onnx, ".png": _png,
           ".svg": _text_contains(4096), ".pdf": _pdf, ".dot": _dot}
_EXTRA_CHECKS: dict[str, Callable[[Path], bool]] = {}  # registered by the commands (metrics.csv: mgcompile.train)


def claim_file(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Rule 2: may ``path`` be (re)written? Raises a one-line error naming the file if not."""
    p = Path(path)
    if p.is_dir():
        raise MGCompileError(f"output {p} is a folder; pass a file path")
    if p.exists() and not force and not written_by_mgcompile(p):
        raise MGCompileError(f"{p} exists and was not written by mgcompile; pass --force to replace it, "
                             "or choose another output path")
    return p


def claim_folder(folder: str | os.PathLike, names: tuple[str, ...], *, refuse: FileSet | None = None,
                 hint: str = "") -> Path:
    """Rule 1: every existing member of ``names`` in ``folder`` must be mgcompile's (one line naming the first that is not).

    A folder holding a marker of ``refuse`` (another command's folder) is refused, the error ending in ``hint``."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise MGCompileError(f"{p} is a file; pass a folder path")
    if not p.is_dir():
        return p
    if refuse is not None:
        found = [n for n in refuse.markers if written_by_mgcompile(p / n)]
        if found:
            raise MGCompileError(f"{p} is {refuse.what} (it holds {found[0]}); {hint}")
    for name in names:
        member = p / name
        if member.exists() and not written_by_mgcompile(member):
            raise MGCompileError(f"{member} exists and was not written by mgcompile; move it away or choose another "
                                 "output folder (mgcompile replaces only its own files)")
    return p


def marked_json(data: Any) -> Any:
    """``data`` with the version mark first, when it is a JSON object."""
    return {**stamp(), **data} if isinstance(data, dict) else data
