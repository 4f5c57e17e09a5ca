"""Dependencies as ``Annotated`` aliases; the objects themselves are built once at start-up
and kept on ``app.state``. They are ``async def``: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hop per dependency per request for what is an attribute read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api.catalog import ModelCatalog
from api.dispatch import JobDispatcher, Preference
from jobcontract.async_store import AsyncJobStore
from jobcontract.settings import APISettings


async def _dispatcher(request: Request) -> JobDispatcher:
    return request.app.state.dispatcher


async def _catalog(request: Request) -> ModelCatalog:
    return request.app.state.catalog


async def _store(request: Request) -> AsyncJobStore:
    return request.app.state.job_store


async def _settings(request: Request) -> APISettings:
    return request.app.state.settings


def tenant(request: Request) -> str | None:
    """The caller's tenant, set by AccessControl when API keys are configured."""
    return getattr(request.state, "tenant", None)


async def _preference(
    request: Request,
    prefer: Annotated[str | None, Header(description="RFC 7240: 'respond-async' and/or 'wait=<seconds>'")] = None,
    x_priority: Annotated[str | None, Header(description="low, normal (default) or high")] = None,
    x_deadline: Annotated[str | None, Header(description="seconds; a job still queued then is dropped")] = None,
) -> Preference:
    return Preference.parse(prefer, x_priority, x_deadline, owner=tenant(request))


DispatcherDep = Annotated[JobDispatcher, Depends(_dispatcher)]
CatalogDep = Annotated[ModelCatalog, Depends(_catalog)]
JobStoreDep = Annotated[AsyncJobStore, Depends(_store)]
SettingsDep = Annotated[APISettings, Depends(_settings)]
PreferenceDep = Annotated[Preference, Depends(_preference)]
