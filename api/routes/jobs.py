"""The job API: status, result, cancel."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DispatcherDep, JobStoreDep
from api.dispatch import finished_job_body
from api.errors import APIError, ErrorResponse, not_found
from api.protocol import JobView
from workers.jobs import JobRecord

router = APIRouter(tags=["jobs"])
_ERRORS = {404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}}


async def _existing(store, job_id: str) -> JobRecord:
    record = await store.get(job_id)
    if record is None:
        raise not_found(f"job '{job_id}' does not exist (or its record expired)", reason="job_not_found")
    return record


@router.get("/v1/jobs/{job_id}", response_model=JobView, responses=_ERRORS)
async def get_job(job_id: str, store: JobStoreDep) -> JobView:
    return JobView.of(await _existing(store, job_id))


@router.get("/v1/jobs/{job_id}/result", responses=_ERRORS,
            description="The body the synchronous request would have returned; the job's own error if it failed; "
                        "409 while it is queued or running, or if it was cancelled.")
async def get_job_result(job_id: str, store: JobStoreDep) -> dict:
    return finished_job_body(await _existing(store, job_id))


@router.delete("/v1/jobs/{job_id}", response_model=JobView, responses=_ERRORS,
               description="Cancel a queued job. A running or finished job cannot be cancelled (409).")
async def cancel_job(job_id: str, store: JobStoreDep, dispatcher: DispatcherDep):
    status = await store.cancel(job_id)
    if status == "missing":
        raise not_found(f"job '{job_id}' does not exist (or its record expired)", reason="job_not_found")
    record = await _existing(store, job_id)
    if status not in ("cancelled",):
        raise APIError(409, f"job {job_id} is {status} and can no longer be cancelled", reason="job_not_cancellable",
                       job_id=job_id)
    if record.callback_url:
        await dispatcher.notify(job_id)  # deduplicated by the delivery task if cancelled twice
    return JSONResponse(JobView.of(record).model_dump())
