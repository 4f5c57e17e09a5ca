"""VoiceFixer's analysis and synthesis modules: the published layout checked against its known
facts at full size, and the real loading and inference code run on small random checkpoints
in that layout (the weights cannot be downloaded here)."""

import numpy as np
import pytest
import torch

from speechmodels import InputError, ModelConfig, audio, load_model
from speechmodels.families.voicefixer import RestoredMel
from speechmodels.families.voicefixer.networks import (
    MelVocoder,
    Restorer,
    StftFrontEnd,
    fold_weight_norm,
)
from tests.checkpoints import VF_HOP, build_voicefixer


def test_the_published_sizes_give_the_published_layout():
    """Facts of vf.ckpt and model.ckpt-1490000_trimed.pt (voicefixer 0.1.2's module tree):
    key counts, parameter counts and a few shapes."""
    restorer = Restorer(2048, 128, 441, (256, 512, 256, 2), [32, 64, 128, 256, 384, 384])
    keys = {key: tuple(t.shape) for key, t in restorer.state_dict().items()}
    assert len(keys) == 737  # vf.ckpt's 895 keys less its 158-key folded vocoder copy
    assert sum(p.numel() for name, p in restorer.named_parameters() if not name.startswith("front.")) == 70_377_009
    assert keys["front.stft_real.weight"] == (1025, 1, 2048) and keys["front.mel_fb"] == (1025, 128)
    assert keys["front.istft_overlap_add"] == (2048, 1, 2048, 1) and keys["front.istft_reverse"] == (1023, 1025, 1)
    assert keys["denoiser.7.gru.weight_ih_l1_reverse"] == (768, 512)
    assert keys["unet.decoder_block1.conv_block2.conv1.weight"] == (384, 768, 3, 3)
    assert keys["unet.decoder_block6.conv1.weight"] == (64, 32, 3, 3)
    assert keys["unet.after_conv2.weight"] == (1, 32, 1, 1)
    assert set(StftFrontEnd.KEYS) == {"f_helper.stft.conv_real.weight", "f_helper.stft.conv_imag.weight",
                                      "f_helper.istft.conv_real.weight", "f_helper.istft.conv_imag.weight",
                                      "f_helper.istft.reverse.weight", "f_helper.istft.overlap_add.weight", "mel.fb"}
    vocoder = MelVocoder(128, 512, 1024, [7, 7, 3, 3], [8, 8, 8, 8])
    vkeys = {key: tuple(t.shape) for key, t in vocoder.state_dict().items()}
    assert len(vkeys) == 158 and sum(p.numel() for p in vocoder.parameters()) == 33_862_465
    assert vkeys["generator.3.layer.weight"] == (1024, 512, 14) and vkeys["generator.16.weight"] == (1, 64, 7)
    assert vkeys["generator.13.layers.7.1.weight"] == (64, 64, 3) and vkeys["condnet.8.weight"] == (512, 512, 3)


def test_weight_norm_pairs_fold_to_the_same_weight():
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(3, 5, 3))
    legacy = {"c.weight_g": conv.parametrizations.weight.original0, "c.weight_v": conv.parametrizations.weight.original1}
    newer = {f"c.{k}": v for k, v in conv.state_dict().items() if "parametrizations" in k}
    for state in (legacy, newer):
        assert torch.allclose(fold_weight_norm(state)["c.weight"], conv.weight, atol=1e-6)


@pytest.fixture(scope="module")
def voicefixer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voicefixer")
    build_voicefixer(folder)
    options = {"hop_length": VF_HOP}
    restorer = load_model(ModelConfig(name="vf-restorer", model=str(folder), model_type="VoiceFixerRestorer",
                                      options=options))
    vocoder = load_model(ModelConfig(name="vf-vocoder", model=str(folder), model_type="VoiceFixerVocoder"))
    return restorer, vocoder


def test_restores_a_mel_and_vocodes_it_back_to_the_same_length(voicefixer):
    restorer, vocoder = voicefixer
    from tests.fleet import fixture_audio

    source = fixture_audio("cmu_arctic_us_axb_a0005.wav")
    samples = audio.decode(source, 44_100).size
    mel = restorer.infer({"audio": source})
    (frames,) = mel.segments
    assert frames.shape == (1 + samples // VF_HOP, 128) and np.all(frames > 0) and np.all(np.isfinite(frames))
    assert mel.lengths == [samples]
    travelled = RestoredMel.from_bytes(mel.to_bytes())  # as it crosses from one queue to the next
    assert np.array_equal(travelled.segments[0], frames)
    speech = vocoder.infer({"mel": travelled.to_bytes()})
    assert speech.sample_rate == 44_100 and speech.samples.size == samples
    assert np.abs(speech.samples).max() <= 1.0 and np.std(speech.samples) > 0


def test_restoration_is_deterministic_and_batch_independent(voicefixer):
    restorer, _ = voicefixer
    from tests.fleet import fixture_audio

    short = restorer.prepare({"audio": fixture_audio("cmu_arctic_us_axb_a0005.wav")})
    long = restorer.prepare({"audio": fixture_audio("cmu_arctic_us_aew_a0001.wav")})
    alone = restorer.infer_batch([short])[0]
    together = restorer.infer_batch([long, short])[1]
    assert np.array_equal(alone.segments[0], together.segments[0])


def test_bad_inputs_fail_alone(voicefixer):
    restorer, vocoder = voicefixer
    with pytest.raises(InputError):
        vocoder.prepare({"mel": b"not a mel"})
    with pytest.raises(InputError):
        restorer.prepare({"audio": audio.encode_wav(np.zeros(100, dtype=np.float32), 44_100)})


def test_a_checkpoint_missing_a_key_is_refused(tmp_path):
    vf, _ = build_voicefixer(tmp_path)
    state = torch.load(vf, weights_only=True)
    del state["generator.unet.after_conv2.bias"]
    torch.save(state, vf)
    with pytest.raises(RuntimeError, match="after_conv2.bias"):
        load_model(ModelConfig(name="vf", model=str(tmp_path), model_type="VoiceFixerRestorer",
                               options={"hop_length": VF_HOP}))
