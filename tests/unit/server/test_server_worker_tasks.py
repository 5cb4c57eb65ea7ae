"""The worker-process tasks, run in-process: execution, fault injection, replay, blocks, uploads."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from cyberian.commitments import BlockCommitter, input_commitment
from cyberian.models.tiny import build_tiny_model
from cyberian.prover import Prover
from cyberian.server.uploadspec import UploadParams
from cyberian.server.workers import tasks as worker_tasks
from cyberian.server.workers.faults import Faults
from cyberian.server.workers.tasks import (
    ReplayItem,
    TaskFailed,
    commit_blocks,
    execute_piece,
    replay_chunks,
    validate_upload,
)
from cyberian.spec import Spec, installed_engine_version, parse_spec

TEXTS = [f"worker text {i}" for i in range(10)]


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_tasks._STATE, "role", "executor")
    monkeypatch.setattr(worker_tasks._STATE, "faults", None)


@pytest.mark.usefixtures("executor")
def test_pieces_write_their_rows_and_commit_to_them(tiny_spec: Spec) -> None:
    first = execute_piece(tiny_spec, TEXTS[:8], 0)
    second = execute_piece(tiny_spec, TEXTS[8:], 2)
    proof = Prover(tiny_spec).prove(TEXTS)
    assert [*first.chunks, *second.chunks] == list(proof.chunks)
    assert proof.embeddings is not None
    outputs = [*first.outputs, *second.outputs]
    assert [len(rows) for rows in outputs] == [4 * 32 * 4, 4 * 32 * 4, 2 * 32 * 4]
    assert b"".join(outputs) == proof.embeddings.astype("<f4").tobytes()
    assert first.manifest["worker"]["role"] == "executor"
    assert first.worker == second.worker == first.manifest["worker"]["session"]
    items = [ReplayItem(c.index, tuple(TEXTS[c.index * 4:(c.index + 1) * 4]),
                        c.output_commitment, outputs[c.index]) for c in proof.chunks]
    replay = replay_chunks(tiny_spec, items)
    assert [o.match for o in replay.outcomes] == [True, True, True]
    assert [o.output_commitment for o in replay.outcomes] == [
        c.output_commitment for c in proof.chunks]


@pytest.mark.usefixtures("executor")
def test_the_corrupt_fault_flips_one_bit_the_replay_catches(tiny_spec: Spec, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr(worker_tasks._STATE, "faults", Faults(frozenset({1})))
    piece = execute_piece(tiny_spec, TEXTS, 0)
    honest = Prover(tiny_spec).prove(TEXTS)
    assert honest.embeddings is not None
    differing = [a != b for a, b in zip(piece.chunks, honest.chunks, strict=True)]
    assert differing == [False, True, False]
    stored = np.frombuffer(b"".join(piece.outputs), dtype="<u4")
    flipped = stored ^ honest.embeddings.view("<u4").ravel()
    assert sorted(np.flatnonzero(flipped).tolist()) == [4 * 32]  # chunk 1, first value
    assert int(flipped[4 * 32]) == 1
    items = [ReplayItem(c.index, tuple(TEXTS[c.index * 4:(c.index + 1) * 4]),
                        c.output_commitment, piece.outputs[c.index]) for c in piece.chunks]
    outcomes = replay_chunks(tiny_spec, items).outcomes
    assert [o.match for o in outcomes] == [True, False, True]
    assert outcomes[1].output_commitment == honest.chunks[1].output_commitment
    assert "chunk 1" in outcomes[1].detail
    monkeypatch.setattr(worker_tasks._STATE, "role", "replayer")  # never corrupts
    assert execute_piece(tiny_spec, TEXTS, 0).chunks == honest.chunks


@pytest.mark.usefixtures("executor")
def test_blocks_of_several_requests_are_committed_separately(tiny_spec: Spec) -> None:
    groups = [(TEXTS[:5], 2), (TEXTS[5:], 10), (TEXTS[:1], 1)]
    result = commit_blocks(tiny_spec, groups)
    prover = Prover(tiny_spec)
    for (texts, block), blocks in zip(groups, result.groups, strict=True):
        committer = BlockCommitter(block)
        committer.update(prover.runtime.embed(texts))
        inputs = [input_commitment(texts[i:i + block]) for i in range(0, len(texts), block)]
        assert list(blocks) == list(zip(inputs, committer.commitments(), strict=True))


@pytest.mark.usefixtures("executor")
def test_upload_validation(tiny_spec: Spec, tmp_path: Path) -> None:
    built = build_tiny_model(tmp_path, seed=1)
    model = built.model_path
    params = UploadParams(name="acme", model_sha256=built.model_sha256,
                          tokenizer_sha256=tiny_spec.tokenizer_sha256, dimensions=32,
                          max_length=64, pooling="mean", normalize=True, chunk_size=4,
                          engine_version=installed_engine_version())
    text = validate_upload(params, str(model), str(tiny_spec.tokenizer_path))
    assert parse_spec(text).model_output == "last_hidden_state"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(TaskFailed, match="cannot load") as failed:
        validate_upload(params, str(junk), str(tiny_spec.tokenizer_path))
    assert str(junk) not in failed.value.message
    with pytest.raises(TaskFailed, match="width 32"):
        validate_upload(dataclasses.replace(params, dimensions=16), str(model),
                        str(tiny_spec.tokenizer_path))


def test_task_failures_survive_pickling() -> None:
    failure = pickle.loads(pickle.dumps(TaskFailed("bad", field="model.file", internal=True)))
    assert (failure.message, failure.field, failure.internal) == ("bad", "model.file", True)
