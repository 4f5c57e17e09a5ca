"""A job's plan: the steps it runs, built once by the API and stored on the job record.

Every reader works from it: ``workers.canvas.send_job`` turns it into the Celery canvas, the
step task looks up what its step does, streams find the parts, and the lost-job sweeper
resends a job from it alone.

A step runs one model (on that model's queue) as one capability. Three kinds:

- a **part** step runs the job's head model on one part of the input (one sentence of a long
  text); the part steps come first and run in parallel;
- a **join** step assembles the parts' outputs into one (same model and queue as the parts);
- any other step reads the request plus the outputs of earlier steps (``reads``: request
  field -> step), e.g. a tone converter reads the synthesiser's ``audio`` and the encoder's
  ``embedding``.

The last step's output is the job's result; every other step's output is kept (packed, see
``jobcontract.capabilities``) for the steps after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobcontract.capabilities import capability as declared

#: bumped whenever the stored plan or the step message changes shape
PLAN_VERSION = 2


class PlanFormatError(ValueError):
    """A plan (or a message) written by another version of speechfleet."""


@dataclass(frozen=True)
class PlanStep:
    name: str  # as the job's steps list shows it: "piper[0]", "join", "rnnoise", "silero-vad"
    model: str  # the configured model (and so the queue) that runs it
    capability: str
    part: int | None = None  # a part step: which part of the input it runs on
    joins: tuple[int, ...] = ()  # a join step: the steps whose outputs it assembles
    reads: Mapping[str, int] = field(default_factory=dict)  # request field -> the earlier step filling it

    @property
    def is_join(self) -> bool:
        return bool(self.joins)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "model": self.model, "capability": self.capability}
        if self.part is not None:
            data["part"] = self.part
        if self.joins:
            data["joins"] = list(self.joins)
        if self.reads:
            data["reads"] = dict(self.reads)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanStep:
        return cls(name=data["name"], model=data["model"], capability=data["capability"], part=data.get("part"),
                   joins=tuple(data.get("joins", ())), reads=dict(data.get("reads", {})))


@dataclass(frozen=True)
class JobPlan:
    name: str  # what the caller named: a model or a toolchain
    capability: str  # the job's capability: how its result is presented
    steps: tuple[PlanStep, ...]
    #: a stream reads the parts' outputs as they finish, possibly after the job has ended, so
    #: they outlive the job a while instead of being dropped with it
    streamed: bool = False

    @classmethod
    def build(cls, name: str, capability: str, chain: Sequence[tuple[str, str]], parts: int = 0,
              streamed: bool = False) -> JobPlan:
        """The plan of a chain of ``(model, capability)`` steps. With ``parts``, the first
        step runs once per part of the input, then a join step assembles them (a single part of
        an unstreamed one-model chain is one step that joins its own output). Each later
        step reads the outputs of every earlier step (the part steps through their join),
        each as the request field its capability fills; a later output of the same field wins."""
        if not chain:
            raise ValueError("a plan needs at least one step")
        (head_model, head_capability), *rest = chain
        steps: list[PlanStep] = []
        produced: dict[str, int] = {}
        if parts == 1 and not streamed and not rest:
            # one part and nothing after it: the part's step joins its own output (one task, not a
            # chord of one plus a join task: half the broker trips of a one-sentence TTS request)
            steps.append(PlanStep(f"{head_model}[0]", head_model, head_capability, part=0))
        elif parts:
            steps += [PlanStep(f"{head_model}[{index}]", head_model, head_capability, part=index)
                      for index in range(parts)]
            steps.append(PlanStep("join", head_model, head_capability, joins=tuple(range(parts))))
        else:
            steps.append(PlanStep(head_model, head_model, head_capability))
        for model, step_capability in rest:
            previous = steps[-1]
            field_name = declared(previous.capability).next_field
            if field_name is None:
                raise ValueError(f"{previous.capability} output cannot feed a later step")
            produced[field_name] = len(steps) - 1
            steps.append(PlanStep(model, model, step_capability, reads=dict(produced)))
        return cls(name, capability, tuple(steps), streamed)

    @property
    def part_steps(self) -> list[int]:
        """The steps that run on the parts of the input, in part order."""
        return [index for index, step in enumerate(self.steps) if step.part is not None]

    @property
    def last(self) -> int:
        return len(self.steps) - 1

    def is_last(self, index: int) -> bool:
        return index == self.last

    def joins_in_place(self, index: int) -> bool:
        """A part step that no join step assembles (a job of one part): it joins its own output."""
        return self.steps[index].part is not None and not any(step.is_join for step in self.steps)

    def models(self) -> list[str]:
        """Every model the job needs, in the order they first run."""
        return list(dict.fromkeys(step.model for step in self.steps))

    def to_json(self) -> str:
        return json.dumps({"version": PLAN_VERSION, "name": self.name, "capability": self.capability,
                           "steps": [step.to_dict() for step in self.steps], "streamed": self.streamed})

    @classmethod
    def from_json(cls, raw: str) -> JobPlan:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise PlanFormatError(f"the job's plan has format {found}; this speechfleet reads format {PLAN_VERSION}")
        return cls(data["name"], data["capability"], tuple(PlanStep.from_dict(step) for step in data["steps"]),
                   bool(data.get("streamed")))
