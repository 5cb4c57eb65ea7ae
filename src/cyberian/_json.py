"""JSON from untrusted bytes with a nesting limit: the one ``json.loads`` for outside input.

Receipts, ``/keys`` documents, server answers and JSON Lines inputs come
from elsewhere; a document nested thousands of levels deep would otherwise
end in a ``RecursionError`` (here or in whatever walks it next). Too deep is
a plain :class:`ValueError`, like any other malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "loads_json"]

MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of arrays and objects accepted (a receipt needs 5)."""


def _deeper_than(value: Any, max_depth: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def loads_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, **options: Any) -> Any:
    """``json.loads(data, **options)``, refusing (ValueError) nesting deeper than ``max_depth``."""
    too_deep = f"JSON nested deeper than {max_depth} levels"
    try:
        value = json.loads(data, **options)
    except RecursionError:
        raise ValueError(too_deep) from None
    if isinstance(value, dict | list) and _deeper_than(value, max_depth):
        raise ValueError(too_deep)
    return value
