"""The capability declarations: complete for every family, and each codec faithful."""

import base64
import io
import json

import numpy as np
import soundfile

from jobcontract.capabilities import CAPABILITIES, capability
from jobcontract.payload import AudioOutput, JobInput
from speechmodels.registry import MODEL_FAMILIES, SPEAKER_EMBEDDING, SPEECH_SYNTHESIS, VAD
from speechmodels.toolchains import TOOLCHAINS
from speechmodels.tts import SynthesizedSpeech, sentence_piece
from speechmodels.vad import VoiceActivity


def test_every_capability_a_family_has_is_declared():
    used = {name for family in MODEL_FAMILIES.values() for name in family.capabilities}
    assert used <= set(CAPABILITIES)


def test_every_toolchain_step_but_the_last_hands_its_output_on():
    for toolchain in TOOLCHAINS.values():
        for steps in toolchain.routes.values():
            for step in steps[:-1]:
                assert capability(step.capability).next_field, (toolchain.name, step.capability)
            assert capability(steps[-1].capability).encode is not None, toolchain.name


def test_listings_are_unique_paths():
    listings = [declared.listing for declared in CAPABILITIES.values() if declared.listing]
    assert len(listings) == len(set(listings)) and all(path.startswith("/v1/") for path in listings)


def test_audio_travels_between_steps_losslessly():
    speech = SynthesizedSpeech(np.linspace(-0.9, 0.9, 2205, dtype=np.float32), 22_050)
    declared = capability(SPEECH_SYNTHESIS)
    back = declared.unpack(declared.pack(speech))
    assert back.sample_rate == 22_050 and np.array_equal(back.samples, speech.samples)


def test_the_join_is_the_stream_sample_for_sample():
    rate = 16_000
    parts = [SynthesizedSpeech(np.full(800 * (n + 1), 0.2 * (n + 1), dtype=np.float32), rate) for n in range(3)]
    joined = capability(SPEECH_SYNTHESIS).join(parts)
    streamed = np.concatenate([sentence_piece(part.samples, rate, first=index == 0)
                               for index, part in enumerate(parts)])
    assert joined.sample_rate == rate and np.array_equal(joined.samples, streamed)
    assert joined.samples.size == sum(part.samples.size for part in parts) + 2 * int(rate * 0.25)


def test_a_speech_result_is_encoded_as_asked():
    speech = SynthesizedSpeech(0.1 * np.sin(np.arange(22_050, dtype=np.float32) / 5), 22_050)
    encoded = capability(SPEECH_SYNTHESIS).encode(speech, JobInput({}, output=AudioOutput("flac", 16_000)))
    info = soundfile.info(io.BytesIO(encoded.data))
    assert info.format == "FLAC" and info.samplerate == 16_000
    assert encoded.result == {"format": "flac", "content_type": "audio/flac", "sample_rate": 16_000, "duration": 1.0,
                              "bytes": len(encoded.data)}
    default = capability(SPEECH_SYNTHESIS).encode(speech, JobInput({}))
    assert soundfile.info(io.BytesIO(default.data)).samplerate == 22_050 and default.result["format"] == "wav"


def test_vad_segments_and_embeddings_pack_as_the_next_step_reads_them():
    activity = VoiceActivity(speech_activity=True, timestamps=[(0.5, 1.25)])
    assert json.loads(capability(VAD).pack(activity)) == [[0.5, 1.25]]
    assert capability(VAD).encode(activity, JobInput({})).result == {
        "speech_activity": True, "timestamps": [{"start": 0.5, "end": 1.25}]}
    vector = np.arange(4, dtype=np.float64)
    assert np.array_equal(np.frombuffer(capability(SPEAKER_EMBEDDING).pack(vector), "<f4"), vector)
    data = capability(SPEAKER_EMBEDDING).encode(vector, JobInput({})).result["data"]
    assert np.array_equal(np.frombuffer(base64.b64decode(data), "<f4"), vector)
