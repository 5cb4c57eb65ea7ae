"""The committed golden file for a spec: catch any upgrade that moves a single bit.

``benchmarks/golden/<spec name>.json`` holds the rows of the default
determinism texts, made on one CPU class. On that class the check is bit for
bit; on another class (where SIMD kernels legitimately differ) it accepts a
max |delta| up to :data:`CROSS_CLASS_TOLERANCE` and says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .._paths import shipped_dir
from ..exceptions import GoldenMismatchError
from ..golden import compare_golden, golden_document, load_golden
from ..prover import ChunkResult, Prover
from ..spec import Spec

__all__ = ["CROSS_CLASS_TOLERANCE", "check_golden", "shipped_golden", "write_golden_file"]

CROSS_CLASS_TOLERANCE: Final = 1e-4


def shipped_golden(spec: Spec) -> Path:
    """Where the committed golden file of a shipped spec lives."""
    return shipped_dir("benchmarks") / "golden" / f"{spec.name}.json"


def write_golden_file(spec: Spec, texts: Sequence[str], path: Path) -> None:
    """Run ``texts`` and write their rows as a golden file."""
    chunks: list[ChunkResult] = []
    proof = Prover(spec).prove(texts, keep_embeddings=False, on_chunk=chunks.append)
    document = golden_document(spec.spec_hash, chunks, proof.output_commitment, proof.manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def check_golden(spec: Spec, texts: Sequence[str], path: Path) -> str:
    """Compare ``texts``' rows with a golden file; a message, or GoldenMismatchError."""
    stored = load_golden(path)
    prover = Prover(spec)
    chunks = list(prover.iter_chunks(texts))
    theirs = stored.get("environment", {}).get("cpu", {}).get("class")
    ours = prover.manifest["cpu"]["class"]
    try:
        compare_golden(stored, chunks)
    except GoldenMismatchError as exc:
        worst = float(exc.body["max_abs_delta"]) if isinstance(exc.body, dict) else float("inf")
        if theirs != ours and worst <= CROSS_CLASS_TOLERANCE:
            return (f"golden: made on {theirs}, this CPU is {ours}; bytes differ as allowed "
                    f"across CPU classes, max |delta| {worst:.2e} <= {CROSS_CLASS_TOLERANCE:g}")
        raise
    return f"golden: bit-identical to {path} (made on {theirs})"
