"""Input and output commitments and the tagged Merkle leaf encodings (RECEIPTS.md).

* Output commitment of a block of rows: SHA-256 (hex) of the rows as float32,
  little-endian, C order -- exactly
  ``hashlib.sha256(arr.astype("<f4").tobytes()).hexdigest()``.
* Input commitment of a chunk: SHA-256 over ``u64be(len(utf8)) || utf8`` for
  each text, in order.
* Leaf data: ``tag || u64be(chunk_index) || commitment(32 bytes)`` with one
  tag per tree, so a proof for one tree cannot be replayed against another.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "TAG_INPUT",
    "TAG_OUTPUT",
    "TAG_REPLAY",
    "BlockCommitter",
    "ChunkCommitment",
    "chunk_bounds",
    "chunk_count",
    "commitment_bytes",
    "input_commitment",
    "is_commitment",
    "leaf_data",
    "output_commitment",
    "replay_commitment",
]

TAG_INPUT: Final = b"cyberian/v1/in\0"
TAG_OUTPUT: Final = b"cyberian/v1/out\0"
TAG_REPLAY: Final = b"cyberian/v1/replay\0"

_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_U64: Final = struct.Struct(">Q")


def output_commitment(rows: npt.ArrayLike) -> str:
    """SHA-256 (hex) of a block of rows as C-order little-endian float32 bytes."""
    array = np.ascontiguousarray(np.asarray(rows), dtype="<f4")
    return hashlib.sha256(array.tobytes()).hexdigest()


def input_commitment(texts: Iterable[str]) -> str:
    """SHA-256 (hex) over the texts, each encoded as ``u64be(len(utf8)) || utf8``."""
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(_U64.pack(len(encoded)))
        digest.update(encoded)
    return digest.hexdigest()


def is_commitment(value: Any) -> bool:
    """True for a lowercase 64-digit hex string (a SHA-256 commitment)."""
    return isinstance(value, str) and bool(_HEX64.match(value))


def commitment_bytes(commitment: str) -> bytes:
    """The 32 raw bytes of a hex commitment; ValueError for anything else."""
    if not is_commitment(commitment):
        raise ValueError(f"not a SHA-256 commitment (64 lowercase hex digits): {commitment!r}")
    return bytes.fromhex(commitment)


def leaf_data(tag: bytes, index: int, commitment: str) -> bytes:
    """Tagged leaf data ``tag || u64be(index) || commitment_bytes``."""
    if not 0 <= index < 2**64:
        raise ValueError(f"chunk index out of range: {index}")
    return tag + _U64.pack(index) + commitment_bytes(commitment)


def replay_commitment(index: int, replayed_output_commitment: str, match: bool) -> str:
    """Commitment of one replay record: SHA-256(u64be(index) || output || 0x01/0x00)."""
    payload = (
        _U64.pack(index)
        + commitment_bytes(replayed_output_commitment)
        + (b"\x01" if match else b"\x00")
    )
    return hashlib.sha256(payload).hexdigest()


def chunk_count(count: int, chunk_size: int) -> int:
    """How many chunks of ``chunk_size`` consecutive items ``count`` items make (last may be short).

    The one definition of the chunk count: receipts, quotas, VaaS blocks and
    the prover's windows all use it.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if count < 0:
        raise ValueError("count must be >= 0")
    return -(-count // chunk_size)


def chunk_bounds(count: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each of the :func:`chunk_count` chunks (the last may be short)."""
    for index in range(chunk_count(count, chunk_size)):
        start = index * chunk_size
        yield start, min(start + chunk_size, count)


@dataclass(frozen=True)
class ChunkCommitment:
    """The commitments of one chunk: the leaves of the input and output trees."""

    index: int
    input_commitment: str
    output_commitment: str

    def as_dict(self) -> dict[str, Any]:
        """The receipt form ``{index, input_commitment, output_commitment}``."""
        return {
            "index": self.index,
            "input_commitment": self.input_commitment,
            "output_commitment": self.output_commitment,
        }

    @classmethod
    def of(cls, index: int, texts: Sequence[str], rows: npt.ArrayLike) -> ChunkCommitment:
        """Commit to one chunk's texts and output rows."""
        return cls(index, input_commitment(texts), output_commitment(rows))


class BlockCommitter:
    """Output commitments of consecutive blocks of ``block_size`` rows, fed incrementally.

    Rows may arrive in pieces of any size; each finished block's commitment
    equals :func:`output_commitment` of that block's rows. ``block_size=None``
    makes a single block over everything (the whole-output commitment).
    """

    def __init__(self, block_size: int | None = None) -> None:
        if block_size is not None and block_size < 1:
            raise ValueError("block_size must be >= 1")
        self._block_size = block_size
        self._hasher = hashlib.sha256()
        self._filled = 0
        self._done: list[str] = []

    def update(self, rows: npt.ArrayLike) -> None:
        """Append rows (an ``(n, d)`` array) in order."""
        array = np.ascontiguousarray(np.asarray(rows), dtype="<f4")
        if self._block_size is None:
            self._hasher.update(array.tobytes())
            self._filled += len(array)
            return
        start = 0
        while start < len(array):
            take = min(self._block_size - self._filled, len(array) - start)
            self._hasher.update(array[start:start + take].tobytes())
            self._filled += take
            start += take
            if self._filled == self._block_size:
                self._done.append(self._hasher.hexdigest())
                self._hasher, self._filled = hashlib.sha256(), 0

    def commitments(self) -> list[str]:
        """Commitments of every block so far (a trailing partial block included)."""
        tail = [self._hasher.hexdigest()] if self._filled or not self._done else []
        return [*self._done, *tail]
