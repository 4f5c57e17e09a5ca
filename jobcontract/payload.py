"""What the API hands the workers: a job's input, kept in Redis beside the record (never in
the Celery message, so messages stay small and a lost one can be sent again from the record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from jobcontract.plan import PLAN_VERSION, PlanFormatError, PlanStep


@dataclass(frozen=True)
class AudioOutput:
    """How a job that ends in audio encodes it (HSE's output_options, OpenAI's response_format)."""

    format: str = "wav"
    sample_rate: int | None = None  # None: the model's own


@dataclass(frozen=True)
class JobInput:
    #: the fields every step's model sees (audio bytes, text, voice, VAD parameters, ...)
    request: dict[str, Any]
    #: a job split into parts: each part's own fields (``{"text": sentence}``), added to
    #: ``request`` for that part's step
    parts: list[dict[str, Any]] = field(default_factory=list)
    output: AudioOutput | None = None

    def step_request(self, step: PlanStep) -> dict[str, Any]:
        """The request a step's model prepares (before earlier steps' outputs are added)."""
        if step.part is None:
            return dict(self.request)
        return {**self.request, **self.parts[step.part]}

    def encode(self) -> bytes:
        output = None if self.output is None else {"format": self.output.format, "sample_rate": self.output.sample_rate}
        return msgpack.packb({"version": PLAN_VERSION, "request": self.request, "parts": self.parts, "output": output},
                             use_bin_type=True)

    @classmethod
    def decode(cls, raw: bytes) -> JobInput:
        data = msgpack.unpackb(raw, raw=False)
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            raise PlanFormatError(f"the job's input was stored by another speechfleet version (this one reads "
                                  f"format {PLAN_VERSION})")
        output = data.get("output")
        return cls(data["request"], data.get("parts") or [], AudioOutput(**output) if output else None)
