"""VITS' text encoder as OpenVoice's base speakers hold it (``enc_p``): symbol embeddings
through a transformer whose self-attention adds learned relative-position terms (a window of
±4 positions, one table shared by all heads), projected to the prior's mean and log-scale."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis of (batch, channels, time); VITS names its parameters
    ``gamma`` and ``beta``."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps).transpose(1, -1)


class RelativeSelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int, window: int = 4):
        super().__init__()
        self.heads, self.window = heads, window
        self.head_channels = channels // heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window + 1, self.head_channels))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window + 1, self.head_channels))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, time = x.shape
        return x.view(batch, self.heads, self.head_channels, time).transpose(2, 3)  # (b, h, t, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (batch, channels, time); mask (batch, 1, time, time)."""
        q = self._split(self.conv_q(x)) / math.sqrt(self.head_channels)
        k, v = self._split(self.conv_k(x)), self._split(self.conv_v(x))
        time = x.shape[-1]
        # offset j - i of every (query i, key j) pair, as an index into the ±window tables;
        # pairs farther apart than the window get no relative term
        offsets = torch.arange(time, device=x.device)[None, :] - torch.arange(time, device=x.device)[:, None]
        in_window = offsets.abs() <= self.window
        index = (offsets.clamp(-self.window, self.window) + self.window).expand(*q.shape[:2], time, time)
        relative_logits = torch.gather(q @ self.emb_rel_k[0].T, -1, index) * in_window
        scores = (q @ k.transpose(-2, -1) + relative_logits).masked_fill(mask == 0, -1e4)
        weights = F.softmax(scores, dim=-1)
        by_offset = torch.zeros(*weights.shape[:3], 2 * self.window + 1, dtype=weights.dtype, device=x.device)
        by_offset.scatter_add_(-1, index, weights * in_window)
        out = weights @ v + by_offset @ self.emb_rel_v[0]
        return self.conv_o(out.transpose(2, 3).reshape(x.shape))


class FeedForward(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel: int):
        super().__init__()
        self.padding = ((kernel - 1) // 2, kernel // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(F.pad(x * mask, self.padding)))
        return self.conv_2(F.pad(x * mask, self.padding)) * mask


class RelativeTransformer(nn.Module):
    """Post-norm transformer layers. With ``gin`` (VITS2, as MeloTTS has it) the speaker
    vector, projected to the width, is added before layer ``CONDITIONED_LAYER``."""

    CONDITIONED_LAYER = 2

    def __init__(self, channels: int, filter_channels: int, heads: int, layers: int, kernel: int, gin: int = 0):
        super().__init__()
        self.attn_layers = nn.ModuleList(RelativeSelfAttention(channels, heads) for _ in range(layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(layers))
        self.ffn_layers = nn.ModuleList(FeedForward(channels, filter_channels, kernel) for _ in range(layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(layers))
        if gin:
            self.spk_emb_linear = nn.Linear(gin, channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for index, (attention, norm_1, ffn, norm_2) in enumerate(zip(
                self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2)):
            if index == self.CONDITIONED_LAYER and g is not None and hasattr(self, "spk_emb_linear"):
                x = (x + self.spk_emb_linear(g.transpose(1, 2)).transpose(1, 2)) * mask
            x = norm_1(x + attention(x, pair_mask))
            x = norm_2(x + ffn(x, mask))
        return x * mask


class TextEncoder(nn.Module):
    def __init__(self, symbols: int, out_channels: int, hidden: int, filter_channels: int, heads: int,
                 layers: int, kernel: int):
        super().__init__()
        self.hidden, self.out_channels = hidden, out_channels
        self.emb = nn.Embedding(symbols, hidden)
        self.encoder = RelativeTransformer(hidden, filter_channels, heads, layers, kernel)
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids (1, tokens) -> hidden (1, hidden, t), prior mean and log-scale, mask (1, 1, t)."""
        x = (self.emb(ids) * math.sqrt(self.hidden)).transpose(1, 2)
        mask = torch.ones(1, 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask
        return x, stats[:, :self.out_channels], stats[:, self.out_channels:], mask
