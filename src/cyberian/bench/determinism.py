"""``cyberian bench determinism``: the same inputs across processes, threads, batches,
orders and padding -- every cell must produce the same bytes.

The matrix is 3 separate processes x ``intra_op_threads`` {1, 2} x batch sizes
{1, 8, 32} x {file order, a shuffled order} x padding {to the batch's longest
text, 13 tokens more}: 72 cells. Each cell runs every text through the
runtime in consecutive fixed-size batches of its order and padding, puts the
rows back into file order, and commits to them (a per-text SHA-256 and one
commitment over the whole order-normalised matrix). The check passes only
when all 72 commitments are identical.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["Cell", "CellResult", "MatrixReport", "cells", "render_table", "run_cells",
           "run_matrix"]

PROCESSES: Final = 3
THREADS: Final = (1, 2)
BATCH_SIZES: Final = (1, 8, 32)
ORDERS: Final = ("file", "shuffled")
EXTRA_PADDING: Final = (0, 13)


@dataclass(frozen=True)
class Cell:
    """One configuration of the matrix."""

    process: int
    threads: int
    batch_size: int
    order: str
    extra_padding: int

    @property
    def id(self) -> str:
        """A short, stable name for the cell."""
        return (f"p{self.process}-t{self.threads}-b{self.batch_size}-{self.order}"
                f"-pad{self.extra_padding}")


@dataclass(frozen=True)
class CellResult:
    """A cell's order-normalised output commitment and per-text row hashes."""

    cell: Cell
    commitment: str
    row_hashes: tuple[str, ...]


def cells(process: int) -> list[Cell]:
    """Every cell one process runs."""
    return [Cell(process, t, b, o, x) for t, b, o, x in
            itertools.product(THREADS, BATCH_SIZES, ORDERS, EXTRA_PADDING)]


def run_cells(spec_path: Path, texts: Sequence[str], todo: Sequence[Cell], *,
              inject: str | None = None) -> list[CellResult]:
    """Run cells in this process (``inject`` flips one bit in that cell: a self-test)."""
    from ..runtime import Runtime  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    spec = load_spec(spec_path)
    runtimes = {t: Runtime(spec, threads=t, lanes=1) for t in sorted({c.threads for c in todo})}
    encoded = runtimes[todo[0].threads].tokenizer.encode(texts)
    results = []
    for cell in todo:
        runtime = runtimes[cell.threads]
        order = list(range(len(texts)))
        if cell.order == "shuffled":
            seed = cell.process * 7919 + cell.batch_size
            random.Random(seed).shuffle(order)  # noqa: S311 - a test order, not a secret
        rows = np.empty((len(texts), spec.dimensions), dtype=np.float32)
        for start in range(0, len(order), cell.batch_size):
            batch = order[start:start + cell.batch_size]
            longest = max(len(encoded[i]) for i in batch)
            width = min(longest + cell.extra_padding, spec.max_length)
            rows[batch] = runtime.run_batch([encoded[i] for i in batch],
                                            pad_to=max(width, longest))
        if inject == cell.id:
            rows.view(np.uint32)[len(texts) // 2, 0] ^= 1
        results.append(CellResult(
            cell, hashlib.sha256(rows.astype("<f4").tobytes()).hexdigest(),
            tuple(hashlib.sha256(row.astype("<f4").tobytes()).hexdigest() for row in rows)))
    return results


@dataclass
class MatrixReport:
    """The whole matrix: one result per cell, the texts that differ, and the manifest."""

    results: list[CellResult]
    manifest: dict[str, Any]

    @property
    def identical(self) -> bool:
        """True when every cell produced the same commitment."""
        return len({r.commitment for r in self.results}) == 1

    def differing_texts(self) -> dict[int, list[str]]:
        """Text index -> ids of the cells whose row for it differs from the first cell's."""
        reference = self.results[0].row_hashes
        out: dict[int, list[str]] = {}
        for result in self.results[1:]:
            for index, (mine, theirs) in enumerate(zip(result.row_hashes, reference,
                                                       strict=True)):
                if mine != theirs:
                    out.setdefault(index, []).append(result.cell.id)
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (per-text hashes left out)."""
        return {
            "identical": self.identical,
            "cells": [{**asdict(r.cell), "id": r.cell.id, "commitment": r.commitment}
                      for r in self.results],
            "differing_texts": {str(k): v for k, v in self.differing_texts().items()},
            "environment": self.manifest,
        }


_WORKER = "from cyberian.bench.determinism import worker_main; worker_main()"


def worker_main() -> None:
    """Entry point of one matrix process: a JSON job on stdin, JSON results on stdout."""
    from ..environment import environment_manifest  # noqa: PLC0415
    from ..spec import installed_engine_version  # noqa: PLC0415

    job = json.load(sys.stdin)
    todo = [Cell(**cell) for cell in job["cells"]]
    results = run_cells(Path(job["spec"]), job["texts"], todo, inject=job.get("inject"))
    json.dump({
        "manifest": environment_manifest(engine_version=installed_engine_version()),
        "results": [{"cell": asdict(r.cell), "commitment": r.commitment,
                     "row_hashes": list(r.row_hashes)} for r in results],
    }, sys.stdout)


def run_matrix(spec_path: Path, texts: Sequence[str], *, inject: str | None = None,
               log: Callable[[str], None] = lambda _: None) -> MatrixReport:
    """Run the full matrix, one child process per process index."""
    results: list[CellResult] = []
    manifest: dict[str, Any] = {}
    for process in range(PROCESSES):
        log(f"process {process + 1} of {PROCESSES}: {len(cells(process))} cells")
        job = {"spec": str(spec_path), "texts": list(texts), "inject": inject,
               "cells": [asdict(c) for c in cells(process)]}
        done = subprocess.run([sys.executable, "-c", _WORKER], input=json.dumps(job),
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"matrix process {process} failed:\n{done.stderr[-2000:]}")
        output = json.loads(done.stdout)
        manifest = output["manifest"]
        results += [CellResult(Cell(**r["cell"]), r["commitment"], tuple(r["row_hashes"]))
                    for r in output["results"]]
    return MatrixReport(results, manifest)


def render_table(report: MatrixReport, texts: Sequence[str]) -> str:
    """A markdown table of the cells, then the verdict and any texts that differ."""
    reference = report.results[0].commitment
    lines = ["| cell | process | threads | batch | order | extra padding | commitment | |",
             "|---|---:|---:|---:|---|---:|---|---|"]
    for r in report.results:
        c = r.cell
        mark = "same" if r.commitment == reference else "DIFFERS"
        lines.append(f"| {c.id} | {c.process} | {c.threads} | {c.batch_size} | {c.order} | "
                     f"{c.extra_padding} | {r.commitment[:16]}… | {mark} |")
    cpu = report.manifest.get("cpu", {})
    lines += ["", f"{len(report.results)} cells on {len(texts)} texts; onnxruntime "
              f"{report.manifest.get('engine', {}).get('version')}, {cpu.get('model')} "
              f"({cpu.get('isa_level')}, class {cpu.get('class')}), "
              f"flags {' '.join(cpu.get('isa_flags', []))}"]
    if report.identical:
        lines.append(f"IDENTICAL: every cell gave {reference}")
    else:
        lines.append("DIFFERENT: cells disagree")
        for index, cell_ids in sorted(report.differing_texts().items())[:20]:
            lines.append(f"  text {index} {texts[index][:50]!r}: differs in {', '.join(cell_ids)}")
    return "\n".join(lines) + "\n"
