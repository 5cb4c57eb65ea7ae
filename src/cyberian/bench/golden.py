"""The committed golden files of a spec: catch any upgrade that moves a single bit.

``benchmarks/golden/<spec name>.<ISA level>.json`` holds the rows of the
default determinism texts, one file per ISA level it was made on (AVX-512 and
AVX2+FMA3 for the shipped spec: one CPU class, so the files are identical row
for row). On the file's CPU class the check is bit for bit; on another class
(where SIMD kernels legitimately differ) it accepts a max |delta| up to
:data:`CROSS_CLASS_TOLERANCE` and says so -- except for a spec that gives the
same bits on every class (the int8 spec), which is compared bit for bit
everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .._paths import shipped_dir
from ..cpuclass import normalise_class, reproduces
from ..exceptions import GoldenMismatchError
from ..golden import compare_golden, golden_document, load_golden
from ..models.recipes import cpu_independent
from ..prover import ChunkResult, Prover
from ..spec import Spec

__all__ = ["CROSS_CLASS_TOLERANCE", "check_golden", "shipped_goldens", "write_golden_file"]

CROSS_CLASS_TOLERANCE: Final = 1e-4


def shipped_goldens(spec: Spec) -> list[Path]:
    """The committed golden files of a shipped spec, one per ISA level they were made on."""
    return sorted((shipped_dir("benchmarks") / "golden").glob(f"{spec.name}.*.json"))


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
    cpu = stored.get("environment", {}).get("cpu", {})
    theirs = normalise_class(str(cpu.get("class")))
    made_on = cpu.get("isa_level") or cpu.get("class")
    ours = prover.manifest["cpu"]["class"]
    try:
        compare_golden(stored, chunks)
    except GoldenMismatchError as exc:
        worst = float(exc.body["max_abs_delta"]) if isinstance(exc.body, dict) else float("inf")
        bound = not cpu_independent(spec.model_sha256)  # the int8 spec: exact everywhere
        if bound and not reproduces(ours, theirs) and worst <= CROSS_CLASS_TOLERANCE:
            return (f"golden: made on {made_on} (class {theirs}), this CPU is class {ours}; "
                    f"bytes differ as allowed across CPU classes, max |delta| {worst:.2e} "
                    f"<= {CROSS_CLASS_TOLERANCE:g}")
        raise
    if cpu_independent(spec.model_sha256) and not reproduces(ours, theirs):
        return (f"golden: bit-identical to {path}, made on {made_on} (class {theirs}) and "
                f"checked on class {ours}: this spec gives the same bits on every class")
    return f"golden: bit-identical to {path} (made on {made_on}, class {theirs})"
