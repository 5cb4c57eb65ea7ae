"""Accepting jobs, driving the ones in flight, long polls, adoption after a crash.

Acceptance validates everything first -- dialect, spec, model, per-request
limits, quotas, queue room -- and writes nothing until all of it passed, so a
refused request leaves no row and spends no quota. Then, in one
transaction, the job row (EXECUTING, its chunk count, a fresh 32-byte nonce
and this replica as its driver), its inputs and the idempotency record are
inserted; the quota is checked again inside that transaction under the
account's lock, so concurrent requests on any replicas cannot both spend the
last chunks.

A replica drives the jobs it accepted and renews its claim on them every
third of ``lease_seconds``; at startup and on every renewal it also adopts
the open jobs whose driver's claim has expired (a replica that crashed), and
resumes them (see :mod:`cyberian.server.pipeline`): nothing is lost, nothing
is charged twice. A replica restarted on the same data dir has the same id
and takes its own jobs back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

from ..sampling import new_nonce
from . import idempotency
from .auth import Principal
from .capacity import Capacity
from .errors import not_found
from .events import JobEvents
from .limits import RequestLimits
from .metrics import ServerMetrics
from .model_resolver import ModelResolver, WorkBody
from .pipeline import Pipeline
from .quotas import QuotaBook
from .store import Store, StoreIntegrityError
from .store import jobs as jobstore
from .store.jobs import JobRecord
from .timeutil import utcnow

__all__ = ["LONG_POLL_CAP", "ROUTE", "JobManager"]

_log = logging.getLogger("cyberian.server")

ROUTE: Final = "POST /jobs"
LONG_POLL_CAP: Final = 30.0
_STATUS_POLL: Final = 0.5  # a job driven by another replica: how often a long poll looks


class JobManager:
    """Accepts jobs, drives each in a task, answers waits, adopts open jobs (its own at
    startup, and those of replicas whose claim expired)."""

    def __init__(self, *, store: Store, resolver: ModelResolver, quotas: QuotaBook,
                 pipeline: Pipeline, events: JobEvents, limits: RequestLimits,
                 queue_size: int, busy_retry_after_sec: int, metrics: ServerMetrics,
                 replica: str, lease_seconds: float) -> None:
        self._store = store
        self._metrics = metrics
        self._limits = limits
        self._resolver = resolver
        self._quotas = quotas
        self._pipeline = pipeline
        self._events = events
        self._replica = replica
        self._lease = timedelta(seconds=lease_seconds)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self.capacity = Capacity(queue_size, busy_retry_after_sec, lambda: len(self._tasks))

    # -- acceptance ---------------------------------------------------------------

    def submit(self, principal: Principal, body: WorkBody, key: str | None,
               now: datetime) -> tuple[int, JobRecord]:
        """Accept a job (or return the one an identical earlier request created)."""
        account = principal.account
        self._limits.check(body)
        keyed = idempotency.keyed_request(account.id, ROUTE, key,
                                          body.model_dump(exclude_none=True))
        earlier = keyed.earlier(self._store) if keyed is not None else None
        if earlier is not None:
            job = jobstore.get_job(self._store, earlier.resource_id)
            assert job is not None
            return earlier.status_code, job
        self.capacity.check()
        resolved = self._resolver.resolve(body, account.id)
        self._quotas.admit(account, input_count=len(resolved.texts),
                           chunk_count=resolved.chunk_count,
                           billed_chunks=resolved.billed_chunks, now=now)
        job_id = f"job_{uuid.uuid4().hex}"
        try:
            with self._store.transaction() as conn:
                self._quotas.admit_locked(conn, account, billed_chunks=resolved.billed_chunks,
                                          now=now)
                jobstore.insert_job(
                    conn, job_id=job_id, account_id=account.id, kind="job", status="EXECUTING",
                    model_id=resolved.model_id, spec_hash=resolved.spec.spec_hash,
                    spec_yaml=resolved.spec.to_yaml(portable=True),
                    input_count=len(resolved.texts), chunk_count=resolved.chunk_count,
                    billed_chunks=resolved.billed_chunks, nonce=new_nonce(), now=now,
                    driver=(self._replica, now + self._lease))
                jobstore.insert_inputs(conn, job_id, resolved.texts)
                if keyed is not None:
                    keyed.remember(conn, status_code=201, resource_id=job_id, now=now)
        except StoreIntegrityError:
            # a concurrent request with the same Idempotency-Key (on another replica) won
            earlier = keyed.earlier(self._store) if keyed is not None else None
            if earlier is None:
                raise
            job = jobstore.get_job(self._store, earlier.resource_id)
            assert job is not None
            return earlier.status_code, job
        self._metrics.job_entered("EXECUTING")
        self._start(job_id)
        job = jobstore.get_job(self._store, job_id)
        assert job is not None
        return 201, job

    # -- reading ------------------------------------------------------------------

    def get(self, job_id: str, account_id: str) -> JobRecord:
        """The account's job; ``not_found`` for anyone else's or an unknown id."""
        job = jobstore.get_job(self._store, job_id, account_id=account_id)
        if job is None:
            raise not_found(f"job {job_id!r}")
        return job

    async def wait(self, job_id: str, account_id: str, max_wait: float) -> JobRecord:
        """The job once its status changes, or after ``min(max_wait, 30)`` seconds.

        A job this replica drives wakes the wait at once; one another replica
        drives is looked at every half second.
        """
        job = self.get(job_id, account_id)
        if job.status in jobstore.TERMINAL_STATES or max_wait <= 0:
            return job
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max_wait, LONG_POLL_CAP)
        while (remaining := deadline - loop.time()) > 0:
            timeout = remaining if job_id in self._tasks else min(remaining, _STATUS_POLL)
            if await self._events.wait(job_id, timeout):
                break
            current = self.get(job_id, account_id)
            if current.status != job.status:
                return current
        return self.get(job_id, account_id)

    def output(self, job: JobRecord) -> Iterator[bytes]:
        """A SETTLED job's embeddings, chunk after chunk (float32 little-endian rows)."""
        return jobstore.output_bytes(self._store, job.id)

    # -- running ------------------------------------------------------------------

    def _start(self, job_id: str) -> None:
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._pipeline.run(job_id), name=f"job {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    def adopt(self) -> int:
        """Claim and start this replica's own open jobs and those whose driver's claim
        expired; returns how many started now."""
        started = 0
        for job_id in jobstore.adopt_jobs(self._store, self._replica, utcnow(), self._lease):
            if job_id not in self._tasks:
                _log.info("resuming job %s", job_id)
                self._start(job_id)
                started += 1
        return started

    def start_renewing(self) -> None:
        """Renew this replica's claims (and adopt orphaned jobs) every third of the lease."""
        self._renewer = asyncio.create_task(self._renew(), name="job driver renewal")

    async def _renew(self) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                jobstore.extend_drivers(self._store, self._replica, utcnow(), self._lease)
                self._quotas.renew_holds(utcnow())
                self.adopt()
            except Exception:  # a database hiccup: try again at the next interval
                _log.exception("renewing this replica's job claims failed")

    async def close(self) -> None:
        """Stop running jobs; they stay open in the store and resume at the next start."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
