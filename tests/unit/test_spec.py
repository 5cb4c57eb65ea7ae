"""CES parsing, validation (errors name the field), defaults and the canonical spec_hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
import yaml

from cyberian.exceptions import EngineDriftError, PinMismatchError, SpecError
from cyberian.spec import check_engine, installed_engine_version, load_spec, parse_spec

H1 = "a" * 64
H2 = "b" * 64

MINIMAL = f"""
version: "1.0"
name: demo
model: {{file: m.onnx, sha256: "{H1}"}}
tokenizer: {{file: t.json, sha256: "{H2}"}}
output: {{dimensions: 8}}
runtime: {{version: "1.32.0"}}
"""

SPELLED_OUT = f"""
verification: {{vaas_block: 1000, sample_rate: 0.1}}
chunking: {{chunk_size: 32}}
runtime:
  graph_optimization: extended
  inter_op_threads: 1
  intra_op_threads: 1
  provider: CPUExecutionProvider
  version: "1.32.0"
  engine: onnxruntime
output: {{dtype: float32, dimensions: 8}}
normalize: true
pooling: mean
tokenizer: {{max_length: 512, sha256: "{H2}", file: elsewhere/t.json}}
model: {{output: last_hidden_state, sha256: "{H1}", file: /abs/m.onnx}}
task: embedding
name: demo
version: "1.0"
"""


def with_changes(**changes: object) -> str:
    doc = yaml.safe_load(MINIMAL)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return yaml.safe_dump(doc)


def test_defaults_are_filled_in() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.pooling == "mean"
    assert spec.normalize is True
    assert spec.chunk_size == 32
    assert spec.max_length == 512
    assert spec.runtime["intra_op_threads"] == 1
    assert spec.runtime["graph_optimization"] == "extended"
    assert spec.verification["sample_rate"] == 0.1
    assert spec.model_output == "last_hidden_state"


def test_spec_hash_is_jcs_sha256_without_paths() -> None:
    spec = parse_spec(MINIMAL)
    document = spec.hashed_document()
    assert "file" not in document["model"]
    assert "file" not in document["tokenizer"]
    assert spec.spec_hash == hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def test_spec_hash_ignores_key_order_spelled_out_defaults_and_paths() -> None:
    assert parse_spec(SPELLED_OUT).spec_hash == parse_spec(MINIMAL).spec_hash


def test_spec_hash_ignores_yaml_flow_vs_block_style() -> None:
    block = yaml.safe_dump(yaml.safe_load(MINIMAL), default_flow_style=False)
    as_json = json.dumps(yaml.safe_load(MINIMAL))  # JSON is YAML too
    expected = parse_spec(MINIMAL).spec_hash
    assert parse_spec(block).spec_hash == parse_spec(as_json).spec_hash == expected


@pytest.mark.parametrize(
    "change",
    [
        {"model__sha256": "c" * 64},
        {"tokenizer__max_length": 128},
        {"pooling": "cls"},
        {"normalize": False},
        {"chunking__chunk_size": 16},
        {"runtime__version": "1.31.0"},
        {"verification__sample_rate": 0.2},
        {"name": "other"},
    ],
)
def test_spec_hash_changes_with_every_decisive_value(change: dict[str, object]) -> None:
    assert parse_spec(with_changes(**change)).spec_hash != parse_spec(MINIMAL).spec_hash


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"runtime__intra_op_threads": "two"}, "runtime.intra_op_threads", "integer >= 1"),
        ({"runtime__intra_op_threads": 0}, "runtime.intra_op_threads", "integer >= 1"),
        ({"runtime__intra_op_threads": True}, "runtime.intra_op_threads", "integer"),
        ({"pooling": "max"}, "pooling", "one of mean, cls, none"),
        ({"model__sha256": "xyz"}, "model.sha256", "SHA-256"),
        ({"model__sha256": ...}, "model.sha256", "required"),
        ({"output__dimensions": ...}, "output.dimensions", "required"),
        ({"output__dtype": "float16"}, "output.dtype", "float32"),
        ({"version": "2.0"}, "version", "1.0"),
        ({"version": 1.0}, "version", "1.0"),
        ({"name": "Has Spaces"}, "name", "matching"),
        ({"task": "generation"}, "task", "embedding"),
        ({"runtime__provider": "CUDA"}, "runtime.provider", "CPUExecutionProvider"),
        ({"runtime__graph_optimization": "max"}, "runtime.graph_optimization", "extended"),
        ({"verification__sample_rate": 0}, "verification.sample_rate", "(0"),
        ({"verification__sample_rate": 1.5}, "verification.sample_rate", "(0"),
        ({"verification__sample_rate": "sometimes"}, "verification.sample_rate", "auto"),
        ({"verification__reward": 1.0}, "verification.reward", "auto"),
        ({"verification__sample_rate": "auto"}, "verification.reward", "required"),
        ({"chunking__chunk_size": -1}, "chunking.chunk_size", "integer"),
        ({"runtime__threads": 2}, "runtime.threads", "unknown key"),
        ({"extra": 1}, "extra", "unknown key"),
        ({"model": "m.onnx"}, "model", "mapping"),
        ({"pooling": "none"}, "model.output", "pooled"),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, object], path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(with_changes(**change))
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_auto_sample_rate_accepts_its_inputs() -> None:
    text = with_changes(verification__sample_rate="auto", verification__reward=1.0,
                        verification__penalty=10.0, verification__cost=0.5,
                        verification__collusion=0.2)
    assert parse_spec(text).verification["sample_rate"] == "auto"


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(SpecError, match="duplicate key 'pooling'"):
        parse_spec(MINIMAL + "pooling: mean\npooling: cls\n")


def test_invalid_yaml_reports_the_line() -> None:
    with pytest.raises(SpecError, match=r"not valid YAML.*line"):
        parse_spec("version: [1.0\nname: x\n")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a list\n", "just text"])
def test_empty_or_non_mapping_specs_are_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(text)


def test_text_specs_never_open_files() -> None:
    spec = parse_spec(MINIMAL)
    with pytest.raises(SpecError, match="not opened"):
        _ = spec.model_path


def test_files_resolve_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "demo.yaml"
    path.write_text(MINIMAL.replace("m.onnx", "../models/m.onnx"), encoding="utf-8")
    spec = load_spec(path)
    assert spec.model_path == (tmp_path / "models" / "m.onnx").resolve()
    assert spec.tokenizer_path == (tmp_path / "specs" / "t.json").resolve()


def test_wrong_hash_is_refused_with_both_hashes(tiny_spec_path: Path, tmp_path: Path) -> None:
    text = tiny_spec_path.read_text(encoding="utf-8")
    good = load_spec(tiny_spec_path).model_sha256
    bad = tmp_path / "bad.yaml"
    text = text.replace(good, "0" * 64)
    bad.write_text(text.replace("file: tiny", f"file: {tiny_spec_path.parent}/tiny"),
                   encoding="utf-8")
    with pytest.raises(PinMismatchError) as info:
        load_spec(bad).check_pins()
    message = str(info.value)
    assert message.startswith("model.sha256: ")
    assert good in message
    assert "0" * 64 in message


def test_missing_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(SpecError, match=r"^model\.file: file not found"):
        load_spec(path).check_pins()


def test_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_engine_drift_is_refused_unless_allowed() -> None:
    spec = parse_spec(with_changes(runtime__version="0.0.1"))
    with pytest.raises(EngineDriftError) as info:
        check_engine(spec)
    assert info.value.path == "runtime.version"
    assert "0.0.1" in str(info.value)
    assert installed_engine_version() in str(info.value)
    assert check_engine(spec, allow_drift=True) == installed_engine_version()


def test_matching_engine_is_not_drift() -> None:
    spec = parse_spec(with_changes(runtime__version=installed_engine_version()))
    assert check_engine(spec) is None


def test_replace_revalidates_and_rehashes() -> None:
    spec = parse_spec(MINIMAL)
    other = spec.replace(runtime={"intra_op_threads": 2})
    assert other.runtime["intra_op_threads"] == 2
    assert other.spec_hash != spec.spec_hash
    with pytest.raises(SpecError, match=r"runtime\.intra_op_threads"):
        spec.replace(runtime={"intra_op_threads": 0})


def test_normalised_yaml_round_trips() -> None:
    spec = parse_spec(SPELLED_OUT)
    assert parse_spec(spec.to_yaml()).spec_hash == spec.spec_hash


def test_portable_yaml_has_no_file_paths_and_the_same_hash(tmp_path: Path) -> None:
    placed = parse_spec(SPELLED_OUT).with_files(tmp_path / "m.onnx", tmp_path / "t.json")
    text = placed.to_yaml(portable=True)
    assert str(tmp_path) not in text
    assert str(tmp_path) in placed.to_yaml()
    assert parse_spec(text).spec_hash == placed.spec_hash


def test_with_files_keeps_the_hash_and_reads_the_given_paths(tmp_path: Path) -> None:
    spec = parse_spec(MINIMAL)
    placed = spec.with_files(tmp_path / "m.onnx", tmp_path / "t.json")
    assert placed.spec_hash == spec.spec_hash
    assert placed.model_path == (tmp_path / "m.onnx").resolve()
    assert placed.tokenizer_path == (tmp_path / "t.json").resolve()
