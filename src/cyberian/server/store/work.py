"""Work items for remote workers, and the workers themselves: the SQL of leases and heartbeats.

A job driven with ``job_workers: remote`` is cut into work items: ``executor``
items (a run of whole chunks to execute) and, once the sample is drawn,
``replayer`` items (the sampled chunks to replay). A worker claims the oldest
claimable item of its role -- pending, or leased by someone whose lease has
expired -- and holds it by heartbeats; a claim on PostgreSQL is ``SELECT ...
FOR UPDATE SKIP LOCKED``, so concurrent workers never wait on each other's
rows (on SQLite the write transaction admits one claimer at a time). A worker
may complete or fail only an item it still holds: a worker that lost its
lease (it stalled, or died and came back) finds its result refused and
drops it. A replayer item is never claimed by a worker that executed one of
its chunks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ..timeutil import iso
from .database import Connection, Row, Store

__all__ = [
    "WorkItem",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "heartbeat",
    "items_of",
    "register_worker",
    "workers",
]

Role = Literal["executor", "replayer"]


@dataclass(frozen=True)
class WorkItem:
    """A run of chunks of one job to execute or replay, and where its lease stands."""

    id: str
    job_id: str
    role: Role
    first_chunk: int
    chunk_count: int
    state: str
    lease_owner: str | None
    attempts: int
    manifest: dict[str, Any] | None
    error: str | None

    @classmethod
    def from_row(cls, row: Row) -> WorkItem:
        """The item stored in ``row``."""
        return cls(row["id"], row["job_id"], row["role"], int(row["first_chunk"]),
                   int(row["chunk_count"]), row["state"], row["lease_owner"],
                   int(row["attempts"]),
                   json.loads(row["manifest"]) if row["manifest"] else None, row["error"])

    @property
    def chunks(self) -> range:
        """The chunk indices the item covers."""
        return range(self.first_chunk, self.first_chunk + self.chunk_count)


def enqueue(conn: Connection, job_id: str, role: Role, runs: Sequence[tuple[int, int]],
            now: datetime) -> None:
    """Add one pending item per ``(first_chunk, chunk_count)`` run (inside the job's
    transaction)."""
    stamp = iso(now)
    conn.executemany(
        "INSERT INTO work_items (id, job_id, role, first_chunk, chunk_count, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(f"{job_id}:{role}:{first}", job_id, role, first, count, stamp, stamp)
         for first, count in runs])


def claim(store: Store, role: Role, worker: str, now: datetime, lease: timedelta, *,
          max_attempts: int = 3) -> WorkItem | None:
    """Lease the oldest claimable item of ``role`` to ``worker``, or ``None``.

    An expired item that was already leased ``max_attempts`` times (its workers
    died running it) is failed instead, so one poisonous piece cannot kill
    every worker in turn.
    """
    skip_locked = " FOR UPDATE SKIP LOCKED" if store.dialect == "postgresql" else ""
    not_own = ("" if role == "executor" else
               " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.job_id = w.job_id "
               "AND c.idx >= w.first_chunk AND c.idx < w.first_chunk + w.chunk_count "
               "AND c.executed_by = :worker)")
    find = ("SELECT w.id, w.attempts FROM work_items w WHERE w.role = :role "  # noqa: S608
            "AND (w.state = 'pending' OR (w.state = 'leased' AND w.lease_expires_at < :now))"
            + not_own + " ORDER BY w.created_at, w.id LIMIT 1" + skip_locked)
    while True:
        with store.transaction() as conn:
            row = conn.execute(find, {"role": role, "now": iso(now),
                                      "worker": worker}).fetchone()
            if row is None:
                return None
            if int(row[1]) >= max_attempts:
                conn.execute("UPDATE work_items SET state = 'failed', error = ?, "
                             "updated_at = ? WHERE id = ?",
                             (f"a {role} died {row[1]} times running these chunks; giving up",
                              iso(now), row[0]))
                continue
            conn.execute("UPDATE work_items SET state = 'leased', lease_owner = ?, "
                         "lease_expires_at = ?, attempts = attempts + 1, updated_at = ? "
                         "WHERE id = ?", (worker, iso(now + lease), iso(now), row[0]))
            claimed = conn.execute("SELECT * FROM work_items WHERE id = ?",
                                   (row[0],)).fetchone()
        return WorkItem.from_row(claimed)


def heartbeat(store: Store, worker: str, now: datetime, lease: timedelta) -> int:
    """Renew every lease ``worker`` holds and record that it is alive; how many leases."""
    with store.transaction() as conn:
        conn.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (iso(now), worker))
        return conn.execute("UPDATE work_items SET lease_expires_at = ? WHERE "
                            "lease_owner = ? AND state = 'leased'",
                            (iso(now + lease), worker)).rowcount


def complete(conn: Connection, item_id: str, worker: str, manifest: dict[str, Any],
             now: datetime) -> bool:
    """Mark an item done by the worker that holds it; ``False`` if it no longer does."""
    return conn.execute("UPDATE work_items SET state = 'done', manifest = ?, updated_at = ? "
                        "WHERE id = ? AND lease_owner = ? AND state = 'leased'",
                        (json.dumps(manifest), iso(now), item_id, worker)).rowcount == 1


def fail(store: Store, item_id: str, worker: str, error: str, now: datetime) -> bool:
    """Mark an item failed (the job fails with ``error``); ``False`` if ``worker`` lost it."""
    return store.execute("UPDATE work_items SET state = 'failed', error = ?, updated_at = ? "
                         "WHERE id = ? AND lease_owner = ? AND state = 'leased'",
                         (error, iso(now), item_id, worker)) == 1


def items_of(store: Store, job_id: str, role: Role) -> list[WorkItem]:
    """A job's items of one role, in chunk order."""
    rows = store.query("SELECT * FROM work_items WHERE job_id = ? AND role = ? "
                       "ORDER BY first_chunk", (job_id, role))
    return [WorkItem.from_row(row) for row in rows]


def register_worker(store: Store, *, worker: str, role: Role, host: str, pid: int,
                    cpu_class: str, now: datetime) -> None:
    """Record a worker that started."""
    store.execute("INSERT INTO workers (id, role, host, pid, cpu_class, started_at, "
                  "heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (worker, role, host, pid, cpu_class, iso(now), iso(now)))


def workers(store: Store, *, alive_since: datetime) -> list[dict[str, Any]]:
    """The workers that sent a heartbeat since ``alive_since``."""
    rows = store.query("SELECT id, role, host, pid, cpu_class, heartbeat_at FROM workers "
                       "WHERE heartbeat_at >= ? ORDER BY role, id", (iso(alive_since),))
    return [{"id": row[0], "role": row[1], "host": row[2], "pid": int(row[3]),
             "cpu_class": row[4], "heartbeat_at": row[5]} for row in rows]
