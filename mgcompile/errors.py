"""User-facing errors.

Every problem a user can fix (bad spec value, unknown model, missing file, corrupt
checkpoint) is raised as :class:`MGCompileError` with a one-line message that names
the problem and the fix. The CLI turns it into click's usage-error exit code (2)
without a traceback; library users catch it as a ``ValueError``.
"""

from __future__ import annotations


class MGCompileError(ValueError):
    """A problem with the user's input, explained in one line."""


class SpecError(MGCompileError):
    """An invalid spec field; the message names the field and the allowed values."""


class GraphError(MGCompileError):
    """An IR that fails verification (shape mismatch, bad groups, cycle, ...)."""


class InputTooSmall(GraphError):
    """A feature map became smaller than a kernel: the network's input size is too small."""


class InternalError(RuntimeError):
    """A bug in mgcompile (a pass produced a graph that fails verification): reported with its traceback."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when empty), for one-line user errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class NothingConverted(MGCompileError):
    """An MG network in which no residual step became a cycle (transitions alone do not count).

    ``report`` is what the conversion or expansion recorded: the conversion report of a
    module, or the per-step status of a spec, each step with the reason it stayed.
    """

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report
