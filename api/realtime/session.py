"""One Realtime transcription session on one WebSocket.

The API process runs no model. With server VAD, the audio appended since the last VAD job
(at least ``realtime_vad_slice_ms``; more accumulates while one is in flight) goes, with
half a second of the audio before it, to a small high-priority job on the VAD model's queue
(Silero, asked for its raw speech runs: no minimum length, no padding, no silence merge).
The VAD job is stateless: the look-back re-warms Silero's recurrent state, so any worker can
run any slice and a rescheduled or repeated step gives the same answer; the turn state (in
speech since, last speech heard) is plain bookkeeping kept here with the socket it belongs
to. A turn ends after ``silence_duration_ms`` without speech; its audio (with
``prefix_padding_ms`` before the speech) becomes one high-priority transcription job on the
transcription model's queue. Turns are reported in the order they were committed.

The model's time need not follow the silence: once the VAD has heard
``realtime_early_transcription_ms`` of it, the turn's speech so far goes to its transcription
job at once (early), while the rest of the silence is still being heard. If the silence
lasts, the turn is committed with that job (what follows the speech is silence, which Whisper
skips anyway) and its transcript is sent right after ``committed``; if speech resumes first,
the early job is cancelled (or, already running, ignored) and the turn goes on.

A client that disconnects leaves no queued job behind (each unfinished turn's job is
cancelled; a turn already running finishes, its result kept in its job), and every turn the
session committed stays listed with its job under ``GET /v1/realtime/sessions/{id}/items``,
so no finished transcript is lost. A session the server ends (idle, too long) first sends an
``error`` event saying why, then the transcripts of the turns it had committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from loguru import logger
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.catalog import ModelCatalog
from api.dispatch import JobDispatcher, Preference
from api.errors import APIError
from api.realtime.audio import TARGET_RATE, InputAudio
from api.realtime.protocol import (
    RealtimeError,
    SessionConfig,
    error_event,
    event_id,
    item_id,
)
from jobcontract.keys import (
    REALTIME_SESSIONS_KEY,
    realtime_items_key,
    realtime_tenant_sessions_key,
)
from jobcontract.metrics import count, observe
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from jobcontract.record import JobRecord
from speechmodels.audio import encode_wav
from speechmodels.registry import AUDIO_CONVERSION, TRANSCRIPTION, VAD

LOOKBACK = TARGET_RATE // 2  # audio before each VAD slice, to warm the model up again
MIN_COMMIT = TARGET_RATE // 10  # OpenAI refuses to commit less than 100 ms
BEAT_S = 10.0  # a session's presence in Redis is renewed this often, and lapses 3 beats after its last
OWED_WAIT_S = 60.0  # how long a session the server ends waits to send the transcripts it owes
REALTIME_BEAM_SIZE = 1


class SessionEnded(Exception):
    """The server ends the session (after an ``error`` event saying why)."""


@dataclass
class Turn:
    item_id: str
    previous_item_id: str | None
    samples: np.ndarray
    speech_end_at: float  # monotonic time the last speech audio of the turn arrived
    previous: Turn | None = None
    job_id: str | None = None
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    early: asyncio.Future | None = None  # the id of the job started early for this turn
    submission: asyncio.Future | None = None  # the turn's job being recorded and listed


@dataclass
class EarlyJob:
    """A turn's transcription started while its silence was still being heard."""
    speech_start: int  # the turn's speech (session samples) the job was given
    speech_end: int
    submission: asyncio.Future  # the job's id once recorded


def vad_model(catalog: ModelCatalog) -> str | None:
    """A model that only does VAD (Silero) first, else one that also does (Whisper)."""
    able = catalog.serving(VAD)
    dedicated = [config for config in able if catalog.capabilities[config.name] == {VAD}]
    chosen = dedicated or able
    return chosen[0].name if chosen else None


def checked_model(catalog: ModelCatalog, config: SessionConfig) -> str:
    """The transcription model a session configuration runs on; RealtimeError if this
    deployment cannot run it (an unknown model, server VAD or noise reduction without a model)."""
    model = config.model
    if model is None:
        serving = catalog.serving(TRANSCRIPTION)
        if not serving:
            raise RealtimeError("model_not_found", "no transcription model is configured here",
                                "session.audio.input.transcription.model")
        model = serving[0].name
    try:
        catalog.require(model, TRANSCRIPTION, param="session.audio.input.transcription.model")
    except APIError as exc:
        raise RealtimeError(exc.reason or "model_not_found", exc.message, exc.param) from None
    if config.turn_detection is not None and vad_model(catalog) is None:
        raise RealtimeError("turn_detection_unavailable", f"{config.turn_detection['type']} needs a VAD model and "
                            "none is configured here; set turn_detection to null and commit turns yourself",
                            "session.audio.input.turn_detection")
    if config.noise_reduction is not None and denoiser_model(catalog) is None:
        raise RealtimeError("noise_reduction_unavailable", "noise_reduction needs a denoising model (rnnoise) and "
                            "none is configured here", "session.audio.input.noise_reduction")
    return model


def denoiser_model(catalog: ModelCatalog) -> str | None:
    able = catalog.serving(AUDIO_CONVERSION)
    return able[0].name if able else None


class RealtimeSession:
    def __init__(self, websocket: WebSocket, dispatcher: JobDispatcher, catalog: ModelCatalog, redis,
                 tenant: str | None, limit_key: str | None, config: SessionConfig):
        self.ws = websocket
        self.dispatcher = dispatcher
        self.catalog = catalog
        self.settings = dispatcher.settings
        self.redis = redis  # the API's fast (text) client
        self.tenant = tenant
        self.limit_key = limit_key  # who the sessions-per-key limit counts this session against
        self.id = f"sess_{uuid.uuid4().hex[:24]}"
        self.config = SessionConfig()
        self.model = ""
        self.apply(config)
        self.started = time.monotonic()
        self.expires_at = int(time.time() + self.settings.realtime_max_session_s)
        self.last_event = self.started
        self._send_lock = asyncio.Lock()
        self.input = InputAudio(self.config.format)
        # audio since the last commit, 16 kHz; buffer[0] is sample ``buffer_start`` of the session
        self.buffer = np.zeros(0, np.float32)
        self.buffer_start = 0
        self.total = 0  # samples received so far
        self.arrivals: list[tuple[int, float]] = []  # (session sample reached, monotonic time)
        self.vad_done = 0  # samples the VAD has looked at
        self.epoch = 0  # bumped by every commit and clear: a VAD answer about older audio is dropped
        self.speech_start: int | None = None
        self.speech_item: str | None = None
        self.last_speech_end = 0
        self.vad_task: asyncio.Task | None = None
        self.early: EarlyJob | None = None
        self.cancelling: set[asyncio.Task] = set()  # early jobs being cancelled (held: tasks are weakly kept)
        self.turns: list[Turn] = []
        self.last_item: str | None = None

    # --- configuration

    def apply(self, config: SessionConfig) -> None:
        """Make ``config`` the session's (RealtimeError, and nothing changed, if it cannot run)."""
        model = checked_model(self.catalog, config)
        changed_format = config.format != self.config.format
        vad_changed = config.turn_detection != self.config.turn_detection
        self.config, self.model = config, model
        if changed_format and hasattr(self, "input"):
            self.input = InputAudio(config.format)
        if vad_changed and hasattr(self, "buffer"):
            self._drop_early()
            self.speech_start = self.speech_item = None
            self.epoch += 1
            self.vad_done = self.total

    def describe(self) -> dict[str, Any]:
        return self.config.describe(self.id, self.model, self.expires_at)

    # --- sending

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", event_id())
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(json.dumps(event))

    async def error(self, exc: RealtimeError, client_event_id: str | None = None) -> None:
        await self.send(error_event(exc.code, exc.message, exc.param, client_event_id, exc.kind))

    # --- the session's life

    async def run(self) -> None:
        beat = asyncio.create_task(self._beat())
        try:
            await self.send({"type": "session.created", "session": self.describe()})
            await self._receive()
        except SessionEnded:
            await self._deliver_owed()
            with contextlib.suppress(Exception):
                await self.ws.close(1000)
        finally:
            beat.cancel()
            await self._leave()

    async def _receive(self) -> None:
        while True:
            now = time.monotonic()
            session_left = self.started + self.settings.realtime_max_session_s - now
            idle_left = self.last_event + self.settings.realtime_idle_timeout_s - now
            if session_left <= 0:
                await self.error(RealtimeError("session_expired", "the session reached its maximum duration of "
                                               f"{self.settings.realtime_max_session_s:g}s; open a new one"))
                raise SessionEnded
            if idle_left <= 0:
                await self.error(RealtimeError("idle_timeout", "no event from the client for "
                                               f"{self.settings.realtime_idle_timeout_s:g}s; the session is closed"))
                raise SessionEnded
            try:
                message = await asyncio.wait_for(self.ws.receive(), min(session_left, idle_left))
            except TimeoutError:
                continue
            if message["type"] == "websocket.disconnect":
                return
            self.last_event = time.monotonic()
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", "replace")
            await self._handle(raw)

    async def _handle(self, raw: str) -> None:
        client_event_id = None
        try:
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):
                raise RealtimeError("invalid_json", "the event is not valid JSON") from None
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise RealtimeError("invalid_event", "an event is a JSON object with a string 'type'", "type")
            client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            kind = event["type"]
            if kind == "session.update":
                self.apply(self.config.updated(event.get("session")))
                await self.send({"type": "session.updated", "session": self.describe()})
            elif kind == "input_audio_buffer.append":
                await self._append(self.input.decode(event.get("audio")))
            elif kind == "input_audio_buffer.commit":
                await self._commit_manually()
            elif kind == "input_audio_buffer.clear":
                self._reset_buffer(self.total)
                await self.send({"type": "input_audio_buffer.cleared"})
            else:
                raise RealtimeError("unsupported_event", f"event type '{kind}' is not supported in a transcription "
                                    "session (session.update, input_audio_buffer.append, .commit and .clear are)",
                                    "type")
        except RealtimeError as exc:
            await self.error(exc, client_event_id)

    # --- audio and turns

    async def _append(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        limit = int(self.settings.realtime_max_buffer_s * TARGET_RATE)
        held = self.total - self.buffer_start
        if self.config.turn_detection is None and held + len(samples) > limit:
            raise RealtimeError("input_audio_buffer_full", f"the input audio buffer holds at most "
                                f"{self.settings.realtime_max_buffer_s:g}s of uncommitted audio; commit or clear it "
                                "(this slice was dropped)", "audio")
        self.buffer = np.concatenate([self.buffer, samples])
        self.total += len(samples)
        self.arrivals.append((self.total, time.monotonic()))
        if self.config.turn_detection is not None:
            if self.speech_start is not None and self.total - self.speech_start > limit:
                # a turn of unbroken speech as long as the buffer may hold: commit it here
                await self._end_speech(self.total)
            self._schedule_vad()

    def _arrival(self, sample: int) -> float:
        for reached, at in self.arrivals:
            if reached >= sample:
                return at
        return time.monotonic()

    def _reset_buffer(self, start: int) -> None:
        """Drop the audio before session sample ``start`` (a commit or clear)."""
        self.buffer = self.buffer[max(0, start - self.buffer_start):]
        self.buffer_start = start
        self.epoch += 1
        self._drop_early()
        self.speech_start = self.speech_item = None
        self.vad_done = max(self.vad_done, start)
        self.arrivals = [entry for entry in self.arrivals if entry[0] >= start - LOOKBACK]

    async def _commit_manually(self) -> None:
        if self.total - self.buffer_start < MIN_COMMIT:
            raise RealtimeError("input_audio_buffer_commit_empty", "buffer too small: expected at least 100ms of "
                                f"audio, but the buffer holds {1000 * (self.total - self.buffer_start) // TARGET_RATE}ms")
        item = self.speech_item or item_id()
        await self._commit(item, self.buffer_start, self.total, self._arrival(self.total))

    async def _commit(self, item: str, start: int, end: int, speech_end_at: float,
                      early: asyncio.Future | None = None) -> None:
        samples = self.buffer[max(0, start - self.buffer_start):end - self.buffer_start].copy()
        self._reset_buffer(end)
        previous = self.turns[-1] if self.turns else None
        turn = Turn(item, self.last_item, samples, speech_end_at, previous, early=early)
        self.last_item = item
        self.turns.append(turn)
        await self.send({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": turn.previous_item_id})
        # as GA does: the committed audio is a user message item, finished at once; its
        # transcript comes with the transcription events
        message = {"id": item, "type": "message", "object": "realtime.item", "status": "completed", "role": "user",
                   "content": [{"type": "input_audio", "transcript": None}]}
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "previous_item_id": turn.previous_item_id, "item": message})
        turn.task = asyncio.create_task(self._transcribe(turn))

    def _schedule_vad(self) -> None:
        if (self.vad_task is None or self.vad_task.done()) and self._vad_due():
            self.vad_task = asyncio.create_task(self._vad())

    def _vad_due(self) -> bool:
        """A VAD job is due once a slice of new audio is in, or, in a turn, as soon as the audio
        reaches a point where the turn's state would change if it is still silence (the early
        job's start, the commit): those decisions then wait for no slice to fill."""
        if self.config.turn_detection is None or self.total <= self.vad_done:
            return False
        if self.total - self.vad_done >= self.settings.realtime_vad_slice_ms * TARGET_RATE // 1000:
            return True
        if self.speech_start is None:
            return False
        silences = [self.config.turn_detection["silence_duration_ms"]]
        if self.early is None and self.settings.realtime_early_transcription_ms > 0:
            silences.append(self.settings.realtime_early_transcription_ms)
        return any(self.vad_done < self.last_speech_end + ms * TARGET_RATE // 1000 <= self.total for ms in silences)

    async def _vad(self) -> None:
        """VAD jobs over the audio not yet looked at, one in flight at a time."""
        model = vad_model(self.catalog)
        while self._vad_due():
            epoch, start, end = self.epoch, self.vad_done, self.total
            window_start = max(self.buffer_start, start - LOOKBACK)
            window = self.buffer[window_start - self.buffer_start:end - self.buffer_start]
            detection = self.config.turn_detection
            request = {"audio": encode_wav(window, TARGET_RATE), "task": "vad", "get_timestamps": True,
                       "threshold": detection["threshold"], "min_speech_duration_ms": 0,
                       "min_silence_duration_ms": 0, "speech_pad_ms": 0}
            plan = JobPlan.build(model, VAD, [(model, VAD)])
            try:
                record = await self.dispatcher.submit(plan, JobInput(request), Preference(
                    priority="high", wait_s=30, owner=self.tenant))
            except APIError as exc:
                await self.error(RealtimeError(exc.reason or "vad_failed", f"voice activity detection failed: "
                                               f"{exc.message}", kind="server_error"))
                await asyncio.sleep(0.5)
                continue
            if record.status != "succeeded" or epoch != self.epoch:
                self.vad_done = max(self.vad_done, end)
                continue
            self.vad_done = end
            runs = [(window_start + item["start"], window_start + item["end"])
                    for item in (record.result or {}).get("timestamps") or []]
            await self._turns(runs, start, end)

    async def _turns(self, runs: list[tuple[int, int]], start: int, end: int) -> None:
        """Turn state through one VAD answer: speech runs (session samples) in [start, end)."""
        detection = self.config.turn_detection
        silence = detection["silence_duration_ms"] * TARGET_RATE // 1000
        for run_start, run_end in runs:
            run_start, run_end = max(run_start, start), min(run_end, end)
            if run_end <= run_start:
                continue
            if self.speech_start is not None and run_start - self.last_speech_end >= silence:
                await self._end_speech(self.last_speech_end + silence)
            if self.speech_start is None:
                self.speech_start, self.speech_item = run_start, item_id()
                await self.send({"type": "input_audio_buffer.speech_started", "item_id": self.speech_item,
                                 "audio_start_ms": run_start * 1000 // TARGET_RATE})
            self.last_speech_end = run_end
            if self.early is not None and self.early.speech_end != run_end:
                self._drop_early()  # the speech went on after the early job's audio
        if self.speech_start is not None and end - self.last_speech_end >= silence:
            await self._end_speech(self.last_speech_end + silence)
        early_ms = self.settings.realtime_early_transcription_ms
        if (self.speech_start is not None and self.early is None and early_ms > 0
                and end - self.last_speech_end >= early_ms * TARGET_RATE // 1000):
            self._start_early(min(end, self.total))
        if self.speech_start is None:  # between turns only the padding a next turn starts with is kept
            keep = max(detection["prefix_padding_ms"] * TARGET_RATE // 1000, LOOKBACK)
            drop = min(self.vad_done, self.total) - keep - self.buffer_start
            if drop > 0:
                self.buffer = self.buffer[drop:]
                self.buffer_start += drop
                self.arrivals = [entry for entry in self.arrivals if entry[0] >= self.buffer_start]

    async def _end_speech(self, audio_end: int) -> None:
        item, speech_start, speech_end = self.speech_item, self.speech_start, min(self.last_speech_end, audio_end)
        ended_at = self._arrival(speech_end)
        await self.send({"type": "input_audio_buffer.speech_stopped", "item_id": item,
                         "audio_end_ms": audio_end * 1000 // TARGET_RATE})
        await self._metric(lambda pipe: observe(pipe, "realtime_vad_decision_seconds", vad_model(self.catalog),
                                                time.monotonic() - ended_at))
        early = None
        if self.early is not None and (self.early.speech_start, self.early.speech_end) == (speech_start, speech_end):
            early, self.early = self.early.submission, None  # the turn's job is the early one
        await self._commit(item, self._turn_start(speech_start), min(audio_end, self.total), ended_at, early)

    def _turn_start(self, speech_start: int) -> int:
        padding = self.config.turn_detection["prefix_padding_ms"] * TARGET_RATE // 1000
        return max(self.buffer_start, speech_start - padding)

    def _start_early(self, end: int) -> None:
        start = self._turn_start(self.speech_start)
        samples = self.buffer[start - self.buffer_start:end - self.buffer_start].copy()
        submission = asyncio.ensure_future(self._submit_turn_job(samples))
        self.early = EarlyJob(self.speech_start, self.last_speech_end, submission)

    def _drop_early(self) -> None:
        """The early job no turn will use: cancelled if still queued (a running one finishes unread)."""
        early, self.early = self.early, None
        if early is not None:
            task = asyncio.create_task(self._cancel_job(early.submission))
            self.cancelling.add(task)
            task.add_done_callback(self.cancelling.discard)

    async def _cancel_job(self, submission: asyncio.Future) -> None:
        with contextlib.suppress(Exception):
            await self.dispatcher.store.cancel(await asyncio.wait_for(asyncio.shield(submission), 10))

    async def _transcribe(self, turn: Turn) -> None:
        event: dict[str, Any]
        outcome = "failed"
        try:
            record = await self._run_turn(turn)
            if record.status == "succeeded":
                text = (record.result or {}).get("text", "").strip()
                seconds = round(len(turn.samples) / TARGET_RATE, 3)
                event = {"type": "conversation.item.input_audio_transcription.completed", "item_id": turn.item_id,
                         "content_index": 0, "transcript": text, "usage": {"type": "duration", "seconds": seconds}}
                outcome = "completed"
            else:
                error = record.error
                event = self._failed(turn, error.reason if error else record.status,
                                     error.message if error else f"the turn's job was {record.status}")
        except APIError as exc:
            event = self._failed(turn, exc.reason or "error", exc.message)
        if turn.previous is not None:  # in the order the turns were committed
            await turn.previous.sent.wait()
        if outcome == "completed":
            await self.send({"type": "conversation.item.input_audio_transcription.delta", "item_id": turn.item_id,
                             "content_index": 0, "delta": event["transcript"]})
        await self.send(event)
        turn.sent.set()
        latency = time.monotonic() - turn.speech_end_at

        def record_turn(pipe) -> None:
            count(pipe, "realtime_turns", self.model, outcome)
            if outcome == "completed":
                observe(pipe, "realtime_turn_latency_seconds", self.model, latency)

        await self._metric(record_turn)

    @staticmethod
    def _failed(turn: Turn, code: str, message: str) -> dict[str, Any]:
        return {"type": "conversation.item.input_audio_transcription.failed", "item_id": turn.item_id,
                "content_index": 0, "error": {"type": "transcription_error", "code": code, "message": message,
                                              "param": None}}

    async def _submit_turn_job(self, samples: np.ndarray) -> str:
        """A high-priority transcription job of a turn's audio; its id."""
        # greedy decoding (beam 1): a live turn is short and waited for; beam 5 cost 15-20 % more
        # model time per batch of turns with tiny.en for the same words on the ARCTIC clips
        # a turn's events carry its text only: no segment times (Whisper then decodes the turn
        # in windows of its own, untimed and encoded only as long as the turn needs; beside other
        # turns in a shared 30 s window it would be timed and aligned: tiny.en, 2 threads, the 7
        # fixtures in batches of 4: 0.71 s against 2.35 s)
        request = {"audio": encode_wav(samples, TARGET_RATE), "task": "transcribe", "language": self.config.language,
                   "prompt": self.config.prompt, "temperature": 0.0, "beam_size": REALTIME_BEAM_SIZE,
                   "segment_times": False}
        chain = [(self.model, TRANSCRIPTION)]
        if self.config.noise_reduction is not None:
            chain.insert(0, (denoiser_model(self.catalog), AUDIO_CONVERSION))
        plan = JobPlan.build(self.model, TRANSCRIPTION, chain)
        record = await self.dispatcher.submit(plan, JobInput(request), Preference(
            respond_async=True, priority="high", owner=self.tenant), {"dialect": "openai", "format": "json"})
        return record.id

    async def _run_turn(self, turn: Turn) -> JobRecord:
        async def submit() -> str:
            early = turn.early
            turn.job_id = await (asyncio.shield(early) if early is not None else self._submit_turn_job(turn.samples))
            await self._remember(turn)
            return turn.job_id

        # a client leaving mid-submit must not leave a job the session does not list
        turn.submission = asyncio.ensure_future(submit())
        job_id = await asyncio.shield(turn.submission)
        return await wait_for_job(self.dispatcher, job_id, self.dispatcher.settings.sync_wait_s)

    async def _remember(self, turn: Turn) -> None:
        """The session's turns and their jobs, where the client can find them after it left."""
        key = realtime_items_key(self.id)
        entry = json.dumps({"item_id": turn.item_id, "job_id": turn.job_id, "owner": self.tenant})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, entry)
            pipe.expire(key, self.settings.job_ttl_s)
            await pipe.execute()

    async def _deliver_owed(self) -> None:
        """The transcripts of every committed turn, before the server closes the socket."""
        pending = [turn.task for turn in self.turns if turn.task is not None and not turn.task.done()]
        if pending:
            await asyncio.wait(pending, timeout=OWED_WAIT_S)

    async def _leave(self) -> None:
        if self.vad_task is not None:
            self.vad_task.cancel()
        self._drop_early()
        for turn in self.turns:
            if turn.task is not None and not turn.task.done():
                turn.task.cancel()
                if turn.submission is not None and not turn.submission.done():
                    await asyncio.wait([turn.submission], timeout=10)
                elif turn.submission is None and turn.early is not None:
                    await self._cancel_job(turn.early)  # its task ended before it listed the early job
                if turn.job_id is not None:
                    # queued: cancelled, so no worker runs a turn nobody will read; running: it
                    # finishes and its transcript stays in its job (GET .../items lists it)
                    with contextlib.suppress(Exception):
                        await self.dispatcher.store.cancel(turn.job_id)
        if self.cancelling:
            await asyncio.wait(list(self.cancelling), timeout=10)
        with contextlib.suppress(Exception):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(REALTIME_SESSIONS_KEY, self.id)
                if self.limit_key is not None:
                    pipe.zrem(realtime_tenant_sessions_key(self.limit_key), self.id)
                await pipe.execute()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            with contextlib.suppress(Exception):
                await self.claim_presence()

    async def claim_presence(self) -> int:
        """Count this session in Redis (renewed every beat); returns how many sessions its key holds."""
        now = time.time()
        lapses = now + 3 * BEAT_S
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(REALTIME_SESSIONS_KEY, {self.id: lapses})
            pipe.zremrangebyscore(REALTIME_SESSIONS_KEY, "-inf", now)
            if self.limit_key is not None:
                key = realtime_tenant_sessions_key(self.limit_key)
                pipe.zadd(key, {self.id: lapses})
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zcard(key)
                pipe.expire(key, int(3 * BEAT_S) + 1)
            results = await pipe.execute()
        return int(results[4]) if self.limit_key is not None else 0

    async def _metric(self, write) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                write(pipe)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - metrics never break a session
            logger.warning("realtime metrics not written: {}", exc)


async def wait_for_job(dispatcher: JobDispatcher, job_id: str, wait_s: float) -> JobRecord:
    """Until the job has ended (or 504 after ``wait_s``), woken by the job-events channel."""
    store, events = dispatcher.store, dispatcher.events
    deadline = time.monotonic() + wait_s
    while True:
        waiter = events.register(job_id)
        try:
            record = await store.get(job_id)
            if record is None:
                raise APIError(500, f"job {job_id} vanished while running", reason="job_lost", job_id=job_id)
            if record.finished:
                return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise APIError(504, f"job {job_id} did not finish within {wait_s:g}s", reason="sync_wait_exceeded",
                               job_id=job_id)
            await events.pause(waiter, remaining)
        finally:
            events.unregister(job_id, waiter)
