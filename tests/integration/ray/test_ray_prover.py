"""Issue 18: a proof on a local Ray cluster is the local proof, bit for bit.

The cluster is real (``ray.init`` with 2 CPUs, worker processes of their
own); so are the failures (a worker process killed with SIGKILL) and the
other CPU classes (a worker whose Python runs under ``qemu-x86_64 -cpu ...``,
which reports the emulated CPUID, exactly as the cross-class tests run).
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cyberian.bench.corpus import sentences
from cyberian.bench.emulation import targets
from cyberian.distributed.ray_prover import ClusterMismatchError, RayProver
from cyberian.models.tiny import write_tiny_spec
from cyberian.prover import ChunkResult, Proof, Prover
from cyberian.receipts import build_receipt_body, commitment_roots
from cyberian.spec import Spec, load_spec

pytestmark = pytest.mark.usefixtures("ray_cluster")


def assert_same_proof(ray_proof: Proof, local: Proof, spec: Spec) -> None:
    """Every commitment, root, row and receipt field of the two proofs is equal."""
    assert ray_proof.chunks == local.chunks
    assert ray_proof.output_commitment == local.output_commitment
    assert ray_proof.block_commitments == local.block_commitments
    assert ray_proof.input_count == local.input_count
    assert ray_proof.truncated_texts == local.truncated_texts
    assert commitment_roots(ray_proof.chunks) == commitment_roots(local.chunks)
    if local.embeddings is not None:
        assert ray_proof.embeddings is not None
        assert ray_proof.embeddings.tobytes() == local.embeddings.tobytes()

    def body(proof: Proof) -> dict[str, Any]:
        document = build_receipt_body(spec=spec, kind="local", job_id="local_same",
                                      chunks=proof.chunks, input_count=proof.input_count,
                                      issuer_keyid="0" * 64, executor_environment={})
        return {k: v for k, v in document.items() if k not in {"issued_at", "receipt_id"}}

    assert body(ray_proof) == body(local)


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """A few hundred real sentences, of mixed lengths."""
    return sentences(300)


def test_two_workers_prove_what_one_process_proves(tiny_spec: Spec,
                                                   real_texts: list[str]) -> None:
    local = Prover(tiny_spec).prove(real_texts, block_size=5)
    with RayProver(tiny_spec, workers=2, threads=1, piece_chunks=3) as prover:
        assert len(prover.workers) == 2
        assert len({report.pid for report in prover.workers} | {os.getpid()}) == 3
        remote = prover.prove(real_texts, block_size=5)
        assert remote.manifest["cluster"]["workers"] == 2
        assert remote.manifest["cpu"]["class"] == local.manifest["cpu"]["class"]
        # pieces start anywhere in a larger input, as a server piece does
        tail = list(prover.iter_chunks(real_texts[40:80], first_index=10))
    assert_same_proof(remote, local, tiny_spec)
    expected = list(Prover(tiny_spec).iter_chunks(real_texts[40:80], first_index=10))
    assert [c.commitment for c in tail] == [c.commitment for c in expected]
    assert [c.start for c in tail] == [c.start for c in expected]


def test_the_real_model_gives_the_same_bits_on_the_cluster(real_spec: Spec,
                                                           real_texts: list[str]) -> None:
    texts = real_texts[:96]
    local = Prover(real_spec).prove(texts)
    with RayProver(real_spec, workers=2, threads=1, piece_chunks=1) as prover:
        assert_same_proof(prover.prove(texts), local, real_spec)


def test_a_killed_worker_has_its_chunks_run_again(tiny_spec: Spec,
                                                  real_texts: list[str]) -> None:
    local = Prover(tiny_spec).prove(real_texts)
    said: list[str] = []
    with RayProver(tiny_spec, workers=2, threads=1, piece_chunks=2,
                   progress=said.append) as prover:
        victim = prover.workers[0]

        def kill_once(chunk: ChunkResult) -> None:
            if chunk.index == 0:
                os.kill(victim.pid, signal.SIGKILL)

        remote = prover.prove(real_texts, on_chunk=kill_once)
        assert prover.failures == 1
        assert victim.pid not in {report.pid for report in prover.workers}
        again = prover.prove(real_texts)  # the next run waits for the replacement
        assert len(prover.workers) == 2
        assert victim.pid not in {report.pid for report in prover.workers}
    assert_same_proof(remote, local, tiny_spec)
    assert_same_proof(again, local, tiny_spec)
    assert any(f"on {victim.where} died" in line for line in said), said
    assert any(line.startswith("ray worker 2 on ") and " joined: " in line for line in said), said


def test_driver_memory_is_flat_in_the_number_of_texts(tmp_path: Path) -> None:
    spec = load_spec(write_tiny_spec(tmp_path, chunk_size=64))

    def texts(count: int) -> Iterator[str]:
        return (f"tiny text {i} " * (i % 5 + 1) for i in range(count))

    peaks: dict[int, int] = {}
    with RayProver(spec, workers=2, threads=1) as prover:
        for count in (10_000, 100_000):
            tracemalloc.start()
            try:
                proof = prover.prove(texts(count), keep_embeddings=False)
                peaks[count] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert proof.input_count == count
    rows_bytes = 100_000 * spec.dimensions * 4
    # 10x the texts: the peak grows by the proof's per-chunk commitments only
    assert peaks[100_000] < 1.6 * peaks[10_000], peaks
    assert peaks[100_000] < rows_bytes / 4, peaks


def _emulated(name: str) -> dict[str, Any]:
    """Ray actor options that run a worker's Python under the emulated class ``name``."""
    (target,) = [t for t in targets() if t.name == name]
    assert target.available, target.missing
    return {"runtime_env": {"py_executable": " ".join([*target.prefix, sys.executable])}}


def test_a_worker_of_another_cpu_class_is_refused(tiny_spec: Spec) -> None:
    with pytest.raises(ClusterMismatchError) as refused:
        RayProver(tiny_spec, workers=2, threads=1,
                  worker_options=lambda n: _emulated("x86_64-sse") if n == 1 else {})
    message = str(refused.value)
    assert "class x86_64-nofma" in message
    assert "class x86_64-fma" in message
    assert message.count("(pid ") == 2
    assert "docs/DETERMINISM.md" in message


def test_an_emulated_worker_of_the_same_class_adds_the_same_bits(
        tiny_spec: Spec, real_texts: list[str]) -> None:
    texts = real_texts[:24]
    local = Prover(tiny_spec).prove(texts)
    with RayProver(tiny_spec, workers=2, threads=1, piece_chunks=1,
                   worker_options=lambda n: _emulated("x86_64-avx2-fma") if n == 1 else {}
                   ) as prover:
        assert {report.isa_level for report in prover.workers} == {
            "x86_64-avx2-fma", local.manifest["cpu"]["isa_level"]}
        remote = prover.prove(texts)
    assert_same_proof(remote, local, tiny_spec)


def test_too_many_workers_for_the_cluster_is_a_clear_error(tiny_spec: Spec) -> None:
    from cyberian.distributed.ray_prover import RayUnavailableError

    with pytest.raises(RayUnavailableError, match="3 workers of 1 thread need 3 CPUs; "
                                                  "the Ray cluster has 2"):
        RayProver(tiny_spec, workers=3, threads=1)


def test_a_worker_that_cannot_open_the_model_says_where(tiny_spec: Spec,
                                                        tmp_path: Path) -> None:
    from cyberian.distributed.ray_worker import WorkerStartError

    elsewhere = Spec(tiny_spec.data, base_dir=tmp_path)  # the same pins, no files beside it
    with pytest.raises(WorkerStartError) as failed:
        RayProver(elsewhere, workers=1, threads=2)
    message = str(failed.value)
    assert message.startswith("a Ray worker on ")
    assert f"cannot start: model.file: file not found: {tmp_path}" in message


def test_a_run_outlives_its_only_worker_and_stops_past_max_failures(
        tiny_spec: Spec, real_texts: list[str]) -> None:
    from cyberian.distributed.ray_prover import WorkerFailedError

    local = Prover(tiny_spec).prove(real_texts)

    def killer(prover: RayProver) -> Any:
        def kill_first(chunk: ChunkResult) -> None:
            if chunk.index == 0:
                os.kill(prover.workers[0].pid, signal.SIGKILL)
        return kill_first

    with RayProver(tiny_spec, workers=1, threads=1, piece_chunks=2) as alone:
        # every piece waits, unsent, until the replacement has started
        assert_same_proof(alone.prove(real_texts, on_chunk=killer(alone)), local, tiny_spec)
        assert alone.failures == 1
    failed = r"1 Ray worker failures in this run \(at most 0 allowed\); the last: worker 0 on "
    with RayProver(tiny_spec, workers=1, threads=1, piece_chunks=2, max_failures=0) as strict, \
            pytest.raises(WorkerFailedError, match=failed):
        strict.prove(real_texts, on_chunk=killer(strict))


def test_a_replacement_of_another_cpu_class_is_not_used(tiny_spec: Spec,
                                                        real_texts: list[str]) -> None:
    local = Prover(tiny_spec).prove(real_texts)
    said: list[str] = []
    with RayProver(tiny_spec, workers=2, threads=1, piece_chunks=2, progress=said.append,
                   worker_options=lambda n: _emulated("x86_64-sse") if n >= 2 else {}
                   ) as prover:
        victim = prover.workers[0]

        def kill_once(chunk: ChunkResult) -> None:
            if chunk.index == 0:
                os.kill(victim.pid, signal.SIGKILL)

        assert_same_proof(prover.prove(real_texts, on_chunk=kill_once), local, tiny_spec)
        # the next run waits for the replacement, which reports another class
        assert_same_proof(prover.prove(real_texts[:40]), Prover(tiny_spec).prove(
            real_texts[:40]), tiny_spec)
        assert len(prover.workers) == 1
    (dropped,) = [line for line in said if "(a replacement) is not used" in line]
    assert dropped.startswith("ray worker 2 (a replacement) is not used: the Ray workers would "
                              "not make the same bytes")
    assert "class x86_64-nofma" in dropped
