"""Write-to-temp-then-rename helpers, so a failed command never leaves half a file.

Every helper turns an unwritable destination (a parent that is a file, no permission)
into an :class:`MGCompileError` before anything is written, and gives the result the
usual permissions (``mkstemp`` would leave files 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from mgcompile.errors import MGCompileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prepare(path: str | os.PathLike) -> Path:
    """The absolute destination with its parent folder created; a clear error when that is impossible."""
    final = Path(path).expanduser().resolve()
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MGCompileError(f"cannot write {path} ({exc.strerror or exc}: {exc.filename or final.parent}); "
                             "choose a writable output path") from None
    if not os.access(final.parent, os.W_OK | os.X_OK):
        raise MGCompileError(f"cannot write {path}: {final.parent} is not writable; choose a writable output path")
    return final


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same directory so the final ``os.replace`` is
    atomic on POSIX. On any exception the temporary file is removed and ``path`` is
    left exactly as it was.
    """
    final = _prepare(path)
    if final.is_dir():
        raise MGCompileError(f"{path} is a folder; pass a file path")
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def json_text(data: Any) -> str:
    """The project's JSON style for files and ``--json`` output: indented, non-JSON values as strings."""
    return json.dumps(data, indent=2, default=str) + "\n"


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    atomic_write_text(path, json_text(data))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole on success.

    An existing ``path`` is swapped out only after everything was written, so an
    error half way leaves the old directory (or nothing) behind. Callers decide
    whether an existing folder may be replaced (see ``cli/convert.py``).
    """
    final = _prepare(path)
    if final.exists() and not final.is_dir():
        raise MGCompileError(f"{path} is a file; pass a folder path")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
