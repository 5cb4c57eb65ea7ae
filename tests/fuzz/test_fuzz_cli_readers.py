"""The command-line input readers with random bytes: an exit code, never a traceback.

* ``cyberian-prove SPEC TEXTS`` (the tiny model) with random bytes as a ``.txt``
  and a ``.jsonl`` TEXTS file, and with JSON Lines records whose ``text`` is
  any JSON value (lone surrogates included, issue 11 item 10);
* ``cyberian receipt verify`` with random bytes, deeply nested JSON (item 9)
  and random JSON as the receipt file, and the same as the ``--key`` file.

Properties: the exit code is 0, 1 or 2; the command ended by ``SystemExit``
(click's CliRunner catches any other exception, which would otherwise be a
traceback on the terminal); ``Traceback`` is not in the output; the output is
at most ``AMPLIFICATION_SLACK`` bytes longer than the input (an error line may
quote its input, not blow it up); and input that is not JSON at all is one
error line with exit 2 (item 14).

Budget: fixed ``max_examples`` per test, ``derandomize=True``, inputs of at
most a few KiB (the tiny model embeds a few hundred texts in well under a second).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fuzz_support import AMPLIFICATION_SLACK
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cyberian.cli import main as cyberian_main
from cyberian.cli.prove import main as prove_main
from cyberian.signing import generate_signing_key, save_public_key

pytestmark = [pytest.mark.fuzz]

FUZZ_SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "phases": (Phase.explicit, Phase.generate, Phase.shrink),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.function_scoped_fixture],
}


def _check(result: Result, given: bytes) -> None:
    output = result.output
    shown = f"exit {result.exit_code}, exception {result.exception!r}, output {output[-800:]!r}"
    assert result.exit_code in (0, 1, 2), shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in output, shown
    assert len(output) <= len(given) + AMPLIFICATION_SLACK, \
        f"{len(output)} characters of output for {len(given)} bytes of input: {output[:300]!r}"


# -- cyberian-prove TEXTS ----------------------------------------------------------------

SURROGATES = st.lists(st.integers(0xD800, 0xDFFF).map(chr), min_size=1, max_size=3).map("".join)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                        st.text(max_size=12), SURROGATES)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                          max_leaves=8)


def _jsonl(records: list[Any]) -> bytes:
    # ensure_ascii: a lone surrogate is written as the escape \ud800, valid JSON text.
    return b"".join(json.dumps(r, ensure_ascii=True).encode("ascii") + b"\n" for r in records)


# Mostly well-formed records (so the texts reach tokenization), their text any string.
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=8), SURROGATES,
                                  st.sampled_from(["\x00", "\ufeff", "\u2028", "\U0010ffff"])),
                        max_size=4).map("".join)
RECORD = st.one_of(st.fixed_dictionaries({"text": HOSTILE_TEXT}),
                   st.fixed_dictionaries({"text": HOSTILE_TEXT}),
                   st.fixed_dictionaries({"text": JSON_VALUE}), JSON_VALUE)
TEXTS_INPUTS = {
    "txt-random-bytes": (".txt", st.binary(max_size=600)),
    "jsonl-random-bytes": (".jsonl", st.binary(max_size=600)),
    "jsonl-records": (".jsonl", st.lists(RECORD, min_size=1, max_size=4).map(_jsonl)),
}


@pytest.mark.parametrize("kind", sorted(TEXTS_INPUTS))
@settings(max_examples=40, **FUZZ_SETTINGS)
@given(data=st.data())
def test_prove_reads_any_texts_file_without_a_traceback(
        kind: str, data: st.DataObject, tiny_spec_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    suffix, strategy = TEXTS_INPUTS[kind]
    raw = data.draw(strategy, label="texts_bytes")
    texts = tmp_path_factory.mktemp("texts") / f"texts{suffix}"
    texts.write_bytes(raw)
    result = CliRunner().invoke(prove_main, [str(tiny_spec_path), str(texts), "-q"])
    _check(result, raw)


# -- cyberian receipt verify -------------------------------------------------------------


@pytest.fixture(scope="module")
def public_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "issuer.pub"
    save_public_key(generate_signing_key().public_key, path)
    return path


class Document:
    """A file's bytes, shown by how they were made when that is shorter (deep nesting)."""

    __slots__ = ("data", "recipe")

    def __init__(self, data: bytes, recipe: str = "") -> None:
        self.data = data
        self.recipe = recipe

    def __repr__(self) -> str:
        return self.recipe or repr(self.data)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))


def _nested(depth: int, kind: str) -> Document:
    opener, closer = {"list": ("[", "]"), "object": ('{"a":', "}"),
                      "receipt": ('{"receipt_id":', "}")}[kind]
    return Document((opener * depth + "1" + closer * depth).encode(),
                    f"{opener!r} * {depth} + '1' + {closer!r} * {depth}")


JSON_DOCUMENT = st.one_of(
    st.binary(max_size=600).map(Document),
    # Far below and far above CPython's recursion limit (near it is stack-dependent).
    st.builds(_nested, st.sampled_from([2, 50, 5_000, 100_000]),
              st.sampled_from(["list", "object", "receipt"])),
    JSON_VALUE.map(lambda v: Document(json.dumps(v, ensure_ascii=True).encode("ascii"))),
    st.dictionaries(st.sampled_from(["version", "kind", "receipt_id", "payloadType", "payload",
                                     "signatures", "chunks", "sampling", "issuer", "keys"]),
                    JSON_VALUE, max_size=6).map(lambda d: Document(json.dumps(d).encode())),
)


@settings(max_examples=60, **FUZZ_SETTINGS)
@given(data=st.data())
def test_receipt_verify_reads_any_receipt_without_a_traceback(
        data: st.DataObject, public_key: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    receipt = data.draw(JSON_DOCUMENT, label="receipt_file")
    path = tmp_path_factory.mktemp("receipt") / "receipt.json"
    path.write_bytes(receipt.data)
    result = CliRunner().invoke(cyberian_main,
                                ["receipt", "verify", str(path), "--key", str(public_key)])
    _check(result, receipt.data)


@settings(max_examples=60, **FUZZ_SETTINGS)
@given(data=st.data())
def test_receipt_verify_reads_any_key_file_without_a_traceback(
        data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    keys = data.draw(JSON_DOCUMENT, label="key_file")
    folder = tmp_path_factory.mktemp("keyfile")
    (folder / "keys.pub").write_bytes(keys.data)
    (folder / "receipt.json").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(cyberian_main, ["receipt", "verify", str(folder / "receipt.json"),
                                                "--key", str(folder / "keys.pub")])
    _check(result, keys.data)


def _not_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return True
    return False


@settings(max_examples=40, **FUZZ_SETTINGS)
@given(data=st.data())
def test_receipt_verify_says_once_that_a_non_json_file_is_no_receipt(
        data: st.DataObject, public_key: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Item 14: input that is not a receipt at all is one line and exit 2 (not 13 FAIL lines)."""
    receipt = data.draw(st.binary(min_size=1, max_size=300).filter(_not_json), label="receipt_file")
    path = tmp_path_factory.mktemp("receipt") / "receipt.json"
    path.write_bytes(receipt)
    result = CliRunner().invoke(cyberian_main,
                                ["receipt", "verify", str(path), "--key", str(public_key)])
    _check(result, receipt)
    lines = result.output.strip().splitlines()
    shown = f"exit {result.exit_code}, {len(lines)} lines: {result.output[:600]!r}"
    assert result.exit_code == 2, shown
    assert len(lines) == 1, shown
