"""How a worker spends the CPU cores it owns on a model: several instances of the model (each
with its own batching thread on the model's one queue, ``workers.batcher``), intra-op threads
in each, or both.

``threads`` and ``instances`` in ``config.yml`` decide when given. Otherwise the family's
``cores_as`` does, chosen per family by measurement (2 cores, in-process, the worker's batcher):

- ``"instances"``: one single-threaded copy per core, up to ``MAX_DEFAULT_INSTANCES`` copies,
  the cores left over as threads of each. Piper (4 clients): two copies 21 audio s/s, one
  2-thread copy 19, one 1-thread copy 10; Silero VAD (10 s clips, batches of 16): 68 / 51 /
  44 req/s; the GE2E encoder: 88 / 63 / 51; RNNoise: 10.0 / 5.1 / 5.4.
- ``"threads"`` (every other family): one instance with every core as intra-op threads; one
  copy of the weights, for models not measured here (Whisper's CTranslate2 ``cpu_threads``).

Instances times threads stay within the worker's cores: oversubscribed, onnxruntime's spinning
threads cost more than they add (Piper, two 2-thread copies on 2 cores: 13 audio s/s against
21 for two 1-thread copies). Off the CPU one instance is loaded unless ``instances`` says
otherwise: a GPU runs one call at a time anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from speechmodels import ModelConfig
from speechmodels.registry import family_of

MAX_DEFAULT_INSTANCES = 4  # each copy holds its own weights; beyond four, cores become threads of each


@dataclass(frozen=True)
class Parallelism:
    instances: int
    threads: int


def available_cores() -> int:
    """The cores this process may run on (its affinity or cgroup cpuset, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan(config: ModelConfig, cores: int, device: str = "cpu") -> Parallelism:
    """Instances and threads of each for ``config`` in a worker that owns ``cores`` cores."""
    cores = max(1, cores)
    if config.instances is not None:
        return Parallelism(config.instances, config.threads or max(1, cores // config.instances))
    cores_as = getattr(family_of(config.model_type).load_class(), "cores_as", "threads")
    if cores_as == "instances" and device == "cpu":
        threads = config.threads or max(1, cores // min(cores, MAX_DEFAULT_INSTANCES))
        return Parallelism(max(1, min(cores // threads, MAX_DEFAULT_INSTANCES)), threads)
    return Parallelism(1, config.threads or cores)


def with_threads(config: ModelConfig, parallelism: Parallelism) -> ModelConfig:
    """The config an instance is loaded with: its thread count filled in."""
    return config.model_copy(update={"threads": parallelism.threads, "instances": parallelism.instances})
