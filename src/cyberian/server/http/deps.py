"""FastAPI dependencies: the services, the calling account (with its rate limit), headers.

Every dependency is ``async``: the store is used from the event loop only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import Principal, authenticate
from ..idempotency import check_key
from ..quotas import check_feature
from ..timeutil import utcnow
from ..wiring import Services

__all__ = ["IdempotencyKeyDep", "PrincipalDep", "ServicesDep", "UploaderDep"]

_bearer = HTTPBearer(auto_error=False, bearerFormat="cyb_<label>_<secret>",
                     description="An API key from /auth/register or `cyberian accounts create`.")


async def get_services(request: Request) -> Services:
    """The running server's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_principal(
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; counts the request against its tier's per-minute limit."""
    principal = authenticate(services.store, credentials.credentials if credentials else None)
    standing = services.quotas.standing(principal.account, utcnow())
    services.limiter.check(principal.account.id, standing.limits.requests_per_minute)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def idempotency_key(
        key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> str | None:
    """The request's ``Idempotency-Key`` header, validated."""
    return check_key(key)


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


async def uploader(principal: PrincipalDep, services: ServicesDep) -> Principal:
    """The caller, if its tier may upload models (``tier_required`` otherwise)."""
    check_feature(services.quotas.standing(principal.account, utcnow()), "model_upload")
    return principal


UploaderDep = Annotated[Principal, Depends(uploader)]
