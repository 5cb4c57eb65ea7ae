"""The SQLite store: one connection, WAL mode, foreign keys on, explicit transactions.

WAL lets the admin commands read and write while the server runs; the
``busy_timeout`` makes a writer wait (briefly) instead of failing.
``synchronous=NORMAL`` means a commit costs no fsync: a killed process loses
nothing committed, and a power cut can lose only the last commits, never
consistency. The server uses its connection from the event-loop thread only
(every query is sub-millisecond); inference runs elsewhere.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from .migrations import MIGRATIONS, Migration, migrate

__all__ = ["BUSY_TIMEOUT_MS", "Store"]

BUSY_TIMEOUT_MS: Final = 5000

Params = Sequence[Any] | dict[str, Any]


class Store:
    """The server database: opened, configured and migrated on construction."""

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self.migrated_from, self.schema_version = migrate(self._conn, migrations)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
        if self._conn.in_transaction:
            raise RuntimeError("transactions do not nest")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """All rows of a read."""
        return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row of a read, or ``None``."""
        row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        return self._conn.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens if this was the last one)."""
        self._conn.close()
