"""Retry maths: which failures are retried, and how long to wait before the next attempt.

Pure functions of the attempt number, the failure and a random unit; the
shared client asks :func:`retry_delay` after every failed attempt.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, Final

import httpx

__all__ = [
    "RETRY_STATUSES",
    "backoff_delay",
    "parse_retry_after",
    "retry_after_of",
    "retry_delay",
]

RETRY_STATUSES: Final = frozenset({408, 429, 502, 503, 504})
"""Statuses retried automatically (the request may succeed when sent again)."""
_MAYBE_PROCESSED: Final = frozenset({502, 504})
"""Gateway errors: the server may have acted on the request before the proxy gave up."""
BACKOFF_BASE: Final = 0.5
BACKOFF_CAP: Final = 8.0
BACKOFF_JITTER: Final = 0.25


def backoff_delay(attempt: int, unit: float) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    ``0.5 s * 2**attempt`` capped at 8 s, then scaled by a jitter of ±25 %
    chosen by ``unit`` in [0, 1).
    """
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempt, 64))
    return base * (1.0 - BACKOFF_JITTER + 2.0 * BACKOFF_JITTER * unit)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds named by a ``Retry-After`` header (delta-seconds or an HTTP-date), or ``None``."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_of(headers: httpx.Headers, body: Mapping[str, Any]) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After``, else the body's ``retry_after_sec``."""
    seconds = parse_retry_after(headers.get("retry-after"))
    if seconds is not None:
        return seconds
    value = body.get("retry_after_sec")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None


def _retryable_transport_error(error: httpx.RequestError, *, replay_safe: bool) -> bool:
    if not replay_safe:
        # Only retry when the request provably never reached the server.
        return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return isinstance(
        error,
        httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError,
    )


def retry_delay(
    attempt: int,
    *,
    max_retries: int,
    max_retry_wait: float,
    jitter: Callable[[], float],
    status: int | None = None,
    transport_error: httpx.RequestError | None = None,
    retry_after: float | None = None,
    replay_safe: bool = True,
) -> float | None:
    """Seconds to wait before retrying after failed attempt ``attempt``, or ``None`` to give up.

    The failure is an HTTP ``status`` or a ``transport_error``; a request
    that is not ``replay_safe`` is retried only when the server cannot have
    acted on it. A ``retry_after`` longer than ``max_retry_wait`` gives up
    (a long wait is the caller's decision); without one, :func:`backoff_delay`
    decides, with a unit drawn from ``jitter`` (a random number in [0, 1)).
    """
    if attempt >= max_retries:
        return None
    if transport_error is not None:
        if not _retryable_transport_error(transport_error, replay_safe=replay_safe):
            return None
    elif status not in RETRY_STATUSES or (not replay_safe and status in _MAYBE_PROCESSED):
        return None
    if retry_after is not None:
        return retry_after if retry_after <= max_retry_wait else None
    return backoff_delay(attempt, jitter())
