"""The playground: one static page at ``/`` (HTML, JS and CSS shipped in the package under
``api/static``; no build step, nothing fetched from elsewhere) that calls the API as any
browser client would."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["playground"])


@router.get("/", include_in_schema=False)
async def playground() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    """Mounted at /playground: the page's script and style."""
    return StaticFiles(directory=STATIC)
