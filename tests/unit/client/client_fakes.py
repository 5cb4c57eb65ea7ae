"""A scripted fake server, a fake clock, and a harness that drives the sync or async client.

Tests are written once in a ``_Contract`` class and run by a sync and an async
twin (``mode = "sync"`` / ``"async"``); ``Harness.call`` hides the difference.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cyberian.client import AsyncClient, Client

# A fake key whose random part contains "_" and "-", like real url-safe keys.
KEY = "cyb_test_Q2hhbmdlX2l0_bm90LXJlYWwta2V5LW5vdC1yZWFs-c2VjcmV0"
SECRET = KEY.split("_", 2)[2]
BASE = "http://verifier.test"

Reply = Callable[[httpx.Request], httpx.Response]


def reply(
    status: int = 200,
    json: Any = None,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Reply:
    """A reply factory (a fresh Response per request)."""

    def make(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        if json is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=json, headers=headers)

    return make


def fail(kind: type[httpx.RequestError] = httpx.ConnectError) -> Reply:
    """A reply that raises a transport error instead of answering."""

    def make(request: httpx.Request) -> httpx.Response:
        raise kind("simulated transport failure", request=request)

    return make


class FakeServer:
    """Answers each (method, path) from a queue of replies (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[httpx.Request] = []
        self.on_request: Callable[[httpx.Request], None] | None = None

    def add(self, method: str, path: str, *replies: Reply) -> None:
        self.routes.setdefault((method, path), []).extend(replies)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:  # what a server without the route answers (FastAPI's default)
            return httpx.Response(404, json={"detail": "Not Found"})
        make = queue.pop(0) if len(queue) > 1 else queue[0]
        return make(request)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


class FakeClock:
    """A monotonic clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Harness:
    """One fake server and clock, and clients of one flavour (sync or async) wired to them."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.is_async = mode == "async"
        self.client_cls: type[Client] | type[AsyncClient] = AsyncClient if self.is_async else Client
        self.server = FakeServer()
        self.clock = FakeClock()
        self._to_close: list[Any] = []
        self.http = self.new_http()
        self.client = self.new_client()

    def new_http(self, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", BASE)
        transport = httpx.MockTransport(self.server.handler)
        cls = httpx.AsyncClient if self.is_async else httpx.Client
        http = cls(transport=transport, **kwargs)
        self._to_close.append(http)
        return http

    def new_client(self, api_key: str | None = KEY, **kwargs: Any) -> Any:
        if "http_client" not in kwargs and "_http_client" not in kwargs:
            kwargs["http_client"] = self.http
        client = self.client_cls(api_key, **kwargs)
        self.wire(client)
        return client

    def wire(self, client: Any) -> None:
        client._clock = self.clock.monotonic
        client._sleep = self.clock.async_sleep if self.is_async else self.clock.sleep

    def call(self, name: str, *args: Any, client: Any = None, **kwargs: Any) -> Any:
        result = getattr(client or self.client, name)(*args, **kwargs)
        if inspect.iscoroutine(result):
            return asyncio.run(result)
        return result

    def close_http(self, http: Any) -> None:
        if self.is_async:
            asyncio.run(http.aclose())
        else:
            http.close()

    def close(self) -> None:
        for http in self._to_close:
            self.close_http(http)

    @property
    def sent(self) -> list[httpx.Request]:
        return self.server.requests

    @property
    def last(self) -> httpx.Request:
        return self.server.requests[-1]


class Twin:
    """Base of the ``_Contract`` classes: gives each test an ``h`` harness of the class's mode."""

    mode: str = "sync"

    @pytest.fixture
    def h(self, harness_factory: Callable[[str], Harness]) -> Harness:
        return harness_factory(self.mode)
