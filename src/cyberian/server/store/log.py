"""The transparency log in the store: ``log_entries`` (append-only) and ``log_keys``.

Entries are appended by :func:`append_entry`, inside the transaction that
stores the receipt, at the next index; triggers refuse any other index and
every UPDATE or DELETE, so the table only grows, densely from 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...tlog import entry_bytes, entry_leaf_hash
from ..timeutil import iso
from .database import Connection, Store

__all__ = [
    "LogEntry",
    "LogKeyRecord",
    "add_log_key",
    "append_entry",
    "append_missing",
    "get_entry",
    "index_of",
    "leaf_hashes",
    "log_key",
    "log_size",
]


@dataclass(frozen=True)
class LogEntry:
    """One log entry: its index, the receipt it holds and its leaf hash."""

    index: int
    receipt_id: str
    receipt_hash: str
    entry: bytes
    leaf_hash: bytes

    def view(self) -> dict[str, Any]:
        """The ``GET /log/entries/{index}`` form."""
        return {"index": self.index, "receipt_id": self.receipt_id,
                "receipt_hash": self.receipt_hash, "leaf_hash": self.leaf_hash.hex(),
                "receipt": json.loads(self.entry)}


@dataclass(frozen=True)
class LogKeyRecord:
    """The log's signing key as published: key id, origin, public key (base64)."""

    keyid: str
    origin: str
    public_key: str


def _next_index(conn: Connection) -> int:
    conn.lock("log")  # one writer order: concurrent replicas take the next index in turn
    row = conn.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM log_entries").fetchone()
    return int(row[0])


def append_entry(conn: Connection, receipt: Mapping[str, Any], now: datetime) -> int:
    """Append a signed receipt at the next index (call inside its transaction); the index."""
    entry = entry_bytes(receipt)
    index = _next_index(conn)
    conn.execute("INSERT INTO log_entries (idx, receipt_id, receipt_hash, entry, leaf_hash, "
                 "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                 (index, receipt["receipt_id"], receipt["receipt_hash"], entry,
                  entry_leaf_hash(entry), iso(now)))
    return index


def append_missing(conn: Connection, now: datetime) -> int:
    """Append every stored receipt not yet in the log (those signed before it existed),
    oldest first; returns how many."""
    rows = conn.execute("SELECT body FROM receipts WHERE id NOT IN "
                        "(SELECT receipt_id FROM log_entries) ORDER BY created_at, id"
                        ).fetchall()
    for row in rows:
        append_entry(conn, json.loads(row[0]), now)
    return len(rows)


def log_size(store: Store) -> int:
    """How many entries the log has."""
    row = store.query_one("SELECT COALESCE(MAX(idx), -1) + 1 FROM log_entries")
    assert row is not None
    return int(row[0])


def get_entry(store: Store, index: int) -> LogEntry | None:
    """The entry at ``index``, or ``None``."""
    row = store.query_one("SELECT idx, receipt_id, receipt_hash, entry, leaf_hash "
                          "FROM log_entries WHERE idx = ?", (index,))
    if row is None:
        return None
    return LogEntry(int(row[0]), str(row[1]), str(row[2]), bytes(row[3]), bytes(row[4]))


def index_of(store: Store, receipt_hash: str) -> int | None:
    """The index of the entry of the receipt with this ``receipt_hash``, or ``None``."""
    row = store.query_one("SELECT idx FROM log_entries WHERE receipt_hash = ?",
                          (receipt_hash.lower(),))
    return int(row[0]) if row is not None else None


def leaf_hashes(store: Store, size: int) -> list[bytes]:
    """The leaf hashes of the first ``size`` entries, in index order."""
    rows = store.query("SELECT leaf_hash FROM log_entries WHERE idx < ? ORDER BY idx", (size,))
    return [bytes(row[0]) for row in rows]


def log_key(store: Store) -> LogKeyRecord | None:
    """The log's signing key, or ``None`` before the first start created it."""
    row = store.query_one("SELECT keyid, origin, public_key FROM log_keys "
                          "ORDER BY created_at, keyid LIMIT 1")
    return LogKeyRecord(str(row[0]), str(row[1]), str(row[2])) if row is not None else None


def add_log_key(store: Store, record: LogKeyRecord, now: datetime) -> None:
    """Publish the log's key and the origin it signs for."""
    store.execute("INSERT INTO log_keys (keyid, origin, public_key, created_at) "
                  "VALUES (?, ?, ?, ?)",
                  (record.keyid, record.origin, record.public_key, iso(now)))
