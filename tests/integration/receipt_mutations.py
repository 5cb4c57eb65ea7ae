"""Random single-field tampers of a receipt: one leaf changed (or one entry dropped), re-serialised.

:func:`random_tampers` is seeded, so a run names the same cases every time:
an integer ±1, a float changed, a boolean flipped, ``null`` made 0, one hex
digit or one character of a string changed, or one object key or list
element dropped. Each description says where and what, e.g.
``chunks[3].output_commitment: hex digit 17 'a' -> '5'``.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

JsonPath = tuple[str | int, ...]
_HEX = "0123456789abcdef"
_B64 = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class Mutation:
    """One tampered serialisation and what was changed."""

    description: str
    data: bytes


def _where(path: JsonPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "<root>"


def _walk(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*path, index))


def _parent(root: Any, path: JsonPath) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


def _changed_string(value: str, rng: random.Random) -> tuple[str, str]:
    if not value:
        return "x", "'' -> 'x'"
    position = rng.randrange(len(value))
    old = value[position]
    lower_hex = len(value) >= 16 and all(c in _HEX for c in value)
    alphabet = _HEX if lower_hex else (_B64 if all(c in _B64 + "=" for c in value)
                                       else string.ascii_letters)
    new = rng.choice([c for c in alphabet if c != old])
    kind = "hex digit" if lower_hex else "character"
    return value[:position] + new + value[position + 1:], f"{kind} {position} {old!r} -> {new!r}"


def _changed_leaf(value: Any, rng: random.Random) -> tuple[Any, str]:
    if isinstance(value, bool):
        return not value, f"{value} -> {not value}"
    if isinstance(value, int):
        new = value + rng.choice((1, -1))
        return new, f"{value} -> {new}"
    if isinstance(value, float):
        new = value + 0.5 if rng.random() < 0.5 else value * 2 + 0.25
        return new, f"{value!r} -> {new!r}"
    if value is None:
        return 0, "null -> 0"
    return _changed_string(value, rng)


def mutate(receipt: dict[str, Any], rng: random.Random) -> Mutation:
    """One random single-field tamper of ``receipt`` (which is not changed)."""
    original = json.dumps(receipt).encode()
    nodes = list(_walk(receipt))
    while True:
        tampered = copy.deepcopy(receipt)
        if rng.random() < 0.25:  # drop one key or element
            path, _ = rng.choice([(p, v) for p, v in nodes if p])
            container = _parent(tampered, path)
            del container[path[-1]]
            description = f"{_where(path)}: dropped"
        else:
            path, value = rng.choice([(p, v) for p, v in nodes
                                      if p and not isinstance(v, dict | list)])
            new, change = _changed_leaf(value, rng)
            _parent(tampered, path)[path[-1]] = new
            description = f"{_where(path)}: {change}"
        data = json.dumps(tampered).encode()
        if data != original:
            return Mutation(description, data)


def random_tampers(receipt: dict[str, Any], count: int, seed: int) -> list[Mutation]:
    """``count`` seeded single-field tampers of ``receipt``, all different."""
    rng = random.Random(seed)
    found: dict[bytes, Mutation] = {}
    while len(found) < count:
        mutation = mutate(receipt, rng)
        found.setdefault(mutation.data, mutation)
    return list(found.values())
