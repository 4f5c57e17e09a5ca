"""OpenVoice V1's base speaker (``checkpoints/base_speakers/{EN,ZH}/``): multi-speaker VITS
whose "speakers" are speaking styles (default, whispering, cheerful, ...). It shares the
converter's flow and HiFi-GAN decoder (``network.py``) and adds VITS' text side: the text
encoder, both duration predictors and the style embedding table (``emb_g``).

``checkpoint.pth`` (``["model"]``) also holds the posterior encoder ``enc_q``, which only
trains; its keys are dropped at load and everything else loads strictly.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pydantic import Field
from torch import nn

from speechmodels.families.openvoice.durations import (
    DurationPredictor,
    StochasticDurationPredictor,
)
from speechmodels.families.openvoice.network import ConverterConfig, Flow, Generator
from speechmodels.families.openvoice.text_encoder import TextEncoder


class BaseSpeakerConfig(ConverterConfig):
    """``config.json``: OpenVoice's ``data`` and ``model`` sections plus its top-level
    ``symbols`` (the input alphabet) and ``speakers`` (style name -> id)."""

    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    n_speakers: int = 10
    add_blank: bool = True
    text_cleaners: list[str] = Field(default_factory=lambda: ["cjke_cleaners2"])
    symbols: list[str]
    speakers: dict[str, int]

    @classmethod
    def from_json(cls, document: dict) -> BaseSpeakerConfig:
        return cls.model_validate({**document.get("data", {}), **document.get("model", {}),
                                   "symbols": document.get("symbols", []), "speakers": document.get("speakers", {})})


class BaseSpeaker(nn.Module):
    """VITS' inference path for a multi-speaker checkpoint. MeloTTS passes its own text
    encoder and flow; the duration predictors, style table and decoder are the same."""

    def __init__(self, config: BaseSpeakerConfig, enc_p: nn.Module | None = None, flow: nn.Module | None = None):
        super().__init__()
        self.config = c = config
        self.enc_p = enc_p or TextEncoder(len(c.symbols), c.inter_channels, c.hidden_channels, c.filter_channels,
                                          c.n_heads, c.n_layers, c.kernel_size)
        self.sdp = StochasticDurationPredictor(c.hidden_channels, 3, c.gin_channels)
        self.dp = DurationPredictor(c.hidden_channels, 256, 3, c.gin_channels)
        self.emb_g = nn.Embedding(c.n_speakers, c.gin_channels)
        self.flow = flow or Flow(c.inter_channels, c.hidden_channels, c.gin_channels)
        self.dec = Generator(c)

    def encode(self, tokens: Mapping[str, torch.Tensor], g: torch.Tensor):
        """Text side: hidden states, the prior's mean and log-scale per token, and the mask."""
        return self.enc_p(tokens["ids"])

    @torch.inference_mode()
    def synthesize(self, tokens: Mapping[str, torch.Tensor], speaker: int, length_scale: float = 1.0,
                   noise_scale: float = 0.667, noise_scale_w: float = 0.6, sdp_ratio: float = 0.2,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Token tensors (1, tokens) in one speaker or style -> samples (n,) at the config's
        rate (OpenVoice's inference scales by default)."""
        g = self.emb_g(torch.tensor([speaker], device=self.emb_g.weight.device))[..., None]
        x, mean, log_scale, mask = self.encode(tokens, g)
        # noise is drawn on the CPU: a seeded request sounds the same on any device
        noise = torch.randn(x.shape[0], 2, x.shape[-1], generator=generator).to(x.device) * noise_scale_w
        log_durations = (self.sdp(x, mask, g, noise) * sdp_ratio + self.dp(x, mask, g) * (1 - sdp_ratio))
        frames = torch.ceil(torch.exp(log_durations) * mask * length_scale)[0, 0].long()
        if int(frames.sum()) < 1:
            frames[0] = 1
        # each token's prior repeated over its frames (the monotonic path, batch of one)
        mean = torch.repeat_interleave(mean, frames, dim=-1)
        log_scale = torch.repeat_interleave(log_scale, frames, dim=-1)
        z = mean + torch.randn(mean.shape, generator=generator).to(mean.device) * torch.exp(log_scale) * noise_scale
        frame_mask = torch.ones(1, 1, z.shape[-1], device=z.device)
        z = self.flow(z, frame_mask, g, reverse=True)
        return self.dec(z, g)[0, 0]
