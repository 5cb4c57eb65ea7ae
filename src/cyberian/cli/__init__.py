"""The command line: ``cyberian`` (:mod:`cyberian.cli.app`) and ``cyberian-prove`` (:mod:`.prove`).

This package imports nothing itself, so ``cyberian-prove`` does not pay for
the ``cyberian`` command's groups (receipts, the server, benchmarks);
``cyberian.cli.main`` is the ``cyberian`` group, loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    """``main``: the ``cyberian`` command group, imported when first asked for."""
    if name == "main":
        from .app import main  # noqa: PLC0415

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
