"""``cyberian worker``: a process on any machine that leases job chunks from the shared database.

A worker registers itself (``workers``: id, role, host, pid, CPU class),
then loops: claim the oldest claimable work item of its role
(:func:`cyberian.server.store.work.claim`), run it, and store the result in
the same transaction that marks the item done -- only while it still holds
the lease. A heartbeat thread renews its leases every third of
``lease_seconds``; a worker that dies stops renewing, its lease expires, and
another worker of the role takes the item over. An item whose worker died
:data:`MAX_ATTEMPTS` times is failed (and its job with it) rather than
passed on forever.

* An **executor** runs a run of whole chunks of a job's stored inputs and
  stores each chunk's commitments and rows, naming itself in
  ``chunks.executed_by``.
* A **replayer** re-runs sampled chunks and compares them, byte for byte,
  with the rows and commitments the executor stored; it never takes an item
  holding a chunk it executed itself, and it names itself in
  ``chunks.replayed_by``.

Models: a worker resolves a job's model and tokenizer by SHA-256 in its
model store (``<data-dir>/models``, or ``models_dir`` -- the replicas' shared
model store, which holds uploads too), filled from the catalog folder and the
shared model cache, built from the shipped recipes when needed. A job whose
files the worker does not hold fails with a message saying so.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from ..cpuclass import cpu_class
from ..models.cache import ModelCache
from ..spec import Spec, parse_spec
from .catalog import Catalog
from .runners import replay_items
from .store import Store, work
from .store import jobs as jobstore
from .store.files import ModelFiles
from .timeutil import utcnow
from .workers import tasks
from .workers.tasks import TaskFailed

__all__ = ["MAX_ATTEMPTS", "RemoteWorker", "WorkerSettings"]

_log = logging.getLogger("cyberian.worker")

MAX_ATTEMPTS: Final = 3
"""Leases of one item a worker may lose by dying before the item is failed."""


class _LostLease(Exception):  # noqa: N818 - a state, not an error
    """Another worker holds the item now; this one's result is dropped."""


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker is configured with."""

    role: work.Role
    data_dir: Path
    specs_dir: Path
    models_dir: Path | None = None
    threads: int = 1
    lease_seconds: float = 15.0
    poll_seconds: float = 0.2


class RemoteWorker:
    """One worker process: registration, heartbeats, the claim loop."""

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self._store = store
        self._settings = settings
        self._lease = timedelta(seconds=settings.lease_seconds)
        self.id = f"wrk_{secrets.token_hex(8)}"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.models_dir is None:
            root, self._staging = settings.data_dir / "models", settings.data_dir / "tmp"
        else:  # staged beside the shared store (a rename moves a file in), one folder each
            root, self._staging = settings.models_dir, settings.models_dir / f".staging-{self.id}"
        shutil.rmtree(self._staging, ignore_errors=True)
        self._files = ModelFiles(root, self._staging, cache=ModelCache.default())
        self._inputs: tuple[str, list[str]] | None = None  # the last job's texts
        self._catalog = Catalog.seed(settings.specs_dir, self._files)
        self._stop = threading.Event()
        self.done = 0

    def stop(self) -> None:
        """Finish the item in hand, then return from :meth:`run`."""
        self._stop.set()

    def run(self, max_items: int | None = None) -> int:
        """Claim and run items until stopped (or after ``max_items``); how many were done."""
        tasks.init_worker(self._settings.role, self._catalog.specs(), self._settings.threads,
                          None, session=self.id)
        work.register_worker(self._store, worker=self.id, role=self._settings.role,
                             host=socket.gethostname(), pid=os.getpid(), cpu_class=cpu_class(),
                             now=utcnow())
        _log.info("worker %s (%s) on %s, CPU class %s, database %s", self.id,
                  self._settings.role, socket.gethostname(), cpu_class(),
                  self._store.location)
        beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
        beat.start()
        try:
            while not self._stop.is_set() and (max_items is None or self.done < max_items):
                item = work.claim(self._store, self._settings.role, self.id, utcnow(),
                                  self._lease, max_attempts=MAX_ATTEMPTS)
                if item is None:
                    self._stop.wait(self._settings.poll_seconds)
                    continue
                self._run_item(item)
        finally:
            self._stop.set()
            beat.join()
            if self._settings.models_dir is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
        return self.done

    def _heartbeats(self) -> None:
        interval = self._settings.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                work.heartbeat(self._store, self.id, utcnow(), self._lease)
            except Exception:  # the database is away for a moment: the next beat retries
                _log.exception("heartbeat failed")

    def _run_item(self, item: work.WorkItem) -> None:
        _log.info("%s: chunks %d-%d of %s", item.role, item.first_chunk,
                  item.first_chunk + item.chunk_count - 1, item.job_id)
        try:
            if item.role == "executor":
                self._execute(item)
            else:
                self._replay(item)
        except _LostLease:
            _log.warning("lost the lease of %s to another worker; dropped its result", item.id)
            return
        except TaskFailed as exc:
            message = "internal error in a remote worker" if exc.internal else exc.message
            work.fail(self._store, item.id, self.id, message, utcnow())
            return
        self.done += 1

    def _job(self, item: work.WorkItem) -> tuple[jobstore.JobRecord, Spec, list[str]]:
        job = jobstore.get_job(self._store, item.job_id)
        texts = self._texts(item.job_id)
        if job is None or texts is None:
            raise TaskFailed(f"job {item.job_id} or its inputs are gone")
        spec = parse_spec(job.spec_yaml)
        for what, sha256 in (("model", spec.model_sha256), ("tokenizer",
                                                            spec.tokenizer_sha256)):
            if not self._files.has(sha256):
                raise TaskFailed(f"worker {self.id} does not hold the {what} file {sha256} of "
                                 "this job (remote workers serve the catalog models; share the "
                                 "models folder for uploads)")
        return job, spec.with_files(self._files.path(spec.model_sha256),
                                    self._files.path(spec.tokenizer_sha256)), texts

    def _texts(self, job_id: str) -> list[str] | None:
        """A job's input texts (read once for the items of one job in a row)."""
        if self._inputs is not None and self._inputs[0] == job_id:
            return self._inputs[1]
        texts = jobstore.get_inputs(self._store, job_id)
        self._inputs = (job_id, texts) if texts is not None else None
        return texts

    def _execute(self, item: work.WorkItem) -> None:
        _, spec, texts = self._job(item)
        size = spec.chunk_size
        result = tasks.execute_piece(
            spec, texts[item.first_chunk * size:(item.first_chunk + item.chunk_count) * size],
            item.first_chunk)
        with self._store.transaction() as conn:
            if not work.complete(conn, item.id, self.id, result.manifest, utcnow()):
                raise _LostLease
            jobstore.add_chunks(conn, item.job_id, result.chunks, result.outputs, self.id,
                                utcnow())

    def _replay(self, item: work.WorkItem) -> None:
        job, spec, texts = self._job(item)
        result = tasks.replay_chunks(spec, replay_items(self._store, job, spec, texts,
                                                        list(item.chunks)))
        with self._store.transaction() as conn:
            if not work.complete(conn, item.id, self.id, result.manifest, utcnow()):
                raise _LostLease
            jobstore.record_replays(conn, item.job_id, [
                (o.index, o.output_commitment, o.match) for o in result.outcomes], self.id)
