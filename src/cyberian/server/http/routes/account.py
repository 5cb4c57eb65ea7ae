"""``GET /account``: tier, standing, usage, limits and keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...quotas import derive_usage
from ...store.accounts import list_keys
from ...timeutil import iso, utcnow
from ..deps import PrincipalDep, ServicesDep

__all__ = ["router"]

router = APIRouter(tags=["account"])


@router.get("/account")
async def account(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """The calling account: tier and effective tier, chunks consumed, limits, keys."""
    now = utcnow()
    me = principal.account
    standing = services.quotas.standing(me, now)
    usage = derive_usage(services.store, me.id, standing)
    return {
        "account_id": me.id,
        "tier": me.tier,
        "effective_tier": standing.effective_tier,
        "subscription_status": standing.subscription_status,
        "trial_ends_at": iso(standing.trial_ends_at) if standing.trial_ends_at else None,
        "period_started_at": iso(standing.period_start),
        "period_ends_at": iso(standing.period_end),
        "chunks_consumed_period": usage.period,
        "chunks_consumed_today": usage.today,
        "chunks_reserved": services.quotas.reserved(me.id),
        "limits": standing.limits.model_dump(),
        "keys": [key.public() for key in list_keys(services.store, me.id)],
        "current_key_id": principal.key_id,
        "created_at": iso(me.created_at),
    }
