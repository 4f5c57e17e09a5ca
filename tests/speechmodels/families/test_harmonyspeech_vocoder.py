"""HarmonySpeech V1's multi-band MelGAN vocoder: the published layout, the pseudo-QMF bank,
and the real loading and inference code on a small random checkpoint in HSE's layout."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechmodels import ModelConfig, load_model
from speechmodels.families.harmonyspeech_synthesizer import SynthesizedMel
from speechmodels.families.harmonyspeech_vocoder.network import (
    PQMF,
    MelGANGenerator,
    VocoderConfig,
)
from tests.checkpoints import build_harmonyspeech


def test_the_published_sizes_give_the_published_layout():
    generator = MelGANGenerator(VocoderConfig())
    state = {key: tuple(t.shape) for key, t in generator.state_dict().items()}
    convs = sum(isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) for m in generator.modules())
    assert len(state) + convs == 123  # each weight-normalised conv stores weight_g and weight_v
    assert state["melgan.1.weight"] == (384, 80, 7) and state["melgan.3.weight"] == (384, 192, 10)
    assert state["melgan.15.weight"] == (96, 48, 4) and state["melgan.22.weight"] == (4, 48, 7)
    assert state["melgan.4.stack.2.weight"] == (192, 192, 3) and state["melgan.4.skip_layer.weight"] == (192, 192, 1)


def test_pqmf_synthesis_rebuilds_what_the_matching_analysis_split():
    """The synthesis bank inverts the cosine-modulated analysis bank (near-perfect reconstruction)."""
    bank, taps, bands = PQMF(4), 62, 4
    n = np.arange(taps + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ideal = np.sin(np.pi * 0.142 * (n - 0.5 * taps)) / (np.pi * (n - 0.5 * taps))
    ideal[taps // 2] = 0.142
    prototype = ideal * np.kaiser(taps + 1, 9.0)
    analysis = np.stack([2 * prototype * np.cos((2 * k + 1) * np.pi / (2 * bands) * (n - (taps - 1) / 2)
                                                + (-1) ** k * np.pi / 4) for k in range(bands)])
    signal = torch.sin(2 * np.pi * 440 * torch.arange(16_000) / 16_000)[None, None].float()
    split = F.conv1d(F.pad(signal, (taps // 2, taps // 2)), torch.from_numpy(analysis).float()[:, None])
    rebuilt = bank.synthesis(F.conv1d(split, _down(bands), stride=bands))[0, 0]
    # the bank's cosine phase ((taps - 1) / 2) delays the round trip by two samples
    errors = [(rebuilt[1000 + lag:15000 + lag] - signal[0, 0, 1000:15000]).abs().max() for lag in range(4)]
    assert min(errors) < 0.05 and int(np.argmin(errors)) == 2, errors


def _down(bands: int) -> torch.Tensor:
    kernel = torch.zeros(bands, bands, bands)
    for k in range(bands):
        kernel[k, k, 0] = 1.0
    return kernel


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory):
    folder = build_harmonyspeech(tmp_path_factory.mktemp("harmony-speech-v1"))
    return load_model(ModelConfig(name="hs-vocoder", model=str(folder), model_type="HarmonySpeechVocoder"))


def test_a_mel_becomes_16_khz_speech_200_samples_per_frame(vocoder):
    mel = np.random.default_rng(1).uniform(-4, 4, (80, 37)).astype(np.float32)
    speech = vocoder.infer({"mel": SynthesizedMel(mel).to_bytes()})
    assert speech.sample_rate == 16_000 and speech.samples.size == 37 * 200
    assert np.abs(speech.samples).max() == pytest.approx(0.97, abs=1e-4)  # peak-normalised as HSE does
