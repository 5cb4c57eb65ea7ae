"""Request body size limits: 413 ``request_too_large`` before or while a body is read.

A declared ``Content-Length`` over the limit is refused before the route
runs; a body that streams past it (chunked uploads) raises a 413 where it is
read. The model upload route has its own, larger limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware"]


def _too_large(limit: int) -> str:
    return f"the request body is larger than this route's limit of {limit} bytes"


class BodyLimitMiddleware:
    """Pure ASGI middleware enforcing ``default_limit`` (or a per-path limit) on bodies."""

    def __init__(self, app: ASGIApp, *, default_limit: int,
                 path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = default_limit
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or count the body of an HTTP request, pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.default_limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse({"error": "request_too_large", "message": _too_large(limit),
                                     "limit": limit}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            """The next body message, counted against the limit."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)
