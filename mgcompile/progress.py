"""Progress of long work: lines on stderr for a person at the CLI, silence for the Python API.

Library code reports through the ``mgcompile`` logger only. Without a handler (the
Python API) nothing is printed; the CLI calls :func:`configure_cli`, which prints
info lines on stderr unless ``--quiet``. Long loops use :class:`Progress`: a tqdm bar
on a terminal, elsewhere (a pipe, a CI log) one line at least every
``MGCOMPILE_PROGRESS_SECONDS`` (default 10) seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any, Callable, Iterator

logger = logging.getLogger("mgcompile")
_cli = {"enabled": False}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it per invocation)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_cli(quiet: bool = False) -> Callable[[], None]:
    """Print progress on stderr (the CLI); ``quiet`` keeps only warnings. Returns the undo (for in-process runs)."""
    handler = _StderrHandler()
    saved = (logger.level, logger.propagate, _cli["enabled"])
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    _cli["enabled"] = not quiet

    def restore() -> None:
        logger.removeHandler(handler)
        logger.level, logger.propagate, _cli["enabled"] = saved

    return restore


def interval() -> float:
    try:
        return max(0.0, float(os.environ.get("MGCOMPILE_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


def _interactive() -> bool:
    return _cli["enabled"] and sys.stderr.isatty()


@contextlib.contextmanager
def stage(what: str) -> Iterator[None]:
    """Log ``what ...`` before a slow step and how long it took after it."""
    logger.info(f"{what} ...")
    start = time.perf_counter()
    yield
    logger.info(f"{what}: done in {time.perf_counter() - start:.1f} s")


class Progress:
    """Counts ``total`` items of a loop: a bar on a terminal, periodic log lines elsewhere."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", initial: int = 0) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.bar = None
        self.last = self.start = time.monotonic()
        self.initial = initial
        if _interactive():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                            file=sys.stderr)

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix)
            return
        now = time.monotonic()
        if now - self.last >= interval() and logger.isEnabledFor(logging.INFO):
            self.last = now
            of = f"/{self.total}" if self.total is not None else ""
            extra = "".join(f"  {k} {v}" for k, v in postfix.items())
            logger.info(f"{self.desc}: {self.done}{of} {self.unit}{extra}{self._eta(now)}")

    def _eta(self, now: float) -> str:
        """``  ETA 1:05`` from the rate so far (nothing before the first item or without a total)."""
        done = self.done - self.initial
        if self.total is None or done <= 0 or self.done >= self.total:
            return ""
        left = int((now - self.start) * (self.total - self.done) / done)
        return f"  ETA {left // 60}:{left % 60:02d}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """Silence info lines inside a loop that reports its own progress (e.g. one export per step)."""
    saved = logger.level
    logger.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(saved)
