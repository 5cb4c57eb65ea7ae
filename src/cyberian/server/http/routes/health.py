"""``GET /health`` and ``GET /keys`` (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...._version import __version__
from ....signing import keys_document
from ....spec import installed_engine_version
from ..deps import ServicesDep

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/health")
async def health(services: ServicesDep) -> dict[str, Any]:
    """Liveness: the service name, its version, the engine and the catalog size."""
    return {"ok": True, "service": "coordinator", "version": __version__,
            "engine": {"name": "onnxruntime", "version": installed_engine_version()},
            "models": len(services.catalog)}


@router.get("/keys")
async def keys(services: ServicesDep) -> dict[str, Any]:
    """The public receipt-signing keys, newest first (older ones still verify old receipts),
    and the transparency log's origin and verifier key."""
    return {**keys_document(services.signer.public_keys()), "log": services.log.published()}
