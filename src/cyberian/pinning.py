"""Pin a spec's file hashes in place, keeping its comments and layout.

Used by ``cyberian spec pin`` to bring your own BERT-family ONNX model: the
user writes ``model.file`` and ``tokenizer.file``; this fills in (or
corrects) their ``sha256`` and, if missing, ``runtime.version``. The YAML is
edited as text at the positions the parser reports, so nothing else moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .exceptions import SpecError
from .spec import installed_engine_version, sha256_file

__all__ = ["PinResult", "pin_spec_text"]


@dataclass
class PinResult:
    """The edited spec text and a human-readable line per change made."""

    text: str
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    replacement: str


def _mapping(node: yaml.Node | None, path: str) -> yaml.MappingNode:
    if not isinstance(node, yaml.MappingNode):
        raise SpecError("must be a mapping", path=path)
    return node


def _child(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _line_end(text: str, index: int) -> int:
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _pin_file(text: str, root: yaml.MappingNode, section: str, base_dir: Path,
              result: PinResult) -> _Edit | None:
    entry = _child(root, section)
    if entry is None:
        raise SpecError("section is missing", path=section)
    mapping = _mapping(entry[1], section)
    file_entry = _child(mapping, "file")
    if file_entry is None or not isinstance(file_entry[1], yaml.ScalarNode):
        raise SpecError("needed to compute the pin", path=f"{section}.file")
    path = (base_dir / str(file_entry[1].value)).resolve()
    if not path.is_file():
        raise SpecError(f"file not found: {path}", path=f"{section}.file")
    digest = sha256_file(path)
    quoted = f'"{digest}"'
    current = _child(mapping, "sha256")
    if current is None:
        key_node, value_node = file_entry
        at = _line_end(text, value_node.end_mark.index)
        indent = " " * key_node.start_mark.column
        result.changes.append(f"{section}.sha256: set to {digest}")
        return _Edit(at, at, f"{indent}sha256: {quoted}\n")
    value_node = current[1]
    if str(value_node.value).lower() == digest:
        return None
    old = value_node.value or "(empty)"
    result.changes.append(f"{section}.sha256: {old} -> {digest}")
    return _Edit(value_node.start_mark.index, value_node.end_mark.index, quoted)


def _pin_engine(text: str, root: yaml.MappingNode, result: PinResult) -> _Edit | None:
    version = installed_engine_version()
    entry = _child(root, "runtime")
    if entry is None:
        result.changes.append(f"runtime.version: set to {version} (the installed engine)")
        prefix = "" if text.endswith("\n") or not text else "\n"
        return _Edit(len(text), len(text), f'{prefix}runtime:\n  version: "{version}"\n')
    mapping = _mapping(entry[1], "runtime")
    if _child(mapping, "version") is not None:
        return None
    if not mapping.value:
        raise SpecError("must not be empty", path="runtime")
    first_key = mapping.value[0][0]
    at = text.rfind("\n", 0, first_key.start_mark.index) + 1
    result.changes.append(f"runtime.version: set to {version} (the installed engine)")
    return _Edit(at, at, f'{" " * first_key.start_mark.column}version: "{version}"\n')


def pin_spec_text(text: str, *, base_dir: Path) -> PinResult:
    """``text`` with the model/tokenizer SHA-256 pins (and a missing engine version) filled in."""
    try:
        root = _mapping(yaml.compose(text, Loader=yaml.SafeLoader), "spec")
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}") from None
    result = PinResult(text)
    edits = [
        _pin_file(text, root, "model", base_dir, result),
        _pin_file(text, root, "tokenizer", base_dir, result),
        _pin_engine(text, root, result),
    ]
    for edit in sorted((e for e in edits if e is not None), key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.replacement + text[edit.end:]
    result.text = text
    return result
