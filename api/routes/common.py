"""What every capability route shares: documented error responses and the job round trip."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from api.dispatch import JobDispatcher, Preference, finished_job_body, has_result_data
from api.errors import ErrorResponse
from api.protocol.jobs import JobView
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "invalid input (including undecodable or empty audio)",
        404: "unknown model",
        413: "body or audio too large",
        503: "broker unreachable or no live worker for the model",
        504: "synchronous wait ran out; the job keeps running",
    }.items()
}
ASYNC_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"model": JobView, "description": "accepted (Prefer: respond-async); poll the Location"}
}


async def run_job(dispatcher: JobDispatcher, plan: JobPlan, job_input: JobInput, preference: Preference,
                  render: dict | None = None, callback_url: str | None = None) -> dict[str, Any] | Response:
    """Queue the job; a 202 with the job for async requests, else the finished job's body."""
    record = await dispatcher.submit(plan, job_input, preference, render, callback_url)
    if preference.respond_async:
        return JSONResponse(JobView.of(record).model_dump(), status_code=202,
                            headers={"Location": f"/v1/jobs/{record.id}", "Preference-Applied": "respond-async"})
    body = await finished_job_body(record, dispatcher.store)
    if has_result_data(record):
        # answered: the audio is in the response; only an async job's result waits to be fetched
        await dispatcher.store.drop_result_data(record.id)
    return body
