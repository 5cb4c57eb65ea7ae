"""The in-house prover: texts -> chunks -> runtime -> per-chunk and whole-output commitments.

Inputs stream through in windows of whole chunks, so memory stays flat however
many texts there are: only one window's token tensors and rows are alive at a
time. Within a window texts are sorted by length for speed; chunks come out in
input order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .commitments import BlockCommitter, ChunkCommitment, chunk_count
from .runtime import DEFAULT_MAX_BATCH_TOKENS, Rows, Runtime
from .spec import Spec

__all__ = ["ChunkResult", "Proof", "Prover", "fold_chunks"]

_WINDOW_TEXTS = 8192
"""Texts tokenised and run together (rounded up to whole chunks): the only window."""


def _split(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    """Consecutive chunks of ``size`` texts, read lazily (the last may be short)."""
    while chunk := list(itertools.islice(texts, size)):
        yield chunk


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's texts, output rows and commitments.

    ``start`` is the position of its first text in the whole input
    (``index * chunk_size``: only the last chunk may be short). ``truncated``
    counts its texts the tokenizer cut at the spec's ``max_length``.
    """

    index: int
    start: int
    texts: Sequence[str]
    rows: Rows
    commitment: ChunkCommitment
    truncated: int = 0


@dataclass(frozen=True)
class Proof:
    """What a prove run commits to, plus the rows when they were kept.

    ``truncated_texts`` counts the texts cut at the spec's ``max_length``
    tokens (reported, never committed: the rows already are what was run).
    """

    spec_hash: str
    input_count: int
    chunks: tuple[ChunkCommitment, ...]
    output_commitment: str
    manifest: dict[str, Any]
    block_commitments: tuple[str, ...] = ()
    embeddings: Rows | None = field(default=None, repr=False)
    truncated_texts: int = 0

    @property
    def chunk_count(self) -> int:
        """Number of chunks."""
        return len(self.chunks)


class Prover:
    """Proves embedding runs under one spec: one runtime session, reused across calls."""

    def __init__(self, spec: Spec, *, allow_engine_drift: bool = False,
                 max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
                 threads: int | None = None, fused: bool | None = None) -> None:
        """Open the runtime for ``spec`` (see :class:`~cyberian.runtime.Runtime`)."""
        self.spec = spec
        self.runtime = Runtime(spec, allow_engine_drift=allow_engine_drift,
                               max_batch_tokens=max_batch_tokens, threads=threads, fused=fused)

    @property
    def manifest(self) -> dict[str, Any]:
        """The environment manifest of this prover's runtime."""
        return self.runtime.manifest

    def iter_chunks(self, texts: Iterable[str], *, first_index: int = 0) -> Iterator[ChunkResult]:
        """Chunk results in input order, computed a window of chunks at a time.

        ``texts`` are whole chunks of a larger input whose first is chunk
        ``first_index`` (a server piece); indices and starts count from there.
        """
        chunks = enumerate(_split(iter(texts), self.spec.chunk_size), start=first_index)
        return self.prove_chunks(chunks)

    def prove_chunks(self, chunks: Iterable[tuple[int, Sequence[str]]]) -> Iterator[ChunkResult]:
        """Results of chunks given as ``(index, texts)``, in the order given.

        The chunks need not be consecutive (a replayer proves a sample). They
        are run a window at a time; a chunk's rows do not depend on its window.
        """
        size = self.spec.chunk_size
        source = iter(chunks)
        while window := list(itertools.islice(source, chunk_count(_WINDOW_TEXTS, size))):
            rows, cut = self.runtime.embed_flagged(
                [text for _, chunk_texts in window for text in chunk_texts])
            position = 0
            for index, chunk_texts in window:
                stop = position + len(chunk_texts)
                chunk_rows = rows[position:stop]
                yield ChunkResult(index, index * size, chunk_texts, chunk_rows,
                                  ChunkCommitment.of(index, chunk_texts, chunk_rows),
                                  truncated=sum(cut[position:stop]))
                position = stop

    def prove(self, texts: Iterable[str], *, keep_embeddings: bool = True,
              block_size: int | None = None,
              on_chunk: Callable[[ChunkResult], None] | None = None) -> Proof:
        """Run every text and commit: per-chunk commitments, whole-output commitment.

        ``block_size`` adds per-block output commitments (the VaaS claim format);
        ``on_chunk`` sees every chunk as it completes (progress, streaming writes).
        """
        return fold_chunks(self.iter_chunks(texts), self.spec, self.manifest,
                           keep_embeddings=keep_embeddings, block_size=block_size,
                           on_chunk=on_chunk)


def fold_chunks(results: Iterable[ChunkResult], spec: Spec, manifest: dict[str, Any], *,
                keep_embeddings: bool = True, block_size: int | None = None,
                on_chunk: Callable[[ChunkResult], None] | None = None) -> Proof:
    """The :class:`Proof` of a whole input from its chunk results, given in input order.

    The one place a run's commitments are folded, whichever engine computed
    the chunks (this process, or a cluster's workers): the whole-output
    commitment, the per-block commitments when ``block_size`` is given, and
    the kept rows when ``keep_embeddings``. ``on_chunk`` sees every chunk
    as it is folded.
    """
    whole = BlockCommitter()
    blocks = BlockCommitter(block_size) if block_size else None
    chunks: list[ChunkCommitment] = []
    kept: list[Rows] = []
    count = truncated = 0
    for chunk in results:
        if chunk.index != len(chunks):
            raise ValueError(f"chunk {chunk.index} arrived where chunk {len(chunks)} belongs")
        whole.update(chunk.rows)
        if blocks is not None:
            blocks.update(chunk.rows)
        chunks.append(chunk.commitment)
        count += len(chunk.texts)
        truncated += chunk.truncated
        if keep_embeddings:
            kept.append(chunk.rows)
        if on_chunk is not None:
            on_chunk(chunk)
    embeddings = None
    if keep_embeddings:
        embeddings = (np.concatenate(kept) if kept
                      else np.empty((0, spec.dimensions), dtype=np.float32))
    return Proof(
        spec_hash=spec.spec_hash,
        input_count=count,
        chunks=tuple(chunks),
        output_commitment=whole.commitments()[0],
        manifest=manifest,
        block_commitments=tuple(blocks.commitments()) if blocks else (),
        embeddings=embeddings,
        truncated_texts=truncated,
    )
