"""The benchmark golden file: written from one prove run, then checked bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

from cyberian.bench.golden import check_golden, write_golden_file
from cyberian.prover import Prover
from cyberian.spec import Spec


def test_a_written_golden_file_matches_the_prover_and_checks_clean(tiny_spec: Spec,
                                                                   tmp_path: Path) -> None:
    texts = [f"golden text {i}" for i in range(9)]
    path = tmp_path / "golden" / "tiny.json"
    write_golden_file(tiny_spec, texts, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    proof = Prover(tiny_spec).prove(texts)
    assert document["output_commitment"] == proof.output_commitment
    assert document["input_count"] == 9
    assert [chunk["output_commitment"] for chunk in document["chunks"]] == [
        chunk.output_commitment for chunk in proof.chunks]
    assert check_golden(tiny_spec, texts, path).startswith("golden: bit-identical")
