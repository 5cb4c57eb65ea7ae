"""What every cyberian command shares: error reporting and exit codes.

Exit codes: 0 ok, 1 something was checked and found false (verification,
golden mismatch), 2 usage / spec / input / connection errors. A
:class:`~cyberian.exceptions.CyberianError` reaching a command becomes one
line on stderr and its ``exit_code``; never a traceback.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn

import click

from ..exceptions import CyberianError

__all__ = ["CyberianCommand", "CyberianGroup", "fail"]

_HELP_OPTION_NAMES: Final = ("-h", "--help")


def _with_help_shortcut(options: dict[str, Any]) -> dict[str, Any]:
    """Command options whose context settings make ``-h`` mean ``--help``."""
    given = options.get("context_settings") or {}
    settings = {"help_option_names": list(_HELP_OPTION_NAMES), **given}
    return {**options, "context_settings": settings}


class CyberianCommand(click.Command):
    """A click command that turns cyberian errors into one line and an exit code (``-h`` helps)."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **_with_help_shortcut(options))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, mapping :class:`CyberianError` to its exit code."""
        try:
            return super().invoke(ctx)
        except CyberianError as exc:
            fail(exc.message, exc.exit_code)


class CyberianGroup(click.Group):
    """A click group whose commands (and sub-groups) report errors the cyberian way."""

    command_class = CyberianCommand
    group_class = type

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **_with_help_shortcut(options))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the group, mapping :class:`CyberianError` to its exit code."""
        try:
            return super().invoke(ctx)
        except CyberianError as exc:
            fail(exc.message, exc.exit_code)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
