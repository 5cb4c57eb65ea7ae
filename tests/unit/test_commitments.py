"""Commitments: exactly the RECEIPTS.md recipes, and the streaming block committer."""

from __future__ import annotations

import hashlib
import itertools
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyberian.commitments import (
    TAG_INPUT,
    TAG_OUTPUT,
    BlockCommitter,
    ChunkCommitment,
    chunk_bounds,
    chunk_count,
    commitment_bytes,
    input_commitment,
    leaf_data,
    output_commitment,
    replay_commitment,
)


def test_output_commitment_is_the_numpy_one_liner() -> None:
    rows = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
    assert output_commitment(rows) == hashlib.sha256(rows.astype("<f4").tobytes()).hexdigest()


def test_output_commitment_casts_and_orders_like_the_contract() -> None:
    rows64 = np.arange(12, dtype=np.float64).reshape(3, 4)
    fortran = np.asfortranarray(rows64.astype(np.float32))
    expected = hashlib.sha256(rows64.astype("<f4").tobytes()).hexdigest()
    assert output_commitment(rows64) == expected
    assert output_commitment(fortran) == expected
    assert output_commitment(rows64.astype(">f4")) == expected


def test_input_commitment_is_length_prefixed() -> None:
    digest = hashlib.sha256()
    for text in ["ab", "", "ü"]:
        data = text.encode()
        digest.update(struct.pack(">Q", len(data)) + data)
    assert input_commitment(["ab", "", "ü"]) == digest.hexdigest()
    assert input_commitment(["ab", "c"]) != input_commitment(["a", "bc"])
    assert input_commitment(["abc"]) != input_commitment(["ab", "c"])


def test_leaf_data_layout() -> None:
    commitment = "ab" * 32
    data = leaf_data(TAG_OUTPUT, 3, commitment)
    assert data == b"cyberian/v1/out\0" + (3).to_bytes(8, "big") + bytes.fromhex(commitment)
    assert leaf_data(TAG_INPUT, 3, commitment) != data


@pytest.mark.parametrize("bad", ["ab" * 31, "AB" * 32, "zz" * 32, "ab" * 33, ""])
def test_commitment_bytes_refuses_non_commitments(bad: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        commitment_bytes(bad)


def test_replay_commitment_layout() -> None:
    out = "cd" * 32
    expected = hashlib.sha256((7).to_bytes(8, "big") + bytes.fromhex(out) + b"\x01").hexdigest()
    assert replay_commitment(7, out, True) == expected
    assert replay_commitment(7, out, False) != expected


def test_chunk_bounds() -> None:
    assert list(chunk_bounds(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(chunk_bounds(8, 4)) == [(0, 4), (4, 8)]
    assert list(chunk_bounds(0, 4)) == []


@pytest.mark.parametrize(("count", "size", "chunks"),
                         [(0, 4, 0), (1, 4, 1), (4, 4, 1), (5, 4, 2), (10, 4, 3), (7, 1, 7)])
def test_chunk_count(count: int, size: int, chunks: int) -> None:
    assert chunk_count(count, size) == chunks == len(list(chunk_bounds(count, size)))


def test_chunk_count_refuses_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_count(3, 0)
    with pytest.raises(ValueError, match="count"):
        chunk_count(-1, 4)


def test_chunk_commitment_of() -> None:
    rows = np.ones((2, 3), dtype=np.float32)
    chunk = ChunkCommitment.of(5, ["x", "y"], rows)
    assert chunk.as_dict() == {"index": 5, "input_commitment": input_commitment(["x", "y"]),
                               "output_commitment": output_commitment(rows)}


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=40),
    block=st.integers(min_value=1, max_value=12),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_block_committer_matches_direct_commitments(rows: int, block: int, cuts: list[int]) -> None:
    data = np.random.default_rng(rows * 100 + block).standard_normal((rows, 3)).astype(np.float32)
    committer = BlockCommitter(block)
    whole = BlockCommitter()
    edges = sorted({0, rows, *[c for c in cuts if c <= rows]})
    for start, stop in itertools.pairwise(edges):
        committer.update(data[start:stop])
        whole.update(data[start:stop])
    expected = [output_commitment(data[i:i + block]) for i in range(0, rows, block)]
    assert committer.commitments() == expected
    assert whole.commitments() == [output_commitment(data)]
