"""The shipped all-MiniLM-L6-v2: reproducible build, correct math, bitwise determinism."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from cyberian.models.build import build_recipe
from cyberian.models.recipes import find_recipe
from cyberian.models.weights import fetch_weights
from cyberian.runtime import Runtime
from cyberian.spec import Spec
from reference_bert import reference_forward

pytestmark = pytest.mark.real_model

# sentence-transformers 6.2.0 (torch 2.13.0 CPU) on the same weights, first 8 dims.
# These are also the values the model card's example is known by.
SENTENCE_TRANSFORMERS = {
    "This is an example sentence": [0.06765692, 0.06349597, 0.0487131, 0.079305,
                                    0.03744809, 0.00265282, 0.03937499, -0.00709846],
    "Each sentence is converted": [0.08643857, 0.10276262, 0.00539455, 0.00204442,
                                   -0.00996336, 0.02538553, 0.04928753, -0.03062656],
}

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Verified inference lets an auditor check where a vector came from.",
    "a",
    "",
    "Émilie a réservé une table près de la fenêtre pour vendredi soir.",
    "東京は日本の首都です。",
    "emoji 🎉🚀 and symbols ∑∫√",
    " ".join(["long"] * 400),
] + [f"sentence number {i} with some words " * (1 + i % 9) for i in range(40)]


@pytest.fixture(scope="module")
def runtime(real_spec: Spec) -> Runtime:
    return Runtime(real_spec, lanes=1)  # these tests call run_batch: one batch, every thread


def test_a_fresh_build_reproduces_the_pinned_hashes(real_spec: Spec, tmp_path: Path) -> None:
    recipe = find_recipe(model_sha256=real_spec.model_sha256)
    assert recipe is not None
    built = build_recipe(recipe, tmp_path)
    assert built.model_sha256 == real_spec.model_sha256
    assert built.tokenizer_sha256 == real_spec.tokenizer_sha256
    assert hashlib.sha256(built.model_path.read_bytes()).hexdigest() == real_spec.model_sha256


def test_onnx_token_states_match_numpy_reference(real_spec: Spec, runtime: Runtime) -> None:
    recipe = find_recipe(model_sha256=real_spec.model_sha256)
    assert recipe is not None
    files = fetch_weights(recipe.source)
    from safetensors.numpy import load as load_safetensors

    weights = load_safetensors(files["model.safetensors"])
    config = json.loads(files["config.json"])
    session = ort.InferenceSession(str(real_spec.model_path), providers=["CPUExecutionProvider"])
    for text in SENTENCES[:3] + SENTENCES[4:6]:
        ids = runtime.tokenizer.encode([text])[0]
        feeds = {"input_ids": ids[None], "attention_mask": np.ones_like(ids)[None],
                 "token_type_ids": np.zeros_like(ids)[None]}
        (states,) = session.run(["last_hidden_state"], feeds)
        expected = reference_forward(weights, config, ids.tolist())
        assert np.abs(states[0] - expected).max() <= 1e-5, text


def test_pooled_vectors_match_sentence_transformers(runtime: Runtime) -> None:
    rows = runtime.embed(list(SENTENCE_TRANSFORMERS))
    for row, expected in zip(rows, SENTENCE_TRANSFORMERS.values(), strict=True):
        assert np.abs(row[:8] - np.array(expected)).max() <= 1e-6
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)


def test_alone_equals_in_batch_of_32_at_any_position_and_padded(runtime: Runtime) -> None:
    encoded = runtime.tokenizer.encode(SENTENCES)
    alone = [runtime.run_batch([ids])[0].tobytes() for ids in encoded]
    rng = random.Random(0)
    for target in (0, 4, 5, 7, 20):
        for position in (0, 13, 31):
            others = rng.sample([i for i in range(len(encoded)) if i != target], 31)
            batch = [*others[:position], target, *others[position:]]
            rows = runtime.run_batch([encoded[i] for i in batch])
            assert [row.tobytes() for row in rows] == [alone[i] for i in batch]
    for target in (0, 2, 5, 10):
        ids = encoded[target]
        for width in sorted({len(ids) + 1, len(ids) + 9, 64, 128, 200, 256} - set(range(len(ids)))):
            assert runtime.run_batch([ids], pad_to=width)[0].tobytes() == alone[target]


def test_threads_order_and_process_do_not_change_bytes(real_spec: Spec, runtime: Runtime) -> None:
    rows = runtime.embed(SENTENCES)
    two = Runtime(real_spec.replace(runtime={"intra_op_threads": 1})).embed(SENTENCES)
    assert rows.tobytes() == two.tobytes()
    order = list(range(len(SENTENCES)))
    random.Random(1).shuffle(order)
    assert runtime.embed([SENTENCES[i] for i in order]).tobytes() == rows[order].tobytes()
    script = (
        "import sys, json, hashlib; from cyberian.spec import load_spec;"
        "from cyberian.runtime import Runtime;"
        "texts = json.load(sys.stdin);"
        "print(hashlib.sha256(Runtime(load_spec(sys.argv[1])).embed(texts).tobytes()).hexdigest())"
    )
    assert real_spec.base_dir is not None
    spec_file = str(real_spec.base_dir / "all-minilm-l6-v2.yaml")
    other = subprocess.run([sys.executable, "-c", script, spec_file],
                           input=json.dumps(SENTENCES), capture_output=True, text=True, check=True)
    assert other.stdout.strip() == hashlib.sha256(rows.tobytes()).hexdigest()


def test_the_readme_sample_commitment_is_what_every_fma_cpu_computes(real_spec: Spec) -> None:
    """A new user's first run must print the README's commitment on any x86-64 FMA CPU."""
    import re

    from cyberian.environment import cpu_class
    from cyberian.inputs import read_texts
    from cyberian.prover import Prover

    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"^output_commitment  ([0-9a-f]{64})$", readme, re.MULTILINE)
    assert documented is not None
    proof = Prover(real_spec).prove(read_texts(repo / "examples" / "texts.txt"),
                                    keep_embeddings=False)
    assert f"spec_hash          {real_spec.spec_hash}" in readme
    if cpu_class() == "x86_64-fma":  # the class the README's sample was made on
        assert proof.output_commitment == documented.group(1)
