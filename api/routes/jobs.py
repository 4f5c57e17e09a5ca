"""The job API: status, result, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import DispatcherDep, JobStoreDep
from api.dispatch import finished_job_body
from api.errors import APIError, ErrorResponse, not_found
from api.protocol.jobs import JobView
from jobcontract.metrics import counter_key
from jobcontract.record import JobRecord

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
    return await finished_job_body(await _existing(store, job_id), store)


@router.delete("/v1/jobs/{job_id}", response_model=JobView, responses=_ERRORS,
               description="Cancel a queued job. A running or finished job cannot be cancelled (409).")
async def cancel_job(job_id: str, request: Request, store: JobStoreDep, dispatcher: DispatcherDep):
    status = await store.cancel(job_id)
    if status == "missing":
        raise not_found(f"job '{job_id}' does not exist (or its record expired)", reason="job_not_found")
    record = await _existing(store, job_id)
    if status not in ("cancelled", "already_cancelled"):
        raise APIError(409, f"job {job_id} is {status} and can no longer be cancelled", reason="job_not_cancellable",
                       job_id=job_id)
    if status == "cancelled":  # this request cancelled it: count it once, tell the callback once
        await request.app.state.redis.hincrby(counter_key("jobs"), f"{record.model}|cancelled", 1)
        if record.callback_url:
            await dispatcher.notify(job_id)
    return JSONResponse(JobView.of(record).model_dump())
