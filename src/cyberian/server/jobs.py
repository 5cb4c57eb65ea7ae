"""Accepting jobs, tracking the ones in flight, long polls, recovery after a restart.

Acceptance validates everything first -- dialect, spec, model, per-request
limits, quotas, queue room -- and writes nothing until all of it passed, so a
refused request leaves no row, no file and spends no quota. Then the inputs
are written (and fsynced) under ``<data-dir>/jobs/<id>/`` and, in one
transaction, the job row (EXECUTING, its chunk count and a fresh 32-byte
nonce) and the idempotency record are inserted. A crash between the two
leaves only an orphan folder, removed at the next start.

At startup every job still EXECUTING or PROVING is resumed (see
:mod:`cyberian.server.pipeline`): nothing is lost, nothing is charged twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path
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
from .pipeline import INPUTS_FILE, OUTPUT_FILE, Pipeline
from .quotas import QuotaBook
from .store import Store
from .store import jobs as jobstore
from .store.jobs import JobRecord

__all__ = ["LONG_POLL_CAP", "ROUTE", "JobManager"]

_log = logging.getLogger("cyberian.server")

ROUTE: Final = "POST /jobs"
LONG_POLL_CAP: Final = 30.0


def _write_inputs(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True)
    with path.open("w", encoding="utf-8") as handle:
        json.dump(texts, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


class JobManager:
    """Accepts jobs, runs each in a task, answers waits, resumes open jobs at startup."""

    def __init__(self, *, store: Store, resolver: ModelResolver, quotas: QuotaBook,
                 pipeline: Pipeline, events: JobEvents, jobs_dir: Path, limits: RequestLimits,
                 queue_size: int, busy_retry_after_sec: int, metrics: ServerMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._limits = limits
        self._resolver = resolver
        self._quotas = quotas
        self._pipeline = pipeline
        self._events = events
        self._jobs_dir = jobs_dir
        self._tasks: dict[str, asyncio.Task[None]] = {}
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
        folder = self._jobs_dir / job_id
        _write_inputs(folder / INPUTS_FILE, list(resolved.texts))
        try:
            with self._store.transaction() as conn:
                jobstore.insert_job(
                    conn, job_id=job_id, account_id=account.id, kind="job", status="EXECUTING",
                    model_id=resolved.model_id, spec_hash=resolved.spec.spec_hash,
                    spec_yaml=resolved.spec.to_yaml(portable=True),
                    input_count=len(resolved.texts), chunk_count=resolved.chunk_count,
                    billed_chunks=resolved.billed_chunks, nonce=new_nonce(), now=now)
                if keyed is not None:
                    keyed.remember(conn, status_code=201, resource_id=job_id, now=now)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
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
        """The job once its status changes, or after ``min(max_wait, 30)`` seconds."""
        job = self.get(job_id, account_id)
        if job.status in jobstore.TERMINAL_STATES or max_wait <= 0:
            return job
        await self._events.wait(job_id, min(max_wait, LONG_POLL_CAP))
        return self.get(job_id, account_id)

    def output_path(self, job: JobRecord) -> Path:
        """Where a job's embeddings are stored."""
        return self._jobs_dir / job.id / OUTPUT_FILE

    # -- running ------------------------------------------------------------------

    def _start(self, job_id: str) -> None:
        task = asyncio.create_task(self._pipeline.run(job_id), name=f"job {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    def cleanup_orphans(self) -> int:
        """Remove job folders without a job row (a crash between file and commit)."""
        self._jobs_dir.mkdir(parents=True, exist_ok=True)
        known = jobstore.job_ids(self._store, "job")
        removed = 0
        for folder in self._jobs_dir.iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def recover(self) -> int:
        """Resume every open job; returns how many."""
        open_jobs = jobstore.open_jobs(self._store)
        for job in open_jobs:
            _log.info("resuming job %s (%s)", job.id, job.status)
            self._start(job.id)
        return len(open_jobs)

    async def close(self) -> None:
        """Stop running jobs; they stay open in the store and resume at the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
