"""Reading TEXTS: plain lines, JSON Lines, stdin, and every bad input named precisely."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from cyberian.exceptions import InputError
from cyberian.inputs import TextFile, open_texts, parse_texts, read_texts


def test_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("one\r\ntwo ü\nthree\n".encode())
    assert read_texts(path) == ["one", "two ü", "three"]


def test_final_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("a\nb", encoding="utf-8")
    assert read_texts(path) == ["a", "b"]


def test_jsonl_allows_empty_texts_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a\\nb"}\n{"text": ""}\n\n{"text": "c", "id": 3}\n', encoding="utf-8")
    assert read_texts(path) == ["a\nb", "", "c"]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x\ny\n")))
    assert read_texts("-") == ["x", "y"]


@pytest.mark.parametrize(
    ("data", "jsonl", "message"),
    [
        (b"", False, "no texts"),
        (b"", True, "no texts"),
        (b"\n\n", True, "no texts"),
        (b"ok\n\nok\n", False, "line 2 is blank"),
        (b"ok\n   \n", False, "line 2 is blank"),
        (b"fine\nbad \xff byte\n", False, "line 2 is not valid UTF-8"),
        (b'{"text": "a"}\n{"txt": "b"}\n', True, 'line 2 has no "text"'),
        (b'{"text": 5}\n', True, "must be a string"),
        (b'{"text": "a"}\nnot json\n', True, "line 2 is not valid JSON"),
        (b'["text"]\n', True, 'line 1 has no "text"'),
        (b'{"text": "ok"}\n{"text": "\\ud800"}\n', True,
         'line 2: "text" is not valid Unicode: lone surrogate U\\+D800 at character 0'),
        (b'{"text": "a\\udc00b"}\n', True, "line 1: .*lone surrogate U\\+DC00 at character 1"),
        (b"[" * 100_000 + b"\n", True, "line 1 is not valid JSON .*nested deeper than 64"),
        (b'{"text": 1' + b"0" * 5000 + b"}\n", True, "line 1 is not valid JSON"),
    ],
)
def test_bad_inputs_name_the_line(data: bytes, jsonl: bool, message: str,
                                  tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message):
        parse_texts(data, source="x", jsonl=jsonl)
    path = tmp_path / ("t.jsonl" if jsonl else "t.txt")
    path.write_bytes(data)
    with pytest.raises(InputError, match=message):  # when opened, before any text is read
        open_texts(path)


def test_a_bad_byte_is_named_by_its_offset_in_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("één\n".encode() + b"twee\ndr\xffie\n")
    with pytest.raises(InputError, match=r"line 3 is not valid UTF-8 \(byte 0xff at offset 13\)"):
        TextFile(path)


def test_a_text_file_streams_what_read_texts_reads(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(f'{{"text": "text {i}\\n{i}"}}\n' for i in range(1000)),
                    encoding="utf-8")
    source = open_texts(path)
    assert isinstance(source, TextFile)
    assert len(source) == 1000
    assert list(source) == read_texts(path) == [f"text {i}\n{i}" for i in range(1000)]
    assert list(source) == list(source)  # read again, as often as asked
    stream = iter(source)
    assert next(stream) == "text 0\n0"  # lazily: one line read, not the file


@pytest.mark.parametrize("change", ["append", "truncate"])
def test_a_file_that_changes_between_reads_is_refused(tmp_path: Path, change: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    source = TextFile(path)
    path.write_text("a\nb\nc\nd\n" if change == "append" else "a\nb\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"changed while it was being read \(3 texts when"):
        list(source)


def test_standard_input_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x\ny\n")))
    source = open_texts("-")
    assert len(source) == 2
    assert list(source) == list(source) == ["x", "y"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_texts(tmp_path / "missing.txt")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_texts(tmp_path)
