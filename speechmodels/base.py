"""The one interface every model family implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loguru import logger
from pydantic import BaseModel, ValidationError

from speechmodels.config import ModelConfig


class InputError(ValueError):
    """A request item the model cannot accept (the caller's mistake, an HTTP 400).

    ``status`` lets a bound (duration, size) be reported as 413 instead.
    """

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_input", status: int = 400):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


def validate_params(schema: type[BaseModel], request: Mapping[str, Any]) -> Any:
    """A request's parameters through their pydantic schema; the first problem is an InputError
    naming the field."""
    try:
        return schema.model_validate(request)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(map(str, first["loc"]))
        raise InputError(f"{param}: {first['msg']}", param=param) from None


class SpeechModel(ABC):
    """A loaded model that serves one request item at a time or many in one batched call.

    The split matters for the fleet: ``prepare`` runs per request on the caller's thread
    (decoding, validation: a bad item fails alone, before any batch is formed) and
    ``infer_batch`` runs once per micro-batch.
    """

    #: seconds of input that separate batching lanes (``workers.lanes``): items batch only with
    #: items of similar length, each lane on its own thread. Only for families whose
    #: ``infer_batch`` may run on two threads at once, and whose batches pad to the longest item
    length_lanes: tuple[float, ...] = ()

    def __init__(self, config: ModelConfig, device: str):
        self.config = config
        self.device = device
        #: where the family's own observations go (``observe``): set by whoever serves the model
        #: (a worker sends them to the fleet metrics); None in a notebook
        self.observer: Callable[[Mapping[str, Sequence[float]]], None] | None = None

    def observe(self, observations: Mapping[str, Sequence[float]]) -> None:
        """Report values the family measured, by metric name (e.g. ``{"stt_window_fill": [0.8]}``).
        Never fails the inference that reports them."""
        if self.observer is None:
            return
        try:
            self.observer(observations)
        except Exception as exc:  # metrics are best effort; the batch's outputs matter more
            logger.warning("{}: observations not reported: {}", self.config.name, exc)

    @classmethod
    @abstractmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> SpeechModel:
        """Resolve the weights named by ``config.model`` and load them on ``device``."""

    @abstractmethod
    def prepare(self, request: Mapping[str, Any]) -> Any:
        """Decode and validate one request item; raise :class:`InputError` for bad input.

        ``request["max_audio_seconds"]``, when present, bounds the decoded audio (413).
        """

    @abstractmethod
    def infer_batch(self, items: Sequence[Any]) -> list[Any]:
        """Run ONE batched model call over prepared items; one output per item, in order.

        An item may get an ``Exception`` instance instead of an output: it fails alone.
        """

    def input_seconds(self, item: Any) -> float | None:
        """Seconds of audio in a prepared item, when the family knows (for real-time factors)."""
        return None

    def audio_seconds(self, item: Any, output: Any) -> float | None:
        """Seconds of audio an item's real-time factor is measured against: its input, or for
        a synthesiser its output."""
        return self.input_seconds(item)

    def language_voices(self) -> dict[str, list[str]] | None:
        """Languages the model speaks, each with its voices, for model listings (synthesisers)."""
        return None

    def voices(self) -> list[str]:
        """Every voice name a request may ask for (listed names plus accepted aliases)."""
        return []

    def warmup_request(self) -> Mapping[str, Any] | None:
        """A request that runs the whole path once at load time, so lazy imports, JIT
        compilation and caches are paid before the first user waits on them."""
        return None

    def warm_up(self) -> None:
        request = self.warmup_request()
        if request is not None:
            self.infer_batch([self.prepare(request)])

    def infer(self, request: Mapping[str, Any]) -> Any:
        """Prepare and run one item (convenience for notebooks and scripts)."""
        (output,) = self.infer_batch([self.prepare(request)])
        if isinstance(output, Exception):
            raise output
        return output


class TorchModel(SpeechModel):
    """A family whose model is one torch module, held in inference mode on the worker's device."""

    def __init__(self, config: ModelConfig, device: str, network):
        super().__init__(config, device)
        self.network = network.to(device).eval()
