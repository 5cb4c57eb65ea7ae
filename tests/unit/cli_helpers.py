"""What the CLI tests check of an error: one short ``error:`` line, never a traceback."""

from __future__ import annotations

from click.testing import Result


def one_error_line(result: Result) -> str:
    """The single ``error:`` line that is all of ``result``'s output (asserted, < 10 KB)."""
    assert "Traceback" not in result.output
    assert len(result.output) < 10_000
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output[:2000]
    assert lines[0].startswith("error: ")
    return lines[0]
