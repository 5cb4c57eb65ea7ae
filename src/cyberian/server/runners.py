"""Where a job's chunks run: this replica's worker processes, or remote workers via the database.

A :class:`ChunkRunner` executes every chunk of a job (recording each chunk's
commitments and rows with the worker that produced them) and replays the
sampled ones (recording each replay with the worker that made it). The
pipeline (:mod:`cyberian.server.pipeline`) decides everything else.

* :class:`LocalRunner` (``job_workers: local``, the default) sends pieces of
  whole chunks to the replica's executor processes and the sample to its
  replayer process.
* :class:`RemoteRunner` (``job_workers: remote``) writes work items that
  ``cyberian worker`` processes lease (:mod:`cyberian.server.store.work`,
  :mod:`cyberian.server.remote_worker`) and waits until they are done; the
  work survives the replica, so a job adopted by another replica continues
  where it stood.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ..spec import Spec
from .metrics import ServerMetrics
from .store import Connection, Store, work
from .store import jobs as jobstore
from .store.jobs import JobRecord
from .timeutil import utcnow
from .workers.pool import WorkerPool
from .workers.tasks import ReplayItem, ReplayOutcome, TaskFailed, execute_piece, replay_chunks

__all__ = ["PIECE_TEXTS", "ChunkRunner", "LocalRunner", "RemoteRunner", "ReplayReport",
           "piece_chunks", "replay_items"]

PIECE_TEXTS: Final = 512
"""About how many texts one piece of work (a call, a work item) carries."""

_POLL_MIN: Final = 0.05
_POLL_MAX: Final = 0.5


def piece_chunks(chunk_size: int) -> int:
    """How many whole chunks one piece of work carries."""
    return max(1, PIECE_TEXTS // chunk_size)


def replay_items(store: Store, job: JobRecord, spec: Spec, texts: Sequence[str],
                 indices: Sequence[int]) -> list[ReplayItem]:
    """The sampled chunks to replay: texts, the executor's commitments and its stored rows."""
    commitments = {chunk.index: chunk for chunk in jobstore.chunk_commitments(store, job.id)}
    stored = jobstore.chunk_outputs(store, job.id, indices)
    size = spec.chunk_size
    return [ReplayItem(i, tuple(texts[i * size:(i + 1) * size]),
                       commitments[i].output_commitment, stored.get(i, b""))
            for i in indices]


@dataclass(frozen=True)
class ReplayReport:
    """The replay of a job's sample: one outcome per sampled chunk, the replayer's manifest."""

    outcomes: tuple[ReplayOutcome, ...]
    manifest: dict[str, Any]


class ChunkRunner(Protocol):
    """Runs a job's chunks and its sample somewhere."""

    async def execute(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> dict[str, Any]:
        """Execute every chunk and record it; the executor's environment manifest."""

    def plan_replay(self, conn: Connection, job: JobRecord, spec: Spec,
                    sampled: Sequence[int]) -> None:
        """Record, in the transaction that fixes the sample, what is to be replayed."""

    async def replay(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> ReplayReport:
        """Replay the job's sampled chunks and record each outcome."""


class LocalRunner:
    """The replica's own executor processes and replayer process."""

    def __init__(self, store: Store, pool: WorkerPool, metrics: ServerMetrics,
                 replica: str) -> None:
        self._store = store
        self._pool = pool
        self._metrics = metrics
        self._replica = replica

    async def execute(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> dict[str, Any]:
        """Run pieces of whole chunks on the executors, as many at once as there are."""
        with self._store.transaction() as conn:
            jobstore.restart_execution(conn, job.id, utcnow(), driver=self._replica)
        size = spec.chunk_size
        piece = piece_chunks(size) * size
        slots = asyncio.Semaphore(self._pool.executors)
        manifests: dict[int, dict[str, Any]] = {}

        async def run_piece(start: int) -> None:
            """Execute the piece starting at text ``start`` and record its chunks."""
            async with slots:
                result = await self._pool.on_executor(
                    execute_piece, spec, list(texts[start:start + piece]), start // size)
            with self._store.transaction() as conn:
                jobstore.add_chunks(conn, job.id, result.chunks, result.outputs, result.worker,
                                    utcnow(), driver=self._replica)
            self._metrics.executed("job", chunks=len(result.chunks),
                                   texts=min(piece, len(texts) - start))
            manifests[start] = result.manifest

        try:
            async with asyncio.TaskGroup() as group:
                for start in range(0, len(texts), piece):
                    group.create_task(run_piece(start))
        except ExceptionGroup as failure:  # the first failing piece decides the job's fate
            raise failure.exceptions[0] from None
        return manifests[0]

    def plan_replay(self, conn: Connection, job: JobRecord, spec: Spec,
                    sampled: Sequence[int]) -> None:
        """Nothing to record: the replayer process is called directly."""

    async def replay(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> ReplayReport:
        """Replay the sample on the replayer process, a few chunks per call."""
        assert job.sampled is not None
        per_call = piece_chunks(spec.chunk_size)
        outcomes: list[ReplayOutcome] = []
        manifest: dict[str, Any] = {}
        for start in range(0, len(job.sampled), per_call):
            items = replay_items(self._store, job, spec, texts,
                                 job.sampled[start:start + per_call])
            result = await self._pool.on_replayer(replay_chunks, spec, items)
            with self._store.transaction() as conn:
                jobstore.record_replays(conn, job.id, [(o.index, o.output_commitment, o.match)
                                                       for o in result.outcomes], result.worker)
            outcomes.extend(result.outcomes)
            manifest = result.manifest
            self._metrics.replayed(chunks=len(result.outcomes), mismatches=sum(
                not outcome.match for outcome in result.outcomes))
        return ReplayReport(tuple(outcomes), manifest)


class RemoteRunner:
    """Work items in the database, leased by ``cyberian worker`` processes."""

    def __init__(self, store: Store, metrics: ServerMetrics, replica: str) -> None:
        self._store = store
        self._metrics = metrics
        self._replica = replica

    async def execute(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> dict[str, Any]:
        """Queue the job's pieces (unless queued before) and wait until all are done."""
        if not work.items_of(self._store, job.id, "executor"):
            per_item = piece_chunks(spec.chunk_size)
            runs = [(first, min(per_item, job.chunk_count - first))
                    for first in range(0, job.chunk_count, per_item)]
            with self._store.transaction() as conn:
                jobstore.restart_execution(conn, job.id, utcnow(), driver=self._replica)
                work.enqueue(conn, job.id, "executor", runs, utcnow())
        items = await self._finished(job, "executor", spec)
        return items[0].manifest or {}

    def plan_replay(self, conn: Connection, job: JobRecord, spec: Spec,
                    sampled: Sequence[int]) -> None:
        """Queue the sampled chunks for the replayers, a few consecutive ones per item."""
        per_item = piece_chunks(spec.chunk_size)
        runs: list[tuple[int, int]] = []
        for index in sorted(sampled):
            if runs and runs[-1][0] + runs[-1][1] == index and runs[-1][1] < per_item:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((index, 1))
        work.enqueue(conn, job.id, "replayer", runs, utcnow())

    async def replay(self, job: JobRecord, spec: Spec, texts: Sequence[str]) -> ReplayReport:
        """Wait for the replayers, then read every outcome they recorded."""
        items = await self._finished(job, "replayer", spec)
        assert job.sampled is not None
        rows = {int(row[0]): row for row in self._store.query(
            "SELECT idx, output_commitment, replay_commitment, replay_match FROM chunks "
            "WHERE job_id = ? AND replay_match IS NOT NULL", (job.id,))}
        outcomes = []
        for index in job.sampled:
            row = rows[index]
            executed, replayed, match = row[1], row[2], row[3]
            detail = ""
            if not match:
                detail = (f"chunk {index}: the executor committed {executed}, the replay "
                          f"gives {replayed}" if executed != replayed else
                          f"chunk {index}: the stored output differs from the replay")
            outcomes.append(ReplayOutcome(index, str(replayed), bool(match), detail))
        self._metrics.replayed(chunks=len(outcomes),
                               mismatches=sum(not outcome.match for outcome in outcomes))
        return ReplayReport(tuple(outcomes), items[0].manifest or {})

    async def _finished(self, job: JobRecord, role: work.Role,
                        spec: Spec) -> list[work.WorkItem]:
        """The job's items of ``role`` once every one is done (a failed one fails the job)."""
        delay = _POLL_MIN
        counted: set[str] = set()
        while True:
            items = work.items_of(self._store, job.id, role)
            failed = [item for item in items if item.state == "failed"]
            if failed:
                raise TaskFailed(failed[0].error or f"a remote {role} failed")
            for item in items:
                if item.state == "done" and item.id not in counted:
                    counted.add(item.id)
                    if role == "executor":
                        self._metrics.executed("job", chunks=item.chunk_count, texts=min(
                            item.chunk_count * spec.chunk_size,
                            job.input_count - item.first_chunk * spec.chunk_size))
            if items and all(item.state == "done" for item in items):
                return items
            await asyncio.sleep(delay)
            delay = min(_POLL_MAX, delay * 2)
