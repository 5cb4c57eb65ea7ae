"""``cyberian bench vaas``: sustained ``/verify`` throughput against the in-process prover.

8 concurrent clients (asyncio, one HTTP connection each) send single-block
``POST /verify`` requests of 32 texts, with the commitment the in-process
prover computed, to a real server on loopback (a fresh data dir, the spec
as its catalog). The same script first measures the in-process prover on
the same texts; the report gives both throughputs, their ratio and the
request latency distribution (p50 / p99).

``--scaling`` (:func:`run_scaling`) drives the same request stream, in one
run, against four fresh servers: SQLite with 1 and 2 executor processes and
PostgreSQL with 1 and 2, and reports each configuration's throughput, the
2-worker / 1-worker ratio per backend and the PostgreSQL / SQLite ratio per
worker count. PostgreSQL: a throwaway cluster in a temp dir
(:mod:`cyberian.bench.postgres`, Debian's server binaries), or, with
``--database URL``, a server the user runs -- the URL must let the
benchmark ``CREATE DATABASE`` (each configuration gets a fresh database,
dropped afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..cli._embedded import embedded_verifier
from ..commitments import chunk_bounds
from ..cpuclass import cpu_class
from ..environment import cpu_info
from ..prover import Prover
from ..server.store.database import redact_url
from ..spec import Spec
from .postgres import TemporaryCluster

__all__ = ["ScalingReport", "VaasReport", "render_scaling", "render_vaas", "run_scaling",
           "run_vaas"]


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


def _claimed_blocks(spec: Spec, texts: Sequence[str], block: int,
                    report: VaasReport | None = None) -> list[tuple[list[str], str]]:
    """The request stream: each block of texts with the commitment the in-process prover
    computed (timed into ``report`` when given)."""
    prover = Prover(spec)
    prover.prove(texts[: 4 * block])  # warm-up
    start = time.perf_counter()
    proof = prover.prove(texts, keep_embeddings=False, block_size=block)
    if report is not None:
        report.in_process_texts_per_second = len(texts) / (time.perf_counter() - start)
    return [(list(texts[a:b]), claim) for (a, b), claim
            in zip(chunk_bounds(len(texts), block), proof.block_commitments, strict=True)]


def _measure(spec: Spec, blocks: list[tuple[list[str], str]], report: VaasReport, *,
             database: str | None = None, log: Callable[[str], None]) -> None:
    """Drive ``blocks`` from ``report.clients`` clients into a fresh server; fill ``report``."""
    with tempfile.TemporaryDirectory(prefix="cyberian-bench-vaas-") as tmp, \
            embedded_verifier(spec, threads=report.worker_threads, workers=report.workers,
                              data_dir=Path(tmp), database=database) as wait:
        verifier = wait()
        log(f"server ready at {verifier.url}; warming up")
        asyncio.run(_drive(verifier.url, verifier.api_key, spec.name,
                           blocks[:report.workers * 2], report.workers, report))
        report.failures.clear()
        log(f"{len(blocks)} requests of {report.block} texts from {report.clients} clients")
        seconds, latencies = asyncio.run(_drive(verifier.url, verifier.api_key, spec.name,
                                                blocks, report.clients, report))
    report.requests = len(latencies)
    report.verify_texts_per_second = report.texts / seconds
    if report.in_process_texts_per_second:
        report.ratio = report.verify_texts_per_second / report.in_process_texts_per_second
    report.latency_p50 = statistics.median(latencies)
    report.latency_p99 = _percentile(latencies, 0.99)
    report.latency_max = max(latencies)


def run_vaas(spec: Spec, texts: Sequence[str], *, clients: int = 8, block: int = 32,
             workers: int = 2, worker_threads: int = 1,
             log: Callable[[str], None] = lambda _: None) -> VaasReport:
    """Measure the in-process prover, then ``/verify`` under ``clients`` concurrent clients."""
    report = VaasReport(len(texts), block, clients, workers, worker_threads)
    log("in-process prover")
    blocks = _claimed_blocks(spec, texts, block, report)
    _measure(spec, blocks, report, log=log)
    return report


@dataclass
class ScalingRow:
    """One configuration of a scaling run."""

    backend: str
    workers: int
    texts_per_second: float
    latency_p50: float
    latency_p99: float
    failures: list[str]


@dataclass
class ScalingReport:
    """``/verify`` throughput on SQLite and PostgreSQL with 1 and 2 executor processes."""

    texts: int
    block: int
    clients: int
    worker_threads: int
    machine: dict[str, Any]
    postgresql: str
    rows: list[ScalingRow] = field(default_factory=list)

    def rate(self, backend: str, workers: int) -> float:
        """The throughput of one configuration."""
        return next(row.texts_per_second for row in self.rows
                    if (row.backend, row.workers) == (backend, workers))

    @property
    def failures(self) -> list[str]:
        """Every failed request of the run."""
        return [failure for row in self.rows for failure in row.failures]

    def ratios(self) -> dict[str, float]:
        """2 / 1 workers per backend, and PostgreSQL / SQLite per worker count."""
        return {"sqlite_2_over_1": self.rate("sqlite", 2) / self.rate("sqlite", 1),
                "postgresql_2_over_1": self.rate("postgresql", 2) / self.rate("postgresql", 1),
                "postgresql_over_sqlite_1": self.rate("postgresql", 1) / self.rate("sqlite", 1),
                "postgresql_over_sqlite_2": self.rate("postgresql", 2) / self.rate("sqlite", 2)}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, ratios included."""
        return {**asdict(self), "ratios": self.ratios()}


@contextlib.contextmanager
def _databases(admin_url: str | None) -> Iterator[tuple[Callable[[], str], str]]:
    """A maker of fresh PostgreSQL databases, and what it runs on (for the report)."""
    if admin_url is not None:
        import psycopg  # noqa: PLC0415 - the optional dependency, only when asked for
        from psycopg import sql  # noqa: PLC0415

        made: list[str] = []

        def create() -> str:
            name = f"cyberian_bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            made.append(name)
            parts = urlsplit(admin_url)
            return urlunsplit(parts._replace(path=f"/{name}"))

        try:
            yield create, f"the server at {redact_url(admin_url)}"
        finally:
            for name in made:
                with contextlib.suppress(psycopg.Error), \
                        psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)))
        return
    with tempfile.TemporaryDirectory(prefix="cyberian-bench-pg-") as root, \
            TemporaryCluster(Path(root)) as cluster:
        yield cluster.create_database, (f"a throwaway PostgreSQL cluster on 127.0.0.1 "
                                        f"({cluster.bindir})")


def run_scaling(spec: Spec, texts: Sequence[str], *, clients: int = 8, block: int = 32,
                worker_threads: int = 1, database: str | None = None,
                log: Callable[[str], None] = lambda _: None) -> ScalingReport:
    """``/verify`` with ``clients`` clients against 1 and 2 executor processes, on SQLite and
    on PostgreSQL, alternating nothing else: the same request stream for all four."""
    log("commitments of the request stream (in-process prover)")
    blocks = _claimed_blocks(spec, texts, block)
    with _databases(database) as (new_database, where):
        machine = {**cpu_info(), "cpu_class": cpu_class()}
        report = ScalingReport(len(texts), block, clients, worker_threads, machine, where)
        for backend in ("sqlite", "postgresql"):
            for workers in (1, 2):
                log(f"{backend}, {workers} executor process(es)")
                run = VaasReport(len(texts), block, clients, workers, worker_threads)
                _measure(spec, blocks, run, log=log,
                         database=new_database() if backend == "postgresql" else None)
                report.rows.append(ScalingRow(backend, workers, run.verify_texts_per_second,
                                              run.latency_p50, run.latency_p99,
                                              list(run.failures)))
    return report


def render_scaling(report: ScalingReport) -> str:
    """The scaling report as a short markdown summary."""
    machine = report.machine
    lines = [
        f"/verify scaling: {report.texts} texts in requests of {report.block} from "
        f"{report.clients} concurrent clients; executors x {report.worker_threads} "
        f"thread(s). CPU: {machine.get('model')} ({machine.get('logical_cpus')} logical "
        f"CPUs, class {machine.get('cpu_class')}). PostgreSQL: {report.postgresql}.",
        "",
        "| backend | executor processes | texts/s | p50 s | p99 s | failed |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {row.backend} | {row.workers} | {row.texts_per_second:,.1f} | "
          f"{row.latency_p50:.3f} | {row.latency_p99:.3f} | {len(row.failures)} |"
          for row in report.rows),
        "",
    ]
    ratios = report.ratios()
    lines += [
        f"- 2 workers / 1: SQLite **{ratios['sqlite_2_over_1']:.2f}x**, PostgreSQL "
        f"**{ratios['postgresql_2_over_1']:.2f}x**",
        f"- PostgreSQL / SQLite: {ratios['postgresql_over_sqlite_1']:.2f}x with 1 worker, "
        f"{ratios['postgresql_over_sqlite_2']:.2f}x with 2",
    ]
    return "\n".join(lines) + "\n"


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
