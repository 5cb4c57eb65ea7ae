"""``GET /health``, ``GET /ready`` and ``GET /keys`` (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...._version import __version__
from ....signing import keys_document
from ....spec import installed_engine_version
from ...timeutil import iso, utcnow
from ..deps import ServicesDep

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/health")
async def health(services: ServicesDep) -> dict[str, Any]:
    """Liveness: the service name, its version, the engine and the catalog size."""
    return {"ok": True, "service": "coordinator", "version": __version__,
            "engine": {"name": "onnxruntime", "version": installed_engine_version()},
            "models": len(services.catalog)}


@router.get("/ready", responses={503: {"description": "the database does not answer"}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Readiness, for a load balancer: 200 while this replica reaches its database, else 503;
    with the replica id, the backend, who runs job chunks and the remote workers alive."""
    try:
        alive = services.store.query("SELECT role, COUNT(*) FROM workers "
                                     "WHERE heartbeat_at >= ? GROUP BY role",
                                     (iso(utcnow() - services.worker_timeout),))
    except Exception as exc:  # psycopg or sqlite3: the database is away
        return JSONResponse({"ready": False, "reason": "the database does not answer: "
                                                       f"{type(exc).__name__}"}, 503)
    return JSONResponse({
        "ready": True, "replica": services.replica, "database": services.store.dialect,
        "job_workers": services.settings.job_workers,
        "remote_workers": {"executor": 0, "replayer": 0} | {
            str(row[0]): int(row[1]) for row in alive}})


@router.get("/keys")
async def keys(services: ServicesDep) -> dict[str, Any]:
    """The public receipt-signing keys, newest first (older ones still verify old receipts),
    and the transparency log's origin and verifier key."""
    return {**keys_document(services.signer.public_keys()), "log": services.log.published()}
