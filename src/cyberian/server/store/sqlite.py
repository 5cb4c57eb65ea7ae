"""The SQLite backend: one connection, WAL mode, foreign keys on, explicit transactions.

WAL lets the admin commands read and write while the server runs; the
``busy_timeout`` makes a writer wait (briefly) instead of failing.
``synchronous=NORMAL`` means a commit costs no fsync: a killed process loses
nothing committed, and a power cut can lose only the last commits, never
consistency. The server uses its connection from the event-loop thread only
(every query is sub-millisecond); inference runs elsewhere. Write
transactions are ``BEGIN IMMEDIATE``: one writer at a time, so a named
lock has nothing left to do.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from .database import Connection, Cursor, Params, Row, Store, StoreIntegrityError
from .migrations import MIGRATIONS, Migration, migrate

__all__ = ["BUSY_TIMEOUT_MS", "SqliteStore"]

BUSY_TIMEOUT_MS: Final = 5000


class _SqliteConnection:
    """A :class:`~.database.Connection` over ``sqlite3`` (constraint errors translated)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise StoreIntegrityError(str(exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise StoreIntegrityError(str(exc)) from exc

    def lock(self, name: str) -> None:
        """Nothing: ``BEGIN IMMEDIATE`` already admits one writer at a time."""


class SqliteStore(Store):
    """The embedded database: one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                     check_same_thread=False)
        self._guard = threading.RLock()  # one thread at a time on the one connection
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._wrapped = _SqliteConnection(self._conn)
        self.migrated_from, self.schema_version = migrate(self, migrations)

    @property
    def location(self) -> str:
        return str(self.path)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
        with self._guard:
            if self._conn.in_transaction:
                raise RuntimeError("transactions do not nest")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._wrapped
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a read."""
        with self._guard:
            rows: list[Row] = self._conn.execute(sql, params).fetchall()
            return rows

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a read, or ``None`` (the rest is never fetched)."""
        with self._guard:
            row: Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement in its own (implicit) transaction; the number of rows changed."""
        with self._guard:
            return self._wrapped.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens if this was the last one)."""
        self._conn.close()
