"""The ``mgcompile`` command line: thin click commands over the Python API.

Each command lives in its own module of this package and exposes ``command`` (a
``click.Command``); they are discovered here, so adding a command means adding one
file. Heavy imports happen inside the commands, keeping ``mgcompile --help`` fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from mgcompile import __version__
from mgcompile.errors import MGCompileError


class UserError(click.ClickException):
    """A one-line error with click's usage-error exit code (2), no traceback."""

    exit_code = 2


class _Group(click.Group):
    """Turns every user-fixable problem into one ``Error: ...`` line with exit code 2."""

    def make_context(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise UserError(f"{exc.format_message()} (see 'mgcompile --help')") from None

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from mgcompile import interrupts

        try:
            interrupts.check()  # a Ctrl-C during start-up that an extension module's import swallowed
            return super().invoke(ctx)
        except MGCompileError as exc:
            if (signum := interrupts.interrupted_by(exc)) is not None:  # a library turned the interrupt into an error
                _interrupted(signum)
            raise UserError(str(exc)) from None
        except click.UsageError as exc:  # bad flag values: one line instead of usage + hint + error
            where = f"mgcompile {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent is not None else "mgcompile"
            raise UserError(f"{exc.format_message()} (see '{where} --help')") from None
        except BrokenPipeError:  # `mgcompile list | head`: the reader left; end quietly as SIGPIPE would
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except OSError as exc:  # a file system problem the user can fix (permissions, full disk, ...)
            if (signum := interrupts.interrupted_by(exc)) is not None:
                _interrupted(signum)
            target = f": {exc.filename}" if exc.filename else ""
            raise UserError(f"{exc.strerror or exc}{target}; check the path and permissions") from None
        except (KeyboardInterrupt, interrupts.Terminated) as exc:
            _interrupted(interrupts.interrupted_by(exc))
        except Exception as exc:
            signum = interrupts.interrupted_by(exc)
            if signum is None:
                raise
            _interrupted(signum)


def _interrupted(signum: int | None) -> None:
    import signal

    from mgcompile import interrupts

    signum = signum or signal.SIGINT
    click.echo(interrupts.message(signum), err=True)
    sys.exit(interrupts.exit_code(signum))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mgcompile")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines or bars on stderr (results and errors still print).")
@click.pass_context
def main(ctx: click.Context, quiet: bool) -> None:
    """Compile CNNs into their multigrid-in-channels (MG) versions: convert, audit, export, train."""
    from mgcompile.progress import configure_cli

    ctx.call_on_close(configure_cli(quiet))


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "options":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cmd in getattr(module, "commands", [getattr(module, "command", None)]):
            if cmd is not None:
                main.add_command(cmd)


_discover()
