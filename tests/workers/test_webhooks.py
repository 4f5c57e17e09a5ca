"""Webhooks through the whole fleet: a receiver on loopback (allowed by the test settings)
gets correctly signed deliveries, retried until accepted, exactly once per job."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobcontract.callbacks import CallbackRefused, check_callback_url
from tests.conftest import b64_audio
from tests.fleet import TEST_ENV
from workers.webhooks import sign

ASYNC = {"Prefer": "respond-async"}


class Receiver:
    """Records every POST; answers with the next status in ``script`` (then 200)."""

    def __init__(self):
        self.deliveries: list[dict] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.deliveries.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                                            "path": self.path})
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_job(self, job_id: str, count: int, timeout_s: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [d for d in self.deliveries if d["headers"].get("webhook-id") == job_id]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()


def verify(delivery: dict) -> dict:
    """Check the Standard Webhooks signature the way a receiver would."""
    headers = delivery["headers"]
    secret = base64.b64decode(TEST_ENV["SPEECHFLEET_WEBHOOK_SECRET"].removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + delivery["body"]
    expected = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    version, _, signature = headers["webhook-signature"].partition(",")
    assert version == "v1" and hmac.compare_digest(signature, expected)
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 60
    return json.loads(delivery["body"])


def test_a_finished_job_is_delivered_signed(client, receiver):
    accepted = client.post("/v1/audio/vad", headers=ASYNC, json={
        "model": "silero-vad", "input_audio": b64_audio("jfk.flac"), "callback_url": f"{receiver.url}/hook"})
    job_id = accepted.json()["id"]
    (delivery,) = receiver.for_job(job_id, 1)
    event = verify(delivery)
    assert delivery["path"] == "/hook"
    assert event["type"] == "job.succeeded" and event["id"] == job_id and event["result"]["speech_activity"] is True
    time.sleep(0.5)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert [attempt["status_code"] for attempt in job["webhook_attempts"]] == [200]


def test_a_failed_job_is_delivered_with_its_error(client, receiver):
    import io

    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(80, dtype=np.float32), 16_000, format="WAV")  # too short to embed
    accepted = client.post("/v1/embed/speaker", headers=ASYNC, json={
        "model": "harmonyspeech-encoder", "input_audio": base64.b64encode(buffer.getvalue()).decode(),
        "callback_url": receiver.url})
    (delivery,) = receiver.for_job(accepted.json()["id"], 1)
    event = verify(delivery)
    assert event["type"] == "job.failed" and event["error"]["code"] == 400 and "too short" in event["error"]["message"]


def test_a_refused_delivery_is_retried_and_delivered_exactly_once(client, receiver):
    receiver.script = [500]
    accepted = client.post("/v1/audio/vad", headers=ASYNC, json={
        "model": "silero-vad", "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"), "callback_url": receiver.url})
    job_id = accepted.json()["id"]
    deliveries = receiver.for_job(job_id, 2)
    assert len(deliveries) == 2
    assert deliveries[0]["body"] == deliveries[1]["body"]  # the same event, signed afresh
    for delivery in deliveries:
        verify(delivery)
    time.sleep(1.5)  # nothing more arrives once one was accepted
    assert len(receiver.for_job(job_id, 3, timeout_s=0.1)) == 2
    attempts = client.get(f"/v1/jobs/{job_id}").json()["webhook_attempts"]
    assert [a["status_code"] for a in attempts] == [500, 200] and attempts[1]["attempt"] == 2


def test_a_second_delivery_task_for_the_same_job_delivers_nothing(client, receiver, redis_server):
    from celery import Celery

    from workers.celery_app import WEBHOOK_QUEUE, WEBHOOK_TASK

    accepted = client.post("/v1/audio/vad", headers=ASYNC, json={
        "model": "silero-vad", "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"), "callback_url": receiver.url})
    job_id = accepted.json()["id"]
    assert len(receiver.for_job(job_id, 1)) == 1
    app = Celery("again", broker=redis_server.url)
    for _ in range(2):  # as a redelivered or duplicated task would
        app.send_task(WEBHOOK_TASK, args=(job_id,), queue=WEBHOOK_QUEUE)
    app.close()
    time.sleep(1.5)
    assert len(receiver.for_job(job_id, 2, timeout_s=0.1)) == 1
    assert len(client.get(f"/v1/jobs/{job_id}").json()["webhook_attempts"]) == 1


def test_callbacks_of_cancelled_jobs_and_bad_callbacks(client, receiver, paused):
    with paused("vad-aux"):
        accepted = client.post("/v1/audio/vad", headers=ASYNC, json={
            "model": "vad-aux", "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"), "callback_url": receiver.url})
        job_id = accepted.json()["id"]
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    (delivery,) = receiver.for_job(job_id, 1)
    assert verify(delivery)["type"] == "job.cancelled"
    bad = client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac"),
                                             "callback_url": "ftp://example.com/hook"})
    assert bad.status_code == 400 and bad.json()["reason"] == "invalid_callback_url"


def test_private_callbacks_are_refused_unless_allowed():
    for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x",
                "http://localhost/x"):
        with pytest.raises(CallbackRefused):
            check_callback_url(url, allow_private=False)
        check_callback_url(url, allow_private=True)
    for url in ("ftp://example.com/x", "not a url", "http:///nohost"):
        with pytest.raises(CallbackRefused):
            check_callback_url(url, allow_private=True)


def test_signature_matches_the_standard_webhooks_example():
    # the Standard Webhooks specification's published test vector
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_goes_to_the_address_it_checked_with_the_name_as_host(receiver):
    """The POST connects to the resolved, checked address; the name travels in Host."""
    import ipaddress

    from jobcontract.callbacks import CallbackTarget
    from workers.webhooks import post_to

    port = receiver.server.server_address[1]
    target = CallbackTarget(f"http://hooks.invalid:{port}/pinned", "hooks.invalid", port,
                            ipaddress.ip_address("127.0.0.1"))
    response = post_to(target, b"{}", {"webhook-id": "pinned-1"}, timeout_s=5)
    assert response.status_code == 200
    (delivery,) = receiver.for_job("pinned-1", 1)
    assert delivery["path"] == "/pinned" and delivery["headers"]["host"] == f"hooks.invalid:{port}"


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_delivery(monkeypatch):
    """DNS rebinding: public when the job is accepted, loopback when the webhook is sent."""
    import socket

    from jobcontract.callbacks import resolve_callback

    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        return real(next(answers), *args, **kwargs) if host == "rebind.example" else real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    check_callback_url("http://rebind.example/hook", allow_private=False)  # the API's check passes
    with pytest.raises(CallbackRefused, match="127.0.0.1"):
        resolve_callback("http://rebind.example/hook", allow_private=False)  # the delivery's does not
