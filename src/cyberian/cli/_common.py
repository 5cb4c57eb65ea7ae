"""What every cyberian command shares: error reporting and exit codes.

Exit codes: 0 ok, 1 something was checked and found false (verification,
golden mismatch), 2 usage / spec / input / connection errors. A
:class:`~cyberian.exceptions.CyberianError` reaching a command becomes one
line on stderr and its ``exit_code``; never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from ..exceptions import CyberianError

__all__ = ["CyberianCommand", "CyberianGroup", "fail"]


def _report(exc: CyberianError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    raise SystemExit(exc.exit_code)


class CyberianCommand(click.Command):
    """A click command that turns cyberian errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, mapping :class:`CyberianError` to its exit code."""
        try:
            return super().invoke(ctx)
        except CyberianError as exc:
            _report(exc)


class CyberianGroup(click.Group):
    """A click group whose commands (and sub-groups) report errors the cyberian way."""

    command_class = CyberianCommand
    group_class = type

    def invoke(self, ctx: click.Context) -> Any:
        """Run the group, mapping :class:`CyberianError` to its exit code."""
        try:
            return super().invoke(ctx)
        except CyberianError as exc:
            _report(exc)


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
