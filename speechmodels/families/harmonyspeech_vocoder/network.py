"""HarmonySpeech V1's vocoder: a multi-band MelGAN generator (four 4 kHz bands at 16 kHz)
and the pseudo-QMF synthesis filter bank that sums the bands into one waveform, written here to
load ``vocoder/vocoder.pt`` (``{"model": {"generator": ...}}``, weight-normalised convolutions)
strictly. The generator's arguments come from ``vocoder/config.json``'s ``model`` object.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class VocoderConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    in_channels: int = 80
    out_channels: int = 4  # bands; 1 means a plain (full-band) MelGAN
    kernel_size: int = 7
    channels: int = 384
    bias: bool = True
    upsample_scales: list[int] = Field(default_factory=lambda: [5, 5, 2])
    stack_kernel_size: int = 3
    stacks: int = 4
    nonlinear_activation: str = "LeakyReLU"
    nonlinear_activation_params: dict = Field(default_factory=lambda: {"negative_slope": 0.2})
    pad: str = "ReflectionPad1d"
    use_final_nonlinear_activation: bool = True

    @classmethod
    def from_json(cls, document: dict) -> VocoderConfig:
        return cls.model_validate(document.get("model", document))


def _activation(config: VocoderConfig) -> nn.Module:
    return getattr(nn, config.nonlinear_activation)(**config.nonlinear_activation_params)


class ResidualStack(nn.Module):
    """activation, pad, dilated conv, activation, 1x1 conv; plus a 1x1 skip."""

    def __init__(self, config: VocoderConfig, channels: int, dilation: int):
        super().__init__()
        kernel = config.stack_kernel_size
        self.stack = nn.Sequential(
            _activation(config), getattr(nn, config.pad)((kernel - 1) // 2 * dilation),
            nn.Conv1d(channels, channels, kernel, dilation=dilation, bias=config.bias),
            _activation(config), nn.Conv1d(channels, channels, 1, bias=config.bias))
        self.skip_layer = nn.Conv1d(channels, channels, 1, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x) + self.skip_layer(x)


class MelGANGenerator(nn.Module):
    def __init__(self, config: VocoderConfig):
        super().__init__()
        layers: list[nn.Module] = [getattr(nn, config.pad)((config.kernel_size - 1) // 2),
                                   nn.Conv1d(config.in_channels, config.channels, config.kernel_size, bias=config.bias)]
        width = config.channels
        for scale in config.upsample_scales:
            layers += [_activation(config),
                       nn.ConvTranspose1d(width, width // 2, 2 * scale, stride=scale, padding=scale // 2 + scale % 2,
                                          output_padding=scale % 2, bias=config.bias)]
            width //= 2
            layers += [ResidualStack(config, width, config.stack_kernel_size ** j) for j in range(config.stacks)]
        layers += [_activation(config), getattr(nn, config.pad)((config.kernel_size - 1) // 2),
                   nn.Conv1d(width, config.out_channels, config.kernel_size, bias=config.bias)]
        if config.use_final_nonlinear_activation:
            layers.append(nn.Tanh())
        self.melgan = nn.Sequential(*layers)
        self.bands = PQMF(config.out_channels) if config.out_channels > 1 else None

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, n_mels, frames) -> (batch, samples)."""
        bands = self.melgan(mel)
        return (self.bands.synthesis(bands) if self.bands is not None else bands)[:, 0]


class PQMF(nn.Module):
    """Pseudo-QMF bank: a Kaiser-windowed prototype low-pass (62 taps, cut-off 0.142, beta 9)
    cosine-modulated into ``bands`` synthesis filters. Computed, not stored in the checkpoint."""

    def __init__(self, bands: int, taps: int = 62, cutoff: float = 0.142, beta: float = 9.0):
        super().__init__()
        n = np.arange(taps + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ideal = np.sin(np.pi * cutoff * (n - 0.5 * taps)) / (np.pi * (n - 0.5 * taps))
        ideal[taps // 2] = cutoff
        prototype = ideal * np.kaiser(taps + 1, beta)
        synthesis = np.stack([2 * prototype * np.cos((2 * k + 1) * np.pi / (2 * bands) * (n - (taps - 1) / 2)
                                                     - (-1) ** k * np.pi / 4) for k in range(bands)])
        self.bands = bands
        self.taps = taps
        self.register_buffer("synthesis_filter", torch.from_numpy(synthesis).float()[None], persistent=False)
        updown = torch.zeros(bands, bands, bands)  # spreads band k's samples bands apart
        for k in range(bands):
            updown[k, k, 0] = float(bands)
        self.register_buffer("updown_filter", updown, persistent=False)

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, bands, T) -> (batch, 1, bands x T)."""
        upsampled = F.conv_transpose1d(x, self.updown_filter, stride=self.bands)
        return F.conv1d(F.pad(upsampled, (self.taps // 2, self.taps // 2)), self.synthesis_filter)
