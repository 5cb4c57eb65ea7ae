"""The client's pure helpers: Retry-After (_retries), key labels (_credentials), spec sources
(_requests)."""

from __future__ import annotations

import email.utils
from pathlib import Path

import pytest

from cyberian.client._credentials import key_label
from cyberian.client._requests import read_spec_yaml
from cyberian.client._retries import parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("0", 0.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00", 0.0),  # no zone: read as UTC, long past
        ("nan", None),
        ("inf", None),
        ("tomorrow", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("cyb_live_abc_def-ghi", "cyb_live_…"),
        ("cyb_trial_" + "x" * 43, "cyb_trial_…"),
        ("cyb__secret", "cyb_…"),
        ("cyb_secretonly", "cyb_…"),
        ("cyb_", "cyb_…"),
    ],
)
def test_key_label_never_shows_the_random_part(key: str, label: str) -> None:
    assert key_label(key) == label


def test_spec_source_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "name: a\nversion: 1\n"
    spec = tmp_path / "a.yml"
    spec.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert read_spec_yaml(text) == text
    assert read_spec_yaml(spec) == text
    assert read_spec_yaml(str(spec)) == text
    assert read_spec_yaml("a.yml") == text  # relative to the working directory
    assert read_spec_yaml("{name: a}") == "{name: a}"  # one-line YAML, not a file
    assert read_spec_yaml("x" * 5000) == "x" * 5000  # too long to be a path
    with pytest.raises(FileNotFoundError):
        read_spec_yaml("missing.yaml")
    with pytest.raises(FileNotFoundError):
        read_spec_yaml(tmp_path / "missing.txt")
