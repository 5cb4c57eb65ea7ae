"""The two words for a receipt's committed units, used the same way everywhere.

A ``job`` or ``local`` receipt commits to *chunks*: consecutive runs of the
spec's ``chunking.chunk_size`` texts, as ``cyberian-prove`` prints them. A
``vaas`` receipt commits to *blocks*: consecutive runs of the spec's
``verification.vaas_block`` texts, the unit a verifier re-executes and
certifies (the receipt's ``chunks`` and ``chunk_size`` fields then hold
blocks and the block size). Both are cut by
:func:`cyberian.commitments.chunk_bounds`; only the size differs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["unit_name", "units_phrase"]


def unit_name(kind: Any) -> str:
    """``"block"`` for a ``vaas`` receipt (its ``kind``), else ``"chunk"``."""
    return "block" if kind == "vaas" else "chunk"


def _plural(word: str, count: Any) -> str:
    return word if count == 1 else word + "s"


def units_phrase(kind: Any, count: Any, size: Any) -> str:
    """``2 chunks of up to 32 texts (chunk_size)`` or ``1 block of up to 1000 texts
    (verification.vaas_block)``: ``count`` units of ``size`` texts of a ``kind`` receipt."""
    unit = unit_name(kind)
    field = "verification.vaas_block" if unit == "block" else "chunk_size"
    return f"{count} {_plural(unit, count)} of up to {size} texts ({field})"
