"""``POST /jobs`` and ``GET /jobs/{id}`` with its ``/wait``, ``/results`` and ``/output``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.concurrency import iterate_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from ....spec import parse_spec
from ...errors import JobNotSettledError
from ...jobs import LONG_POLL_CAP
from ...store.jobs import chunk_results
from ...timeutil import utcnow
from ..deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from ..schemas import JobRequest

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
async def submit(body: JobRequest, principal: PrincipalDep, services: ServicesDep,
                 key: IdempotencyKeyDep) -> JSONResponse:
    """Submit a batch in either dialect; it runs in the background (201, EXECUTING)."""
    code, job = services.jobs.submit(principal, body, key, utcnow())
    return JSONResponse(job.view(), status_code=code, headers={"Location": f"/jobs/{job.id}"})


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """The job's state (``receipt_id`` once SETTLED, ``error`` once FAILED or REFUNDED)."""
    return services.jobs.get(job_id, principal.account.id).view()


@router.get("/jobs/{job_id}/wait")
async def wait(job_id: str, principal: PrincipalDep, services: ServicesDep,
               max_wait: Annotated[float, Query(ge=0, allow_inf_nan=False)] = LONG_POLL_CAP,
               ) -> dict[str, Any]:
    """Long poll: the job as soon as its status changes, or after min(max_wait, 30) s."""
    return (await services.jobs.wait(job_id, principal.account.id, max_wait)).view()


@router.get("/jobs/{job_id}/results")
async def results(job_id: str, principal: PrincipalDep,
                  services: ServicesDep) -> dict[str, Any]:
    """Per-chunk progress: status, commitments, whether sampled and whether the replay matched."""
    job = services.jobs.get(job_id, principal.account.id)
    return {"job_id": job.id, "status": job.status,
            "chunks": chunk_results(services.store, job)}


@router.get("/jobs/{job_id}/output", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "float32 little-endian rows, C order"}})
async def output(job_id: str, principal: PrincipalDep,
                 services: ServicesDep) -> StreamingResponse:
    """The embeddings of a SETTLED job (409 ``job_not_settled`` before)."""
    job = services.jobs.get(job_id, principal.account.id)
    if job.status != "SETTLED":
        raise JobNotSettledError(f"job {job.id} is {job.status}; its output is served once it "
                                 "is SETTLED", job_status=job.status)
    dimensions = parse_spec(job.spec_yaml).dimensions
    return StreamingResponse(
        iterate_in_threadpool(services.jobs.output(job)), media_type="application/octet-stream",
        headers={"x-cyberian-shape": f"{job.input_count},{dimensions}",
                 "x-cyberian-dtype": "float32",
                 "content-length": str(job.input_count * dimensions * 4)})
