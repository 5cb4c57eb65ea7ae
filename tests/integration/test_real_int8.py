"""The shipped int8 spec: reproducible build, close to FP32, the same bits on every class."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cyberian.bench.corpus import determinism_texts, sentences
from cyberian.bench.golden import check_golden, shipped_goldens
from cyberian.inputs import read_texts
from cyberian.models.build import build_recipe
from cyberian.models.recipes import find_recipe
from cyberian.prover import Prover
from cyberian.runtime import Runtime
from cyberian.spec import Spec

pytestmark = pytest.mark.real_model

REPO = Path(__file__).resolve().parents[2]


def test_two_builds_in_two_processes_reproduce_the_pinned_hash(real_int8_spec: Spec,
                                                                tmp_path: Path) -> None:
    recipe = find_recipe(model_sha256=real_int8_spec.model_sha256)
    assert recipe is not None
    assert recipe.builder == "bert-int8"
    built = build_recipe(recipe, tmp_path / "here")
    assert built.model_sha256 == real_int8_spec.model_sha256
    out = subprocess.run([sys.executable, "-m", "cyberian.cli", "models", "build", "--name",
                          recipe.name, "--out-dir", str(tmp_path / "there")],
                         capture_output=True, text=True, check=True).stdout
    assert f"sha256 {real_int8_spec.model_sha256}" in out
    assert (tmp_path / "there" / recipe.model.file).read_bytes() == built.model_path.read_bytes()
    assert recipe.fused is not None
    assert built.fused_path is not None
    assert hashlib.sha256(built.fused_path.read_bytes()).hexdigest() == recipe.fused.sha256
    assert (tmp_path / "there" / recipe.fused.file).read_bytes() == built.fused_path.read_bytes()


def test_int8_vectors_stay_close_to_fp32(real_spec: Spec, real_int8_spec: Spec) -> None:
    texts = sentences(300)
    fp32 = Runtime(real_spec).embed(texts)
    int8 = Runtime(real_int8_spec).embed(texts)
    cosine = (fp32.astype(np.float64) * int8).sum(axis=1)
    assert cosine.mean() >= 0.995, cosine.mean()
    assert cosine.min() >= 0.97, cosine.min()


def test_a_text_alone_equals_it_in_a_batch_and_padded(real_int8_spec: Spec) -> None:
    runtime = Runtime(real_int8_spec, lanes=1)
    texts = [*sentences(24), "a", "", " ".join(["long"] * 300)]
    encoded = runtime.tokenizer.encode(texts)
    batch = runtime.run_batch(encoded)
    for index in (0, 5, 24, 25, 26):
        ids = encoded[index]
        alone = runtime.run_batch([ids])
        assert alone.tobytes() == batch[index:index + 1].tobytes()
        width = min(len(ids) + 17, 256)
        assert runtime.run_batch([ids], pad_to=max(width, len(ids))).tobytes() == alone.tobytes()


def test_the_shipped_int8_golden_is_bit_identical_on_this_cpu_whatever_its_class(
        real_int8_spec: Spec) -> None:
    paths = shipped_goldens(real_int8_spec)
    assert paths, "benchmarks/golden has no golden file for the int8 spec"
    for path in paths:
        message = check_golden(real_int8_spec, determinism_texts(), path)
        assert message.startswith("golden: bit-identical"), message


def test_the_readme_int8_commitment_is_what_every_cpu_computes(real_int8_spec: Spec) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"int8 spec prints `([0-9a-f]{64})`", readme)
    assert documented is not None
    proof = Prover(real_int8_spec).prove(read_texts(REPO / "examples" / "texts.txt"),
                                         keep_embeddings=False)
    assert proof.output_commitment == documented.group(1)  # on any CPU: no class condition
    assert hashlib.sha256(real_int8_spec.model_path.read_bytes()).hexdigest() == (
        real_int8_spec.model_sha256)


def test_cyberian_prove_says_the_int8_bytes_are_the_same_on_every_class(
        real_spec_path: Path, real_int8_spec_path: Path) -> None:
    from click.testing import CliRunner

    from cyberian.cli.prove import main as prove

    texts = str(REPO / "examples" / "texts.txt")
    int8 = CliRunner().invoke(prove, [str(real_int8_spec_path), texts])
    assert int8.exit_code == 0, int8.output
    assert "portability        the same bytes on every CPU class (int8 spec)" in int8.output
    assert "; fused int8 kernels\n" in int8.output  # tools/setup-compilers.sh: gcc is there
    standard = CliRunner().invoke(prove, [str(real_int8_spec_path), texts],
                                  env={"CYBERIAN_FUSED_KERNELS": "0"})
    assert standard.exit_code == 0, standard.output
    assert ("; standard int8 graph, slower (turned off by CYBERIAN_FUSED_KERNELS=0)\n"
            in standard.output)
    commitment = [line for line in int8.output.splitlines() if "output_commitment" in line]
    assert commitment
    assert commitment[0] in standard.output  # the same bytes either way
    fp32 = CliRunner().invoke(prove, [str(real_spec_path), texts])
    assert fp32.exit_code == 0, fp32.output
    assert "portability" not in fp32.output


def test_the_fused_twin_runs_by_default_and_gives_the_standard_bytes(
        real_int8_spec: Spec) -> None:
    recipe = find_recipe(model_sha256=real_int8_spec.model_sha256)
    assert recipe is not None
    assert recipe.fused is not None
    texts = determinism_texts()
    fused = Runtime(real_int8_spec, threads=2, lanes=2)
    assert fused.manifest["kernels"]["fused"] is True, fused.manifest["kernels"]
    assert fused.manifest["kernels"]["twin_sha256"] == recipe.fused.sha256
    standard = Runtime(real_int8_spec, threads=2, fused=False)
    assert "kernels" not in standard.manifest
    assert fused.embed(texts).tobytes() == standard.embed(texts).tobytes()


def test_an_older_build_without_the_twin_gets_it_on_first_use(real_int8_spec: Spec,
                                                              tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "models").mkdir()
    spec_path = tmp_path / "specs" / "int8.yaml"
    spec_path.write_bytes((REPO / "specs" / "all-minilm-l6-v2-int8.yaml").read_bytes())
    for path in (real_int8_spec.model_path, real_int8_spec.tokenizer_path):
        (tmp_path / "models" / path.name).write_bytes(path.read_bytes())
    script = ("import sys\nfrom cyberian.models.build import ensure_model_files\n"
              "from cyberian.runtime import Runtime\nfrom cyberian.spec import load_spec\n"
              "spec = load_spec(sys.argv[1])\nensure_model_files(spec)\n"
              "print(Runtime(spec).manifest['kernels']['fused'])\n")
    env = {**os.environ, "CYBERIAN_CACHE_DIR": str(tmp_path / "cache")}  # no cached twin
    done = subprocess.run([sys.executable, "-c", script, str(spec_path)], capture_output=True,
                          text=True, env=env, check=True)
    assert done.stdout.strip() == "True", done.stderr
    recipe = find_recipe(model_sha256=real_int8_spec.model_sha256)
    assert recipe is not None
    assert recipe.fused is not None
    twin = tmp_path / "models" / recipe.fused.file
    assert hashlib.sha256(twin.read_bytes()).hexdigest() == recipe.fused.sha256
