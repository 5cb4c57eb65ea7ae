"""``GET /receipts/{id}`` and ``GET /receipts/{id}/verify``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ....receipts import verification_report
from ...errors import not_found
from ...store.jobs import get_receipt
from ..deps import PrincipalDep, ServicesDep

__all__ = ["router"]

router = APIRouter(tags=["receipts"])


def _receipt(receipt_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    receipt = get_receipt(services.store, receipt_id, principal.account.id)
    if receipt is None:
        raise not_found(f"receipt {receipt_id!r}")
    return receipt


@router.get("/receipts/{receipt_id}")
async def receipt(receipt_id: str, principal: PrincipalDep,
                  services: ServicesDep) -> dict[str, Any]:
    """The full signed receipt."""
    return _receipt(receipt_id, principal, services)


@router.get("/receipts/{receipt_id}/verify")
async def verify(receipt_id: str, principal: PrincipalDep,
                 services: ServicesDep) -> dict[str, Any]:
    """The server's re-check of the receipt against its published keys."""
    found = _receipt(receipt_id, principal, services)
    return verification_report(found, services.signer.public_keys())
