"""The transparency log (no authentication): ``GET /log/checkpoint``, ``/log/entries/{index}``,
``/log/proof/inclusion`` and ``/log/proof/consistency``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from ....tlog import consistency_to_json
from ..deps import ServicesDep

__all__ = ["router"]

router = APIRouter(tags=["log"])

_Size = Annotated[int | None, Query(ge=0, description="tree size (default: the current size)")]


@router.get("/log/checkpoint", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}},
                             "description": "a C2SP tlog-checkpoint as a C2SP signed note"}})
async def checkpoint(services: ServicesDep) -> PlainTextResponse:
    """The log's checkpoint at its current size, signed by the log key."""
    return PlainTextResponse(services.log.checkpoint_note())


@router.get("/log/entries/{index}")
async def entry(index: Annotated[int, Path(ge=0)], services: ServicesDep) -> dict[str, Any]:
    """The entry at ``index``: the signed receipt, its hash and its leaf hash."""
    return services.log.entry(index).view()


@router.get("/log/proof/inclusion")
async def inclusion(
        services: ServicesDep,
        index: Annotated[int | None, Query(ge=0)] = None,
        receipt_hash: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
        size: _Size = None) -> dict[str, Any]:
    """The inclusion proof of one entry (by ``index`` or ``receipt_hash``) at ``size``."""
    return services.log.inclusion(index=index, receipt_hash=receipt_hash, size=size).to_json()


@router.get("/log/proof/consistency")
async def consistency(
        services: ServicesDep,
        old_size: Annotated[int, Query(alias="from", ge=0)],
        new_size: Annotated[int | None, Query(alias="to", ge=0)] = None) -> dict[str, Any]:
    """The proof that the log at ``from`` is a prefix of the log at ``to`` (default: now)."""
    new = services.log.size() if new_size is None else new_size
    return consistency_to_json(old_size, new, services.log.consistency(old_size, new))
