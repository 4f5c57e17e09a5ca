"""OpenVoice's tone colour converter (V2: ``myshell-ai/OpenVoiceV2`` ``converter/``), written
here to load ``checkpoint.pth`` (``["model"]``, legacy weight-norm pairs folded) strictly.

The converter is VITS without its text side: a reference encoder turns a linear spectrogram
into a tone-colour embedding ("se"); conversion encodes the source spectrogram into a latent
(posterior encoder), maps it through the normalising flow conditioned on the source's se,
back through the flow in reverse conditioned on the target's se, and decodes it with a
HiFi-GAN generator. V2's ``zero_g`` feeds zeros instead of the se to the posterior encoder
and the decoder (their condition layers' biases still apply).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

REFERENCE_FILTERS = (32, 32, 64, 64, 128, 128)


class ConverterConfig(BaseModel):
    """``config.json``: ``data`` and ``model`` sections, OpenVoice's field names."""

    model_config = ConfigDict(extra="ignore")

    sampling_rate: int = 22_050
    filter_length: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    inter_channels: int = 192
    hidden_channels: int = 192
    resblock_kernel_sizes: list[int] = Field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = Field(default_factory=lambda: [[1, 3, 5]] * 3)
    upsample_rates: list[int] = Field(default_factory=lambda: [8, 8, 2, 2])
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: list[int] = Field(default_factory=lambda: [16, 16, 4, 4])
    gin_channels: int = 256
    zero_g: bool = False  # V1 configs do not have it

    @classmethod
    def from_json(cls, document: dict) -> ConverterConfig:
        return cls.model_validate({**document.get("data", {}), **document.get("model", {})})

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1


def spectrogram(samples: torch.Tensor, config: ConverterConfig) -> torch.Tensor:
    """(batch, samples) -> linear magnitude (batch, bins, frames): reflect-padded by
    (n_fft - hop) / 2, uncentred Hann STFT, sqrt(power + 1e-6)."""
    pad = (config.filter_length - config.hop_length) // 2
    padded = F.pad(samples[:, None, :], (pad, pad), mode="reflect")[:, 0]
    stft = torch.stft(padded, config.filter_length, hop_length=config.hop_length, win_length=config.win_length,
                      window=torch.hann_window(config.win_length, device=samples.device), center=False,
                      return_complex=True)
    return torch.sqrt(stft.real ** 2 + stft.imag ** 2 + 1e-6)


class WaveNet(nn.Module):
    """Non-causal gated dilated convolutions conditioned on a global vector (VITS' WN)."""

    def __init__(self, hidden: int, kernel: int, layers: int, gin: int):
        super().__init__()
        self.hidden = hidden
        self.layers = layers
        self.cond_layer = nn.Conv1d(gin, 2 * hidden * layers, 1)
        self.in_layers = nn.ModuleList(nn.Conv1d(hidden, 2 * hidden, kernel, padding=kernel // 2)
                                       for _ in range(layers))
        self.res_skip_layers = nn.ModuleList(nn.Conv1d(hidden, 2 * hidden if i < layers - 1 else hidden, 1)
                                             for i in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        condition = self.cond_layer(g)
        out = torch.zeros_like(x)
        width = 2 * self.hidden
        for i in range(self.layers):
            a = self.in_layers[i](x) + condition[:, i * width:(i + 1) * width]
            acts = torch.tanh(a[:, :self.hidden]) * torch.sigmoid(a[:, self.hidden:])
            r = self.res_skip_layers[i](acts)
            if i < self.layers - 1:
                x = (x + r[:, :self.hidden]) * mask
                out = out + r[:, self.hidden:]
            else:
                out = out + r
        return out * mask


class PosteriorEncoder(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, hidden: int, gin: int, layers: int = 16):
        super().__init__()
        self.channels_out = channels_out
        self.pre = nn.Conv1d(channels_in, hidden, 1)
        self.enc = WaveNet(hidden, 5, layers, gin)
        self.proj = nn.Conv1d(hidden, 2 * channels_out, 1)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, tau: float) -> torch.Tensor:
        stats = self.proj(self.enc(self.pre(spec) * mask, mask, g)) * mask
        mean, log_scale = stats[:, :self.channels_out], stats[:, self.channels_out:]
        return (mean + torch.randn_like(mean) * tau * torch.exp(log_scale)) * mask


class Coupling(nn.Module):
    """Mean-only affine coupling: half the channels shift the other half, through a WaveNet
    (VITS) or another conditioned ``encoder(x, mask, g)`` (MeloTTS: a small transformer)."""

    def __init__(self, channels: int, hidden: int, gin: int, layers: int = 4, encoder: nn.Module | None = None):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = encoder or WaveNet(hidden, 5, layers, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool) -> torch.Tensor:
        x0, x1 = x[:, :self.half], x[:, self.half:]
        shift = self.post(self.enc(self.pre(x0) * mask, mask, g)) * mask
        x1 = (x1 - shift) * mask if reverse else shift + x1 * mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    def forward(self, x: torch.Tensor, *_, **__) -> torch.Tensor:
        return torch.flip(x, [1])


class Flow(nn.Module):
    def __init__(self, channels: int, hidden: int, gin: int, flows: int = 4, layers: int = 4,
                 encoder: Callable[[], nn.Module] | None = None):
        super().__init__()
        self.flows = nn.ModuleList(module for _ in range(flows) for module in (
            Coupling(channels, hidden, gin, layers, encoder=encoder() if encoder else None), Flip()))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        for flow in (reversed(self.flows) if reverse else self.flows):
            x = flow(x, mask, g, reverse) if isinstance(flow, Coupling) else flow(x)
        return x


class ResBlock(nn.Module):
    """HiFi-GAN's ResBlock1: dilated conv then plain conv, residual, for each dilation."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2)
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1)) + x
        return x


class Generator(nn.Module):
    def __init__(self, c: ConverterConfig):
        super().__init__()
        self.conv_pre = nn.Conv1d(c.inter_channels, c.upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c.upsample_initial_channel // 2 ** i, c.upsample_initial_channel // 2 ** (i + 1), k, u,
                               padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)))
        self.kernels = len(c.resblock_kernel_sizes)
        self.resblocks = nn.ModuleList(
            ResBlock(c.upsample_initial_channel // 2 ** (i + 1), k, d)
            for i in range(len(self.ups)) for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(c.upsample_initial_channel // 2 ** len(self.ups), 1, 7, padding=3, bias=False)
        self.cond = nn.Conv1d(c.gin_channels, c.upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            x = sum(self.resblocks[i * self.kernels + j](x) for j in range(self.kernels)) / self.kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


class ReferenceEncoder(nn.Module):
    """Spectrogram -> tone-colour embedding: layer norm over frequency, six strided 2-D convs,
    a GRU whose last state is projected to ``gin`` dims."""

    def __init__(self, bins: int, gin: int):
        super().__init__()
        channels = (1, *REFERENCE_FILTERS)
        self.convs = nn.ModuleList(nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1)
                                   for i in range(len(REFERENCE_FILTERS)))
        height = bins
        for _ in REFERENCE_FILTERS:
            height = (height - 3 + 2) // 2 + 1
        self.gru = nn.GRU(REFERENCE_FILTERS[-1] * height, gin // 2, batch_first=True)
        self.proj = nn.Linear(gin // 2, gin)
        self.layernorm = nn.LayerNorm(bins)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(batch, frames, bins) -> (batch, gin)."""
        x = self.layernorm(spec)[:, None]
        for conv in self.convs:
            x = F.relu(conv(x))
        x = x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)
        _, last = self.gru(x)
        return self.proj(last[0])


class ToneConverter(nn.Module):
    def __init__(self, config: ConverterConfig):
        super().__init__()
        self.config = config
        c = config
        self.dec = Generator(c)
        self.enc_q = PosteriorEncoder(c.spec_channels, c.inter_channels, c.hidden_channels, c.gin_channels)
        self.flow = Flow(c.inter_channels, c.hidden_channels, c.gin_channels)
        self.ref_enc = ReferenceEncoder(c.spec_channels, c.gin_channels)

    @torch.inference_mode()
    def embed(self, samples: torch.Tensor) -> torch.Tensor:
        """(1, samples) at the config's rate -> se (gin,)."""
        return self.ref_enc(spectrogram(samples, self.config).transpose(1, 2))[0]

    @torch.inference_mode()
    def convert(self, samples: torch.Tensor, source_se: torch.Tensor, target_se: torch.Tensor,
                tau: float = 0.3) -> torch.Tensor:
        """(1, samples), se (gin,) x 2 -> (samples',) in the target's tone colour."""
        spec = spectrogram(samples, self.config)
        mask = torch.ones(1, 1, spec.shape[-1], device=spec.device)
        g_source, g_target = source_se[None, :, None], target_se[None, :, None]
        unconditioned = torch.zeros_like(g_source)
        z = self.enc_q(spec, mask, unconditioned if self.config.zero_g else g_source, tau)
        z = self.flow(self.flow(z, mask, g_source), mask, g_target, reverse=True)
        return self.dec(z * mask, unconditioned if self.config.zero_g else g_target)[0, 0]
