"""Ctrl-C and SIGTERM: remembered, turned into exceptions that clean up, never swallowed.

The CLI installs :func:`install` before anything heavy is imported. From then on

* SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises :class:`Terminated` (a
  ``BaseException``), so every ``finally`` / ``except BaseException`` runs and
  temporary files are removed; the process exits 130 / 143 with one line;
* the signal is also *recorded*. Libraries sometimes catch the interrupt and re-raise
  it wrapped in an ordinary exception (torch's ONNX exporter does); code that would
  otherwise treat that as a failure and try a fallback asks :func:`check` first.

Training installs its own flag-only handler while it runs (it checkpoints at the next
batch boundary) and restores these afterwards.
"""

from __future__ import annotations

import signal
from typing import Any

_received: int | None = None


class Terminated(BaseException):
    """SIGTERM arrived: unwind like ``KeyboardInterrupt`` does, then exit 128 + 15."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def _handle(signum: int, frame: Any) -> None:
    record(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def install() -> None:
    """Route SIGINT and SIGTERM through :func:`_handle` (main thread only, where Python delivers them)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handle)


def record(signum: int) -> None:
    global _received
    _received = signum


def received() -> int | None:
    """The signal that arrived (``None``: none)."""
    return _received


def exit_code(signum: int) -> int:
    return 128 + int(signum)


def message(signum: int) -> str:
    """The one line an interrupted command ends with."""
    return f"interrupted by {signal.Signals(signum).name}; nothing was left half-written"


def interrupted_by(exc: BaseException | None) -> int | None:
    """The signal behind ``exc``: a recorded one, or an interrupt somewhere in its cause/context chain."""
    if _received is not None:
        return _received
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return signal.SIGINT
        if isinstance(exc, Terminated):
            return exc.signum
        exc = exc.__cause__ or exc.__context__
    return None


def check(exc: BaseException | None = None) -> None:
    """Re-raise a pending interrupt (recorded, or hidden inside ``exc``) instead of carrying on."""
    signum = interrupted_by(exc)
    if signum is None:
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt from None
    raise Terminated(signum) from None
