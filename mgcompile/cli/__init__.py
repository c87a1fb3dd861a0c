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
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except MGCompileError as exc:
            raise UserError(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mgcompile")
def main() -> None:
    """Compile CNNs into their multigrid-in-channels (MG) versions: convert, audit, export, train."""


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "options":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cmd in getattr(module, "commands", [getattr(module, "command", None)]):
            if cmd is not None:
                main.add_command(cmd)


_discover()
