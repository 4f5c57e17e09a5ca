"""A job's record: one Redis hash per job, with a TTL (see ``jobcontract.scripts`` for the
transitions and ``jobcontract.keys`` for where it lives)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jobcontract.plan import JobPlan

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass
class JobError:
    """The error of a failed job, in the project's envelope terms."""

    message: str
    reason: str | None = None  # the envelope's machine-readable slug
    param: str | None = None
    status: int = 400  # the HTTP status the job's result answers with

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def _numbered(raw: dict[str, str], prefix: str) -> list[dict]:
    """The JSON values of ``<prefix>.<n>`` fields, in n order."""
    names = sorted((k for k in raw if k.startswith(prefix)), key=lambda k: int(k.partition(".")[2]))
    return [json.loads(raw[name]) for name in names]


@dataclass
class JobRecord:
    id: str
    status: str
    created_at: float
    plan: JobPlan
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    resent: int = 0  # times the lost-job sweeper had to send it again
    steps: list[dict] = field(default_factory=list)  # each step's progress, as workers recorded it
    result: Any = None
    error: JobError | None = None
    render: dict | None = None  # how the API presents the result (response format, dialect)
    priority: str = "normal"
    deadline_at: float | None = None  # dropped, not run, if still queued then
    callback_url: str | None = None
    webhook_attempts: list[dict] = field(default_factory=list)
    #: the tenant (API key id) that made the job; None on a server without keys
    owner: str | None = None
    #: the job's trace context (W3C ``traceparent`` carrier, ``jobcontract.tracing``); None untraced
    trace: dict[str, str] | None = None

    @property
    def model(self) -> str:
        """What the caller named: a model or a toolchain."""
        return self.plan.name

    @property
    def capability(self) -> str:
        return self.plan.capability

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> JobRecord:
        def number(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        return cls(
            id=raw["id"], status=raw["status"], created_at=float(raw["created_at"]),
            plan=JobPlan.from_json(raw.get("plan", "null")), started_at=number("started_at"),
            finished_at=number("finished_at"),
            attempts=int(raw.get("attempts", 0)), resent=int(raw.get("resent", 0)), steps=_numbered(raw, "step."),
            result=json.loads(raw["result"]) if raw.get("result") else None,
            error=JobError(**json.loads(raw["error"])) if raw.get("error") else None,
            render=json.loads(raw["render"]) if raw.get("render") else None,
            priority=raw.get("priority", "normal"), deadline_at=number("deadline_at"),
            callback_url=raw.get("callback_url"), webhook_attempts=_numbered(raw, "webhook."),
            owner=raw.get("owner"), trace=json.loads(raw["trace"]) if raw.get("trace") else None,
        )

    def initial_hash(self) -> dict[str, str]:
        fields = {"id": self.id, "model": self.model, "capability": self.capability, "status": self.status,
                  "created_at": repr(self.created_at), "updated_at": repr(self.created_at), "attempts": "0",
                  "priority": self.priority, "plan": self.plan.to_json()}
        if self.deadline_at is not None:
            fields["deadline_at"] = repr(self.deadline_at)
        if self.callback_url is not None:
            fields["callback_url"] = self.callback_url
        if self.render is not None:
            fields["render"] = json.dumps(self.render)
        if self.owner is not None:
            fields["owner"] = self.owner
        if self.trace is not None:
            fields["trace"] = json.dumps(self.trace)
        return fields
