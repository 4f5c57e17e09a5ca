"""Small randomly-initialised checkpoints in the exact published layouts (file names, state-dict
keys, tensor ranks), for families whose real weights cannot be downloaded here."""

from __future__ import annotations

import math
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
