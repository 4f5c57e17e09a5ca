"""Small randomly-initialised checkpoints in the exact published layouts (file names, state-dict
keys, tensor ranks), for families whose real weights cannot be downloaded here."""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from speechmodels.families.voicefixer.networks import MelVocoder, Restorer, StftFrontEnd

# reduced widths; the published hop (441 = 7x7x3x3, the vocoder's upsampling) and VoiceFixer's
# 128 mel bins (its U-Net halves them six times) stay
VF_N_FFT, VF_N_MELS, VF_HOP = 512, 128, 441
VF_FACTORS = [7, 7, 3, 3]


def _dft_kernels(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hann-windowed DFT rows as Conv1d kernels: what a VoiceFixer STFT front end holds."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)
    angle = 2 * math.pi * k * n / n_fft
    return ((window * torch.cos(angle))[:, None, :].float(), (-window * torch.sin(angle))[:, None, :].float())


def _weight_normed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every conv weight but the skip convs as torch's legacy weight-norm pair (g over dim 0, v)."""
    out = {}
    for key, tensor in state.items():
        if key.endswith(".weight") and tensor.dim() == 3 and "skip_conv" not in key:
            prefix = key[: -len("weight")]
            out[prefix + "weight_g"] = tensor.reshape(tensor.shape[0], -1).norm(dim=1).reshape(-1, 1, 1)
            out[prefix + "weight_v"] = tensor
        else:
            out[key] = tensor
    return out


def build_voicefixer(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """``vf.ckpt`` and ``model.ckpt-1490000_trimed.pt`` in ``folder`` (reduced widths)."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocoder = MelVocoder(VF_N_MELS, 16, 32, VF_FACTORS, [2, 2, 2, 2])
    restorer = Restorer(VF_N_FFT, VF_N_MELS, VF_HOP, (16, 32, 8, 2), [4, 4, 8, 8, 8, 8])
    real, imag = _dft_kernels(VF_N_FFT)
    with torch.no_grad():
        restorer.front.stft_real.weight.copy_(real)
        restorer.front.stft_imag.weight.copy_(imag)
        restorer.front.mel_fb.copy_(torch.rand(VF_N_FFT // 2 + 1, VF_N_MELS) / 8)
    published_name = {f"front.{ours}": theirs for theirs, ours in StftFrontEnd.KEYS.items()}
    analysis = {published_name.get(key, f"generator.{key}"): tensor for key, tensor in restorer.state_dict().items()}
    # vf.ckpt also carries a folded copy of the synthesis module, as the published file does
    analysis.update({f"vocoder.model.{key}": tensor for key, tensor in vocoder.state_dict().items()})
    torch.save(analysis, folder / "vf.ckpt")
    torch.save({"generator": _weight_normed(vocoder.state_dict())}, folder / "model.ckpt-1490000_trimed.pt")
    return folder / "vf.ckpt", folder / "model.ckpt-1490000_trimed.pt"


# HarmonySpeech V1 (harmony-ai/harmony-speech-v1): encoder/, synthesizer/, vocoder/, each a
# config.json and a .pt; reduced widths, the published structure
HS_EMBEDDING = 16
HS_SYNTHESIZER = {"embed_dims": 16, "series_embed_dims": 8, "num_chars": 66, "durpred_conv_dims": 16,
                  "durpred_rnn_dims": 8, "durpred_dropout": 0.5, "pitch_conv_dims": 16, "pitch_rnn_dims": 8,
                  "pitch_dropout": 0.5, "pitch_strength": 1.0, "energy_conv_dims": 16, "energy_rnn_dims": 8,
                  "energy_dropout": 0.5, "energy_strength": 1.0, "rnn_dims": 16, "prenet_dims": 16, "prenet_k": 4,
                  "prenet_num_highways": 2, "prenet_dropout": 0.5, "postnet_dims": 16, "postnet_k": 4,
                  "postnet_num_highways": 2, "postnet_dropout": 0.5, "n_mels": 80,
                  "speaker_embed_dims": HS_EMBEDDING, "padding_value": -11.5129}
HS_VOCODER = {"in_channels": 80, "out_channels": 4, "kernel_size": 7, "channels": 32, "bias": True,
              "upsample_scales": [5, 5, 2], "stack_kernel_size": 3, "stacks": 2, "nonlinear_activation": "LeakyReLU",
              "nonlinear_activation_params": {"negative_slope": 0.2}, "pad": "ReflectionPad1d", "pad_params": {},
              "use_final_nonlinear_activation": True, "use_weight_norm": True, "use_causal_conv": False}


def _all_convs_weight_normed(module: torch.nn.Module, only: str | None = None) -> dict[str, torch.Tensor]:
    """Conv weights (those whose key matches the ``only`` pattern, if given) as legacy
    weight-norm pairs (g over dim 0, v), as the published files store them."""
    state = {}
    for key, tensor in module.state_dict().items():
        owner = module.get_submodule(key.rsplit(".", 1)[0]) if "." in key else module
        if (key.endswith(".weight") and isinstance(owner, (torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.Conv2d))
                and (only is None or re.search(only, key))):
            prefix = key[: -len("weight")]
            norms = tensor.reshape(tensor.shape[0], -1).norm(dim=1)
            state[prefix + "weight_g"] = norms.reshape(-1, *([1] * (tensor.dim() - 1)))
            state[prefix + "weight_v"] = tensor
        else:
            state[key] = tensor
    return state


def build_harmonyspeech(folder: Path, seed: int = 0) -> Path:
    """A harmony-speech-v1 folder: encoder, synthesizer and vocoder in HSE's layout."""
    import json

    from speechmodels.families.harmonyspeech_encoder.model import (
        EncoderConfig,
        SpeakerEncoderNet,
    )
    from speechmodels.families.harmonyspeech_synthesizer.network import (
        ForwardTacotron,
        SynthesizerConfig,
    )
    from speechmodels.families.harmonyspeech_vocoder.network import (
        MelGANGenerator,
        VocoderConfig,
    )

    torch.manual_seed(seed)
    for part in ("encoder", "synthesizer", "vocoder"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    encoder = {"model_hidden_size": 32, "model_embedding_size": HS_EMBEDDING, "model_num_layers": 2}
    (folder / "encoder" / "config.json").write_text(json.dumps(encoder))
    network = SpeakerEncoderNet(EncoderConfig.model_validate(encoder))
    torch.save({"step": 0, "model_state": network.state_dict()}, folder / "encoder" / "encoder.pt")
    (folder / "synthesizer" / "config.json").write_text(json.dumps({"model": HS_SYNTHESIZER}))
    synthesizer = ForwardTacotron(SynthesizerConfig.model_validate(HS_SYNTHESIZER))
    torch.save({"model_state": synthesizer.state_dict()}, folder / "synthesizer" / "synthesizer.pt")
    (folder / "vocoder" / "config.json").write_text(json.dumps({"model": HS_VOCODER}))
    vocoder = MelGANGenerator(VocoderConfig.model_validate(HS_VOCODER))
    generator = {f"melgan.{key}": value for key, value in _all_convs_weight_normed(vocoder.melgan).items()}
    torch.save({"model_type": "multiband-melgan", "steps": 0, "model": {"generator": generator}},
               folder / "vocoder" / "vocoder.pt")
    return folder


# OpenVoice V2 (myshell-ai/OpenVoiceV2): converter/config.json + converter/checkpoint.pth;
# reduced widths, the published hop (256 = 8x8x2x2) and spectrogram (1024-point)
OV_GIN = 16
OV_CONFIG = {"_version_": "v2",
             "data": {"sampling_rate": 22050, "filter_length": 1024, "hop_length": 256, "win_length": 1024,
                      "n_speakers": 0},
             "model": {"zero_g": True, "inter_channels": 8, "hidden_channels": 8, "filter_channels": 32,
                       "n_heads": 2, "n_layers": 2, "kernel_size": 3, "p_dropout": 0.1, "resblock": "1",
                       "resblock_kernel_sizes": [3, 7], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
                       "upsample_rates": [8, 8, 2, 2], "upsample_initial_channel": 32,
                       "upsample_kernel_sizes": [16, 16, 4, 4], "gin_channels": OV_GIN}}


def build_openvoice_v2(folder: Path, seed: int = 0, version: int = 2) -> Path:
    """V2's ``converter/``, or with ``version=1`` V1's ``checkpoints/converter/`` (no zero_g)."""
    import json

    from speechmodels.families.openvoice.network import ConverterConfig, ToneConverter

    torch.manual_seed(seed)
    document = OV_CONFIG if version == 2 else {
        "data": OV_CONFIG["data"], "model": {k: v for k, v in OV_CONFIG["model"].items() if k != "zero_g"}}
    converter = folder / ("converter" if version == 2 else "checkpoints/converter")
    converter.mkdir(parents=True, exist_ok=True)
    (converter / "config.json").write_text(json.dumps(document))
    network = ToneConverter(ConverterConfig.from_json(document))
    # weight-normalised in the published file: the decoder's upsamplers and residual blocks,
    # every WaveNet layer, the reference encoder's convolutions
    normed = r"^dec\.(ups|resblocks)\.|\.enc\.(cond_layer|in_layers|res_skip_layers)|^ref_enc\.convs\."
    torch.save({"model": _all_convs_weight_normed(network, only=normed)}, converter / "checkpoint.pth")
    return folder


# OpenVoice V1's English base speaker (checkpoints/base_speakers/EN/): its config carries the
# cjke_cleaners2 alphabet and the style table; reduced widths, the published hop and layout
OV1_SYMBOLS = ["_", *",.!?-~…", *"NQabdefghijklmnopstuvwxyzɑæʃʑçɯɪɔɛɹðəɫɥɸʊɾʒθβŋɦ⁼ʰ`^#*=ˈˌ→↓↑ "]
OV1_STYLES = {"default": 1, "whispering": 2, "shouting": 3, "excited": 4, "cheerful": 5, "terrified": 6,
              "angry": 7, "sad": 8, "friendly": 9}
OV1_BASE_SPEAKER = {
    "data": {**OV_CONFIG["data"], "text_cleaners": ["cjke_cleaners2"], "add_blank": True, "cleaned_text": True,
             "n_speakers": 10},
    "model": {k: v for k, v in OV_CONFIG["model"].items() if k != "zero_g"},
    "speakers": OV1_STYLES, "symbols": OV1_SYMBOLS}


def build_openvoice_v1(folder: Path, seed: int = 0) -> Path:
    """``myshell-ai/OpenVoice``'s layout: ``checkpoints/converter/`` and the English base
    speaker ``checkpoints/base_speakers/EN/`` (its training-only posterior encoder included)."""
    import json

    from speechmodels.families.openvoice.base_speaker import (
        BaseSpeaker,
        BaseSpeakerConfig,
    )

    build_openvoice_v2(folder, seed, version=1)
    torch.manual_seed(seed)
    base = folder / "checkpoints" / "base_speakers" / "EN"
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.json").write_text(json.dumps(OV1_BASE_SPEAKER, ensure_ascii=False))
    _save_vits(BaseSpeaker(BaseSpeakerConfig.from_json(OV1_BASE_SPEAKER)), base / "checkpoint.pth",
               learning_rate=0.0)
    return folder


def _save_vits(network: torch.nn.Module, path: Path, **fields) -> None:
    """A VITS checkpoint as published: ``["model"]`` with the training-only posterior encoder,
    the decoder's and WaveNets' convolutions weight-normalised."""
    from speechmodels.families.openvoice.network import PosteriorEncoder

    c = network.config
    network.enc_q = PosteriorEncoder(c.spec_channels, c.inter_channels, c.hidden_channels, c.gin_channels)
    normed = r"^dec\.(ups|resblocks)\.|\.enc\.(cond_layer|in_layers|res_skip_layers)"
    torch.save({"model": _all_convs_weight_normed(network, only=normed), "iteration": 0, **fields}, path)


# MeloTTS-English (config.json + checkpoint.pth at the repo's root): MeloTTS's symbol table
# layout (pad, the sorted phone set, punctuation, SP, UNK) cut down to English's phones; its
# 16 tones and 8 languages; the published 44.1 kHz front end (2048-point spectrogram, hop 512
# = 8x8x2x2x2); reduced widths
MELO_EN_PHONES = ["aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh", "ih",
                  "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th", "uh", "uw", "V",
                  "w", "y", "z", "zh"]
MELO_SYMBOLS = ["_", *sorted(MELO_EN_PHONES), "!", "?", "…", ",", ".", "'", "-", "SP", "UNK"]
MELO_SPEAKERS = {"EN-US": 0, "EN-BR": 1, "EN_INDIA": 2, "EN-AU": 3, "EN-Default": 4}
MELO_CONFIG = {
    "train": {"segment_size": 16384},
    "data": {"sampling_rate": 44100, "filter_length": 2048, "hop_length": 512, "win_length": 2048,
             "n_mel_channels": 128, "add_blank": True, "n_speakers": 256, "spk2id": MELO_SPEAKERS},
    "model": {"use_spk_conditioned_encoder": True, "use_noise_scaled_mas": True, "use_mel_posterior_encoder": False,
              "use_duration_discriminator": True, "inter_channels": 8, "hidden_channels": 8, "filter_channels": 16,
              "n_heads": 2, "n_layers": 3, "n_layers_trans_flow": 3, "kernel_size": 3, "p_dropout": 0.1,
              "resblock": "1", "resblock_kernel_sizes": [3, 7], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
              "upsample_rates": [8, 8, 2, 2, 2], "upsample_initial_channel": 32,
              "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3, "use_spectral_norm": False,
              "gin_channels": OV_GIN},
    "num_languages": 8, "num_tones": 16, "symbols": MELO_SYMBOLS}


def build_melotts(folder: Path, seed: int = 0) -> Path:
    """A MeloTTS-English folder (its training-only posterior encoder included)."""
    import json

    from speechmodels.families.melotts.network import MeloConfig, MeloNetwork

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(MELO_CONFIG, ensure_ascii=False))
    _save_vits(MeloNetwork(MeloConfig.from_json(MELO_CONFIG)), folder / "checkpoint.pth")
    return folder
