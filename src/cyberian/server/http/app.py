"""The FastAPI application: :func:`create_app` wires settings, routers, errors and lifespan.

The lifespan starts every service (store, keys, catalog, worker processes,
job recovery) before the first request and stops them after the last. Each
app has its own metrics registry; the outermost middleware counts every
request in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from ..._version import __version__
from ..config import Settings
from ..metrics import ServerMetrics
from ..wiring import start_services
from .errors import install_error_handlers
from .middleware import BodyLimitMiddleware, BodyLimits
from .request_metrics import RequestMetricsMiddleware, RouteTable
from .routes import ROUTERS

__all__ = ["create_app"]

_DESCRIPTION = """\
Self-hosted verified inference for BERT-family embedding models: jobs are
executed, committed (Merkle roots), sampled and independently replayed, then
settled with a signed receipt; `/verify` certifies outputs computed elsewhere.
Every error body is `{"error": <code>, "message": <text>, ...}`.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        app.state.services = await start_services(app.state.settings, stack,
                                                  app.state.metrics)
        yield


def create_app(settings: Settings) -> FastAPI:
    """The verifier API for ``settings`` (services start with the app's lifespan)."""
    app = FastAPI(title="cyberian verifier", version=__version__, description=_DESCRIPTION,
                  lifespan=_lifespan, redoc_url=None)
    app.state.settings = settings
    app.state.metrics = ServerMetrics()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits(
        max_body_bytes=settings.max_body_bytes, max_json_values=settings.max_json_values,
        max_json_depth=settings.max_json_depth,
        streamed={"/models/upload": (settings.max_upload_bytes, "max_upload_bytes")}))
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics, routes=RouteTable(
        [*app.router.routes, *(route for router in ROUTERS for route in router.routes)]))
    return app
