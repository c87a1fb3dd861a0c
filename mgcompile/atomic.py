"""Write-to-temp-then-rename helpers, so a failed or interrupted command never leaves half a file.

Every helper turns an unwritable destination (a parent that is a file, no permission)
into an :class:`MGCompileError` before anything is written, gives the result the
usual permissions (``mkstemp`` would leave files 0600), and reports a write that fails
half way (full disk, file too large, I/O error) in one line naming the *user's* path,
never the hidden temporary one. Temporary files are removed on every exception,
including ``KeyboardInterrupt`` and SIGTERM (see :mod:`mgcompile.interrupts`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from mgcompile.errors import MGCompileError, first_line


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


def write_failure(path: str | os.PathLike, exc: BaseException) -> MGCompileError | None:
    """A one-line error for a write that failed half way, or ``None`` when ``exc`` is not such a failure.

    torch.save reports a full disk as ``RuntimeError: ... unexpected pos``; the OS as
    ``OSError`` (ENOSPC, EFBIG, EIO, ...).
    """
    if isinstance(exc, OSError):
        reason = exc.strerror or first_line(exc)
    elif isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("PytorchStreamWriter", "unexpected pos",
                                                                         "file write failed")):
        reason = "the write failed part way"
    else:
        return None
    where = Path(path).expanduser().resolve().parent
    try:
        free = f"; {shutil.disk_usage(where).free / 2**20:.0f} MiB free there"
    except OSError:
        free = ""
    return MGCompileError(f"writing {path} failed ({reason}{free}); nothing was written: free disk space or "
                          "choose another output path")


def _file_destination(path: str | os.PathLike) -> Path:
    """The absolute destination of a single-file write (its folder created); a folder there is refused."""
    final = _prepare(path)
    if final.is_dir():
        raise MGCompileError(f"{path} is a folder; pass a file path")
    return final


@contextlib.contextmanager
def _failures_named(path: str | os.PathLike) -> Iterator[None]:
    """Turn a write that fails half way into :func:`write_failure`'s one line naming ``path``."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        error = write_failure(path, exc)
        if error is None:
            raise
        raise error from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same directory so the final ``os.replace`` is
    atomic on POSIX. On any exception the temporary file is removed and ``path`` is
    left exactly as it was.
    """
    final = _file_destination(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _failures_named(path):
            yield tmp_path
            if tmp_path.exists():
                os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_files(path: str | os.PathLike, companions: tuple[str, ...]) -> Iterator[Path]:
    """Like :func:`atomic_path` for a file that comes with companion files (``model.onnx`` + ``model.onnx.data``).

    Yields ``<hidden folder>/<name>``: write the file and its companions (names ``name + suffix``)
    there; on success the companions are renamed into place first, the file last, so
    a reader never sees the new file without its data. On any exception the hidden
    folder is removed and nothing beside ``path`` changed.
    """
    final = _file_destination(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        with _failures_named(path):
            yield staging / final.name
            names = [final.name + suffix for suffix in companions] + [final.name]
            with _signals_deferred():
                for name in names:
                    if (staging / name).exists():
                        os.chmod(staging / name, 0o666 & ~_umask())
                        os.replace(staging / name, final.parent / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def json_text(data: Any) -> str:
    """The project's JSON style for files and ``--json`` output: indented, non-JSON values as strings."""
    return json.dumps(data, indent=2, default=str) + "\n"


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically, with mgcompile's version mark (see ``provenance``)."""
    from mgcompile.provenance import marked_json

    atomic_write_text(path, json_text(marked_json(data)))


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM for the few renames that commit a file set (they arrive right after)."""
    mask = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    except (AttributeError, ValueError, OSError):  # no pthread_sigmask (Windows) or not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


Writer = Callable[[Path], None]


def write_file_set(folder: str | os.PathLike, files: Mapping[str, Writer], owned: tuple[str, ...]) -> Path:
    """Write the members ``files`` (name -> writer of a temporary path) into ``folder``; remove stale owned members.

    Everything is written into a hidden staging folder inside ``folder`` first; only
    when every writer succeeded are the files renamed into place (signals held for
    those few renames) and members of ``owned`` that this run did not write removed.
    Files outside ``owned`` are never touched: the caller checks beforehand (see
    :func:`mgcompile.provenance.claim_folder`) that the owned members present are
    mgcompile's. On any failure nothing in ``folder`` changes, and a folder this call
    created is removed again.
    """
    assert set(files) <= set(owned), "a file set writes only its own members"
    final = Path(folder).expanduser().resolve()
    created = not final.exists()
    _prepare(final / "x")
    staging = Path(tempfile.mkdtemp(prefix=".mgcompile-", suffix=".tmp", dir=final))
    try:
        for name, write in files.items():
            try:
                with _failures_named(final / name):
                    write(staging / name)
            except MGCompileError as exc:  # a writer's own atomic write: name the user's path, not the staging one
                raise MGCompileError(str(exc).replace(str(staging / name), str(final / name))) from None
        with _signals_deferred():
            for name in files:
                os.chmod(staging / name, 0o666 & ~_umask())
                os.replace(staging / name, final / name)
            for name in owned:
                if name not in files:
                    (final / name).unlink(missing_ok=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                final.rmdir()  # only if empty: nothing but our staging was ever in it
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return final
