"""Reading the texts to embed: plain UTF-8 lines, JSON Lines, or standard input.

* ``*.jsonl``: one JSON object per line with a string ``text`` (the only way
  to give a text that contains a newline, or an empty text);
* anything else: one text per line, UTF-8; a trailing ``\\r`` is dropped
  (Windows line ends), a final newline does not start another text, and a
  blank line is refused (it would silently be an empty text);
* ``-``: standard input, read as plain lines.

Every problem is an :class:`~cyberian.exceptions.InputError` naming the line,
including a JSON text that is not valid Unicode (a lone surrogate such as
``"\\ud800"``, which no tokenizer can take) and JSON nested too deeply.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._json import loads_json
from ._text import lone_surrogate
from .exceptions import InputError

__all__ = ["parse_texts", "read_texts"]


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{source}: line {line} is not valid UTF-8 "
                         f"(byte {data[exc.start]:#04x} at offset {exc.start})") from None


def _plain_lines(text: str, source: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            raise InputError(f"{source}: line {number} is blank; every line is one text "
                             "(use a .jsonl file for empty texts or texts with newlines)")
        texts.append(line)
    return texts


def _json_lines(text: str, source: str) -> list[str]:
    texts: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = loads_json(line)
        except ValueError as exc:  # JSON syntax, too deep, or an integer too long to read
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise InputError(f"{source}: line {number} is not valid JSON ({reason})") from None
        if not isinstance(record, dict) or "text" not in record:
            raise InputError(f'{source}: line {number} has no "text" field')
        if not isinstance(record["text"], str):
            raise InputError(f'{source}: line {number}: "text" must be a string, '
                             f"got {type(record['text']).__name__}")
        texts.append(_valid_unicode(record["text"], f"{source}: line {number}"))
    return texts


def _valid_unicode(text: str, where: str) -> str:
    """``text`` if it is valid Unicode (encodable as UTF-8); a lone surrogate is refused."""
    position = lone_surrogate(text)
    if position is not None:
        raise InputError(f'{where}: "text" is not valid Unicode: lone surrogate '
                         f"U+{ord(text[position]):04X} at character {position} "
                         "(JSON \\u escapes must pair surrogates)")
    return text


def parse_texts(data: bytes, *, source: str, jsonl: bool) -> list[str]:
    """Texts from raw bytes (UTF-8 lines, or JSON Lines when ``jsonl``); never empty."""
    text = _decode(data, source)
    texts = _json_lines(text, source) if jsonl else _plain_lines(text, source)
    if not texts:
        raise InputError(f"{source}: no texts to embed (the input is empty)")
    return texts


def read_texts(path: str | Path) -> list[str]:
    """Texts from a file (``.jsonl`` for JSON Lines) or ``-`` for standard input."""
    if str(path) == "-":
        return parse_texts(sys.stdin.buffer.read(), source="<stdin>", jsonl=False)
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{file}: is a directory, not a file of texts") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot read ({exc.strerror})") from None
    return parse_texts(data, source=str(file), jsonl=file.suffix.lower() == ".jsonl")
