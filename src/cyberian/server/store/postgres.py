"""The PostgreSQL backend: psycopg 3 with its connection pool, for replicas that share one database.

The server's statements are written with SQLite's placeholders (``?`` and
``:name``); :func:`translate` turns them into psycopg's (``%s`` and
``%(name)s``) once per statement text. Every write transaction is one pooled
connection in a ``READ COMMITTED`` transaction; where writers must take
turns, :meth:`_PostgresConnection.lock` takes a transaction-scoped advisory
lock. Reads run on a pooled connection in autocommit mode. Constraint
violations surface as :class:`~.database.StoreIntegrityError`, as on SQLite.
The URL's password is never logged: :attr:`PostgresStore.location` hides it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool, PoolTimeout

from .database import Connection, Cursor, Params, Row, Store, StoreIntegrityError, redact_url
from .migrations import MIGRATIONS, Migration, migrate

__all__ = ["PostgresStore", "translate"]

_TOKEN: Final = re.compile(r"'(?:[^']|'')*'|\?|(?<!:):([A-Za-z_][A-Za-z0-9_]*)|%")


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """An SQLite-placeholder statement in psycopg's placeholders (``%`` escaped)."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if found.startswith("'"):
            return found.replace("%", "%%")
        if match.group(1) is not None:
            return f"%({match.group(1)})s"
        return {"?": "%s", "%": "%%"}[found]

    return _TOKEN.sub(replace, sql)


class _Row(tuple[Any, ...]):
    """A row by position or by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> _Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        """The column names."""
        return list(self._names)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[_Row]:
    names = {column.name: index for index, column in enumerate(cursor.description or ())}
    return lambda values: _Row(values, names)


def _params(params: Params) -> Params | None:
    return params if len(params) else None


class _PostgresConnection:
    """A :class:`~.database.Connection` over a psycopg connection in a transaction."""

    def __init__(self, conn: psycopg.Connection[_Row]) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        bound = _params(params)
        try:
            return self._conn.execute(translate(sql) if bound is not None else sql, bound)
        except psycopg.errors.IntegrityError as exc:
            raise StoreIntegrityError(str(exc).strip()) from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = list(rows)
        if not batch:
            return
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(translate(sql), batch)
        except psycopg.errors.IntegrityError as exc:
            raise StoreIntegrityError(str(exc).strip()) from exc

    def lock(self, name: str) -> None:
        """A transaction-scoped advisory lock on ``name``."""
        self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))


class PostgresStore(Store):
    """A PostgreSQL database shared by every replica and worker of one verifier."""

    dialect = "postgresql"

    def __init__(self, url: str, *, migrations: Sequence[Migration] = MIGRATIONS,
                 min_size: int = 1, max_size: int = 8, timeout: float = 30.0) -> None:
        self.url = url
        self._pool: ConnectionPool[psycopg.Connection[_Row]] = ConnectionPool(
            url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
            kwargs={"row_factory": _row_factory, "autocommit": True},
            name="cyberian")
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.OperationalError as exc:
            self._pool.close()
            raise ConnectionError(f"cannot connect to {self.location}: {exc}") from None
        except PoolTimeout as exc:
            self._pool.close()
            raise ConnectionError(f"cannot connect to {self.location} within {timeout:g} s "
                                  f"({exc})") from None
        self.migrated_from, self.schema_version = migrate(self, migrations)

    @property
    def location(self) -> str:
        return redact_url(self.url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction on one pooled connection."""
        with self._pool.connection() as conn, conn.transaction():
            yield _PostgresConnection(conn)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a read."""
        bound = _params(params)
        with self._pool.connection() as conn:
            return list(conn.execute(translate(sql) if bound is not None else sql,
                                     bound).fetchall())

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a read, or ``None`` (the rest is never fetched)."""
        bound = _params(params)
        with self._pool.connection() as conn:
            row: Row | None = conn.execute(translate(sql) if bound is not None else sql,
                                           bound).fetchone()
            return row

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

