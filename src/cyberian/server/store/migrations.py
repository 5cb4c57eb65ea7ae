"""The database schema, as ordered migrations the server applies itself, on either backend.

Each migration has a version (1, 2, ...) and a list of statements; the
``schema_version`` table records the highest version applied. Migrations run
one by one, each in its own write transaction that takes the ``migrations``
lock and re-reads the version first, so two processes opening a fresh
database at once (two replicas, or the server and an admin command) apply
each migration exactly once. A database whose version is newer than this
code knows is refused rather than guessed at. Never edit a released
migration: append a new one.

One set of migrations serves both backends: the statements are SQLite's, and
PostgreSQL runs them translated (:func:`postgresql_statement`: ``BLOB`` is
``BYTEA``, ``REAL`` is ``DOUBLE PRECISION``, there is no ``WITHOUT ROWID``)
unless a migration gives its own PostgreSQL text where the two really differ
(a circular foreign key, triggers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .database import Connection, Dialect, Store

__all__ = [
    "MIGRATIONS",
    "Migration",
    "SchemaTooNewError",
    "current_version",
    "migrate",
    "postgresql_statement",
]


def postgresql_statement(statement: str) -> str:
    """An SQLite DDL statement as PostgreSQL spells it."""
    statement = re.sub(r"\s*WITHOUT ROWID", "", statement)
    statement = re.sub(r"\bBLOB\b", "BYTEA", statement)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, what it does, and its SQL statements.

    ``postgresql``: the statements PostgreSQL runs instead, where a translation
    of ``statements`` would not do.
    """

    version: int
    description: str
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] | None = None

    def statements_for(self, dialect: Dialect) -> tuple[str, ...]:
        """The statements this backend runs."""
        if dialect == "sqlite":
            return self.statements
        if self.postgresql is not None:
            return self.postgresql
        return tuple(postgresql_statement(statement) for statement in self.statements)


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

# PostgreSQL checks a foreign key's table when the key is declared: jobs.receipt_id
# points at receipts, created after jobs, so that key is added once both exist.
_V1_POSTGRESQL: Final = (
    *(postgresql_statement(statement.replace(" REFERENCES receipts(id)", ""))
      for statement in _V1),
    "ALTER TABLE jobs ADD CONSTRAINT jobs_receipt_id_fkey FOREIGN KEY (receipt_id) "
    "REFERENCES receipts(id)",
)

_V3_POSTGRESQL: Final = (
    postgresql_statement(_V3[0]),
    """CREATE FUNCTION log_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'INSERT' THEN
           IF NEW.idx IS DISTINCT FROM
              (SELECT COALESCE(MAX(idx), -1) + 1 FROM log_entries) THEN
             RAISE EXCEPTION 'log_entries: idx must be the next index'
               USING ERRCODE = 'integrity_constraint_violation';
           END IF;
           RETURN NEW;
         END IF;
         RAISE EXCEPTION 'log_entries is append-only: no %', lower(TG_OP)
           USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
    """CREATE TRIGGER log_entries_dense BEFORE INSERT ON log_entries
       FOR EACH ROW EXECUTE FUNCTION log_entries_append_only()""",
    """CREATE TRIGGER log_entries_no_update BEFORE UPDATE OR DELETE ON log_entries
       FOR EACH ROW EXECUTE FUNCTION log_entries_append_only()""",
    """CREATE TRIGGER log_entries_no_truncate BEFORE TRUNCATE ON log_entries
       FOR EACH STATEMENT EXECUTE FUNCTION log_entries_append_only()""",
    _V3[4],
)

_V4: Final = (
    # Job inputs and outputs live in the database, where every replica and worker reaches them.
    """CREATE TABLE job_inputs (
        job_id  TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
        texts   TEXT NOT NULL
    )""",
    "ALTER TABLE chunks ADD COLUMN output BLOB",
    "ALTER TABLE chunks ADD COLUMN executed_by TEXT",
    "ALTER TABLE chunks ADD COLUMN replayed_by TEXT",
    # The replica driving an open job, and until when its claim holds without a heartbeat.
    "ALTER TABLE jobs ADD COLUMN driver TEXT",
    "ALTER TABLE jobs ADD COLUMN driver_expires_at TEXT",
    # Pieces of work for remote workers: leased, heartbeated, taken over when a lease expires.
    """CREATE TABLE work_items (
        id                TEXT PRIMARY KEY,
        job_id            TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        role              TEXT NOT NULL CHECK (role IN ('executor', 'replayer')),
        first_chunk       INTEGER NOT NULL CHECK (first_chunk >= 0),
        chunk_count       INTEGER NOT NULL CHECK (chunk_count >= 1),
        state             TEXT NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'leased', 'done', 'failed')),
        lease_owner       TEXT,
        lease_expires_at  TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        manifest          TEXT,
        error             TEXT,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL
    )""",
    "CREATE INDEX work_items_open ON work_items(role, state) WHERE state IN ('pending', 'leased')",
    "CREATE INDEX work_items_job ON work_items(job_id)",
    """CREATE TABLE workers (
        id            TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('executor', 'replayer')),
        host          TEXT NOT NULL,
        pid           INTEGER NOT NULL,
        cpu_class     TEXT NOT NULL,
        started_at    TEXT NOT NULL,
        heartbeat_at  TEXT NOT NULL
    )""",
    # Rate limits, shared by every replica: one row per counted request.
    """CREATE TABLE rate_events (
        bucket  TEXT NOT NULL,
        at      REAL NOT NULL
    )""",
    "CREATE INDEX rate_events_bucket ON rate_events(bucket, at)",
    # Chunks held by requests still running (VaaS), so concurrent requests on any replica
    # cannot both spend the last of a quota; the replica renews its holds with its job
    # claims, and a hold past expires_at (its replica died) no longer counts.
    """CREATE TABLE quota_holds (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        replica     TEXT NOT NULL,
        chunks      INTEGER NOT NULL CHECK (chunks >= 1),
        expires_at  TEXT NOT NULL
    )""",
    "CREATE INDEX quota_holds_account ON quota_holds(account_id)",
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "accounts, keys, models, jobs, chunks, receipts, idempotency", _V1,
              _V1_POSTGRESQL),
    Migration(2, "jobs.billed_chunks: the charge, in the server's chunks of the model", _V2),
    Migration(3, "the transparency log: log_entries (append-only) and log_keys", _V3,
              _V3_POSTGRESQL),
    Migration(4, "job inputs and outputs in the database, job drivers, work items with "
                 "leases, workers, shared rate limits and quota holds", _V4),
)


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database (0 for a fresh one)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(store: Store, migrations: Sequence[Migration] = MIGRATIONS) -> tuple[int, int]:
    """Apply every migration newer than the database; returns ``(from_version, to_version)``."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, ... in order, got {versions}")
    latest = versions[-1] if versions else 0
    with store.transaction() as conn:
        conn.lock("migrations")
        start = current_version(conn)
    if start > latest:
        raise SchemaTooNewError(
            f"the database has schema version {start}; this server knows only up to {latest} "
            "(upgrade cyberian)")
    for migration in migrations:
        with store.transaction() as conn:
            conn.lock("migrations")
            if current_version(conn) < migration.version:
                for statement in migration.statements_for(store.dialect):
                    conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)",
                             (migration.version,))
    with store.transaction() as conn:
        return start, current_version(conn)
