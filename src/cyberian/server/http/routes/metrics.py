"""``GET /metrics``: the server's Prometheus metrics (no account key; see the ``metrics`` setting).

Not in the OpenAPI document: it is the operator's endpoint, not part of the
API contract. Who may read it is :class:`~cyberian.server.metrics_access.MetricsGate`'s
rule; the exposition format follows the scraper's ``Accept`` header (the
Prometheus text format, or OpenMetrics when asked for).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ...metrics_access import MetricsGate
from ..deps import ServicesDep

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """The metrics exposition, for a caller the ``metrics`` setting lets in."""
    MetricsGate.from_settings(services.settings).check(request.headers.get("authorization"))
    body, content_type = services.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
