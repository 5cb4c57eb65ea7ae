"""One router per resource; :data:`ROUTERS` is what the app includes, in order."""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    account,
    audit,
    auth,
    health,
    jobs,
    log,
    metrics,
    models,
    openai_api,
    receipts,
    verify,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    health.router, metrics.router, auth.router, account.router, models.router, jobs.router,
    receipts.router, verify.router, openai_api.router, audit.router, log.router,
)
