"""The prover: chunking, commitments, streaming windows with flat memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pytest

from cyberian import prover as prover_module
from cyberian.commitments import input_commitment, output_commitment
from cyberian.prover import Prover, fold_chunks
from cyberian.spec import Spec


def texts(n: int) -> list[str]:
    return [f"text number {i} " + "word " * (i % 13) for i in range(n)]


@pytest.fixture(scope="module")
def prover(tiny_spec: Spec) -> Prover:
    return Prover(tiny_spec)


def test_chunks_and_commitments(prover: Prover) -> None:
    items = texts(10)  # chunk_size 4 -> chunks of 4, 4, 2
    proof = prover.prove(items)
    assert proof.input_count == 10
    assert proof.chunk_count == 3
    assert proof.embeddings is not None
    assert proof.embeddings.shape == (10, 32)
    assert proof.output_commitment == hashlib.sha256(
        proof.embeddings.astype("<f4").tobytes()).hexdigest()
    for chunk, (start, stop) in zip(proof.chunks, [(0, 4), (4, 8), (8, 10)], strict=True):
        assert chunk.input_commitment == input_commitment(items[start:stop])
        assert chunk.output_commitment == output_commitment(proof.embeddings[start:stop])
    assert [c.index for c in proof.chunks] == [0, 1, 2]
    assert proof.spec_hash == prover.spec.spec_hash


def test_block_commitments(prover: Prover) -> None:
    proof = prover.prove(texts(11), block_size=5)
    assert proof.embeddings is not None
    assert list(proof.block_commitments) == [
        output_commitment(proof.embeddings[i:i + 5]) for i in range(0, 11, 5)]


def test_rows_do_not_depend_on_chunking_or_windows(prover: Prover, tiny_spec: Spec,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    items = texts(37)
    reference = prover.prove(items)
    monkeypatch.setattr(prover_module, "_WINDOW_TEXTS", 3)
    windowed = prover.prove(items)
    assert windowed.output_commitment == reference.output_commitment
    assert windowed.chunks == reference.chunks
    other = Prover(tiny_spec.replace(chunking={"chunk_size": 7})).prove(items)
    assert other.output_commitment == reference.output_commitment
    assert other.chunks != reference.chunks


def test_input_is_consumed_a_window_at_a_time(prover: Prover,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prover_module, "_WINDOW_TEXTS", 8)  # 2 chunks of 4
    pulled = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for text in texts(1000):
            pulled += 1
            yield text

    chunks = prover.iter_chunks(source())
    first = next(chunks)
    assert first.index == 0
    assert pulled == 8  # one window read, not the whole input


def test_streaming_without_keeping_rows(prover: Prover) -> None:
    seen: list[int] = []
    proof = prover.prove(texts(9), keep_embeddings=False, on_chunk=lambda c: seen.append(c.index))
    assert proof.embeddings is None
    assert seen == [0, 1, 2]
    assert proof.output_commitment == prover.prove(texts(9)).output_commitment


def test_chunk_results_carry_their_position(prover: Prover) -> None:
    results = list(prover.iter_chunks(texts(10)))
    assert [(r.index, r.start, len(r.texts)) for r in results] == [(0, 0, 4), (1, 4, 4), (2, 8, 2)]
    assert np.concatenate([r.rows for r in results]).shape == (10, 32)


def test_a_piece_starting_at_a_later_chunk_gives_the_same_chunks(prover: Prover) -> None:
    items = texts(10)
    whole = list(prover.iter_chunks(items))
    piece = list(prover.iter_chunks(items[4:], first_index=1))
    assert [(r.index, r.start, r.commitment) for r in piece] == [
        (r.index, r.start, r.commitment) for r in whole[1:]]


def test_chunks_need_not_be_consecutive(prover: Prover,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    items = texts(10)
    whole = list(prover.iter_chunks(items))
    monkeypatch.setattr(prover_module, "_WINDOW_TEXTS", 4)  # one chunk per window
    sample = list(prover.prove_chunks([(2, items[8:]), (0, items[:4])]))
    assert [(r.index, r.start, r.commitment) for r in sample] == [
        (r.index, r.start, r.commitment) for r in (whole[2], whole[0])]
    assert np.array_equal(sample[0].rows, whole[2].rows)


def _words_filling(prover: Prover, tokens: int) -> str:
    """A text of repeated words that tokenises to exactly ``tokens`` ids (specials included)."""
    tokenizer = prover.runtime.tokenizer
    for words in range(1, tokens + 1):
        text = " ".join(["the"] * words)
        if len(tokenizer.encode([text])[0]) == tokens:
            return text
    raise AssertionError(f"no run of words tokenises to exactly {tokens} ids")


def test_texts_cut_at_max_length_are_counted_not_committed(prover: Prover) -> None:
    limit = prover.spec.max_length
    exact = _words_filling(prover, limit)  # fits exactly: not cut
    items = ["short", exact, exact + " the", "the " * 500, "short again"]
    ids, cut = prover.runtime.tokenizer.encode_flagged(items)
    assert cut == [False, False, True, True, False]
    assert [len(row) for row in ids] == [len(r) for r in prover.runtime.tokenizer.encode(items)]
    proof = prover.prove(items, keep_embeddings=False)
    assert proof.truncated_texts == 2
    assert [chunk.truncated for chunk in prover.iter_chunks(items)] == [2, 0]  # chunk_size 4
    assert prover.prove(["short"] * 5).truncated_texts == 0
    # counting changes no byte: the same commitment as rows embedded without it
    rows = prover.runtime.embed(items)
    assert proof.output_commitment == output_commitment(rows)


def test_fold_chunks_makes_the_proof_from_chunks_in_input_order(prover: Prover,
                                                                tiny_spec: Spec) -> None:
    inputs = texts(11)
    results = list(prover.iter_chunks(inputs))
    folded = fold_chunks(iter(results), tiny_spec, prover.manifest, block_size=3)
    proved = prover.prove(inputs, block_size=3)
    assert (folded.chunks, folded.output_commitment, folded.block_commitments) == (
        proved.chunks, proved.output_commitment, proved.block_commitments)
    assert folded.embeddings is not None
    assert proved.embeddings is not None
    assert folded.embeddings.tobytes() == proved.embeddings.tobytes()
    with pytest.raises(ValueError, match="chunk 1 arrived where chunk 0 belongs"):
        fold_chunks(iter(results[1:]), tiny_spec, prover.manifest)
    with pytest.raises(ValueError, match="chunk 2 arrived where chunk 1 belongs"):
        fold_chunks(iter([results[0], results[2], results[1]]), tiny_spec, prover.manifest)
