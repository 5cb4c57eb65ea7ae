"""``Idempotency-Key`` records in the store: what the first successful request created.

A record is scoped by account, route and key, and is written in the same
transaction as the job or receipt it points to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..timeutil import iso
from .database import Connection, Store

__all__ = ["IdempotencyRecord", "lookup", "remember"]


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an earlier request with the key created."""

    request_sha256: str  # of the first request's canonical body
    status_code: int  # what that request was answered with
    resource_id: str  # the job or receipt it created


def lookup(store: Store, account_id: str, route: str, key: str) -> IdempotencyRecord | None:
    """The record stored for this key, or ``None``."""
    row = store.query_one("SELECT request_sha256, status_code, resource_id FROM idempotency_keys "
                          "WHERE account_id = ? AND route = ? AND key = ?",
                          (account_id, route, key))
    return IdempotencyRecord(row[0], row[1], row[2]) if row is not None else None


def remember(conn: Connection, *, account_id: str, route: str, key: str,
             request_sha256: str, status_code: int, resource_id: str, now: datetime) -> None:
    """Store the outcome of a request inside the transaction that created the resource."""
    conn.execute("INSERT INTO idempotency_keys (account_id, route, key, request_sha256, "
                 "status_code, resource_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (account_id, route, key, request_sha256, status_code, resource_id, iso(now)))
