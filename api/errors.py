"""HSE's error envelope for every error the API produces, with honest status codes.

HSE answers ``{"object": "error", "message", "type", "param", "code"}`` where ``code`` is the
HTTP status (an int) and ``type`` an error class name such as ``BadRequestError``; clients
written against HSE parse exactly that. speechfleet keeps it and adds ``reason``, a stable
machine-readable slug (``model_not_found``, ``audio_too_long``, ...), plus ``job_id`` where
a job exists.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from loguru import logger
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobcontract.plan import PlanFormatError
from speechmodels import InputError

ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "RequestTooLargeError",
    415: "UnsupportedMediaTypeError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}
_DEFAULT_REASONS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                    409: "conflict", 413: "request_too_large", 415: "unsupported_media_type", 429: "rate_limited",
                    500: "internal_error", 503: "unavailable", 504: "timeout"}


def printable(text: str | None) -> str | None:
    """Text that can always be written as UTF-8: an echoed value may hold lone surrogates
    (JSON's \\ud800 escapes decode to them), which would make rendering the error fail."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ErrorResponse(BaseModel):
    object: str = "error"
    message: str
    type: str
    param: str | None = None
    code: int
    reason: str | None = None
    job_id: str | None = None


class APIError(Exception):
    def __init__(self, status: int, message: str, *, reason: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, job_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.param = param
        self.headers = headers or {}
        self.job_id = job_id


def error_body(status: int, message: str, *, reason: str | None = None, param: str | None = None,
               job_id: str | None = None) -> dict[str, Any]:
    """The envelope; ``reason`` is never empty (a status's generic slug when none is given)."""
    return ErrorResponse(message=printable(message), type=ERROR_TYPES.get(status, "Error"), param=printable(param),
                         code=status, reason=reason or _DEFAULT_REASONS.get(status, "error"),
                         job_id=job_id).model_dump()


def error_response(status: int, message: str, *, reason: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None, job_id: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, reason=reason, param=param, job_id=job_id), status_code=status,
                        headers=headers)


def not_found(message: str, reason: str, param: str | None = None) -> APIError:
    return APIError(404, message, reason=reason, param=param)


def unavailable(message: str, reason: str) -> APIError:
    return APIError(503, message, reason=reason, headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, reason=exc.reason, param=exc.param, headers=exc.headers,
                              job_id=exc.job_id)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = first.get("msg", "invalid request")
        if location:
            message = f"{'.'.join(location)}: {message}"
        return error_response(400, message, reason="invalid_request", param=".".join(location) or None)

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, exc: InputError) -> JSONResponse:
        return error_response(exc.status, exc.message, reason=exc.code, param=exc.param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), reason=_DEFAULT_REASONS.get(exc.status_code),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(PlanFormatError)
    async def _other_version(_: Request, exc: PlanFormatError) -> JSONResponse:
        # a job recorded by another speechfleet version (a rolling deploy): say so, not 500
        return error_response(410, f"this job was recorded by another speechfleet version: {exc}",
                              reason="job_format_unsupported")

    @app.exception_handler(UnicodeError)
    async def _not_unicode(_: Request, exc: UnicodeError) -> JSONResponse:
        # text that cannot be encoded (lone surrogates) fails where it is first written out
        return error_response(400, "the request holds text that is not valid Unicode (a lone surrogate?)",
                              reason="invalid_text")

    @app.exception_handler(redis.exceptions.TimeoutError)
    async def _broker_busy(_: Request, exc: Exception) -> JSONResponse:
        # reachable but slow: say so, the client's retry is the same but an operator's fix is not
        logger.warning("broker call timed out: {}", exc)
        return error_response(503, "the job broker (Redis) is busy and did not answer in time; retry shortly",
                              reason="broker_busy", headers={"Retry-After": "2"})

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(BrokerError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        logger.warning("broker unavailable: {}: {}", type(exc).__name__, exc)
        return error_response(503, "the job broker (Redis) is unreachable; retry shortly",
                              reason="broker_unavailable", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.opt(exception=exc).error("unhandled error")
        return error_response(500, "internal error", reason="internal_error")
