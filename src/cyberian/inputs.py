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

import io
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from ._json import loads_json
from ._text import lone_surrogate
from .exceptions import InputError

__all__ = ["TextFile", "TextSource", "open_texts", "parse_texts", "read_texts"]


def _lines(text_lines: Iterable[bytes], source: str, *, jsonl: bool) -> Iterator[str]:
    """The texts of an input given as its lines (each with its ``\\n``), checked one by one."""
    offset = 0
    for number, raw in enumerate(text_lines, start=1):
        try:
            line = raw.decode("utf-8").removesuffix("\n")
        except UnicodeDecodeError as exc:  # no UTF-8 sequence holds a \n byte, so per line is exact
            raise InputError(f"{source}: line {number} is not valid UTF-8 (byte "
                             f"{raw[exc.start]:#04x} at offset {offset + exc.start})") from None
        offset += len(raw)
        text = _json_line(line, source, number) if jsonl else _plain_line(line, source, number)
        if text is not None:
            yield text


def _plain_line(raw: str, source: str, number: int) -> str:
    line = raw.removesuffix("\r")
    if not line.strip():
        raise InputError(f"{source}: line {number} is blank; every line is one text "
                         "(use a .jsonl file for empty texts or texts with newlines)")
    return line


def _json_line(line: str, source: str, number: int) -> str | None:
    if not line.strip():
        return None
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
    return _valid_unicode(record["text"], f"{source}: line {number}")


def _nonempty(texts: Iterator[str], source: str) -> Iterator[str]:
    """``texts``, refusing an input that has none."""
    first = next(texts, None)
    if first is None:
        raise InputError(f"{source}: no texts to embed (the input is empty)")
    yield first
    yield from texts


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
    return list(_nonempty(_lines(io.BytesIO(data), source, jsonl=jsonl), source))


def _open(file: Path) -> BinaryIO:
    try:
        return file.open("rb")
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{file}: is a directory, not a file of texts") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot read ({exc.strerror})") from None


def read_texts(path: str | Path) -> list[str]:
    """Texts from a file (``.jsonl`` for JSON Lines) or ``-`` for standard input, as a list."""
    return _stdin_texts() if str(path) == "-" else list(_file_texts(Path(path)))


def _stdin_texts() -> list[str]:
    return parse_texts(sys.stdin.buffer.read(), source="<stdin>", jsonl=False)


def _file_texts(file: Path) -> Iterator[str]:
    """The texts of ``file``, read and checked line by line in one pass."""
    with _open(file) as handle:
        yield from _nonempty(_lines(handle, str(file), jsonl=file.suffix.lower() == ".jsonl"),
                             str(file))


class TextSource(Protocol):
    """Texts that can be counted and read in order, perhaps more than once."""

    def __len__(self) -> int:
        """How many texts there are."""

    def __iter__(self) -> Iterator[str]:
        """The texts, in input order."""


class TextFile:
    """The texts of one file, checked whole when opened and then read lazily, line by line.

    Only one line is in memory at a time, however long the file: opening it
    reads it through once (every line checked, the texts counted), and each
    iteration reads it again. A file that changes in between is refused.
    """

    def __init__(self, path: Path) -> None:
        """Check every line of ``path`` and count its texts (an ``InputError`` names a bad one)."""
        self.path = path
        self._count = sum(1 for _ in _file_texts(path))

    def __len__(self) -> int:
        """How many texts the file holds."""
        return self._count

    def __iter__(self) -> Iterator[str]:
        """The texts, read from the file again."""
        seen = 0
        for text in _file_texts(self.path):
            seen += 1
            if seen > self._count:
                break
            yield text
        if seen != self._count:
            raise InputError(f"{self.path}: changed while it was being read "
                             f"({self._count} texts when opened)")


def open_texts(path: str | Path) -> TextSource:
    """The texts of a file (``.jsonl`` for JSON Lines), or of ``-`` (standard input, in memory).

    A file is read lazily (:class:`TextFile`); standard input, which cannot be
    read twice, is read whole.
    """
    return _stdin_texts() if str(path) == "-" else TextFile(Path(path))
