"""The job API: status, result, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import DispatcherDep, JobStoreDep, tenant
from api.dispatch import finished_job_body
from api.errors import APIError, ErrorResponse, not_found
from api.protocol.jobs import JobView
from jobcontract.metrics import counter_key
from jobcontract.record import JobRecord

router = APIRouter(tags=["jobs"])
_ERRORS = {404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}}


MAX_JOB_ID_CHARS = 128  # ours are 32 hex digits


async def _existing(store, job_id: str, request: Request) -> JobRecord:
    """The job, if the caller may see it. Another tenant's job is a 404, exactly as a job that
    does not exist, so ids cannot be probed for existence."""
    if len(job_id) > MAX_JOB_ID_CHARS:
        raise APIError(400, f"a job id has at most {MAX_JOB_ID_CHARS} characters", reason="invalid_job_id",
                       param="job_id")
    record = await store.get(job_id)
    if record is None or record.owner != tenant(request):
        raise not_found(f"job '{job_id}' does not exist (or its record expired)", reason="job_not_found")
    return record


@router.get("/v1/jobs/{job_id}", response_model=JobView, responses=_ERRORS)
async def get_job(job_id: str, request: Request, store: JobStoreDep) -> JobView:
    return JobView.of(await _existing(store, job_id, request))


@router.get("/v1/jobs/{job_id}/result", responses=_ERRORS,
            description="The body the synchronous request would have returned; the job's own error if it failed; "
                        "409 while it is queued or running, or if it was cancelled.")
async def get_job_result(job_id: str, request: Request, store: JobStoreDep) -> dict:
    return await finished_job_body(await _existing(store, job_id, request), store)


@router.delete("/v1/jobs/{job_id}", response_model=JobView, responses=_ERRORS,
               description="Cancel a queued job. A running or finished job cannot be cancelled (409).")
async def cancel_job(job_id: str, request: Request, store: JobStoreDep, dispatcher: DispatcherDep):
    await _existing(store, job_id, request)  # the caller's own job, before anything changes
    status = await store.cancel(job_id)
    if status == "missing":
        raise not_found(f"job '{job_id}' does not exist (or its record expired)", reason="job_not_found")
    record = await _existing(store, job_id, request)
    if status not in ("cancelled", "already_cancelled"):
        raise APIError(409, f"job {job_id} is {status} and can no longer be cancelled", reason="job_not_cancellable",
                       job_id=job_id)
    if status == "cancelled":  # this request cancelled it: count it once, tell the callback once
        await request.app.state.redis.hincrby(counter_key("jobs"), f"{record.model}|cancelled", 1)
        if record.callback_url:
            await dispatcher.notify(job_id)
    return JSONResponse(JobView.of(record).model_dump())
