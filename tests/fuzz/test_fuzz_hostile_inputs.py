"""Hostile specs and hostile text lists: in-process and against a live server.

Specs (issue 11 items 2, 4, 5 and their relatives) are the shipped
``specs/all-minilm-l6-v2.yaml`` (in-process) or the catalog's ``tiny`` spec
(over HTTP) with one field replaced, or text that is not a spec at all:

* ``random_yaml``: arbitrary text, and soups of YAML syntax;
* ``deep_nesting``: thousands of ``[`` / ``{`` at the top or under a field;
* ``aliases``: anchors and aliases, alias bombs up to 9^5 nodes, recursive aliases;
* ``non_scalar_keys``: ``? [a, b]`` and flow keys that are sequences or mappings;
* ``huge_scalars``: strings up to 200k characters, integers of thousands of digits;
* ``wrong_types``: every field of the spec (and whole sections) given a value
  of another YAML type or tag.

Properties: ``parse_spec`` returns a Spec or raises a ``CyberianError`` (never
another exception), within ``REQUEST_BOUND``, with a message that does not
amplify the input; ``POST /jobs`` and ``POST /verify`` with the text as
``spec_yaml`` answer a 4xx (2xx allowed only where a mutation can stay valid),
within ``REQUEST_BOUND``, without amplifying the request, while another
client's ``/health`` answers within ``HEALTH_BOUND``.

Text lists (items 1 and 3): lone surrogates, NUL and control characters,
huge strings, wrong types, empty and odd shapes, in both dialects, to both
routes, with and without an ``Idempotency-Key``: never a 5xx, in time, and
``/health`` keeps answering; plus a million wrong-typed items (bounded: 1 M,
not the 25 M that froze the server).

Budget: fixed ``max_examples``, ``derandomize=True``, no deadline (time is
a property checked explicitly).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fuzz_support import (
    AMPLIFICATION_SLACK,
    REQUEST_BOUND,
    HealthProber,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from server_harness import LiveServer

from cyberian.exceptions import CyberianError
from cyberian.spec import parse_spec

pytestmark = [pytest.mark.fuzz]

REPO = Path(__file__).resolve().parents[2]
SHIPPED_TEXT = (REPO / "specs" / "all-minilm-l6-v2.yaml").read_text(encoding="utf-8")
CLAIM = "0" * 64

FUZZ_SETTINGS = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    # No "explain" phase: it traces every line, and a RecursionError traceback 5,000 frames
    # deep under a tracer takes minutes.
    "phases": (Phase.explicit, Phase.generate, Phase.shrink),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.large_base_example,
                              HealthCheck.function_scoped_fixture],
}

# -- hostile specs ---------------------------------------------------------------------

PLACEHOLDER = "hostile-value-placeholder"

# Optional keys the shipped spec leaves out; they get hostile values too.
EXTRA_PATHS: tuple[tuple[str, ...], ...] = (
    ("task",), ("verification", "vaas_block"), ("verification", "reward"),
    ("verification", "penalty"), ("verification", "cost"), ("verification", "collusion"),
    ("unknown_top_level",), ("model", "unknown"),
)


def _paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in doc.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_paths(value, (*prefix, key)))
    return out


def _with_value(base_text: str, path: tuple[str, ...], snippet: str) -> str:
    """``base_text`` with the value at ``path`` replaced by the one-line YAML ``snippet``."""
    doc = copy.deepcopy(yaml.safe_load(base_text))
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = PLACEHOLDER
    text = yaml.safe_dump(doc, sort_keys=False, width=1 << 30)
    assert text.count(PLACEHOLDER) == 1
    return text.replace(PLACEHOLDER, snippet)


# Values of every YAML type and tag (one line each); most are wrong for most fields.
WRONG_VALUES = (
    "null", "~", "true", "false", "0", "-1", "1.5", ".nan", ".inf", "-.inf", "1e400",
    "0x1F", "0o17", "2001-12-14t21:59:43.10-05:00", "2002-12-14", "2001-13-45", "[]", "{}",
    "[1, 2]", "{a: 1}", "[[], {}]", '"UPPER CASE"', '""', "!!binary aGVsbG8=", "!!set {a, b}",
    "!!omap [a: 1, b: 2]", '!!str 5', '!!int "12"', '!!int "x"', '!!float "x"',
    '!!timestamp "soon"', "!!python/object:os.system x", "!!null ''", "&anchor 7",
    '"\\0\\x01\\ud800"', "'\\u0000'", "*undefined_alias", "{<<: [1]}", "- dash",
    ": colon", "| literal",
)


def _alias_bomb(levels: int, fanout: int) -> str:
    parts = ["&a0 [" + ", ".join(["lol"] * fanout) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def _nesting(depth: int, kind: str, closed: bool) -> str:
    opener, closer = {"seq": ("[", "]"), "map": ("{a: ", "}"), "mixed": ("[{a: ", "}]")}[kind]
    return opener * depth + ("1" + closer * depth if closed else "")


def specs(base_text: str) -> dict[str, st.SearchStrategy[str]]:
    """The hostile-spec strategies, each family on its own, built around ``base_text``."""
    base = yaml.safe_load(base_text)
    fields = st.sampled_from(_paths(base) + list(EXTRA_PATHS))
    sections = st.sampled_from([(key,) for key, value in base.items() if isinstance(value, dict)])

    def at_field(snippets: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.builds(_with_value, st.just(base_text), fields, snippets)

    syntax = st.sampled_from(["[", "]", "{", "}", ":", ": ", "- ", ",", "? ", "&a ", "*a",
                              "!!python/object ", "!!binary ", "!", "%YAML 1.1\n", "---\n",
                              "...\n", "'", '"', "|", ">", "#", "\n", "  ", "\t", "<<: ",
                              "name", "model", "1.0", "\\", "\x00", "\ud800", "\ufeff", "~"])
    random_yaml = st.one_of(
        st.text(max_size=300),
        st.lists(syntax, max_size=60).map("".join),
        st.builds(lambda head, cut: head[:cut], st.just(base_text), st.integers(0, 2000)),
        st.builds(lambda soup: base_text + soup, st.lists(syntax, max_size=30).map("".join)),
    )
    # Depths far from CPython's recursion limit on either side (a depth near it fails or
    # not depending on how deep the caller's stack is, which makes shrinking flaky).
    depth = st.sampled_from([2, 40, 5_000, 12_000])
    deep_nesting = st.one_of(
        st.builds(_nesting, depth, st.sampled_from(["seq", "map", "mixed"]), st.booleans()),
        at_field(st.builds(_nesting, depth, st.sampled_from(["seq", "map", "mixed"]),
                           st.just(True))),
        st.builds(lambda n: "a:\n" + "".join("  " * i + "-\n" for i in range(n)),
                  st.sampled_from([2, 40, 600])),
    )
    # At most 9^5 = 59,049 nodes (the 9^8 took 8 s and 1.4 GB).
    bomb = st.builds(_alias_bomb, st.sampled_from([1, 3, 5]), st.sampled_from([2, 9]))
    aliases = st.one_of(
        at_field(st.just(_alias_bomb(5, 9))),  # the largest, always in the mix
        at_field(bomb),
        # (a bare anchor such as "&a 1" is ordinary YAML and can stay valid: not drawn here)
        at_field(st.sampled_from(["&a [*a]", "&a {b: *a}", "&a [&b [*a, *b]]", "*nothing",
                                  "{<<: {a: 1}}"])),
        st.builds(lambda b: f"x: &big {b}\n" + base_text + "name2: *big\n", bomb),
        st.builds(lambda levels: "".join(f"l{i}: &a{i} [" + ", ".join(
            [f"*a{i - 1}" if i else "x"] * 9) + "]\n" for i in range(levels)) + base_text,
                  st.integers(1, 5)),
    )
    flow_keys = st.sampled_from(["{[a, b]: 1}", "{? [a, b] : 1}", "{{a: 1}: 1}",
                                 "{? {a: 1} : 1, b: 2}", "{[]: 1}", "{!!set {a}: 1}"])
    non_scalar_keys = st.one_of(
        at_field(flow_keys),
        st.builds(lambda key: f"? {key}\n: 1\n" + base_text,
                  st.sampled_from(["[a, b]", "{a: 1}", "[]", "{}", "[[a]]", "!!set {a}"])),
        st.builds(lambda section, key: base_text.replace(
            f"\n{section[0]}:\n", f"\n{section[0]}:\n  ? {key}\n  : 1\n", 1),
                  sections, st.sampled_from(["[a, b]", "{a: 1}", "[]"])),
    )
    size = st.sampled_from([1_000, 5_000, 20_000, 100_000])
    huge_scalars = at_field(st.one_of(
        size.map(lambda n: '"' + "x" * n + '"'),
        size.map(lambda n: "y" * n),
        size.map(lambda n: "9" * n),
        size.map(lambda n: "-0x" + "f" * n),
        size.map(lambda n: "1" + "0" * n + ".5"),
        size.map(lambda n: "[" + ", ".join(["1"] * (n // 10)) + "]"),
    ))
    wrong_types = st.one_of(
        at_field(st.sampled_from(WRONG_VALUES)),
        st.builds(_with_value, st.just(base_text), sections, st.sampled_from(WRONG_VALUES)),
    )
    return {"random_yaml": random_yaml, "deep_nesting": deep_nesting, "aliases": aliases,
            "non_scalar_keys": non_scalar_keys, "huge_scalars": huge_scalars,
            "wrong_types": wrong_types}


SHIPPED_SPECS = specs(SHIPPED_TEXT)
SPEC_FAMILIES = sorted(SHIPPED_SPECS)
# Families whose every member is invalid (a 2xx would be a bug); the others can stay valid
# (a truncated spec, a null for an optional field, a long but legal file path).
ALWAYS_INVALID = {"deep_nesting", "aliases", "non_scalar_keys"}


@pytest.mark.parametrize("family", SPEC_FAMILIES)
@settings(max_examples=50, **FUZZ_SETTINGS)
@given(data=st.data())
def test_spec_parser_raises_only_spec_errors(family: str, data: st.DataObject) -> None:
    text = data.draw(SHIPPED_SPECS[family], label="spec_text")
    start = time.monotonic()
    try:
        parse_spec(text)
        message = ""
    except CyberianError as exc:
        message = str(exc)
    elapsed = time.monotonic() - start
    assert elapsed <= REQUEST_BOUND, f"parse_spec took {elapsed:.1f} s"
    assert len(message) <= len(text) + AMPLIFICATION_SLACK, \
        f"a {len(text)}-character spec gave a {len(message)}-character error: {message[:200]!r}"


# -- the live server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(fuzz_server: LiveServer) -> httpx.Client:
    """An enterprise account's client (no quota, 6000 requests a minute)."""
    return fuzz_server.client(fuzz_server.account("enterprise"), timeout=4 * REQUEST_BOUND)


@pytest.fixture(scope="module")
def tiny_text(fuzz_catalog: Path) -> str:
    return (fuzz_catalog / "tiny.yaml").read_text(encoding="utf-8")


_server_specs: dict[str, dict[str, st.SearchStrategy[str]]] = {}


def _tiny_specs(tiny_text: str) -> dict[str, st.SearchStrategy[str]]:
    if tiny_text not in _server_specs:
        _server_specs[tiny_text] = specs(tiny_text)
    return _server_specs[tiny_text]


def _both_routes(client: httpx.Client, health: HealthProber, body: dict[str, Any], *,
                 allowed: range, key: str | None = None) -> None:
    headers = {"Idempotency-Key": key} if key else {}
    for path, extra in (("/jobs", {}), ("/verify", {"claimed_output_commitment": CLAIM})):
        health.request(client, path, {**body, **extra}, allowed=allowed, headers=headers)


@pytest.mark.parametrize("family", SPEC_FAMILIES)
@settings(max_examples=30, **FUZZ_SETTINGS)
@given(data=st.data())
def test_hostile_specs_get_a_4xx_in_time(family: str, data: st.DataObject,
                                         client: httpx.Client, health: HealthProber,
                                         tiny_text: str) -> None:
    text = data.draw(_tiny_specs(tiny_text)[family], label="spec_yaml")
    allowed = range(400, 500) if family in ALWAYS_INVALID else range(200, 500)
    _both_routes(client, health, {"spec_yaml": text, "input_texts": ["one short text"]},
                 allowed=allowed)


# -- hostile text lists ----------------------------------------------------------------

SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
CONTROL = st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\u2028", "\u2029", "\ufeff",
                           "\u202e", "\ufffe", "\uffff", "\U0010ffff", "\r", "\n", "\t"])
PLAIN = st.text(max_size=20)


def _texts_with(hostile: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    text = st.lists(st.one_of(hostile, PLAIN), min_size=1, max_size=8).map("".join)
    return st.lists(text, min_size=1, max_size=12)


def _huge(unit: str, total: int) -> str:
    return (unit * (total // max(1, len(unit)) + 1))[:total]


WRONG_ITEM = st.one_of(st.integers(), st.floats(), st.none(), st.booleans(),
                       st.lists(st.integers(), max_size=3), st.just({"text": "a"}),
                       st.binary(max_size=5).map(list))
TEXT_LISTS: dict[str, st.SearchStrategy[Any]] = {
    "lone_surrogates": _texts_with(SURROGATE),
    "nul_and_control": _texts_with(CONTROL),
    # Bounded: at most 512 KiB of text per request (tokenizing is real work on /verify).
    "huge_strings": st.lists(
        st.builds(_huge, st.text(min_size=1, max_size=8), st.integers(10_000, 256_000)),
        min_size=1, max_size=2),
    "wrong_types": st.one_of(
        st.lists(st.one_of(WRONG_ITEM, PLAIN), min_size=1, max_size=50),
        st.lists(WRONG_ITEM, min_size=1, max_size=20_000),
        WRONG_ITEM, PLAIN, st.just({"0": "a"})),
    "empty_and_odd": st.one_of(
        st.just([]), st.lists(st.just(""), min_size=1, max_size=40),
        st.lists(st.sampled_from([" ", "\u3000", "\u200b"]), min_size=1, max_size=40),
        st.builds(lambda n: ["t"] * n, st.integers(1_000, 20_000))),
}


@pytest.mark.parametrize("family", sorted(TEXT_LISTS))
@settings(max_examples=25, **FUZZ_SETTINGS)
@given(data=st.data())
def test_hostile_text_lists_never_get_a_5xx(family: str, data: st.DataObject,
                                            client: httpx.Client, health: HealthProber,
                                            tiny_text: str) -> None:
    texts = data.draw(TEXT_LISTS[family], label="texts")
    dialect = data.draw(st.sampled_from(["model", "spec"]), label="dialect")
    key = data.draw(st.one_of(st.none(), st.just("fuzz-idempotency-key")), label="key")
    body = ({"model": "tiny", "inputs": texts} if dialect == "model"
            else {"spec_yaml": tiny_text, "input_texts": texts})
    if key:  # one key per request body: a reused key is a legitimate 4xx, not the point here
        key = f"{key}-{time.monotonic_ns()}"
    _both_routes(client, health, body, allowed=range(200, 500), key=key)


WRONG_TYPED: dict[str, Callable[[int], list[Any]]] = {
    "ints": lambda n: [1] * n,
    "nulls": lambda n: [None] * n,
    "lists": lambda n: [[]] * n,
}


@pytest.mark.parametrize(("path", "kind"), [("/jobs", "ints"), ("/verify", "nulls"),
                                            ("/jobs", "lists")])
def test_a_million_wrong_typed_items_get_a_4xx_in_time(
        path: str, kind: str, client: httpx.Client, health: HealthProber) -> None:
    """Item 1, bounded: 1 M items (2-3 MB), not the 25 M (50 MB) that froze the server."""
    body: dict[str, Any] = {"model": "tiny", "inputs": WRONG_TYPED[kind](1_000_000)}
    if path == "/verify":
        body["claimed_output_commitment"] = CLAIM
    health.request(client, path, body, allowed=range(400, 500))
