"""``cyberian bench vaas``: sustained ``/verify`` throughput against the in-process prover.

8 concurrent clients (asyncio, one HTTP connection each) send single-block
``POST /verify`` requests of 32 texts, with the commitment the in-process
prover computed, to a real server on loopback (a fresh data dir, the spec
as its catalog). The same script first measures the in-process prover on
the same texts; the report gives both throughputs, their ratio and the
request latency distribution (p50 / p99).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..cli._embedded import embedded_verifier
from ..commitments import chunk_bounds
from ..prover import Prover
from ..spec import Spec

__all__ = ["VaasReport", "render_vaas", "run_vaas"]


@dataclass
class VaasReport:
    """What one ``bench vaas`` run measured."""

    texts: int
    block: int
    clients: int
    workers: int
    worker_threads: int
    in_process_texts_per_second: float = 0.0
    verify_texts_per_second: float = 0.0
    ratio: float = 0.0
    requests: int = 0
    latency_p50: float = 0.0
    latency_p99: float = 0.0
    latency_max: float = 0.0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


async def _drive(url: str, key: str, model: str, blocks: list[tuple[list[str], str]],
                 clients: int, report: VaasReport) -> tuple[float, list[float]]:
    queue: asyncio.Queue[tuple[list[str], str]] = asyncio.Queue()
    for block in blocks:
        queue.put_nowait(block)
    latencies: list[float] = []

    async def client() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
            while not queue.empty():
                texts, claim = queue.get_nowait()
                start = time.perf_counter()
                response = await http.post("/verify", json={
                    "model": model, "inputs": texts, "claimed_output_commitment": claim})
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    report.failures.append(f"{response.status_code}: {response.text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, latencies


def run_vaas(spec: Spec, texts: Sequence[str], *, clients: int = 8, block: int = 32,
             workers: int = 2, worker_threads: int = 1,
             log: Callable[[str], None] = lambda _: None) -> VaasReport:
    """Measure the in-process prover, then ``/verify`` under ``clients`` concurrent clients."""
    report = VaasReport(len(texts), block, clients, workers, worker_threads)
    prover = Prover(spec)
    log("in-process prover")
    prover.prove(texts[: 4 * block])  # warm-up
    start = time.perf_counter()
    proof = prover.prove(texts, keep_embeddings=False, block_size=block)
    report.in_process_texts_per_second = len(texts) / (time.perf_counter() - start)
    blocks = [(list(texts[a:b]), claim) for (a, b), claim
              in zip(chunk_bounds(len(texts), block), proof.block_commitments, strict=True)]
    del prover
    with tempfile.TemporaryDirectory(prefix="cyberian-bench-vaas-") as tmp, \
            embedded_verifier(spec, threads=worker_threads, workers=workers,
                              data_dir=Path(tmp)) as wait:
        verifier = wait()
        log(f"server ready at {verifier.url}; warming up")
        asyncio.run(_drive(verifier.url, verifier.api_key, spec.name, blocks[:workers * 2],
                           workers, report))
        report.failures.clear()
        log(f"{len(blocks)} requests of {block} texts from {clients} clients")
        seconds, latencies = asyncio.run(_drive(verifier.url, verifier.api_key, spec.name,
                                                blocks, clients, report))
    report.requests = len(latencies)
    report.verify_texts_per_second = len(texts) / seconds
    report.ratio = report.verify_texts_per_second / report.in_process_texts_per_second
    report.latency_p50 = statistics.median(latencies)
    report.latency_p99 = _percentile(latencies, 0.99)
    report.latency_max = max(latencies)
    return report


def render_vaas(report: VaasReport) -> str:
    """The report as a short markdown summary."""
    return "\n".join([
        f"/verify throughput: {report.requests} single-block requests of {report.block} texts "
        f"from {report.clients} concurrent clients; server with {report.workers} executor(s) x "
        f"{report.worker_threads} thread(s).",
        "",
        "| | texts/s |",
        "|---|---:|",
        f"| in-process prover | {report.in_process_texts_per_second:,.1f} |",
        f"| POST /verify, sustained | {report.verify_texts_per_second:,.1f} |",
        "",
        f"- ratio: **{100 * report.ratio:.0f}%** of the in-process prover",
        f"- latency: p50 {report.latency_p50:.2f} s, p99 {report.latency_p99:.2f} s, "
        f"max {report.latency_max:.2f} s",
        f"- failed requests: {len(report.failures)}",
    ]) + "\n"
