"""The database schema, as ordered migrations the server applies itself.

Each migration has a version (1, 2, ...) and a list of statements; the
``schema_version`` table records the highest version applied. Migrations run
one by one, each in its own ``BEGIN IMMEDIATE`` transaction that re-reads the
version first, so two processes opening a fresh database at once (the server
and an admin command) apply each migration exactly once. A database whose
version is newer than this code knows is refused rather than guessed at.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["MIGRATIONS", "Migration", "SchemaTooNewError", "current_version", "migrate"]


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer server than this one."""


_V1: Final = (
    """CREATE TABLE accounts (
        id             TEXT PRIMARY KEY,
        tier           TEXT NOT NULL CHECK (tier IN ('trial', 'free', 'enterprise')),
        label          TEXT,
        created_at     TEXT NOT NULL,
        trial_ends_at  TEXT,
        period_anchor  TEXT NOT NULL
    )""",
    """CREATE TABLE api_keys (
        key_id      TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        key_sha256  TEXT NOT NULL,
        label       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    )""",
    "CREATE INDEX api_keys_account ON api_keys(account_id)",
    """CREATE TABLE signing_keys (
        keyid       TEXT PRIMARY KEY,
        public_key  TEXT NOT NULL,
        created_at  TEXT NOT NULL
    )""",
    """CREATE TABLE models (
        id                TEXT PRIMARY KEY,
        account_id        TEXT NOT NULL REFERENCES accounts(id),
        name              TEXT NOT NULL,
        sha256            TEXT NOT NULL,
        size_bytes        INTEGER NOT NULL,
        tokenizer_sha256  TEXT NOT NULL,
        dimensions        INTEGER NOT NULL,
        spec_hash         TEXT NOT NULL,
        spec_yaml         TEXT NOT NULL,
        description       TEXT,
        created_at        TEXT NOT NULL,
        deleted_at        TEXT
    )""",
    "CREATE UNIQUE INDEX models_live_name ON models(account_id, name) WHERE deleted_at IS NULL",
    """CREATE TABLE jobs (
        id             TEXT PRIMARY KEY,
        account_id     TEXT NOT NULL REFERENCES accounts(id),
        kind           TEXT NOT NULL CHECK (kind IN ('job', 'vaas')),
        status         TEXT NOT NULL
                       CHECK (status IN ('EXECUTING', 'PROVING', 'SETTLED', 'FAILED', 'REFUNDED')),
        model_id       TEXT,
        spec_hash      TEXT NOT NULL,
        spec_yaml      TEXT NOT NULL,
        input_count    INTEGER NOT NULL CHECK (input_count >= 1),
        chunk_count    INTEGER NOT NULL CHECK (chunk_count >= 1),
        chunks_done    INTEGER NOT NULL DEFAULT 0,
        nonce          TEXT NOT NULL,
        input_root     TEXT,
        output_root    TEXT,
        sampled        TEXT,
        executor_env   TEXT,
        receipt_id     TEXT REFERENCES receipts(id),
        error          TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL,
        CHECK ((status = 'SETTLED') = (receipt_id IS NOT NULL))
    )""",
    "CREATE INDEX jobs_account_created ON jobs(account_id, created_at)",
    "CREATE INDEX jobs_open ON jobs(status) WHERE status IN ('EXECUTING', 'PROVING')",
    """CREATE TABLE chunks (
        job_id             TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        idx                INTEGER NOT NULL,
        input_commitment   TEXT NOT NULL,
        output_commitment  TEXT NOT NULL,
        sampled            INTEGER NOT NULL DEFAULT 0,
        replay_commitment  TEXT,
        replay_match       INTEGER,
        PRIMARY KEY (job_id, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE receipts (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        job_id      TEXT NOT NULL UNIQUE REFERENCES jobs(id) DEFERRABLE INITIALLY DEFERRED,
        kind        TEXT NOT NULL,
        body        TEXT NOT NULL,
        created_at  TEXT NOT NULL
    )""",
    """CREATE TABLE idempotency_keys (
        account_id      TEXT NOT NULL REFERENCES accounts(id),
        route           TEXT NOT NULL,
        key             TEXT NOT NULL,
        request_sha256  TEXT NOT NULL,
        status_code     INTEGER NOT NULL,
        resource_id     TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        PRIMARY KEY (account_id, route, key)
    ) WITHOUT ROWID""",
)

_V2: Final = (
    # What a request is charged, in the server's chunks of its model (NULL on rows written
    # before: they were charged chunk_count).
    "ALTER TABLE jobs ADD COLUMN billed_chunks INTEGER CHECK (billed_chunks >= 1)",
)

_V3: Final = (
    # The transparency log: one row per signed receipt, idx 0, 1, 2, ... with no gap
    # (an insert must take the next index) and no update or delete path.
    """CREATE TABLE log_entries (
        idx           INTEGER PRIMARY KEY CHECK (idx >= 0),
        receipt_id    TEXT NOT NULL UNIQUE,
        receipt_hash  TEXT NOT NULL UNIQUE,
        entry         BLOB NOT NULL,
        leaf_hash     BLOB NOT NULL CHECK (length(leaf_hash) = 32),
        created_at    TEXT NOT NULL
    )""",
    """CREATE TRIGGER log_entries_dense BEFORE INSERT ON log_entries
       WHEN NEW.idx IS NOT COALESCE((SELECT MAX(idx) FROM log_entries), -1) + 1
       BEGIN SELECT RAISE(ABORT, 'log_entries: idx must be the next index'); END""",
    """CREATE TRIGGER log_entries_no_update BEFORE UPDATE ON log_entries
       BEGIN SELECT RAISE(ABORT, 'log_entries is append-only: no update'); END""",
    """CREATE TRIGGER log_entries_no_delete BEFORE DELETE ON log_entries
       BEGIN SELECT RAISE(ABORT, 'log_entries is append-only: no delete'); END""",
    # The log's signing key (its private half is <data-dir>/keys/log-<keyid>.pem) and the
    # origin its checkpoints name, fixed when the log is created.
    """CREATE TABLE log_keys (
        keyid       TEXT PRIMARY KEY,
        origin      TEXT NOT NULL,
        public_key  TEXT NOT NULL,
        created_at  TEXT NOT NULL
    )""",
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "accounts, keys, models, jobs, chunks, receipts, idempotency", _V1),
    Migration(2, "jobs.billed_chunks: the charge, in the server's chunks of the model", _V2),
    Migration(3, "the transparency log: log_entries (append-only) and log_keys", _V3),
)


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a fresh one)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection,
            migrations: Sequence[Migration] = MIGRATIONS) -> tuple[int, int]:
    """Apply every migration newer than the database; returns ``(from_version, to_version)``.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, ... in order, got {versions}")
    latest = versions[-1] if versions else 0
    start = current_version(conn)
    if start > latest:
        raise SchemaTooNewError(
            f"the database has schema version {start}; this server knows only up to {latest} "
            "(upgrade cyberian)")
    for migration in migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)",
                             (migration.version,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return start, current_version(conn)
