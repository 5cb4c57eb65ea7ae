"""What parsing a JSON body would cost, measured on its bytes before it is parsed.

``json.loads`` builds one Python object per value and recurses once per
nesting level, so a few megabytes of ``[1,1,1,...`` or ``[[],[],...`` cost
seconds and gigabytes, and deep nesting raises ``RecursionError``. This scan
counts the values and the nesting depth outside strings with vectorised
byte operations (no Python object per value, bounded memory), in blocks that
grow from 64 KiB to 4 MiB, and stops as soon as a limit is
passed, so a hostile body is refused after reading its first block.

Strings are found exactly for valid JSON: escaped backslash pairs and then
escaped quotes are removed first, after which every remaining ``"`` opens
or closes a string. For invalid JSON the counts may be off, but only after
the first syntax error, which the parser never gets past.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = ["JsonShape", "scan_json"]

_FIRST_BLOCK: Final = 1 << 16  # small first steps: a hostile body fails within them
_MAX_BLOCK: Final = 1 << 22
_QUOTE: Final = ord('"')
_STRUCTURAL: Final = np.zeros(256, dtype=np.bool_)
_STRUCTURAL[list(b",[]{}")] = True
_STEP: Final = np.zeros(256, dtype=np.int64)  # what each structural byte does to the depth
_STEP[list(b"[{")], _STEP[list(b"]}")] = 1, -1


@dataclass(frozen=True)
class JsonShape:
    """What a JSON text holds outside its strings, as far as the scan got."""

    values: int
    """An upper bound on the values (array items, object members, containers) seen."""
    depth: int
    """The deepest nesting of arrays and objects seen."""
    balanced: bool
    """Whether every bracket opened was closed (false for a text that is not JSON)."""
    complete: bool
    """False when the scan stopped early because a limit was passed."""


def scan_json(body: bytes, *, max_values: int, max_depth: int) -> JsonShape:
    """The values and depth of ``body``; stops early once one passes its maximum."""
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in body else body
    data = np.frombuffer(text, dtype=np.uint8)
    quotes_before = 0  # parity of the string delimiters before the current block
    values, depth, level = 1, 0, 0
    start, size = 0, _FIRST_BLOCK
    while start < len(data):
        block = data[start:start + size]
        start, size = start + size, min(2 * size, _MAX_BLOCK)
        quotes = np.flatnonzero(block == _QUOTE)
        marks = np.flatnonzero(_STRUCTURAL[block])
        outside = (np.searchsorted(quotes, marks) + quotes_before) % 2 == 0
        quotes_before += len(quotes)
        steps = _STEP[block[marks[outside]]]
        values += len(steps) - int(np.count_nonzero(steps < 0))
        if values > max_values:
            return JsonShape(values, depth, balanced=True, complete=False)
        if len(steps):
            running = np.cumsum(steps) + level
            depth = max(depth, int(running.max()))
            level = int(running[-1])
            if int(running.min()) < 0:
                return JsonShape(values, depth, balanced=False, complete=False)
            if depth > max_depth:
                return JsonShape(values, depth, balanced=True, complete=False)
    return JsonShape(values, depth, balanced=level == 0, complete=True)
