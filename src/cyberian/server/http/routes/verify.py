"""``POST /verify``: Verification as a Service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from ..schemas import VerifyRequest

__all__ = ["router"]

router = APIRouter(tags=["verify"])


@router.post("/verify", responses={
    409: {"description": "cpu_class_mismatch: the claim was made on a CPU class this verifier "
                         "does not reproduce"},
    422: {"description": "verification_failed: a block differs"}})
async def verify(body: VerifyRequest, principal: PrincipalDep, services: ServicesDep,
                 key: IdempotencyKeyDep) -> dict[str, Any]:
    """Re-execute the caller's batch and certify its claimed commitments with a receipt."""
    return await services.vaas.verify(principal, body, key)
