"""Chunks held by requests still running (``quota_holds``), visible to every replica.

A ``/verify`` request holds its billed chunks from admission until its
receipt (or its charged failure) is stored. The replica that holds them
renews its holds with its job claims; a hold whose ``expires_at`` has passed
-- its replica died mid-request -- no longer counts.
"""

from __future__ import annotations

from datetime import datetime

from ..timeutil import iso
from .database import Connection, Store

__all__ = ["add_hold", "drop_hold", "held_chunks", "held_chunks_in", "renew_holds"]

_HELD = ("SELECT COALESCE(SUM(chunks), 0) FROM quota_holds "
         "WHERE account_id = ? AND expires_at > ?")


def add_hold(conn: Connection, hold_id: str, account_id: str, chunks: int, *, replica: str,
             expires_at: datetime) -> None:
    """Hold ``chunks`` of the account's quota until the hold is dropped or expires."""
    conn.execute("INSERT INTO quota_holds (id, account_id, replica, chunks, expires_at) "
                 "VALUES (?, ?, ?, ?, ?)",
                 (hold_id, account_id, replica, chunks, iso(expires_at)))


def renew_holds(store: Store, replica: str, expires_at: datetime) -> int:
    """Extend every hold of ``replica`` to ``expires_at``; how many."""
    return store.execute("UPDATE quota_holds SET expires_at = ? WHERE replica = ?",
                         (iso(expires_at), replica))


def drop_hold(conn: Connection, hold_id: str) -> None:
    """Release a hold (inside the transaction that stores what it was held for)."""
    conn.execute("DELETE FROM quota_holds WHERE id = ?", (hold_id,))


def held_chunks(store: Store, account_id: str, now: datetime) -> int:
    """Chunks the account's running requests hold."""
    row = store.query_one(_HELD, (account_id, iso(now)))
    return int(row[0]) if row is not None else 0


def held_chunks_in(conn: Connection, account_id: str, now: datetime) -> int:
    """:func:`held_chunks`, read inside a transaction."""
    return int(conn.execute(_HELD, (account_id, iso(now))).fetchone()[0])
