"""The ``mgcompile`` executable (and ``python -m mgcompile``).

Two things happen here that cannot happen inside the click group:

1. Signal handlers are installed *before* anything heavy is imported, so a Ctrl-C in
   the first second (while numpy or torch import) ends with one ``interrupted`` line
   and exit code 130, not an ImportError traceback.
2. The process ends with ``os._exit`` once the command has finished, its output is
   flushed and the ``atexit`` callbacks have run. What follows a normal exit is the
   interpreter tearing down torch's modules and unloading its native (CUDA-build)
   libraries: measured 0.4-0.8 s on a quiet machine and 1.5-11 s under load, after the
   last line was printed, with no work of ours left. No thread of ours is running
   at that point (tests check it), so nothing is lost by skipping it.
"""

from __future__ import annotations

import atexit
import os
import sys


def _finish(code: int) -> None:
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``mgcompile list | head``)
            pass
    os._exit(code)


def _code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main() -> None:
    from mgcompile import interrupts

    interrupts.install()
    try:
        from mgcompile.cli import main as cli

        cli(prog_name="mgcompile")
        code = 0
    except SystemExit as exc:
        code = _code(exc)
    except BaseException as exc:  # noqa: BLE001  (the one place that decides how the process ends)
        signum = interrupts.interrupted_by(exc)
        if signum is None:
            import traceback

            traceback.print_exc()
            code = 1
        else:
            print(interrupts.message(signum), file=sys.stderr)
            code = interrupts.exit_code(signum)
    signum = interrupts.received()
    if signum is not None and code == 0:  # an extension module's import swallowed the interrupt
        print(interrupts.message(signum), file=sys.stderr)
        code = interrupts.exit_code(signum)
    _finish(code)


if __name__ == "__main__":
    main()
