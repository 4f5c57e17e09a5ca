def test_model_cards(client):
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    cards = {card["id"]: card for card in listing["data"]}
    toolchains = {"voicefixer", "harmonyspeech", "openvoice_v1", "openvoice_v2", "diarization"}
    assert set(cards) == {"silero-vad", "harmonyspeech-encoder", "vad-aux", "whisper", "whisper-base", "piper", "rnnoise",
                          "vf-restorer",
                          "vf-vocoder", "hs-encoder", "hs-synthesizer", "hs-vocoder", "ov-encoder", "ov-converter",
                          "ov-melo", "ov1-encoder", "ov1-converter", "ov1-synthesizer", "speaker-diarizer", *toolchains}
    for card in cards.values():
        assert card["object"] == ("toolchain" if card["id"] in toolchains else "model")
        assert isinstance(card["created"], int) and card["owned_by"]
        assert isinstance(card["languages"], list)
    vad_models = [card["id"] for card in client.get("/v1/audio/vad/models").json()["data"]]
    assert sorted(vad_models) == ["silero-vad", "vad-aux", "whisper", "whisper-base"]  # HSE lets Whisper do VAD
    assert [card["id"] for card in client.get("/v1/embed/models").json()["data"]] == [
        "harmonyspeech-encoder", "hs-encoder", "ov-encoder", "ov1-encoder", "harmonyspeech", "openvoice_v1",
        "openvoice_v2"]
    assert [card["id"] for card in client.get("/v1/audio/transcriptions/models").json()["data"]] == [
        "whisper", "whisper-base"]


def test_health_ready_version_docs_openapi(client):
    assert client.get("/health").json()["status"] == "ok"  # HSE's per-capability keys: test_browser_clients
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["models"]["silero-vad"] >= 1
    assert client.get("/version").json()["name"] == "speechfleet"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/v1/audio/vad" in spec.json()["paths"] and "/v1/jobs/{job_id}" in spec.json()["paths"]


def test_metrics_report_queues_and_consumers(client):
    text = client.get("/metrics").text
    assert 'speechfleet_live_consumers{model="silero-vad"} 1.0' in text
    assert 'speechfleet_queue_depth{model="harmonyspeech-encoder"}' in text


def test_request_id_is_echoed(client):
    assert client.get("/health", headers={"X-Request-Id": "abc123"}).headers["x-request-id"] == "abc123"
    assert client.get("/health").headers["x-request-id"]


def test_metrics_aggregate_what_the_workers_did(client):
    from tests.conftest import b64_audio

    for _ in range(3):
        assert client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac")}).status_code == 200
    text = client.get("/metrics").text
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
             if line and not line.startswith("#")}
    assert lines['speechfleet_jobs_total{model="silero-vad",outcome="succeeded"}'] >= 3
    assert lines['speechfleet_batch_size_count{model="silero-vad"}'] >= 1
    assert lines['speechfleet_queue_wait_seconds_count{model="silero-vad"}'] >= 3
    assert lines['speechfleet_inference_seconds_bucket{le="+Inf",model="silero-vad"}'] >= 3
    # VAD on 11 s of audio takes well under its duration: the real-time factor is small
    assert 0 < lines['speechfleet_real_time_factor_sum{model="silero-vad"}'] / \
        lines['speechfleet_real_time_factor_count{model="silero-vad"}'] < 0.5
