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
    422: {"description": "verification_failed: a block differs. The server re-executed the "
                         "whole batch, so the request is charged like a success "
                         "(charged_chunks); only a request refused before any work spends "
                         "nothing"}})
async def verify(body: VerifyRequest, principal: PrincipalDep, services: ServicesDep,
                 key: IdempotencyKeyDep) -> dict[str, Any]:
    """Re-execute the caller's batch and certify its claimed commitments with a receipt.

    Charged in billed chunks (the server's chunks of the model) once the batch
    was re-executed, whether the claim matched (200) or not (422).
    """
    return await services.vaas.verify(principal, body, key)
