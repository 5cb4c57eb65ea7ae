"""Jobs, chunks and receipts in the store: the SQL behind the job lifecycle, VaaS and usage.

States: ``EXECUTING`` -> ``PROVING`` -> ``SETTLED`` (with a receipt, in the
same transaction; a CHECK constraint makes a SETTLED row without a receipt
impossible), or ``FAILED`` / ``REFUNDED``. Transitions only move forward:
every status update names the states it may leave.

A job's inputs (``job_inputs``, a JSON array) and its output rows (each
chunk's float32 bytes in ``chunks.output``) are in the database, so every
replica and worker reaches them. An open job is driven by one replica at a
time: ``jobs.driver`` names it and ``driver_expires_at`` says until when its
claim holds without a heartbeat; another replica adopts a job whose claim
has expired (:func:`adopt_jobs`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from ...commitments import ChunkCommitment
from ..timeutil import iso
from .database import Connection, Row, Store
from .log import append_entry

__all__ = [
    "OPEN_STATES",
    "TERMINAL_STATES",
    "JobRecord",
    "NotDriverError",
    "add_chunks",
    "adopt_jobs",
    "chunk_commitments",
    "chunk_outputs",
    "chunk_results",
    "chunks_used",
    "chunks_used_in",
    "extend_drivers",
    "finish",
    "get_inputs",
    "get_job",
    "get_receipt",
    "insert_inputs",
    "insert_job",
    "is_driver",
    "job_ids",
    "mark_proving",
    "open_job_counts",
    "open_job_using",
    "open_jobs",
    "output_bytes",
    "record_replays",
    "restart_execution",
    "settle",
    "store_receipt",
]

OPEN_STATES: Final = ("EXECUTING", "PROVING")
TERMINAL_STATES: Final = ("SETTLED", "FAILED", "REFUNDED")
Kind = Literal["job", "vaas"]


class NotDriverError(RuntimeError):
    """Another replica drives the job now: this one must leave it alone."""


@dataclass(frozen=True)
class JobRecord:
    """A stored job (or VaaS request): what was asked, where it stands, what it committed."""

    id: str
    account_id: str
    kind: Kind
    status: str
    model_id: str | None
    spec_hash: str
    spec_yaml: str
    input_count: int
    chunk_count: int
    billed_chunks: int
    chunks_done: int
    nonce: bytes
    input_root: str | None
    output_root: str | None
    sampled: tuple[int, ...] | None
    executor_env: dict[str, Any] | None
    receipt_id: str | None
    error: str | None
    created_at: str
    updated_at: str

    def __repr__(self) -> str:  # the nonce stays secret until the receipt reveals it
        return f"JobRecord(id={self.id!r}, status={self.status!r})"

    @classmethod
    def from_row(cls, row: Row) -> JobRecord:
        """The record in ``row``."""
        return cls(
            id=row["id"], account_id=row["account_id"], kind=row["kind"], status=row["status"],
            model_id=row["model_id"], spec_hash=row["spec_hash"], spec_yaml=row["spec_yaml"],
            input_count=row["input_count"], chunk_count=row["chunk_count"],
            billed_chunks=row["billed_chunks"] or row["chunk_count"],
            chunks_done=row["chunks_done"], nonce=bytes.fromhex(row["nonce"]),
            input_root=row["input_root"], output_root=row["output_root"],
            sampled=tuple(json.loads(row["sampled"])) if row["sampled"] else None,
            executor_env=json.loads(row["executor_env"]) if row["executor_env"] else None,
            receipt_id=row["receipt_id"], error=row["error"], created_at=row["created_at"],
            updated_at=row["updated_at"])

    def view(self) -> dict[str, Any]:
        """The public ``GET /jobs/{id}`` form (never the nonce before the receipt shows it)."""
        return {
            "id": self.id,
            "status": self.status,
            "receipt_id": self.receipt_id,
            "chunk_count": self.chunk_count,
            "billed_chunks": self.billed_chunks,
            "chunks_done": self.chunks_done,
            "error": self.error,
            "model": self.model_id,
            "spec_hash": self.spec_hash,
            "input_count": self.input_count,
            "sampled_chunks": list(self.sampled) if self.sampled is not None else None,
            "input_root": self.input_root,
            "output_root": self.output_root,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def insert_job(conn: Connection, *, job_id: str, account_id: str, kind: Kind,
               status: str, model_id: str | None, spec_hash: str, spec_yaml: str,
               input_count: int, chunk_count: int, billed_chunks: int, nonce: bytes,
               now: datetime, receipt_id: str | None = None, chunks_done: int = 0,
               roots: tuple[str, str] | None = None, error: str | None = None,
               driver: tuple[str, datetime] | None = None) -> None:
    """Insert a job row (a VaaS request is inserted already SETTLED with its receipt, or
    FAILED with the reason when its claim did not match); ``driver``: the replica that
    drives the open job and until when its claim holds."""
    stamp = iso(now)
    conn.execute(
        "INSERT INTO jobs (id, account_id, kind, status, model_id, spec_hash, spec_yaml, "
        "input_count, chunk_count, billed_chunks, chunks_done, nonce, input_root, "
        "output_root, receipt_id, error, created_at, updated_at, driver, driver_expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (job_id, account_id, kind, status, model_id, spec_hash, spec_yaml, input_count,
         chunk_count, billed_chunks, chunks_done, nonce.hex(), roots[0] if roots else None,
         roots[1] if roots else None, receipt_id, error, stamp, stamp,
         driver[0] if driver else None, iso(driver[1]) if driver else None))


def insert_inputs(conn: Connection, job_id: str, texts: Sequence[str]) -> None:
    """Store a job's input texts (in the transaction that inserts the job)."""
    conn.execute("INSERT INTO job_inputs (job_id, texts) VALUES (?, ?)",
                 (job_id, json.dumps(list(texts), ensure_ascii=False)))


def get_inputs(store: Store, job_id: str) -> list[str] | None:
    """A job's input texts, or ``None`` when none are stored."""
    row = store.query_one("SELECT texts FROM job_inputs WHERE job_id = ?", (job_id,))
    if row is None:
        return None
    texts: list[str] = json.loads(row[0])
    return texts


def get_job(store: Store, job_id: str, *, account_id: str | None = None,
            kind: Kind | None = "job") -> JobRecord | None:
    """The job with this id (of this account and kind, when given), or ``None``."""
    row = store.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        return None
    record = JobRecord.from_row(row)
    if (account_id is not None and record.account_id != account_id) or (
            kind is not None and record.kind != kind):
        return None
    return record


def open_jobs(store: Store) -> list[JobRecord]:
    """Every job not yet in a terminal state, oldest first."""
    rows = store.query("SELECT * FROM jobs WHERE status IN ('EXECUTING', 'PROVING') "
                       "ORDER BY created_at, id")
    return [JobRecord.from_row(row) for row in rows]


def open_job_counts(store: Store) -> dict[str, int]:
    """How many jobs are EXECUTING and how many PROVING (an indexed count)."""
    rows = store.query("SELECT status, COUNT(*) FROM jobs WHERE status IN "
                       "('EXECUTING', 'PROVING') AND kind = 'job' GROUP BY status")
    return {str(row[0]): int(row[1]) for row in rows}


def job_ids(store: Store, kind: Kind) -> set[str]:
    """The ids of every stored job of this kind."""
    return {row[0] for row in store.query("SELECT id FROM jobs WHERE kind = ?", (kind,))}


def open_job_using(store: Store, model_id: str) -> str | None:
    """The id of an unfinished job that uses this model, or ``None``."""
    row = store.query_one(
        "SELECT id FROM jobs WHERE model_id = ? AND status IN ('EXECUTING', 'PROVING') "
        "LIMIT 1", (model_id,))
    return str(row["id"]) if row is not None else None


_CHARGE: Final = "COALESCE(billed_chunks, chunk_count)"
_CHUNKS_USED: Final = (
    f"SELECT COALESCE(SUM(CASE WHEN created_at >= :period THEN {_CHARGE} END), 0), "  # noqa: S608
    f"       COALESCE(SUM(CASE WHEN created_at >= :day THEN {_CHARGE} END), 0) "
    "FROM jobs WHERE account_id = :account AND created_at >= :since "
    "AND (kind = 'vaas' OR status NOT IN ('FAILED', 'REFUNDED'))")


def _usage_params(account_id: str, period_start: datetime,
                  day_start: datetime) -> dict[str, str]:
    return {"period": iso(period_start), "day": iso(day_start), "account": account_id,
            "since": iso(min(period_start, day_start))}


def chunks_used(store: Store, account_id: str, *, period_start: datetime,
                day_start: datetime) -> tuple[int, int]:
    """Chunks charged since each start: (period, day).

    Charged are the account's live or settled jobs, and all its VaaS requests
    (a FAILED one is a claim that did not match after a full re-execution).
    """
    row = store.query_one(_CHUNKS_USED, _usage_params(account_id, period_start, day_start))
    assert row is not None
    return int(row[0]), int(row[1])


def chunks_used_in(conn: Connection, account_id: str, *, period_start: datetime,
                   day_start: datetime) -> tuple[int, int]:
    """:func:`chunks_used`, read inside a transaction."""
    row = conn.execute(_CHUNKS_USED,
                       _usage_params(account_id, period_start, day_start)).fetchone()
    return int(row[0]), int(row[1])


def restart_execution(conn: Connection, job_id: str, now: datetime, *, driver: str) -> None:
    """Forget partial execution results (a resumed job re-executes from its inputs); only
    the job's ``driver`` may (:class:`NotDriverError`)."""
    _as_driver(conn, "UPDATE jobs SET chunks_done = 0, updated_at = ? WHERE id = ? "
                     "AND status = 'EXECUTING' AND driver = ?", (iso(now), job_id, driver))
    conn.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))


def _as_driver(conn: Connection, sql: str, params: Sequence[Any]) -> None:
    """Run an update of one job row that holds only for its driver (the row stays locked
    until the transaction ends); :class:`NotDriverError` when it changed nothing."""
    if conn.execute(sql, params).rowcount != 1:
        raise NotDriverError("this replica no longer drives the job")


def add_chunks(conn: Connection, job_id: str, chunks: Sequence[ChunkCommitment],
               outputs: Sequence[bytes], executed_by: str, now: datetime, *,
               driver: str | None = None) -> None:
    """Record the executor's commitments and output rows of some chunks (``outputs[i]``
    belongs to ``chunks[i]``) and advance ``chunks_done``; with ``driver``, only while that
    replica drives the job (:class:`NotDriverError`; a remote worker's guard is its lease)."""
    if driver is not None:
        _as_driver(conn, "UPDATE jobs SET chunks_done = chunks_done + ?, updated_at = ? "
                         "WHERE id = ? AND status = 'EXECUTING' AND driver = ?",
                   (len(chunks), iso(now), job_id, driver))
    conn.executemany(
        "INSERT INTO chunks (job_id, idx, input_commitment, output_commitment, output, "
        "executed_by) VALUES (?, ?, ?, ?, ?, ?)",
        [(job_id, c.index, c.input_commitment, c.output_commitment, output, executed_by)
         for c, output in zip(chunks, outputs, strict=True)])
    if driver is None:
        conn.execute("UPDATE jobs SET chunks_done = chunks_done + ?, updated_at = ? "
                     "WHERE id = ? AND status = 'EXECUTING'", (len(chunks), iso(now), job_id))


def chunk_commitments(store: Store, job_id: str) -> list[ChunkCommitment]:
    """The executor's chunk commitments, in index order."""
    rows = store.query("SELECT idx, input_commitment, output_commitment FROM chunks "
                       "WHERE job_id = ? ORDER BY idx", (job_id,))
    return [ChunkCommitment(row[0], row[1], row[2]) for row in rows]


def mark_proving(conn: Connection, job_id: str, *, roots: tuple[str, str],
                 sampled: Sequence[int], executor_env: Mapping[str, Any], now: datetime,
                 driver: str) -> None:
    """Fix the roots and the drawn sample; the job moves to PROVING (only its ``driver``
    moves it: :class:`NotDriverError`)."""
    _as_driver(conn, "UPDATE jobs SET status = 'PROVING', input_root = ?, output_root = ?, "
                     "sampled = ?, executor_env = ?, updated_at = ? WHERE id = ? "
                     "AND status = 'EXECUTING' AND driver = ?",
               (roots[0], roots[1], json.dumps(list(sampled)), json.dumps(executor_env),
                iso(now), job_id, driver))
    conn.executemany("UPDATE chunks SET sampled = 1 WHERE job_id = ? AND idx = ?",
                     [(job_id, index) for index in sampled])


def record_replays(conn: Connection, job_id: str,
                   outcomes: Iterable[tuple[int, str, bool]], replayed_by: str) -> None:
    """Store each replayed chunk's commitment, whether it matched and who replayed it."""
    conn.executemany("UPDATE chunks SET replay_commitment = ?, replay_match = ?, "
                     "replayed_by = ? WHERE job_id = ? AND idx = ?",
                     [(commitment, int(match), replayed_by, job_id, index)
                      for index, commitment, match in outcomes])


def chunk_outputs(store: Store, job_id: str, indices: Sequence[int]) -> dict[int, bytes]:
    """The stored output rows of some chunks, by index."""
    found: dict[int, bytes] = {}
    for start in range(0, len(indices), 500):
        part = list(indices[start:start + 500])
        marks = ", ".join("?" * len(part))
        rows = store.query(f"SELECT idx, output FROM chunks WHERE job_id = ? "  # noqa: S608
                           f"AND idx IN ({marks})", [job_id, *part])
        found.update({int(row[0]): bytes(row[1]) for row in rows if row[1] is not None})
    return found


def output_bytes(store: Store, job_id: str, *, batch: int = 256) -> Iterator[bytes]:
    """A job's output rows, chunk after chunk, read ``batch`` chunks at a time."""
    start = 0
    while True:
        rows = store.query("SELECT idx, output FROM chunks WHERE job_id = ? AND idx >= ? "
                           "ORDER BY idx LIMIT ?", (job_id, start, batch))
        for row in rows:
            yield bytes(row[1])
        if len(rows) < batch:
            return
        start = int(rows[-1][0]) + 1


def adopt_jobs(store: Store, replica: str, now: datetime, lease: timedelta) -> list[str]:
    """Claim every open job whose driver is ``replica`` or whose driver's claim expired;
    the ids of the jobs ``replica`` now drives (that it did not drive before included)."""
    with store.transaction() as conn:
        conn.execute("UPDATE jobs SET driver = ?, driver_expires_at = ? "
                     "WHERE status IN ('EXECUTING', 'PROVING') AND kind = 'job' "
                     "AND (driver IS NULL OR driver = ? OR driver_expires_at < ?)",
                     (replica, iso(now + lease), replica, iso(now)))
        rows = conn.execute("SELECT id FROM jobs WHERE driver = ? AND status IN "
                            "('EXECUTING', 'PROVING') ORDER BY created_at, id",
                            (replica,)).fetchall()
    return [str(row[0]) for row in rows]


def extend_drivers(store: Store, replica: str, now: datetime, lease: timedelta) -> None:
    """Renew ``replica``'s claim on the open jobs it drives."""
    store.execute("UPDATE jobs SET driver_expires_at = ? WHERE driver = ? "
                  "AND status IN ('EXECUTING', 'PROVING')", (iso(now + lease), replica))


def is_driver(store: Store, job_id: str, replica: str) -> bool:
    """Whether ``replica`` still drives the job."""
    return store.query_one("SELECT 1 FROM jobs WHERE id = ? AND driver = ?",
                           (job_id, replica)) is not None


def store_receipt(conn: Connection, receipt: Mapping[str, Any], *, account_id: str,
                  now: datetime) -> None:
    """Insert a signed receipt and append it to the transparency log (inside the caller's
    transaction: the receipt is visible exactly when it is logged)."""
    if not conn.in_transaction:
        raise RuntimeError("store_receipt must run inside a transaction")
    conn.execute("INSERT INTO receipts (id, account_id, job_id, kind, body, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 (receipt["receipt_id"], account_id, receipt["job_id"], receipt["kind"],
                  json.dumps(receipt, separators=(",", ":")), iso(now)))
    append_entry(conn, receipt, now)


def settle(conn: Connection, job_id: str, receipt: Mapping[str, Any], *,
           account_id: str, now: datetime, driver: str) -> None:
    """Store the receipt and mark the job SETTLED with it (call inside one transaction;
    only the job's ``driver`` may, and only from PROVING)."""
    store_receipt(conn, receipt, account_id=account_id, now=now)
    changed = conn.execute("UPDATE jobs SET status = 'SETTLED', receipt_id = ?, error = NULL, "
                           "updated_at = ? WHERE id = ? AND status = 'PROVING' "
                           "AND driver = ?",
                           (receipt["receipt_id"], iso(now), job_id, driver)).rowcount
    if changed != 1:
        raise RuntimeError(f"job {job_id} is not PROVING under driver {driver}; not settling it")


def finish(conn: Connection, job_id: str, status: Literal["FAILED", "REFUNDED"],
           error: str, now: datetime, *, driver: str) -> bool:
    """End a job without a receipt (its chunks stop counting against the quota, its rows
    are dropped); whether it ended (only its ``driver`` ends an open job)."""
    ended = conn.execute("UPDATE jobs SET status = ?, error = ?, updated_at = ? WHERE id = ? "
                         "AND status IN ('EXECUTING', 'PROVING') AND driver = ?",
                         (status, error, iso(now), job_id, driver)).rowcount == 1
    if ended:  # rows no one will be served: only the commitments stay, for /results
        conn.execute("UPDATE chunks SET output = NULL WHERE job_id = ?", (job_id,))
    return ended


def chunk_results(store: Store, job: JobRecord) -> list[dict[str, Any]]:
    """The ``GET /jobs/{id}/results`` entries, one per chunk (PENDING until executed)."""
    rows = {row["idx"]: row for row in store.query(
        "SELECT idx, input_commitment, output_commitment, sampled, replay_match, executed_by, "
        "replayed_by FROM chunks WHERE job_id = ? ORDER BY idx", (job.id,))}
    results = []
    for index in range(job.chunk_count):
        row = rows.get(index)
        if row is None:
            results.append({"index": index, "status": "PENDING", "input_commitment": None,
                            "output_commitment": None, "sampled": False, "replay_match": None,
                            "executed_by": None, "replayed_by": None})
            continue
        match = None if row["replay_match"] is None else bool(row["replay_match"])
        status = {None: "COMMITTED", True: "VERIFIED", False: "MISMATCH"}[match]
        results.append({"index": index, "status": status,
                        "input_commitment": row["input_commitment"],
                        "output_commitment": row["output_commitment"],
                        "sampled": bool(row["sampled"]), "replay_match": match,
                        "executed_by": row["executed_by"], "replayed_by": row["replayed_by"]})
    return results


def get_receipt(store: Store, receipt_id: str, account_id: str) -> dict[str, Any] | None:
    """The account's receipt with this id, or ``None``."""
    row = store.query_one("SELECT body FROM receipts WHERE id = ? AND account_id = ?",
                          (receipt_id, account_id))
    if row is None:
        return None
    receipt: dict[str, Any] = json.loads(row[0])
    return receipt
