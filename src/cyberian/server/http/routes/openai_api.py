"""``POST /v1/embeddings`` and ``GET /v1/models``: the OpenAI embeddings API, certified.

Any OpenAI client (``OpenAI(base_url=<server>/v1, api_key=<cyberian key>)``)
works unchanged. Each request runs as a job (see
:mod:`cyberian.server.embeddings`) and is answered once that job is SETTLED
with a signed receipt, named by the ``x-cyberian-job-id`` and
``x-cyberian-receipt-id`` headers and again under ``cyberian`` in the body.
Errors under ``/v1/`` have OpenAI's shape (:mod:`cyberian.server.http.errors`).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...embeddings import texts_of
from ...store.models import list_uploads
from ..deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from ..schemas import EmbeddingsRequest

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_CREATED = 0
"""``created`` of a catalog model: shipped models have no creation time of their own."""


def _encoded(row: npt.NDArray[np.float32], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()  # type: ignore[no-any-return]  # each float32 exactly, as a double


@router.post("/embeddings", responses={
    502: {"description": "job_failed: the job ended FAILED or REFUNDED; nothing is returned "
                         "that could not be certified"}})
async def create_embeddings(body: EmbeddingsRequest, principal: PrincipalDep,
                            services: ServicesDep, key: IdempotencyKeyDep) -> JSONResponse:
    """Embed the input as a job and answer with its rows once it is SETTLED with a receipt."""
    texts = texts_of(body.input)
    result = await services.embeddings.embed(principal, body.model, texts,
                                             dimensions=body.dimensions, key=key)
    job = result.job
    assert job.receipt_id is not None  # SETTLED
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": index,
                  "embedding": _encoded(row, body.encoding_format)}
                 for index, row in enumerate(result.vectors)],
        "model": body.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        "cyberian": {"job_id": job.id, "receipt_id": job.receipt_id,
                     "receipt_url": f"/receipts/{job.receipt_id}",
                     "output_url": f"/jobs/{job.id}/output", "spec_hash": job.spec_hash},
    }
    return JSONResponse(answer, headers={"x-cyberian-job-id": job.id,
                                         "x-cyberian-receipt-id": job.receipt_id})


def _model(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


@router.get("/models")
async def list_models(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """The models this account can embed with: the catalog, then its own uploads."""
    models = [_model(entry.name, _CREATED, "cyberian") for entry in services.catalog]
    models += [_model(upload.id, int(upload.created_at.timestamp()), principal.account.id)
               for upload in list_uploads(services.store, principal.account.id)]
    return {"object": "list", "data": models}
