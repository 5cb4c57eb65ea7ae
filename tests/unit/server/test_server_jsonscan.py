"""The pre-parse JSON scan: exact on valid JSON, early out on hostile bodies."""

from __future__ import annotations

import json
import time

import pytest

from cyberian.server.http.jsonscan import scan_json


@pytest.mark.parametrize("document", [
    {"inputs": ["a, b", "[[[{{{", "quote \" and \\\\ and \\\" ]"], "n": [1, [2, {"k": "]"}]]},
    {"": "", "x": [[], {}, [[]]]},
    ["\\", "\\\\\"", ",,,"],
])
def test_counts_and_depth_ignore_what_is_inside_strings(document: object) -> None:
    body = json.dumps(document).encode()
    shape = scan_json(body, max_values=10_000, max_depth=100)
    assert shape.complete
    assert shape.balanced
    values = body.count(b",")  # an upper bound the scan must not exceed ...
    assert shape.values <= values + body.count(b"[") + body.count(b"{") + 1
    bare = json.dumps(json.loads(body), ensure_ascii=True)
    assert shape.depth == _depth(json.loads(bare))


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_values_outside_strings_are_counted() -> None:
    shape = scan_json(json.dumps({"a": [1, 2, 3], "b": "x,y,z"}).encode(),
                      max_values=100, max_depth=10)
    assert shape.values == 6  # 4 commas outside the string + 2 containers


def test_a_hostile_body_stops_the_scan_early() -> None:
    body = b'{"inputs": [' + b"1," * 20_000_000 + b"1]}"
    started = time.monotonic()
    shape = scan_json(body, max_values=250_000, max_depth=32)
    assert time.monotonic() - started < 1.0
    assert not shape.complete
    assert shape.values > 250_000


def test_deep_and_unbalanced_bodies() -> None:
    assert scan_json(b"[" * 5000 + b"]" * 5000, max_values=10**6, max_depth=32).depth > 32
    assert not scan_json(b"[1]]]", max_values=100, max_depth=32).balanced
    assert not scan_json(b"[[1]", max_values=100, max_depth=32).balanced
