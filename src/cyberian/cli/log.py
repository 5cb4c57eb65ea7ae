"""``cyberian log``: watch a server's transparency log of receipts.

``log monitor --server URL --state FILE [--receipt R ...]`` fetches the
server's log key and signed checkpoint, checks the signature and that the
log only grew since the checkpoint last recorded in FILE, records the new
one, and checks that each receipt given is in the log. Exit 0 when all
holds, 1 when the log was rewritten or forked (both sizes and roots named),
its key changed, or a receipt is missing; 2 for usage and connection
errors. The logic is :mod:`~cyberian.cli._monitor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from .._text import clip
from ..exceptions import CyberianError
from ._common import CyberianGroup, fail

__all__ = ["group"]


@click.group("log", cls=CyberianGroup)
def group() -> None:
    """Watch a server's transparency log of receipts."""


def _receipts(paths: tuple[Path, ...]) -> list[tuple[str, Mapping[str, Any]]]:
    from .receipt import _read, _unwrap  # noqa: PLC0415

    receipts = []
    for path in paths:
        receipt = _unwrap(_read(path), path)
        if not isinstance(receipt, Mapping):
            fail(f"{path} is not a receipt (not a JSON object)")
        receipts.append((str(path), receipt))
    return receipts


@group.command("monitor")
@click.option("--server", required=True, metavar="URL", help="The server whose log to watch.")
@click.option("--state", "state_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The monitor's state file: the log key trusted on first use and the "
                   "checkpoints seen (created on the first run).")
@click.option("--receipt", "receipt_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also check that this receipt is in the log (repeatable).")
def monitor(server: str, state_file: Path, receipt_files: tuple[Path, ...]) -> None:
    """Check that the log of --server only grew since the checkpoint recorded in --state."""
    from ..client._log import LogClient  # noqa: PLC0415
    from ._monitor import load_state, monitor_once, save_state  # noqa: PLC0415

    receipts = _receipts(receipt_files)
    state = load_state(state_file)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        with LogClient(server) as client:
            result = monitor_once(client, state, server=server, now=now, receipts=receipts)
    except ValueError as exc:  # not an http(s) URL
        fail(f"cannot watch {server}: {clip(str(exc), 300)}")
    except CyberianError as exc:
        fail(f"cannot watch the log of {server}: {clip(exc.message, 300)}", exc.exit_code)
    if result.state.checkpoints or result.state.alarms:
        try:
            save_state(state_file, result.state)
        except OSError as exc:
            fail(f"cannot write {state_file}: {exc.strerror or exc}")
    for line in result.lines:
        click.echo(line)
    for problem in result.problems:
        click.echo(f"FAIL {problem}")
    if result.problems:
        click.echo(f"ALARM: {len(result.problems)} problem(s) with the log of {server}; "
                   f"recorded in {state_file}")
        raise SystemExit(1)
