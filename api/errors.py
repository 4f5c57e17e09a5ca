"""HSE's error envelope ``{"object": "error", "message", "type", "param", "code"}`` with
honest status codes, for every error the API can produce."""

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

from speechmodels import InputError


class ErrorResponse(BaseModel):
    object: str = "error"
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}


def error_response(status: int, message: str, *, type: str = "invalid_request_error", code: str | int | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None,
                   extra: dict[str, Any] | None = None) -> JSONResponse:
    body = ErrorResponse(message=message, type=type, param=param, code=code).model_dump()
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers)


def not_found(message: str, code: str, param: str | None = None) -> APIError:
    return APIError(404, message, code=code, param=param)


def unavailable(message: str, code: str = "service_unavailable") -> APIError:
    return APIError(503, message, type="service_unavailable", code=code, headers={"Retry-After": "1"})


_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, type=exc.type, code=exc.code, param=exc.param,
                              headers=exc.headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = first.get("msg", "invalid request")
        if location:
            message = f"{'.'.join(location)}: {message}"
        return error_response(400, message, code="invalid_request", param=".".join(location) or None)

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, exc: InputError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), code=_STATUS_CODES.get(exc.status_code),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    @app.exception_handler(BrokerError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        logger.warning("broker unavailable: {}", exc)
        return error_response(503, "the job broker (Redis) is unreachable; retry shortly",
                              type="service_unavailable", code="broker_unavailable", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.opt(exception=exc).error("unhandled error")
        return error_response(500, "internal error", type="server_error", code="internal_error")

