"""Golden files: a stored run's per-chunk commitments and rows, for regression checks.

``cyberian-prove ... --write-golden FILE`` stores them; ``--golden FILE``
re-runs and compares: any chunk whose output commitment changed is reported
with the texts whose rows changed and the largest absolute difference, so an
engine or library upgrade that moves a single bit is caught and explained.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ._json import loads_json
from .exceptions import GoldenMismatchError, InputError
from .prover import ChunkResult

__all__ = ["GOLDEN_FORMAT", "ChangedText", "compare_golden", "golden_document", "load_golden"]

GOLDEN_FORMAT: Final = "cyberian-golden/1"


def golden_document(spec_hash: str, chunks: Sequence[ChunkResult], output_commitment: str,
                    manifest: dict[str, Any]) -> dict[str, Any]:
    """The golden-file JSON for a run (rows stored as base64 little-endian float32)."""
    return {
        "format": GOLDEN_FORMAT,
        "spec_hash": spec_hash,
        "input_count": sum(len(chunk.texts) for chunk in chunks),
        "output_commitment": output_commitment,
        "environment": manifest,
        "chunks": [
            {**chunk.commitment.as_dict(), "start": chunk.start, "shape": list(chunk.rows.shape),
             "rows": base64.b64encode(chunk.rows.astype("<f4").tobytes()).decode("ascii")}
            for chunk in chunks
        ],
    }


def load_golden(path: Path) -> dict[str, Any]:
    """Read and sanity-check a golden file."""
    try:
        document = loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such golden file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable golden file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != GOLDEN_FORMAT:
        raise InputError(f"{path}: not a {GOLDEN_FORMAT} file")
    return document


@dataclass(frozen=True)
class ChangedText:
    """One text whose output row differs from the golden file."""

    index: int
    chunk: int
    text: str
    max_abs_delta: float


def _golden_rows(entry: dict[str, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    rows = np.frombuffer(base64.b64decode(entry["rows"]), dtype="<f4")
    return rows.reshape(entry["shape"]).astype(np.float32)


def compare_golden(golden: dict[str, Any], chunks: Sequence[ChunkResult]) -> None:
    """Raise :class:`GoldenMismatchError` naming changed chunks and texts; None if identical."""
    stored = golden["chunks"]
    if len(stored) != len(chunks):
        raise InputError(f"the golden file has {len(stored)} chunks, this run has {len(chunks)}: "
                         "it was made from other texts or another chunk size")
    changed: list[ChangedText] = []
    changed_chunks: list[int] = []
    for entry, chunk in zip(stored, chunks, strict=True):
        if entry["input_commitment"] != chunk.commitment.input_commitment:
            raise InputError(f"chunk {chunk.index}'s texts differ from the golden file's: "
                             "it was made from other texts")
        if entry["output_commitment"] == chunk.commitment.output_commitment:
            continue
        changed_chunks.append(chunk.index)
        delta = np.abs(_golden_rows(entry).astype(np.float64) - chunk.rows.astype(np.float64))
        for row in np.flatnonzero(delta.max(axis=1) > 0) if delta.size else []:
            changed.append(ChangedText(chunk.start + int(row), chunk.index,
                                       chunk.texts[int(row)], float(delta[row].max())))
    if not changed_chunks:
        return
    worst = max((item.max_abs_delta for item in changed), default=0.0)
    lines = [f"{len(changed_chunks)} chunk(s) differ from the golden file: "
             f"{', '.join(map(str, changed_chunks))}; max |delta| = {worst:.3e}"]
    lines += [f"  text {item.index} (chunk {item.chunk}): |delta| {item.max_abs_delta:.3e}  "
              f"{item.text[:60]!r}" for item in changed[:20]]
    if len(changed) > 20:
        lines.append(f"  ... and {len(changed) - 20} more texts")
    error = GoldenMismatchError("\n".join(lines))
    error.body = {"chunks": changed_chunks, "texts": [item.index for item in changed],
                  "max_abs_delta": worst}
    raise error
