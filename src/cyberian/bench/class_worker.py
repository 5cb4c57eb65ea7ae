"""The process the cross-class checks start on each CPU class: a JSON job in, a JSON result out.

Jobs (``{"kind": ...}`` on stdin):

* ``rows``: prove ``texts`` under ``spec`` and report the output commitment,
  the per-chunk and per-row hashes and the environment manifest;
* ``ops``: run each single-op model of ``folder`` on its stored inputs and
  report the SHA-256 of every output.

Only numpy, onnxruntime and what the prover itself needs are imported, so the
worker runs on an emulated interpreter with nothing else installed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "run_job"]


def _rows(job: dict[str, Any]) -> dict[str, Any]:
    from ..prover import Prover  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    prover = Prover(load_spec(Path(job["spec"])), allow_engine_drift=False,
                    threads=job.get("threads"))
    proof = prover.prove(job["texts"], keep_embeddings=True)
    rows = proof.embeddings
    assert rows is not None
    return {
        "manifest": proof.manifest,
        "output_commitment": proof.output_commitment,
        "chunk_commitments": [c.output_commitment for c in proof.chunks],
        "row_hashes": [hashlib.sha256(row.astype("<f4").tobytes()).hexdigest() for row in rows],
    }


def _ops(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415

    from ..environment import environment_manifest  # noqa: PLC0415

    folder = Path(job["folder"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    hashes: dict[str, str] = {}
    for model in sorted(folder.glob("*.onnx")):
        with np.load(model.with_suffix(".npz")) as stored:
            feeds = {name: stored[name] for name in stored.files}
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        outputs = session.run(None, feeds)
        digest = hashlib.sha256()
        for output in outputs:
            digest.update(np.ascontiguousarray(output).tobytes())
        hashes[model.stem] = digest.hexdigest()
    return {"manifest": environment_manifest(engine_version=str(ort.__version__)),
            "hashes": hashes}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Carry out one job (see the module docstring) in this process."""
    kind = job.get("kind")
    if kind == "rows":
        return _rows(job)
    if kind == "ops":
        return _ops(job)
    raise ValueError(f"unknown job kind {kind!r}")


def main() -> None:
    """Read a job from stdin, print its result as JSON on stdout."""
    json.dump(run_job(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
