"""The server's Prometheus metrics: what is counted, in one registry per app.

Everything is counted in the coordinating server process, where the
results of the worker processes come back (a piece's chunk commitments, a
replay's outcomes, a VaaS batch's blocks, a crashed pool). So the counts are
exact however many executor processes run, and no multiprocess mode (and no
``PROMETHEUS_MULTIPROC_DIR``) is needed: nothing is counted in a worker.

Jobs are counted two ways: ``cyberian_jobs_total{state}`` counts the
transitions this process made (a job accepted enters EXECUTING, then PROVING,
then a terminal state), and ``cyberian_jobs_open{state}`` reads the jobs now
EXECUTING or PROVING from the store at scrape time (an indexed count bounded
by the queue size; terminal states grow with history and are not scanned).

Each :class:`ServerMetrics` has its own :class:`~prometheus_client.CollectorRegistry`,
never the library's global one, so several apps in one process do not collide.
The names and labels are documented in docs/SERVER.md (*Metrics*).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .._version import __version__

__all__ = [
    "JOB_STATES",
    "LATENCY_BUCKETS",
    "LiveSources",
    "ServerMetrics",
    "WorkKind",
]

JobState = Literal["EXECUTING", "PROVING", "SETTLED", "FAILED", "REFUNDED"]
JOB_STATES: Final[tuple[JobState, ...]] = ("EXECUTING", "PROVING", "SETTLED", "FAILED",
                                            "REFUNDED")
WorkKind = Literal["job", "vaas"]
_WORK_KINDS: Final[tuple[WorkKind, ...]] = ("job", "vaas")
_WORKER_ROLES: Final = ("executor", "replayer")
_OPEN_STATES: Final = ("EXECUTING", "PROVING")

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                          60.0, 120.0)
"""Request latency buckets (seconds): long polls last up to 30 s, large batches longer."""


@dataclass(frozen=True)
class LiveSources:
    """What a scrape reads at the time it runs: open jobs by state and the queue."""

    open_jobs: Callable[[], Mapping[str, int]]
    """Jobs now EXECUTING / PROVING, by state (from the store)."""
    queue_depth: Callable[[], int]
    """Open jobs plus in-flight VaaS requests."""
    queue_capacity: int
    """The queue's size (``queue_size``)."""


class _LiveCollector(Collector):
    """Gauges read at scrape time from :class:`LiveSources`."""

    def __init__(self, sources: LiveSources) -> None:
        self._sources = sources

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("cyberian_jobs_open", "Jobs now EXECUTING or PROVING, by state "
                              "(read from the store at scrape time).", labels=["state"]),
            GaugeMetricFamily("cyberian_queue_depth",
                              "Open jobs plus in-flight /verify requests (the bounded queue)."),
            GaugeMetricFamily("cyberian_queue_capacity",
                              "The queue's size (queue_size): past it new work is 503."),
        )

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields, without samples."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """The current values."""
        jobs, depth, capacity = self._families()
        counts = self._sources.open_jobs()
        for state in _OPEN_STATES:
            jobs.add_metric([state], counts.get(state, 0))
        depth.add_metric([], self._sources.queue_depth())
        capacity.add_metric([], self._sources.queue_capacity)
        return jobs, depth, capacity


class ServerMetrics:
    """The server's metrics in a registry of their own, and the calls that count them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        Info("cyberian_build", "The server's version.", registry=registry).info(
            {"version": __version__})
        self._requests = Counter(
            "cyberian_http_requests", "HTTP requests answered, by route template, method and "
            "status code.", ["route", "method", "status"], registry=registry)
        self._latency = Histogram(
            "cyberian_http_request_duration_seconds", "Time from a request's arrival to the "
            "last byte of its answer, by route template and method.", ["route", "method"],
            buckets=LATENCY_BUCKETS, registry=registry)
        self._jobs = Counter("cyberian_jobs", "Jobs that entered each state in this server "
                             "process (EXECUTING = accepted).", ["state"], registry=registry)
        self._executed = Counter(
            "cyberian_chunks_executed", "Chunks the executors computed: job chunks committed "
            "(kind=job), /verify blocks re-executed (kind=vaas).", ["kind"], registry=registry)
        self._texts = Counter("cyberian_texts_embedded", "Texts the executors embedded, by "
                              "kind of work (job, vaas).", ["kind"], registry=registry)
        self._replayed = Counter("cyberian_chunks_replayed", "Sampled job chunks the "
                                 "independent replayer re-ran.", registry=registry)
        self._mismatches = Counter("cyberian_replay_mismatches", "Replayed chunks whose bytes "
                                   "differed from the executor's (the job is REFUNDED).",
                                   registry=registry)
        self._restarts = Counter("cyberian_worker_restarts", "Worker pools rebuilt because a "
                                 "process died, by role (executor, replayer).", ["role"],
                                 registry=registry)
        for state in JOB_STATES:
            self._jobs.labels(state=state)
        for kind in _WORK_KINDS:
            self._executed.labels(kind=kind)
            self._texts.labels(kind=kind)
        for role in _WORKER_ROLES:
            self._restarts.labels(role=role)
        self._live: _LiveCollector | None = None

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request and its latency."""
        self._requests.labels(route=route, method=method, status=str(status)).inc()
        self._latency.labels(route=route, method=method).observe(seconds)

    def job_entered(self, state: JobState) -> None:
        """Count a job entering ``state``."""
        self._jobs.labels(state=state).inc()

    def executed(self, kind: WorkKind, *, chunks: int, texts: int) -> None:
        """Count chunks (or VaaS blocks) and texts the executors computed."""
        self._executed.labels(kind=kind).inc(chunks)
        self._texts.labels(kind=kind).inc(texts)

    def replayed(self, *, chunks: int, mismatches: int) -> None:
        """Count chunks the replayer re-ran, and how many of them differed."""
        self._replayed.inc(chunks)
        self._mismatches.inc(mismatches)

    def worker_restarted(self, role: str) -> None:
        """Count a worker pool rebuilt after one of its processes died."""
        self._restarts.labels(role=role).inc()

    def watch(self, sources: LiveSources) -> None:
        """Read the scrape-time gauges from ``sources`` (replacing earlier ones)."""
        if self._live is not None:
            self.registry.unregister(self._live)
        self._live = _LiveCollector(sources)
        self.registry.register(self._live)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition for a scraper's ``Accept`` header, and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
