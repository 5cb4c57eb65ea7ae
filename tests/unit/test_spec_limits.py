"""Hostile spec text: alias bombs, deep nesting, odd keys, huge values all end in one SpecError.

The spec parser reads text sent by strangers (``spec_yaml`` in a request), so
whatever the text, it must answer with a short :class:`SpecError` quickly.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyberian.exceptions import SpecError
from cyberian.spec import (
    DEFAULT_SPEC_LIMITS,
    MAX_SPEC_ALIASES,
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    SpecLimits,
    load_spec,
    parse_spec,
)

H1 = "a" * 64
VALID = f"""
version: "1.0"
name: demo
model: {{sha256: "{H1}"}}
tokenizer: {{sha256: "{H1}"}}
output: {{dimensions: 8}}
runtime: {{version: "1.32.0"}}
"""


def alias_bomb(levels: int = 8) -> str:
    """The issue's spec: each level lists the previous one nine times, all under ``name:``."""
    lines = ['version: "1.0"', "name:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"  a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def refusal(text: str, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) < 500, message[:1000]
    return message


def test_the_defaults_are_the_named_constants() -> None:
    assert SpecLimits(MAX_SPEC_BYTES, MAX_SPEC_ALIASES, MAX_SPEC_DEPTH) == DEFAULT_SPEC_LIMITS
    assert (MAX_SPEC_BYTES, MAX_SPEC_ALIASES, MAX_SPEC_DEPTH) == (65536, 32, 16)


def test_an_alias_bomb_is_refused_quickly_in_one_short_line() -> None:
    text = alias_bomb()
    assert len(text) < 1500
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = refusal(text)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 5_000_000
    assert "limit max_aliases" in message
    assert message.startswith("name.")


def test_a_few_aliases_are_fine_and_the_limit_is_a_parameter() -> None:
    text = VALID.replace("model: {", "model: &m {").replace(
        "tokenizer: {sha256: \"" + H1 + "\"}", "tokenizer: *m")
    assert parse_spec(text).tokenizer_sha256 == H1
    assert "limit max_aliases" in refusal(text, limits=SpecLimits(max_aliases=0))


def test_an_overlong_value_is_quoted_briefly() -> None:
    message = refusal(VALID.replace("name: demo", "name: " + "x" * 50_000))
    assert message.startswith("name: must be a string matching")
    big_list = "[" + ", ".join(["lol"] * 10_000) + "]"
    assert refusal(VALID.replace("name: demo", f"name: {big_list}")).startswith("name:")
    assert refusal(VALID + "? " + "z" * 20_000 + "\n: 1\n").startswith("z")


def test_a_non_scalar_key_names_its_path() -> None:
    assert refusal("? [a, b]\n: 1\n").startswith("spec: a mapping key must be a plain scalar")
    assert refusal(VALID + "verification:\n  ? {x: 1}\n  : 2\n").startswith("verification:")


def test_deep_nesting_is_refused_by_the_depth_limit() -> None:
    message = refusal("[" * 5000)
    assert "limit max_depth" in message
    assert "nested deeper than 16 levels" in message
    assert "limit max_depth" in refusal(VALID + "verification: {a: {b: 1}}\n",
                                        limits=SpecLimits(max_depth=2))
    assert parse_spec(VALID, limits=SpecLimits(max_depth=2)).dimensions == 8


def test_the_size_limit_counts_bytes(tmp_path: Path) -> None:
    padded = VALID + "#" + "é" * 40 + "\n"
    assert parse_spec(padded).name == "demo"
    assert "limit max_bytes" in refusal(padded, limits=SpecLimits(max_bytes=len(VALID) + 42))
    path = tmp_path / "big.yaml"
    path.write_text(VALID + "#" + "x" * MAX_SPEC_BYTES + "\n", encoding="utf-8")
    with pytest.raises(SpecError, match="limit max_bytes"):
        load_spec(path)


@pytest.mark.parametrize("text", ["x: !!int abc", "x: !!timestamp 2001-13-45",
                                  "x: !!timestamp 99999-01-01", "\x00", "a: 1\n---\nb: 2\n"])
def test_constructor_failures_are_spec_errors(text: str) -> None:
    refusal(text)


# -- anything at all -----------------------------------------------------------------------

_YAMLISH = st.text(alphabet=st.sampled_from(
    [*"[]{}:,-&*!?|>'\"#%@` \n\tab01.\\", chr(0xD800), "é", "\x00"]), max_size=300)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_NESTED = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=40)


def _only_spec_errors(text: str) -> None:
    started = time.perf_counter()
    message = ""
    try:
        parse_spec(text)
    except SpecError as exc:
        message = str(exc)
    assert time.perf_counter() - started < 2.0
    assert len(message) < 500
    assert "\n" not in message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_YAMLISH)
def test_random_yamlish_text_raises_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


@settings(max_examples=200, deadline=None)
@given(_NESTED, st.sampled_from(["name", "model", "runtime", "verification", "x"]))
def test_random_structures_raise_only_spec_errors(value: Any, where: str) -> None:
    document = yaml.safe_load(VALID)
    document[where] = value
    _only_spec_errors(yaml.safe_dump(document))
    _only_spec_errors(yaml.safe_dump(value))


@pytest.mark.parametrize("extra", [
    "verification: {sample_rate: " + "9" * 1000 + "}",  # beyond any float: OverflowError
    "chunking: {chunk_size: -0x" + "f" * 5000 + "}",  # repr() past the 4,300-digit limit
])
def test_huge_integers_are_spec_errors_with_a_short_message(extra: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(VALID + extra + "\n")
    assert "an integer of" in str(refused.value)
    assert len(str(refused.value)) < 200
