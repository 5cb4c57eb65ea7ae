"""Runtime determinism on the tiny model: batch, position, padding, threads, order, process.

The tiny model has the shipped model's graph layout, so these properties are
checked fast here and again on the real model in tests/integration.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cyberian.exceptions import SpecError
from cyberian.runtime import Runtime, in_lanes, plan_batches, pool_rows
from cyberian.spec import Spec, load_spec

TEXTS = [
    "hello world",
    "the proof of the model is in the text",
    "a",
    "",
    "Numbers 12345 and punctuation!?",
    "x " * 40,
    "Mixed CASE and accents: café naïve",
    "the the the the",
    "zz" * 25,
    "one more sentence, with a comma",
]


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["the", "a", "of", "model", "text", "proof", "and", "it", "is", "in", "to", "that",
             "42", "alpha", "beta", "gamma"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(0, 50))) for _ in range(n)]


@pytest.fixture(scope="module")
def runtime(tiny_spec: Spec) -> Runtime:
    return Runtime(tiny_spec)


def test_rows_are_normalised_float32(runtime: Runtime) -> None:
    rows = runtime.embed(TEXTS)
    assert rows.dtype == np.float32
    assert rows.shape == (len(TEXTS), runtime.spec.dimensions)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)


def test_text_alone_equals_text_in_a_batch_of_32_at_any_position(runtime: Runtime) -> None:
    texts = corpus(40, seed=1)
    encoded = runtime.tokenizer.encode(texts)
    alone = [runtime.run_batch([ids])[0] for ids in encoded]
    rng = random.Random(2)
    for position in (0, 1, 15, 31):
        for target in (0, 5, 17, 39):
            others = rng.sample([i for i in range(len(texts)) if i != target], 31)
            batch = [*others[:position], target, *others[position:]]
            rows = runtime.run_batch([encoded[i] for i in batch])
            assert rows[position].tobytes() == alone[target].tobytes()
            for row, index in zip(rows, batch, strict=True):
                assert row.tobytes() == alone[index].tobytes()


@pytest.mark.parametrize("extra", [1, 3, 8, 17, 30])
def test_padding_never_changes_a_row(runtime: Runtime, extra: int) -> None:
    for ids in runtime.tokenizer.encode(TEXTS):
        alone = runtime.run_batch([ids])
        padded = runtime.run_batch([ids], pad_to=min(len(ids) + extra, runtime.spec.max_length))
        assert padded.tobytes() == alone.tobytes()


def test_pad_to_shorter_than_text_is_refused(runtime: Runtime) -> None:
    ids = runtime.tokenizer.encode(["a b c d"])[0]
    with pytest.raises(ValueError, match="shorter"):
        runtime.run_batch([ids], pad_to=len(ids) - 1)


def test_rows_follow_texts_in_any_order(runtime: Runtime) -> None:
    texts = corpus(60, seed=3)
    rows = runtime.embed(texts)
    order = list(range(len(texts)))
    random.Random(4).shuffle(order)
    shuffled = runtime.embed([texts[i] for i in order])
    assert shuffled.tobytes() == rows[order].tobytes()


@pytest.mark.parametrize("budget", [16, 64, 200, 4096])
def test_batch_budget_does_not_change_bytes(tiny_spec: Spec, budget: int) -> None:
    texts = corpus(50, seed=5)
    reference = Runtime(tiny_spec).embed(texts)
    assert Runtime(tiny_spec, max_batch_tokens=budget).embed(texts).tobytes() == reference.tobytes()


def test_intra_op_threads_do_not_change_bytes(tiny_spec: Spec) -> None:
    texts = corpus(64, seed=6)
    one = Runtime(tiny_spec).embed(texts)
    two = Runtime(tiny_spec.replace(runtime={"intra_op_threads": 2})).embed(texts)
    override = Runtime(tiny_spec, threads=2).embed(texts)
    assert one.tobytes() == two.tobytes() == override.tobytes()


def test_lanes_do_not_change_bytes(tiny_spec: Spec) -> None:
    texts = corpus(300, seed=8)
    lanes = Runtime(tiny_spec, threads=2)  # the default: two lanes of one intra-op thread
    assert lanes.lanes == 2
    intra = Runtime(tiny_spec, threads=2, lanes=1)  # one lane of two intra-op threads
    assert len(plan_batches([len(ids) for ids in lanes.tokenizer.encode(texts)])) > 4
    assert lanes.embed(texts).tobytes() == intra.embed(texts).tobytes()
    assert lanes.embed(texts).tobytes() == Runtime(tiny_spec, threads=1).embed(texts).tobytes()


@pytest.mark.parametrize("lanes", [0, 3])
def test_lanes_must_fit_in_the_threads(tiny_spec: Spec, lanes: int) -> None:
    with pytest.raises(ValueError, match="lanes"):
        Runtime(tiny_spec, threads=2, lanes=lanes)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_a_small_input_is_spread_over_the_lanes(count: int) -> None:
    lengths = [5 + i for i in range(count)]
    batches = plan_batches(lengths, min_batches=2)
    assert sorted(i for b in batches for i in b) == list(range(count))
    assert len(batches) == min(2, count)  # one batch per lane when there are texts enough
    assert all(b == sorted(b, key=lambda i: (lengths[i], i)) for b in batches)


def test_in_lanes_returns_every_batch_once_largest_first() -> None:
    lengths = [3, 9, 1, 4, 4, 7]
    batches = [[2], [0, 3, 4], [5], [1]]
    seen = list(in_lanes(lambda batch: sum(lengths[i] for i in batch), batches, lengths, 2))
    assert sorted(tuple(b) for b, _ in seen) == sorted(tuple(b) for b in batches)
    assert all(result == sum(lengths[i] for i in batch) for batch, result in seen)
    assert seen[0][0] == [0, 3, 4]  # 3 rows x 4 tokens: the most padded tokens first


def test_in_lanes_stops_at_the_first_error_and_drops_work_not_started() -> None:
    started: list[int] = []

    def run(batch: list[int]) -> int:
        started.append(batch[0])
        if batch[0] == 0:
            raise RuntimeError("batch 0 failed")
        return batch[0]

    batches = [[i] for i in range(200)]
    with pytest.raises(RuntimeError, match="batch 0 failed"):
        list(in_lanes(run, batches, [1] * 200, 2))
    assert len(started) < 200


def test_pooling_is_the_sequential_float64_sum_of_real_tokens() -> None:
    rng = np.random.default_rng(9)
    states = rng.standard_normal((5, 11, 8)).astype(np.float32)
    lengths = [11, 1, 6, 3, 9]
    rows = pool_rows(states, lengths, pooling="mean", normalize=False)
    for row, length in enumerate(lengths):
        total = 0.0
        for token in range(length):  # one float64 add at a time, in token order
            total_vector = states[row, token].astype(np.float64)
            total = total + total_vector
        assert rows[row].tobytes() == (total / length).astype(np.float32).tobytes()


def test_the_runtime_loads_exactly_the_pinned_bytes(tiny_spec: Spec, tmp_path: Path) -> None:
    import hashlib
    import shutil

    from cyberian.exceptions import PinMismatchError

    data = tiny_spec.pinned_bytes("model")
    assert hashlib.sha256(data).hexdigest() == tiny_spec.model_sha256
    tampered = tmp_path / "model.onnx"
    shutil.copy(tiny_spec.model_path, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    spec = tiny_spec.with_files(tampered, tiny_spec.tokenizer_path)
    with pytest.raises(PinMismatchError, match=r"model\.sha256"):
        spec.pinned_bytes("model")
    with pytest.raises(PinMismatchError):
        Runtime(spec)


def test_another_process_gives_the_same_bytes(tiny_spec_path: Path, runtime: Runtime) -> None:
    texts = corpus(30, seed=7)
    script = (
        "import sys, hashlib; from cyberian.spec import load_spec;"
        "from cyberian.runtime import Runtime;"
        "texts = sys.stdin.read().split('\\n');"
        "print(hashlib.sha256(Runtime(load_spec(sys.argv[1])).embed(texts).tobytes()).hexdigest())"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tiny_spec_path)],
                            input="\n".join(texts), capture_output=True, text=True, check=True)
    import hashlib

    assert result.stdout.strip() == hashlib.sha256(runtime.embed(texts).tobytes()).hexdigest()


def test_truncation_at_max_length(runtime: Runtime) -> None:
    long_text = "alpha " * 500
    (ids,) = runtime.tokenizer.encode([long_text])
    assert len(ids) == runtime.spec.max_length
    rows = runtime.embed([long_text, long_text + " and more words past the limit"])
    assert rows[0].tobytes() == rows[1].tobytes()


def test_tokenizer_json_padding_settings_are_ignored(tiny_spec: Spec, tmp_path: Path) -> None:
    import json

    document = json.loads(tiny_spec.tokenizer_path.read_text(encoding="utf-8"))
    document["padding"] = {"strategy": {"Fixed": 60}, "direction": "Left",
                           "pad_to_multiple_of": None, "pad_id": 0, "pad_type_id": 0,
                           "pad_token": "[PAD]"}
    document["truncation"] = {"max_length": 5, "strategy": "LongestFirst", "stride": 0,
                              "direction": "Left"}
    path = tmp_path / "padded.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    from cyberian.tokenization import PinnedTokenizer

    pinned = PinnedTokenizer.from_file(path, max_length=tiny_spec.max_length)
    reference = PinnedTokenizer.from_file(tiny_spec.tokenizer_path, max_length=tiny_spec.max_length)
    for a, b in zip(pinned.encode(TEXTS), reference.encode(TEXTS), strict=True):
        assert a.tolist() == b.tolist()


def test_plan_batches_covers_every_text_once_within_budget() -> None:
    lengths = [random.Random(8).randint(2, 120) for _ in range(300)]
    batches = plan_batches(lengths, max_batch_tokens=256, max_batch_rows=16)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 256
    assert [lengths[i] for i in flat] == sorted(lengths)


def test_mean_pooling_is_a_sequential_float64_sum() -> None:
    rng = np.random.default_rng(9)
    states = rng.standard_normal((3, 7, 5)).astype(np.float32)
    lengths = [7, 3, 1]
    pooled = pool_rows(states, lengths, pooling="mean", normalize=True)
    for row, length in enumerate(lengths):
        total = [0.0] * 5
        for token in range(length):
            for dim in range(5):
                total[dim] += float(states[row, token, dim])
        mean = [value / length for value in total]
        norm_sq = 0.0
        for value in mean:
            norm_sq += value * value
        expected = np.array([value / math.sqrt(norm_sq) for value in mean], dtype=np.float32)
        assert pooled[row].tobytes() == expected.tobytes()


def test_cls_pooling_and_no_normalisation() -> None:
    states = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    pooled = pool_rows(states, [3, 2], pooling="cls", normalize=False)
    assert pooled.tobytes() == states[:, 0, :].tobytes()


def test_zero_rows_stay_zero_when_normalised() -> None:
    pooled = pool_rows(np.zeros((1, 2, 3), np.float32), [2], pooling="mean", normalize=True)
    assert pooled.tolist() == [[0.0, 0.0, 0.0]]


def test_wrong_dimensions_in_the_spec_are_reported(tiny_spec_path: Path, tmp_path: Path) -> None:
    text = tiny_spec_path.read_text(encoding="utf-8").replace("dimensions: 32", "dimensions: 64")
    text = text.replace("file: tiny", f"file: {tiny_spec_path.parent}/tiny")
    path = tmp_path / "wrong.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=r"^output\.dimensions: .*width 32"):
        Runtime(load_spec(path)).embed(["hello"])


def test_unknown_output_name_is_reported(tiny_spec: Spec) -> None:
    spec = tiny_spec.replace(model={"output": "pooled"})
    with pytest.raises(SpecError, match=r"^model\.output: the model has no output 'pooled'"):
        Runtime(spec)


def test_manifest_describes_engine_libraries_cpu_and_os(runtime: Runtime) -> None:
    manifest = runtime.manifest
    engine = {"name": "onnxruntime", "version": runtime.spec.runtime["version"]}
    assert manifest["engine"] == engine
    assert set(manifest["libraries"]) >= {"numpy", "tokenizers", "cyberian", "python"}
    assert manifest["cpu"]["class"]
    assert isinstance(manifest["cpu"]["isa_flags"], list)
    assert manifest["os"]["machine"]
    assert "engine_drift" not in manifest


def test_engine_drift_is_recorded_when_allowed(tiny_spec: Spec) -> None:
    drifted = tiny_spec.replace(runtime={"version": "0.0.1"})
    runtime = Runtime(drifted, allow_engine_drift=True)
    assert runtime.manifest["engine_drift"] == {"pinned": "0.0.1",
                                                "installed": runtime.manifest["engine"]["version"]}
