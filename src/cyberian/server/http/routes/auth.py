"""``POST /auth/register``, ``POST /auth/keys/rotate``, ``POST /auth/keys/revoke``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from ...accounts import create_account, revoke_key, rotate_key
from ...errors import RegistrationDisabledError, not_found
from ...timeutil import iso, utcnow
from ...wiring import REGISTRATIONS_PER_MINUTE
from ..deps import PrincipalDep, ServicesDep
from ..schemas import RevokeRequest

__all__ = ["router"]

router = APIRouter(tags=["auth"])


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, responses={
    403: {"description": "Open registration is off on this server (registration_disabled)"}})
async def register(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Open a trial account and mint its first key (shown only in this answer)."""
    if not services.settings.registration_enabled:
        raise RegistrationDisabledError(
            "open registration is off on this server: ask its operator for an API key "
            "(cyberian accounts create), or have it started with cyberian serve "
            "--open-registration (setting registration_enabled: true)",
            setting="registration_enabled")
    client = request.client.host if request.client else "unknown"
    services.limiter.check(f"register:{client}", REGISTRATIONS_PER_MINUTE)
    account, key_id, secret = create_account(
        services.store, "trial", now=utcnow(),
        trial_days=services.settings.tiers["trial"].period_days)
    return {"api_key": secret, "key_id": key_id, "account_id": account.id, "tier": account.tier,
            "trial_ends_at": iso(account.trial_ends_at) if account.trial_ends_at else None}


@router.post("/auth/keys/rotate", status_code=status.HTTP_201_CREATED)
async def rotate(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Mint another key for this account; existing keys stay valid until revoked."""
    key_id, secret = rotate_key(services.store, principal.account, utcnow())
    return {"api_key": secret, "key_id": key_id}


@router.post("/auth/keys/revoke")
async def revoke(body: RevokeRequest, principal: PrincipalDep,
                 services: ServicesDep) -> dict[str, Any]:
    """Revoke one of this account's keys by its ``key_id`` (idempotent)."""
    revoked = revoke_key(services.store, body.key_id, now=utcnow(),
                         account_id=principal.account.id)
    if revoked is None:
        raise not_found(f"key {body.key_id!r}")
    return {"revoked": revoked.key_id}
