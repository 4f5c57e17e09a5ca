"""Multipart bodies (OpenAI-style calls that upload a file): parsed with bounds, validated
against a schema, refused with the envelope's 400s."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api.errors import APIError

Schema = TypeVar("Schema", bound=BaseModel)


def invalid_request(exc: ValidationError) -> APIError:
    """A schema's first complaint, as a 400 naming the field."""
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    return APIError(400, f"{param}: {first['msg']}" if param else first["msg"], reason="invalid_request", param=param)


async def read_form(request: Request, schema: type[Schema], list_fields: tuple[str, ...] = (),
                    max_files: int = 1, max_fields: int = 64) -> tuple[Schema, dict[str, list[UploadFile]]]:
    """The form's fields through ``schema`` (a list field may be sent as ``name[]`` or ``name``,
    repeated), and its uploads by field name."""
    try:
        form = await request.form(max_files=max_files, max_fields=max_fields)
    except MultiPartException as exc:
        raise APIError(400, f"malformed multipart body: {exc.message}", reason="invalid_multipart") from None
    lists = {name: [value for value in form.getlist(f"{name}[]") + form.getlist(name) if isinstance(value, str)]
             for name in list_fields}
    fields = {key: value for key, value in form.items() if isinstance(value, str) and key.rstrip("[]") not in lists}
    uploads: dict[str, list[UploadFile]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            uploads.setdefault(key.removesuffix("[]"), []).append(value)
    try:
        return schema.model_validate({**fields, **lists}), uploads
    except ValidationError as exc:
        raise invalid_request(exc) from None
