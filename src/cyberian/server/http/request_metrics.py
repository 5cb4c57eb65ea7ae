"""Request metrics: every HTTP request counted and timed by route template, method and status.

The route label is the template the request matched (``/jobs/{job_id}``),
never the raw path, so the number of series stays bounded: the route the
router dispatched to when it ran, else the first template of the app that
matches the path (requests the body limits refused before routing, the
documentation routes), else ``unmatched``. Methods outside the standard set
are counted as ``other``. ``/metrics`` itself is counted like any route.

A request is counted just before the last bytes of its answer are handed to
the server, so a client that has read an answer and then scrapes sees it
counted; one that ends without an answer (an unexpected error, which the
outer error middleware turns into a 500) is counted as 500.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import ServerMetrics

__all__ = ["UNMATCHED", "RequestMetricsMiddleware", "RouteTable"]

UNMATCHED: Final = "unmatched"
"""The route label of a request that matched no route."""

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTable:
    """The app's route templates, matched in the router's order and by its rules."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._routes = [route for route in routes if isinstance(route, Route)]

    def template(self, scope: Scope) -> str:
        """The route template of the request in ``scope``, or :data:`UNMATCHED`."""
        dispatched = scope.get("route")
        if isinstance(dispatched, Route):
            return dispatched.path
        partial: str | None = None
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
            if match is Match.PARTIAL and partial is None:
                partial = route.path  # the path matched, the method did not (405)
        return partial or UNMATCHED


def method_label(method: str) -> str:
    """The method as a label value: a standard method, or ``other``."""
    return method if method in _METHODS else "other"


class RequestMetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request in :class:`ServerMetrics`."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics, routes: RouteTable) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting it once when its answer ends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        counted = False

        def count() -> None:
            """Count the request (once)."""
            nonlocal counted
            if not counted:
                counted = True
                self.metrics.request(self.routes.template(scope), method_label(scope["method"]),
                                     status, time.perf_counter() - started)

        async def counting_send(message: Message) -> None:
            """Note the status; count the request before its last body message goes out."""
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                count()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            count()
