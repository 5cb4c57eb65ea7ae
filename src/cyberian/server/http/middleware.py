"""Request body limits, enforced before any route (or JSON parser) sees the body.

* Size: a declared ``Content-Length`` over the limit is refused at once; a
  body that streams past it is refused where it is read. The model upload
  route streams to disk and has its own, larger limit (``max_upload_bytes``).
* JSON bodies (every other route) are read once, under the size limit, and
  scanned (:mod:`.jsonscan`) for the number of values and the nesting depth
  before they are passed on: a body that would cost the parser seconds or
  recurse too deep is refused without being parsed. Large bodies are scanned
  in a thread, so the event loop keeps answering other clients meanwhile.

Every refusal is a 4xx ``{"error", "message", "limit", "setting"}`` naming
the limit and the setting that sets it; nothing behind it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ApiProblem, InvalidRequestError, RequestTooLargeError, bad_request
from .errors import problem_response
from .jsonscan import scan_json

__all__ = ["BodyLimitMiddleware", "BodyLimits"]

_THREAD_SCAN_BYTES: Final = 1 << 20  # scan bodies above this off the event loop


@dataclass(frozen=True)
class BodyLimits:
    """The body limits of the server (see :class:`~cyberian.server.config.Settings`)."""

    max_body_bytes: int
    max_json_values: int
    max_json_depth: int
    streamed: Mapping[str, tuple[int, str]]
    """Paths whose bodies stream to the route: their ``(limit, setting)``."""


def _too_large(limit: int, setting: str) -> RequestTooLargeError:
    return RequestTooLargeError(f"the request body is larger than the limit of {limit} bytes "
                                f"(setting {setting})", limit=limit, setting=setting)


class _BodyTooLarge(Exception):  # noqa: N818 - carries the refusal out of the read loop
    """The body passed its size limit while being read."""


def _json_problem(body: bytes, limits: BodyLimits) -> ApiProblem | None:
    """Why ``body`` must not be parsed, or ``None``."""
    shape = scan_json(body, max_values=limits.max_json_values, max_depth=limits.max_json_depth)
    if shape.values > limits.max_json_values:
        return RequestTooLargeError(
            f"the JSON body holds more than the limit of {limits.max_json_values} values "
            "(setting max_json_values)", limit=limits.max_json_values,
            setting="max_json_values")
    if shape.depth > limits.max_json_depth:
        return InvalidRequestError(f"the JSON body nests deeper than the limit of "
                                   f"{limits.max_json_depth} levels (setting max_json_depth)",
                                   field="body", limit=limits.max_json_depth,
                                   setting="max_json_depth")
    if not shape.balanced:
        return bad_request("the request body is not valid JSON", field="body")
    return None


def _is_json(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
    return not content_type or b"json" in content_type


class BodyLimitMiddleware:
    """Pure ASGI middleware: size limits on every body, cost limits on JSON bodies."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, scan or count the body of an HTTP request; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.limits.streamed.get(
            scope["path"], (self.limits.max_body_bytes, "max_body_bytes"))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(_too_large(limit, setting), scope, receive, send)
            return
        if scope["path"] in self.limits.streamed:
            await self.app(scope, _counted(receive, limit, setting), send)
            return
        try:
            body = await _read(receive, limit)
        except _BodyTooLarge:
            await _answer(_too_large(limit, setting), scope, receive, send)
            return
        if body and _is_json(scope):
            problem = (await asyncio.to_thread(_json_problem, body, self.limits)
                       if len(body) > _THREAD_SCAN_BYTES else _json_problem(body, self.limits))
            if problem is not None:
                await _answer(problem, scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


async def _answer(problem: ApiProblem, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(problem, scope.get("path", ""))
    await response(scope, receive, send)


async def _read(receive: Receive, limit: int) -> bytes:
    """The whole body; :class:`_BodyTooLarge` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""  # the client went away
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _BodyTooLarge
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once, then waits for the client as before."""
    sent = False

    async def replayed() -> Message:
        """The buffered body first, then the connection's own messages."""
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _counted(receive: Receive, limit: int, setting: str) -> Receive:
    """A ``receive`` that refuses a streamed body once it passes ``limit`` bytes."""
    received = 0

    async def counted() -> Message:
        """The next body message, counted against the limit."""
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit, setting)
        return message

    return counted
