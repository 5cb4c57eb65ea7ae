"""``Idempotency-Key`` for ``POST /jobs`` and ``POST /verify``.

A key is scoped to the account and the route. The first request that
succeeds stores ``(key, SHA-256 of the canonical request body, status,
resource id)`` in the same transaction as the job or receipt it created.
Later requests with the same key and the same body get that same job (its
current state) or receipt with the same status and are never charged again;
the same key with a different body is refused (``idempotency_key_reused``). A
request that was refused stores nothing, so retrying it is evaluated afresh.
While a ``/verify`` with a key is still running, a duplicate waits for it and
receives the same answer.

Both routes use one mechanism: a :class:`KeyedRequest` (account, route, key,
body fingerprint) answers whether an earlier request already created
something (:meth:`KeyedRequest.earlier`) and records what this one created
(:meth:`KeyedRequest.remember`); the rows are
:mod:`cyberian.server.store.idempotency`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from .errors import IdempotencyKeyReusedError, bad_request
from .store import Connection, Store
from .store import idempotency as records
from .store.idempotency import IdempotencyRecord

__all__ = ["KeyedRequest", "SingleFlight", "check_key", "fingerprint", "keyed_request", "reused"]

_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")
_T = TypeVar("_T")


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


def reused(key: str) -> IdempotencyKeyReusedError:
    """The refusal of a key that was used with another request body."""
    return IdempotencyKeyReusedError(
        "this Idempotency-Key was already used with a different request body; use a new key "
        "for a new request", idempotency_key=key)


@dataclass(frozen=True)
class KeyedRequest:
    """A request made under an ``Idempotency-Key``: whose, on which route, with which body."""

    account_id: str
    route: str
    key: str
    request_sha256: str

    @property
    def flight_key(self) -> tuple[str, str]:
        """What identifies duplicates of this request while it is still running."""
        return self.account_id, self.key

    def earlier(self, store: Store) -> IdempotencyRecord | None:
        """What an earlier request with this key created, or ``None`` if none succeeded yet.

        The same key with another body is refused (:class:`IdempotencyKeyReusedError`).
        """
        record = records.lookup(store, self.account_id, self.route, self.key)
        if record is not None and record.request_sha256 != self.request_sha256:
            raise reused(self.key)
        return record

    def remember(self, conn: Connection, *, status_code: int, resource_id: str,
                 now: datetime) -> None:
        """Record what this request created, inside the transaction that created it."""
        records.remember(conn, account_id=self.account_id, route=self.route, key=self.key,
                         request_sha256=self.request_sha256, status_code=status_code,
                         resource_id=resource_id, now=now)


def keyed_request(account_id: str, route: str, key: str | None,
                  body: Mapping[str, Any]) -> KeyedRequest | None:
    """A request sent with ``key``, ready for replay checks (``None`` when it has no key)."""
    if key is None:
        return None
    return KeyedRequest(account_id, route, key, fingerprint(body))


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
