"""``GET /models``, ``POST /models/upload``, ``GET /models/uploads``, ``DELETE /models/{id}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from ...store.models import list_uploads
from ...timeutil import utcnow
from ...uploads import UPLOAD_NAME, UploadQuery
from ..deps import PrincipalDep, ServicesDep, UploaderDep

__all__ = ["router"]

router = APIRouter(tags=["models"])

_RAW_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/models")
async def catalog(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """The models this account can use: the catalog, then its own uploads."""
    models = [entry.describe() for entry in services.catalog]
    models += [upload.describe() for upload in list_uploads(services.store, principal.account.id)]
    return {"models": models}


@router.post("/models/upload", status_code=status.HTTP_201_CREATED, openapi_extra=_RAW_BODY,
             responses={200: {"description": "The same bytes and name were uploaded before"}})
async def upload(
        request: Request,
        principal: UploaderDep,
        services: ServicesDep,
        name: Annotated[str, Query(pattern=UPLOAD_NAME, description="lowercase-kebab handle")],
        output_dimensions: Annotated[int, Query(ge=1, le=65536)],
        tokenizer: Annotated[str, Query(min_length=1, max_length=200,
                                        description="a catalog model's name, or a tokenizer "
                                                    "SHA-256 this server holds")],
        max_sequence_length: Annotated[int | None, Query(ge=2, le=8192)] = None,
        pooling_strategy: Annotated[Literal["mean", "cls", "none"] | None, Query()] = None,
        normalize: Annotated[bool | None, Query()] = None,
        description: Annotated[str | None, Query(max_length=1000)] = None,
) -> JSONResponse:
    """Register an ONNX model (enterprise tier): raw bytes in, a model id out."""
    query = UploadQuery(name=name, output_dimensions=output_dimensions, tokenizer=tokenizer,
                        max_sequence_length=max_sequence_length,
                        pooling_strategy=pooling_strategy, normalize=normalize,
                        description=description)
    code, answer = await services.uploads.upload(principal.account.id, query, request.stream(),
                                                 utcnow())
    return JSONResponse(answer, status_code=code)


@router.get("/models/uploads")
async def uploads(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """This account's uploaded models."""
    return {"models": [upload.describe()
                       for upload in list_uploads(services.store, principal.account.id)]}


@router.delete("/models/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(model_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Soft-delete one of this account's uploads (409 while an unfinished job uses it)."""
    services.uploads.delete(principal.account.id, model_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
