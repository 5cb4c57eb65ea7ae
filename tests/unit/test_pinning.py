"""`cyberian spec pin`: fill the hashes of a user's own model, keeping the file's layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cyberian.cli import main
from cyberian.pinning import pin_spec_text
from cyberian.spec import installed_engine_version, load_spec, sha256_file

TEMPLATE = """\
# my own BERT, bring-your-own-model
version: "1.0"
name: my-bert
model:
  file: model.onnx   # exported elsewhere
  output: last_hidden_state
tokenizer:
  file: tok.json
  sha256: "{stale}"
  max_length: 128
pooling: cls
output:
  dimensions: 32
runtime:
  intra_op_threads: 1
"""


@pytest.fixture
def user_dir(tmp_path: Path, tiny_spec: object) -> Path:
    from cyberian.models.tiny import build_tiny_model

    built = build_tiny_model(tmp_path)
    built.model_path.rename(tmp_path / "model.onnx")
    built.tokenizer_path.rename(tmp_path / "tok.json")
    (tmp_path / "my.yaml").write_text(TEMPLATE.format(stale="0" * 64), encoding="utf-8")
    return tmp_path


def test_pin_fills_and_fixes_hashes_and_keeps_comments(user_dir: Path) -> None:
    text = (user_dir / "my.yaml").read_text(encoding="utf-8")
    result = pin_spec_text(text, base_dir=user_dir)
    assert "# my own BERT, bring-your-own-model" in result.text
    assert "# exported elsewhere" in result.text
    assert len(result.changes) == 3
    (user_dir / "my.yaml").write_text(result.text, encoding="utf-8")
    spec = load_spec(user_dir / "my.yaml")
    assert spec.model_sha256 == sha256_file(user_dir / "model.onnx")
    assert spec.tokenizer_sha256 == sha256_file(user_dir / "tok.json")
    assert spec.runtime["version"] == installed_engine_version()
    spec.check_pins()
    assert pin_spec_text(result.text, base_dir=user_dir).changes == []


def test_pin_cli_and_check_mode(user_dir: Path) -> None:
    runner = CliRunner()
    check = runner.invoke(main, ["spec", "pin", str(user_dir / "my.yaml"), "--check"])
    assert check.exit_code == 1
    assert "tokenizer.sha256" in check.output
    done = runner.invoke(main, ["spec", "pin", str(user_dir / "my.yaml")])
    assert done.exit_code == 0, done.output
    assert "spec_hash" in done.output
    again = runner.invoke(main, ["spec", "pin", str(user_dir / "my.yaml"), "--check"])
    assert again.exit_code == 0
    assert "pins are current" in again.output
    hashed = runner.invoke(main, ["spec", "hash", str(user_dir / "my.yaml")])
    assert hashed.output.strip() == load_spec(user_dir / "my.yaml").spec_hash


def test_pin_names_a_missing_file(user_dir: Path) -> None:
    (user_dir / "model.onnx").unlink()
    result = CliRunner().invoke(main, ["spec", "pin", str(user_dir / "my.yaml")])
    assert result.exit_code == 2
    assert "model.file: file not found" in result.output
    assert "Traceback" not in result.output
