"""HarmonySpeech V1's synthesizer: a ForwardTacotron conditioned on a speaker embedding,
written here to load ``synthesizer/synthesizer.pt`` (``{"model_state": ...}``) strictly.

Characters are embedded; three series predictors (duration, pitch, energy) each see the
characters with the speaker embedding concatenated; a CBHG prenet encodes the characters,
pitch and energy are projected and added, a length regulator repeats each character for its
predicted frames, the speaker embedding is concatenated again, a bidirectional LSTM and a
linear layer give the mel, and a CBHG postnet refines it. Field names follow the
checkpoint's ``config.json`` (the constructor arguments of HSE's model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn


class SynthesizerConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    embed_dims: int = 256
    series_embed_dims: int = 64
    num_chars: int = 66
    durpred_conv_dims: int = 256
    durpred_rnn_dims: int = 64
    pitch_conv_dims: int = 256
    pitch_rnn_dims: int = 128
    pitch_strength: float = 1.0
    energy_conv_dims: int = 256
    energy_rnn_dims: int = 64
    energy_strength: float = 1.0
    rnn_dims: int = 512
    prenet_dims: int = 256
    prenet_k: int = 16
    prenet_num_highways: int = 4
    postnet_dims: int = 256
    postnet_k: int = 8
    postnet_num_highways: int = 4
    n_mels: int = 80
    speaker_embed_dims: int = 768

    @classmethod
    def from_json(cls, document: dict) -> SynthesizerConfig:
        """Flat, or nested under ``model`` (HSE accepts both)."""
        return cls.model_validate(document.get("model", document) if isinstance(document.get("model"), dict)
                                  else document)


class ConvNorm(nn.Module):
    """Conv1d without bias, then ReLU (optional), then BatchNorm: in that order."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(channels_in, channels_out, kernel, padding=kernel // 2, bias=False)
        self.bnorm = nn.BatchNorm1d(channels_out)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bnorm(F.relu(x) if self.relu else x)


class Highway(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.W1 = nn.Linear(size, size)
        self.W2 = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.W2(x))
        return gate * F.relu(self.W1(x)) + (1.0 - gate) * x


class CBHG(nn.Module):
    """Convolution bank (kernels 1..K), max-pool, two projections with a residual, highways,
    bidirectional GRU: (batch, channels_in, T) -> (batch, T, 2 x channels)."""

    def __init__(self, kernels: int, channels_in: int, channels: int, projections: tuple[int, int], highways: int):
        super().__init__()
        self.conv1d_bank = nn.ModuleList(ConvNorm(channels_in, channels, k) for k in range(1, kernels + 1))
        self.maxpool = nn.MaxPool1d(2, stride=1, padding=1)
        self.conv_project1 = ConvNorm(kernels * channels, projections[0], 3)
        self.conv_project2 = ConvNorm(projections[0], projections[1], 3, relu=False)
        self.pre_highway = nn.Linear(projections[1], channels, bias=False)
        self.highways = nn.ModuleList(Highway(channels) for _ in range(highways))
        self.rnn = nn.GRU(channels, channels, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        bank = torch.cat([conv(x)[:, :, :frames] for conv in self.conv1d_bank], dim=1)
        y = self.conv_project2(self.conv_project1(self.maxpool(bank)[:, :, :frames])) + x
        y = self.pre_highway(y.transpose(1, 2))
        for highway in self.highways:
            y = highway(y)
        return self.rnn(y)[0]


class SeriesPredictor(nn.Module):
    """One value per character (duration, pitch or energy) from the characters and the speaker."""

    def __init__(self, num_chars: int, embed_dims: int, speaker_dims: int, conv_dims: int, rnn_dims: int):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embed_dims)
        self.convs = nn.ModuleList([ConvNorm(embed_dims + speaker_dims, conv_dims, 5),
                                    ConvNorm(conv_dims, conv_dims, 5), ConvNorm(conv_dims, conv_dims, 5)])
        self.rnn = nn.GRU(conv_dims, rnn_dims, batch_first=True, bidirectional=True)
        self.lin = nn.Linear(2 * rnn_dims, 1)

    def forward(self, chars: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        x = self.embedding(chars)
        x = torch.cat([x, speaker[:, None, :].expand(-1, x.shape[1], -1)], dim=2).transpose(1, 2)
        for conv in self.convs:
            x = conv(x)
        return self.lin(self.rnn(x.transpose(1, 2))[0])  # (batch, chars, 1)


class ForwardTacotron(nn.Module):
    def __init__(self, c: SynthesizerConfig):
        super().__init__()
        self.config = c
        self.embedding = nn.Embedding(c.num_chars, c.embed_dims)
        self.dur_pred = SeriesPredictor(c.num_chars, c.series_embed_dims, c.speaker_embed_dims, c.durpred_conv_dims,
                                        c.durpred_rnn_dims)
        self.pitch_pred = SeriesPredictor(c.num_chars, c.series_embed_dims, c.speaker_embed_dims, c.pitch_conv_dims,
                                          c.pitch_rnn_dims)
        self.energy_pred = SeriesPredictor(c.num_chars, c.series_embed_dims, c.speaker_embed_dims,
                                           c.energy_conv_dims, c.energy_rnn_dims)
        self.prenet = CBHG(c.prenet_k, c.embed_dims, c.prenet_dims, (c.prenet_dims, c.embed_dims),
                           c.prenet_num_highways)
        self.lstm = nn.LSTM(2 * c.prenet_dims + c.speaker_embed_dims, c.rnn_dims, batch_first=True,
                            bidirectional=True)
        self.lin = nn.Linear(2 * c.rnn_dims, c.n_mels)
        self.register_buffer("step", torch.zeros(1, dtype=torch.long))
        self.postnet = CBHG(c.postnet_k, c.n_mels, c.postnet_dims, (c.postnet_dims, c.n_mels),
                            c.postnet_num_highways)
        self.post_proj = nn.Linear(2 * c.postnet_dims, c.n_mels, bias=False)
        self.pitch_proj = nn.Conv1d(1, 2 * c.prenet_dims, 3, padding=1)
        self.energy_proj = nn.Conv1d(1, 2 * c.prenet_dims, 3, padding=1)

    @torch.inference_mode()
    def generate(self, chars: torch.Tensor, speaker: torch.Tensor, speed: float = 1.0, pitch: float = 1.0,
                 energy: float = 1.0) -> torch.Tensor:
        """(1, chars) ids and (1, speaker_dims) embedding -> mel (n_mels, frames). ``speed``
        divides the predicted durations; ``pitch`` and ``energy`` scale their predictions."""
        durations = self.dur_pred(chars, speaker).squeeze(2) / speed
        if torch.sum(durations.long()) <= 0:  # nothing would be said: two frames per character
            durations = torch.full_like(durations, 2.0)
        pitch_series = self.pitch_pred(chars, speaker).transpose(1, 2) * pitch
        energy_series = self.energy_pred(chars, speaker).transpose(1, 2) * energy
        x = self.prenet(self.embedding(chars).transpose(1, 2))
        x = x + self.pitch_proj(pitch_series).transpose(1, 2) * self.config.pitch_strength
        x = x + self.energy_proj(energy_series).transpose(1, 2) * self.config.energy_strength
        frames = (torch.clamp(durations[0], min=0.0) + 0.5).long()
        x = torch.repeat_interleave(x[0], frames, dim=0)[None]  # each character held for its frames
        x = torch.cat([x, speaker[:, None, :].expand(-1, x.shape[1], -1)], dim=2)
        mel = self.lin(self.lstm(x)[0]).transpose(1, 2)
        return self.post_proj(self.postnet(mel)).transpose(1, 2)[0]
