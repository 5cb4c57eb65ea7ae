"""``Idempotency-Key`` for ``POST /jobs`` and ``POST /verify``.

A key is scoped to the account and the route. The first request that
succeeds stores ``(key, SHA-256 of the canonical request body, status,
resource id)`` in the same transaction as the job or receipt it created.
Later requests with the same key and the same body get that same job (its
current state) or receipt with the same status and are never charged again;
the same key with a different body is 409 ``idempotency_key_reused``. A
request that was refused stores nothing, so retrying it is evaluated afresh.
While a ``/verify`` with a key is still running, a duplicate waits for it and
receives the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from .errors import ApiProblem, bad_request
from .store import Store
from .timeutil import iso

__all__ = ["IdempotencyRecord", "SingleFlight", "check_key", "fingerprint", "lookup",
           "remember", "reused"]

_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an earlier request with the key created."""

    request_sha256: str
    status_code: int
    resource_id: str


def check_key(key: str | None) -> str | None:
    """The header's key, validated (1-255 visible ASCII characters)."""
    if key is None:
        return None
    if not _KEY.match(key):
        raise bad_request("Idempotency-Key must be 1-255 visible ASCII characters",
                          field="Idempotency-Key")
    return key


def fingerprint(body: Mapping[str, Any]) -> str:
    """SHA-256 of a request body's canonical JSON (key order and spacing do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def lookup(store: Store, account_id: str, route: str, key: str) -> IdempotencyRecord | None:
    """The record stored for this key, or ``None``."""
    row = store.query_one("SELECT request_sha256, status_code, resource_id FROM idempotency_keys "
                          "WHERE account_id = ? AND route = ? AND key = ?",
                          (account_id, route, key))
    return IdempotencyRecord(row[0], row[1], row[2]) if row is not None else None


def remember(conn: sqlite3.Connection, *, account_id: str, route: str, key: str,
             request_sha256: str, status_code: int, resource_id: str, now: datetime) -> None:
    """Store the outcome of a request inside the transaction that created the resource."""
    conn.execute("INSERT INTO idempotency_keys (account_id, route, key, request_sha256, "
                 "status_code, resource_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (account_id, route, key, request_sha256, status_code, resource_id, iso(now)))


def reused(key: str) -> ApiProblem:
    """409 ``idempotency_key_reused``: the key was used with another request body."""
    return ApiProblem(409, "idempotency_key_reused",
                      "this Idempotency-Key was already used with a different request body; "
                      "use a new key for a new request", idempotency_key=key)


class SingleFlight(Generic[_T]):
    """Runs one call per key at a time; duplicates with the same fingerprint share its outcome."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, ...], tuple[str, asyncio.Future[_T]]] = {}

    async def run(self, key: tuple[str, ...], request_sha256: str,
                  call: Callable[[], Awaitable[_T]], idempotency_key: str) -> _T:
        """``call()``, or the outcome of the identical call already running under ``key``."""
        running = self._running.get(key)
        if running is not None:
            if running[0] != request_sha256:
                raise reused(idempotency_key)
            return await asyncio.shield(running[1])
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._running[key] = (request_sha256, future)
        try:
            result = await call()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
            else:
                future.cancel()
            raise
        finally:
            del self._running[key]
        future.set_result(result)
        return result
