"""Error mapping: an HTTP error answer or a transport failure becomes a cyberian exception.

The table is API.md's: 401/403 auth, 402 quota or trial, 413 quota, 422 at
``/verify`` a failed verification, 429 rate limit, 503 busy, anything else
:class:`~cyberian.exceptions.ApiError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._json import loads_json
from ..exceptions import (
    ApiError,
    AuthError,
    CpuClassMismatchError,
    CyberianError,
    NetworkError,
    QuotaError,
    RateLimitError,
    ServiceBusyError,
    TrialExpiredError,
    VerificationFailedError,
)
from ._constants import NO_RECEIPT

__all__ = ["error_body", "map_error", "network_error"]


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The parsed JSON object of an error response, or ``{"raw": <text>}`` when it is not one."""
    try:
        body = loads_json(response.content)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"raw": response.text}


def map_error(
    status: int,
    body: Mapping[str, Any],
    *,
    path: str,
    retry_after: float | None = None,
    reason_phrase: str = "",
) -> CyberianError:
    """The exception for an HTTP error ``status`` with ``body`` (the API.md table)."""
    plain = dict(body)
    message = next(
        (v for v in (body.get("message"), body.get("error")) if isinstance(v, str) and v),
        f"HTTP {status} {reason_phrase}".rstrip(),
    )
    if status in (401, 403):
        return AuthError(message, status_code=status, body=plain)
    if status == 402:
        code = body.get("error")
        if isinstance(code, str) and "trial" in code.lower():
            return TrialExpiredError(message, status_code=status, body=plain)
        return QuotaError(message, status_code=status, body=plain)
    if status == 413:
        return QuotaError(message, status_code=status, body=plain)
    if status == 422 and path == "/verify":
        reason = body.get("reason") or message
        return VerificationFailedError(
            NO_RECEIPT, {"output_match": False}, [reason], status_code=status, body=plain
        )
    if status == 409 and body.get("error") == "cpu_class_mismatch":
        return CpuClassMismatchError(message, status_code=status, body=plain)
    if status == 429:
        wait = 60.0 if retry_after is None else retry_after
        return RateLimitError(message, retry_after_sec=wait, status_code=status, body=plain)
    if status == 503:
        wait = 30.0 if retry_after is None else retry_after
        return ServiceBusyError(message, retry_after_sec=wait, status_code=status, body=plain)
    return ApiError(message, status_code=status, body=plain)


def network_error(method: str, path: str, error: httpx.RequestError) -> NetworkError:
    """A :class:`NetworkError` describing ``error`` (deliberately not chained to it: the
    httpx error holds the request, and so the Authorization header)."""
    return NetworkError(f"network error on {method} {path}: {type(error).__name__}: {error}")
