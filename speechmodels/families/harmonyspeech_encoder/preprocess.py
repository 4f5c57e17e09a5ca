"""GE2E input pipeline: loudness normalisation, long-silence trimming, 40-band log-free mel frames,
and the partial-utterance windows that the encoder averages over."""

from __future__ import annotations

import functools

import numpy as np

INT16_MAX = 2**15 - 1


def normalize_volume(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Raise quiet audio to ``target_dbfs`` RMS (never lowers loud audio, as in training)."""
    rms = np.sqrt(np.mean((samples * INT16_MAX) ** 2))
    if rms == 0:
        return samples
    change_db = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    if change_db < 0:
        return samples
    return samples * (10 ** (change_db / 20))


def trim_long_silences(samples: np.ndarray, sample_rate: int, window_ms: int,
                       smoothing_width: int, max_silence_windows: int) -> np.ndarray:
    """Drop stretches that WebRTC's VAD (aggressiveness 3) calls silence for long enough.

    Voice flags per window are smoothed with a moving average, then dilated so that short
    pauses inside speech survive.
    """
    import webrtcvad
    from scipy.ndimage import binary_dilation

    window = window_ms * sample_rate // 1000
    usable = len(samples) - len(samples) % window
    if usable == 0:
        return samples
    pcm = (np.clip(samples[:usable], -1, 1) * INT16_MAX).round().astype("<i2").tobytes()
    detector = webrtcvad.Vad(3)
    flags = np.array([detector.is_speech(pcm[start * 2 : (start + window) * 2], sample_rate)
                      for start in range(0, usable, window)], dtype=float)
    kernel = np.ones(smoothing_width) / smoothing_width
    padded = np.concatenate([np.zeros((smoothing_width - 1) // 2), flags, np.zeros(smoothing_width // 2)])
    smoothed = np.convolve(padded, kernel, mode="valid")
    mask = binary_dilation(smoothed.round().astype(bool), np.ones(max_silence_windows + 1))
    kept = samples[:usable][np.repeat(mask, window)]
    # an utterance that is all "silence" is still someone's voice: keep it whole
    return kept if kept.size else samples


def mel_frames(samples: np.ndarray, sample_rate: int, window_ms: int, step_ms: int, n_mels: int) -> np.ndarray:
    """(frames, n_mels) power mel spectrogram (not log), the features the published encoder was
    trained on: librosa's centred Hann STFT and Slaney mel filters."""
    import librosa

    n_fft = sample_rate * window_ms // 1000
    power = np.abs(librosa.stft(samples, n_fft=n_fft, hop_length=sample_rate * step_ms // 1000)) ** 2
    return (power.T @ _mel_filters(sample_rate, n_fft, n_mels).T).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)


def partial_windows(n_samples: int, samples_per_frame: int, partial_frames: int,
                    partials_per_second: float, sample_rate: int, min_coverage: float) -> tuple[list[slice], int]:
    """Frame slices of ``partial_frames`` covering the utterance, and the sample count the
    waveform must be padded to so that the last slice is complete."""
    n_frames = int(np.ceil((n_samples + 1) / samples_per_frame))
    frame_step = max(1, int(round(sample_rate / partials_per_second / samples_per_frame)))
    slices = [slice(start, start + partial_frames)
              for start in range(0, max(1, n_frames - partial_frames + frame_step + 1), frame_step)]
    last_samples = slice(slices[-1].start * samples_per_frame, slices[-1].stop * samples_per_frame)
    coverage = (n_samples - last_samples.start) / (last_samples.stop - last_samples.start)
    if coverage < min_coverage and len(slices) > 1:
        slices.pop()
    return slices, slices[-1].stop * samples_per_frame
