"""The layout of the fleet metrics kept in Redis, so that ``/metrics`` on any API replica
reports the whole fleet however many workers there are: workers add to histogram buckets and
counters with HINCRBY, and the API turns the hashes into Prometheus families at scrape time."""

from __future__ import annotations

from jobcontract.keys import METRICS_PREFIX

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
RTF_BUCKETS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FRACTION_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

HISTOGRAMS = {  # name -> (help, buckets)
    "batch_size": ("items per batched model call", BATCH_BUCKETS),
    "queue_wait_seconds": ("time from acceptance to a worker starting the job", SECONDS_BUCKETS),
    "inference_seconds": ("duration of the batched model call a job was part of", SECONDS_BUCKETS),
    "real_time_factor": ("a job's share of its batch's compute time per second of its audio", RTF_BUCKETS),
    "jobs_per_message": ("one-step jobs that came to a worker in one message (workers.canvas.send_one_step_jobs)",
                         BATCH_BUCKETS),
    # reported by the model families themselves (``SpeechModel.observe``): Whisper's window packing
    "stt_requests_per_window": ("requests whose speech shared one 30 s Whisper window", BATCH_BUCKETS),
    "stt_chunks_decoded_again": ("chunks of one shared Whisper window decoded again (it did not split cleanly)",
                                 BATCH_BUCKETS),
    "stt_short_windows_decoded_again": ("untimed Whisper windows encoded shorter than 30 s that looped and were "
                                        "decoded again at 30 s", BATCH_BUCKETS),
    "stt_window_fill": ("fraction of a 30 s Whisper window holding audio (speech and guard gaps)", FRACTION_BUCKETS),
    # realtime sessions (labelled by the transcription or VAD model)
    "realtime_turn_latency_seconds": ("end of speech (its last audio received) to the turn's transcript sent",
                                      SECONDS_BUCKETS),
    "realtime_vad_decision_seconds": ("end of speech to speech_stopped: the silence waited for plus the VAD jobs",
                                      SECONDS_BUCKETS),
}
COUNTERS = {  # name -> (help, label names)
    "jobs": ("jobs that ended, by model and outcome", ("model", "outcome")),
    "webhook_deliveries": ("webhook delivery attempts, by outcome", ("outcome",)),
    "realtime_turns": ("realtime turns committed, by transcription model and outcome", ("model", "outcome")),
}


def histogram_key(name: str, model: str) -> str:
    return f"{METRICS_PREFIX}hist:{name}:{model}"


def counter_key(name: str) -> str:
    return f"{METRICS_PREFIX}count:{name}"


def observe(pipe, name: str, model: str, value: float) -> None:
    """Queue one observation on a pipeline (cumulative buckets, as Prometheus wants them)."""
    key = histogram_key(name, model)
    for bound in HISTOGRAMS[name][1]:
        if value <= bound:
            pipe.hincrby(key, f"le:{bound:g}", 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", value)


def count(pipe, name: str, *labels: str) -> None:
    pipe.hincrby(counter_key(name), "|".join(labels), 1)
