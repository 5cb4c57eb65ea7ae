"""Bounded quotations for error messages: one line, a fixed length, whatever the input.

Error messages quote what a stranger sent (a spec value, a server's answer);
quoting it whole let a 1.3 KB alias bomb become a 312 MB message.
"""

from __future__ import annotations

import reprlib
from typing import Any, Final

__all__ = ["MAX_VALUE_CHARS", "brief", "clip", "lone_surrogate"]

MAX_VALUE_CHARS: Final = 80
"""Longest quotation of a value (or key) in an error message."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = MAX_VALUE_CHARS
_REPR.maxother = MAX_VALUE_CHARS
_REPR.maxlong = 40


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` on one line (whitespace runs become one space), cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def brief(value: Any, *, limit: int = MAX_VALUE_CHARS) -> str:
    """A one-line ``repr`` of ``value`` of at most ``limit`` characters, however large it is."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr() of an int past Python's 4,300-digit limit raises; say how big it is instead
        return clip(f"an integer of {value.bit_length()} bits", limit)
    return clip(_REPR.repr(value), limit)


def lone_surrogate(text: str) -> int | None:
    """Where ``text``'s first lone surrogate is (no Unicode scalar value), or ``None``."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return int(exc.start)
    return None
