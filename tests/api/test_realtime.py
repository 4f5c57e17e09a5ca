"""Realtime transcription sessions through the official openai package
(``client.realtime.connect(extra_query={"intent": "transcription"})``): server VAD at real-time
pace, manual commits, client secrets, bad events and every limit answered with ``error``
events, and a client that leaves mid-turn."""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import numpy as np
import openai
import pytest
import websockets.sync.client
import yaml

from tests.api.live_audio import clip, pcm16, wer
from tests.fleet import FIXTURE_TRANSCRIPTS, TEST_CONFIG, Fleet

KEYS = "alice:sk-alice,bob:sk-bob,carol:sk-carol"
LIMITS = {"SPEECHFLEET_REALTIME_MAX_SESSIONS_PER_KEY": "2", "SPEECHFLEET_REALTIME_MAX_SESSION_S": "6",
          "SPEECHFLEET_REALTIME_IDLE_TIMEOUT_S": "2.5", "SPEECHFLEET_REALTIME_MAX_BUFFER_S": "3"}


@pytest.fixture(scope="module")
def rt_fleet(private_redis, tmp_path_factory):
    """Silero VAD and Whisper tiny.en workers; an API with keys, and a second API on the same
    Redis and workers with small realtime limits."""
    document = yaml.safe_load(TEST_CONFIG.read_text())
    document["model_configs"] = [c for c in document["model_configs"] if c["name"] in ("silero-vad", "whisper")]
    config = tmp_path_factory.mktemp("rt-config") / "config.yml"
    config.write_text(yaml.safe_dump(document))
    main = Fleet(private_redis, config=config, extra_env={"SPEECHFLEET_API_KEYS": KEYS})
    limited = Fleet(private_redis, config=config, extra_env={"SPEECHFLEET_API_KEYS": KEYS, **LIMITS})
    main.start_worker("silero-vad")
    main.start_worker("whisper")
    main.start_api()
    limited.start_api()
    try:
        main.wait_ready(timeout_s=240)
        limited.wait_ready(timeout_s=60)
        yield main, limited
    finally:
        limited.stop()
        main.stop()


def sdk(fleet: Fleet, key: str = "sk-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fleet.base_url}/v1", api_key=key, max_retries=0)


class Events:
    """Every server event of a connection, collected by a reader thread."""

    def __init__(self, connection):
        self.connection = connection
        self.items: list = []
        self.arrived: list[float] = []  # wall time each event came
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self.connection:
                self.arrived.append(time.time())
                self.items.append(event)
        except Exception:  # noqa: BLE001, S110 - a closed socket ends the reading; tests look at what came
            pass
        finally:
            self.closed.set()

    def wait(self, predicate, timeout_s: float = 90.0) -> list:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.items):
            assert time.monotonic() < deadline, [e.type for e in self.items]
            assert not self.closed.is_set() or predicate(self.items), [e.type for e in self.items]
            time.sleep(0.05)
        return self.items

    def of(self, kind: str) -> list:
        return [event for event in self.items if event.type == kind]


def _count(kind: str, n: int):
    return lambda items: sum(event.type == kind for event in items) >= n


def _item_of(event) -> str | None:
    item = getattr(event, "item", None)
    return getattr(event, "item_id", None) or getattr(item, "id", None)


def _all_transcribed(events: Events, turns: int):
    return lambda items: (items and items[-1].type.endswith("completed")
                          and len(events.of("input_audio_buffer.committed")) == len(events.of(
                              "conversation.item.input_audio_transcription.completed"))
                          and len(events.of("input_audio_buffer.committed")) >= turns)


def feed(connection, samples_24k: np.ndarray, pace: bool, slice_ms: int = 100) -> None:
    step = 24 * slice_ms
    started = time.monotonic()
    for index, start in enumerate(range(0, len(samples_24k), step)):
        connection.input_audio_buffer.append(audio=base64.b64encode(pcm16(samples_24k[start:start + step])).decode())
        if pace:
            time.sleep(max(0.0, started + (index + 1) * slice_ms / 1000 - time.monotonic()))


def speech(names: list[str], gap_s: float) -> np.ndarray:
    silence = np.zeros(int(gap_s * 24_000), np.float32)
    return np.concatenate([piece for name in names for piece in (clip(name, 24_000), silence)])


def test_server_vad_turns_at_real_time_pace(rt_fleet):
    """Three utterances fed at real-time pace: each is one turn, in order, transcribed well."""
    names = ["cmu_arctic_us_aew_a0003.wav", "cmu_arctic_us_axb_a0004.wav", "jfk.flac"]
    with sdk(rt_fleet[0]).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        events.wait(_count("session.created", 1))
        connection.session.update(session={"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper", "language": "en"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                               "silence_duration_ms": 500}}}})
        events.wait(_count("session.updated", 1))
        feed(connection, speech(names, gap_s=1.5), pace=True)
        events.wait(_all_transcribed(events, len(names)), timeout_s=60)
    session = events.of("session.updated")[0].session
    assert session.audio.input.turn_detection.silence_duration_ms == 500
    completed = events.of("conversation.item.input_audio_transcription.completed")
    assert not events.of("error"), events.of("error")
    # which utterance each turn is in, by where its speech started (jfk.flac's pauses are
    # longer than 500 ms of silence: its sentence is several turns, as OpenAI's VAD makes it)
    bounds, at = [], 0.0
    for name in names:
        length = len(clip(name)) / 16_000 * 1000
        bounds.append((at, at + length))
        at += length + 1500
    started = {e.item_id: e.audio_start_ms for e in events.of("input_audio_buffer.speech_started")}
    heard: dict[str, list[str]] = {name: [] for name in names}
    for turn in completed:
        name = next(name for name, (low, high) in zip(names, bounds) if low - 400 <= started[turn.item_id] < high)
        heard[name].append(turn.transcript)
        assert turn.usage.type == "duration" and turn.usage.seconds > 0.5
        order = [e.type for e in events.items if _item_of(e) == turn.item_id]
        assert order == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                         "input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
                         "conversation.item.input_audio_transcription.delta",
                         "conversation.item.input_audio_transcription.completed"], order
    for name in names:
        assert wer(FIXTURE_TRANSCRIPTS[name], " ".join(heard[name])) <= 0.2, (name, heard[name])
    assert all(len(heard[name]) == 1 for name in names[:2]), heard  # an ARCTIC clip is one turn
    starts = [e.audio_start_ms for e in events.of("input_audio_buffer.speech_started")]
    stops = [e.audio_end_ms for e in events.of("input_audio_buffer.speech_stopped")]
    assert all(a < b for a, b in zip(starts, stops)) and all(b < a for b, a in zip(stops, starts[1:]))
    committed = events.of("input_audio_buffer.committed")
    assert [c.previous_item_id for c in committed] == [None] + [c.item_id for c in committed[:-1]]
    # each committed turn is a user message item (openai.types.realtime.ConversationItemAdded/Done)
    for kind in ("conversation.item.added", "conversation.item.done"):
        added = events.of(kind)
        assert [a.item.id for a in added] == [c.item_id for c in committed]
        assert [a.previous_item_id for a in added] == [c.previous_item_id for c in committed]
        assert all(a.item.type == "message" and a.item.role == "user" and a.item.content[0].type == "input_audio"
                   for a in added)


def test_a_turn_is_transcribed_during_its_silence_and_a_pause_does_not_cut_it(rt_fleet):
    """silence_duration_ms 2000: the turn's job starts once the VAD has heard a little silence
    (realtime_early_transcription_ms), long before the turn is committed; a 1 s pause inside
    the turn drops the job started in it, and the turn's transcript has both sentences."""
    names = ["cmu_arctic_us_aew_a0003.wav", "cmu_arctic_us_axb_a0004.wav"]
    main = rt_fleet[0]
    with sdk(main).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        created = events.wait(_count("session.created", 1))[0]
        connection.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"language": "en"}, "turn_detection": {"type": "server_vad", "silence_duration_ms": 2000}}}})
        events.wait(_count("session.updated", 1))
        feed(connection, np.concatenate([speech(names, gap_s=1.0), np.zeros(int(1.6 * 24_000), np.float32)]),
             pace=True)
        events.wait(_all_transcribed(events, 1), timeout_s=60)
    (turn,) = events.of("conversation.item.input_audio_transcription.completed")
    reference = " ".join(FIXTURE_TRANSCRIPTS[name] for name in names)
    assert wer(reference, turn.transcript) <= 0.2, turn.transcript
    stopped_at = events.arrived[events.items.index(events.of("input_audio_buffer.speech_stopped")[0])]
    with httpx.Client(base_url=main.base_url, headers={"Authorization": "Bearer sk-alice"}, timeout=30) as http:
        (item,) = http.get(f"/v1/realtime/sessions/{created.session.id}/items").json()["data"]
        job = http.get(f"/v1/jobs/{item['job_id']}").json()
    assert item["item_id"] == turn.item_id and job["status"] == "succeeded"
    assert job["created_at"] < stopped_at - 1.0, (job["created_at"], stopped_at)  # started early


def test_semantic_vad_is_served_by_server_vad(rt_fleet):
    """semantic_vad is accepted and shown back as it was asked; its eagerness sets the silence
    that ends a turn; an unknown eagerness is an error event."""
    with sdk(rt_fleet[0]).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        connection.session.update(session={"type": "transcription", "audio": {"input": {
            "turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}})
        connection.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"language": "en"}, "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}})
        events.wait(_count("session.updated", 1))
        feed(connection, speech(["cmu_arctic_us_axb_a0005.wav"], gap_s=1.2), pace=True)
        events.wait(_all_transcribed(events, 1), timeout_s=60)
    (error,) = events.of("error")
    assert (error.error.code, error.error.param) == ("invalid_value", "session.audio.input.turn_detection.eagerness")
    detection = events.of("session.updated")[0].session.audio.input.turn_detection
    assert detection.type == "semantic_vad" and detection.eagerness == "high"
    (turn,) = events.of("conversation.item.input_audio_transcription.completed")
    assert wer(FIXTURE_TRANSCRIPTS["cmu_arctic_us_axb_a0005.wav"], turn.transcript) <= 0.2, turn.transcript


def test_manual_commits_faster_than_real_time_and_g711(rt_fleet):
    """turn_detection null: the client commits; pcm fed faster than real time (this test is
    not about pacing), then jfk.flac as G.711 mu-law at 8 kHz."""
    names = ["cmu_arctic_us_axb_a0005.wav", "cmu_arctic_us_axb_a0006.wav"]
    with sdk(rt_fleet[0], "sk-bob").realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        events.wait(_count("session.updated", 1))
        for name in names:
            feed(connection, clip(name, 24_000), pace=False)
            connection.input_audio_buffer.commit()
        connection.session.update(session={"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcmu"}}}})
        events.wait(_count("session.updated", 2))
        connection.input_audio_buffer.append(audio=base64.b64encode(mu_law(clip("jfk.flac", 8000))).decode())
        connection.input_audio_buffer.commit()
        events.wait(_count("conversation.item.input_audio_transcription.completed", 3))
    assert not events.of("input_audio_buffer.speech_started") and not events.of("error")
    assert events.of("session.updated")[0].session.audio.input.turn_detection is None
    completed = events.of("conversation.item.input_audio_transcription.completed")
    for name, turn in zip([*names, "jfk.flac"], completed):
        assert wer(FIXTURE_TRANSCRIPTS[name], turn.transcript) <= 0.2, (name, turn.transcript)
    assert [c.item_id for c in events.of("input_audio_buffer.committed")] == [c.item_id for c in completed]


def mu_law(samples: np.ndarray) -> bytes:
    """G.711 mu-law encoding (the reference algorithm), for the test's input."""
    value = np.clip(samples * 32768, -32635, 32635).astype(np.int32)
    sign = np.where(value < 0, 0x80, 0)
    magnitude = np.abs(value) + 0x84
    exponent = np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def test_bad_events_get_error_events_and_the_session_lives_on(rt_fleet):
    with sdk(rt_fleet[0]).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        events.wait(_count("session.created", 1))
        raw = connection._connection  # the websocket underneath, for what the SDK would not send
        raw.send("{not json")
        raw.send(json.dumps({"type": "response.create"}))
        raw.send(json.dumps({"type": "session.update", "event_id": "evt_rate", "session": {
            "type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}))
        raw.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/opus"}}}}}))
        raw.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        raw.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "no-such-model"}}}}}))
        raw.send(json.dumps({"type": "input_audio_buffer.append", "audio": "***"}))
        raw.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}))
        raw.send(json.dumps({"type": "input_audio_buffer.commit"}))
        connection.input_audio_buffer.clear()
        events.wait(_count("input_audio_buffer.cleared", 1))
        connection.session.update(session={"type": "transcription"})
        events.wait(_count("session.updated", 1))
    codes = [(e.error.code, e.error.param) for e in events.of("error")]
    assert codes == [("invalid_json", None), ("unsupported_event", "type"),
                     ("invalid_value", "session.audio.input.format.rate"),
                     ("invalid_value", "session.audio.input.format.type"), ("invalid_value", "session.type"),
                     ("model_not_found", "session.audio.input.transcription.model"), ("invalid_value", "audio"),
                     ("invalid_audio", "audio"), ("input_audio_buffer_commit_empty", None)], codes
    assert events.of("error")[2].error.event_id == "evt_rate"
    assert all(e.error.type and e.error.message for e in events.of("error"))


def _refused(url: str, headers: dict | None = None, subprotocols: list | None = None) -> tuple[dict, int | None]:
    """The one event a refused connection gets, and its close code."""
    with websockets.sync.client.connect(url, additional_headers=headers or {}, subprotocols=subprotocols) as ws:
        event = json.loads(ws.recv(timeout=10))
        with pytest.raises(websockets.ConnectionClosed):
            ws.recv(timeout=10)
        return event, ws.close_code


def test_credentials_and_client_secrets(rt_fleet):
    main = rt_fleet[0]
    ws_url = main.base_url.replace("http", "ws") + "/v1/realtime"
    event, code = _refused(ws_url + "?intent=transcription", {"Authorization": "Bearer sk-wrong"})
    assert event["type"] == "error" and event["error"]["code"] == "invalid_api_key" and code == 1008
    event, _ = _refused(ws_url, {"Authorization": "Bearer sk-alice"})
    assert event["error"]["code"] == "unsupported_intent"
    # a backend mints a secret with its key; a page connects with it (header or subprotocol)
    minted = sdk(main).realtime.client_secrets.create(expires_after={"anchor": "created_at", "seconds": 60}, session={
        "type": "transcription", "audio": {"input": {"turn_detection": None, "transcription": {"language": "en"}}}})
    assert minted.value.startswith("ek_") and minted.expires_at > time.time()
    assert minted.session.type == "transcription"
    with sdk(main, minted.value).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        created = connection.recv()
    assert created.type == "session.created" and created.session.audio.input.turn_detection is None
    assert created.session.audio.input.transcription.language == "en"
    with websockets.sync.client.connect(ws_url + "?intent=transcription", subprotocols=[
            "realtime", f"openai-insecure-api-key.{minted.value}"]) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
    event, _ = _refused(ws_url + "?intent=transcription", subprotocols=["realtime", "openai-insecure-api-key.ek_nope"])
    assert event["error"]["code"] == "invalid_client_secret"
    with pytest.raises(openai.BadRequestError):
        sdk(main).realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
    with pytest.raises(openai.AuthenticationError):  # minting needs an API key, not a secret
        sdk(main, minted.value).realtime.client_secrets.create(session={"type": "transcription"})


def test_limits_end_sessions_with_error_events(rt_fleet):
    limited = rt_fleet[1]
    client = sdk(limited, "sk-carol")
    first = client.realtime.connect(extra_query={"intent": "transcription"}).enter()
    second = client.realtime.connect(extra_query={"intent": "transcription"}).enter()
    try:
        assert first.recv().type == "session.created" and second.recv().type == "session.created"
        with client.realtime.connect(extra_query={"intent": "transcription"}) as third:
            refused = third.recv()
        assert refused.type == "error" and refused.error.code == "session_limit_reached"
    finally:
        first.close()
        second.close()
    # idle: nothing sent for longer than the idle timeout
    with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        events.wait(lambda items: events.closed.is_set(), timeout_s=30)
    assert [e.type for e in events.items] == ["session.created", "error"]
    assert events.items[1].error.code == "idle_timeout"
    # too long: a session that keeps talking past the maximum length; the turn it committed is
    # still transcribed and sent before the close
    with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events = Events(connection)
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        feed(connection, clip("cmu_arctic_us_axb_a0005.wav", 24_000), pace=False)
        connection.input_audio_buffer.commit()
        # over the buffer limit (3 s) in manual mode
        feed(connection, np.zeros(4 * 24_000, np.float32), pace=False, slice_ms=4000)
        while not events.closed.is_set():
            connection.input_audio_buffer.append(audio=base64.b64encode(pcm16(np.zeros(2400, np.float32))).decode())
            time.sleep(0.5)
    kinds = [e.type for e in events.items]
    codes = [e.error.code for e in events.of("error")]
    assert codes == ["input_audio_buffer_full", "session_expired"], codes
    assert kinds.index("conversation.item.input_audio_transcription.completed") > kinds.index("error")
    assert wer(FIXTURE_TRANSCRIPTS["cmu_arctic_us_axb_a0005.wav"],
               events.of("conversation.item.input_audio_transcription.completed")[0].transcript) <= 0.2


def test_a_client_that_leaves_mid_turn_loses_no_transcript(rt_fleet):
    main = rt_fleet[0]
    with sdk(main).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        created = connection.recv()
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        feed(connection, clip("jfk.flac", 24_000), pace=False)
        connection.input_audio_buffer.commit()
        while (event := connection.recv()).type != "input_audio_buffer.committed":
            pass
    # gone before its transcript: the turn is listed with its job, which was cancelled while
    # queued or ran to the end with the transcript kept
    with httpx.Client(base_url=main.base_url, headers={"Authorization": "Bearer sk-alice"}, timeout=30) as http:
        deadline = time.monotonic() + 60
        while True:
            answer = http.get(f"/v1/realtime/sessions/{created.session.id}/items")
            items = answer.json()["data"] if answer.status_code == 200 else []
            if items and items[0]["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert http.get(f"/v1/realtime/sessions/{created.session.id}/items",
                        headers={"Authorization": "Bearer sk-bob"}).status_code == 404
    assert [item["item_id"] for item in items] == [event.item_id]
    assert items[0]["status"] in ("succeeded", "cancelled"), items
    if items[0]["status"] == "succeeded":
        assert wer(FIXTURE_TRANSCRIPTS["jfk.flac"], items[0]["transcript"]) <= 0.2, items


def test_metrics_count_sessions_and_turns(rt_fleet):
    text = httpx.get(f"{rt_fleet[0].base_url}/metrics", timeout=10).text
    assert "speechfleet_realtime_sessions_open" in text
    turns = [line for line in text.splitlines()
             if line.startswith('speechfleet_realtime_turns_total{model="whisper",outcome="completed"}')]
    assert turns and float(turns[0].split()[-1]) >= 3, turns
    assert 'speechfleet_realtime_turn_latency_seconds_count{model="whisper"}' in text
