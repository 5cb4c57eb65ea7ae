"""The store interface every backend implements, and :func:`open_store` to open one.

The server's SQL is written once, in the subset SQLite and PostgreSQL share,
with ``?`` (or ``:name``) placeholders; a backend translates what it must
(:mod:`.sql`). A :class:`Store` hands out write transactions
(:meth:`Store.transaction`) whose :class:`Connection` runs statements, and
answers reads outside them. Rows answer both ``row[0]`` and ``row["name"]``.

Two backends: :class:`~.sqlite.SqliteStore` (the embedded default, one file
in WAL mode) and :class:`~.postgres.PostgresStore` (several replicas and
workers sharing one database). Where concurrent writers must take turns --
the transparency log's next index, an account's quota check and the job it
admits -- callers take a named lock (:meth:`Connection.lock`) inside the
transaction: an advisory transaction lock on PostgreSQL, nothing on SQLite,
whose ``BEGIN IMMEDIATE`` already lets one writer in at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "Connection",
    "Cursor",
    "Dialect",
    "Params",
    "Row",
    "Store",
    "StoreIntegrityError",
    "is_database_url",
    "open_store",
    "redact_url",
]

Params = Sequence[Any] | dict[str, Any]
Dialect = Literal["sqlite", "postgresql"]


class Row(Protocol):
    """A result row: by position (``row[0]``) or by column name (``row["id"]``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class Cursor(Protocol):
    """What running a statement returns: the rows it changed or read."""

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement."""

    def fetchone(self) -> Any:
        """The next row, or ``None``."""

    def fetchall(self) -> list[Any]:
        """Every remaining row."""


class Connection(Protocol):
    """A connection inside a write transaction."""

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """Run one statement."""

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter row."""

    def lock(self, name: str) -> None:
        """Wait until no other transaction holds the lock ``name``; held until this one ends."""


class StoreIntegrityError(Exception):
    """A statement broke a constraint (a duplicate key, a foreign key, a CHECK)."""


class Store(ABC):
    """The server database: opened, configured and migrated on construction."""

    dialect: Dialect
    migrated_from: int
    schema_version: int

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the database is, for logs (a path, or a URL without its password)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed on success, rolled back on error."""

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a read."""

    @abstractmethod
    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a read, or ``None``."""

    def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    @abstractmethod
    def close(self) -> None:
        """Close the connections."""


def redact_url(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def is_database_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than an SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path, **options: Any) -> Store:
    """The store at ``location``: a ``postgresql://`` URL, else the path of an SQLite file."""
    if is_database_url(location):
        from .postgres import PostgresStore  # noqa: PLC0415 - psycopg only when asked for

        return PostgresStore(str(location), **options)
    from .sqlite import SqliteStore  # noqa: PLC0415

    return SqliteStore(Path(location), **options)

