"""VITS' two duration predictors, as OpenVoice's base speakers hold them (``dp`` and ``sdp``).
Inference mixes them: log durations = sdp_ratio * stochastic + (1 - sdp_ratio) * deterministic.

The stochastic one is a normalising flow run backwards from noise: an affine layer and
rational-quadratic spline couplings conditioned on the text. Its posterior flows
(``post_*``) only train; they exist here so the published checkpoint loads strictly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmodels.families.openvoice.text_encoder import ChannelLayerNorm

SPLINE_BINS, SPLINE_BOUND = 10, 5.0
MIN_BIN, MIN_DERIVATIVE = 1e-3, 1e-3


class DurationPredictor(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel: int, gin: int):
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel, padding=kernel // 2)
        self.norm_1 = ChannelLayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel, padding=kernel // 2)
        self.norm_2 = ChannelLayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)
        self.cond = nn.Conv1d(gin, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = x + self.cond(g)
        x = self.norm_1(torch.relu(self.conv_1(x * mask)))
        x = self.norm_2(torch.relu(self.conv_2(x * mask)))
        return self.proj(x * mask) * mask


class DilatedDepthwiseConvs(nn.Module):
    """VITS' DDSConv: depthwise convolutions dilated by kernel**layer, each with a 1x1, layer
    norms and GELUs, residual."""

    def __init__(self, channels: int, kernel: int, layers: int):
        super().__init__()
        dilations = [kernel ** i for i in range(layers)]
        self.convs_sep = nn.ModuleList(nn.Conv1d(channels, channels, kernel, groups=channels, dilation=d,
                                                 padding=(kernel * d - d) // 2) for d in dilations)
        self.convs_1x1 = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in dilations)
        self.norms_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in dilations)
        self.norms_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if g is not None:
            x = x + g
        for sep, pointwise, norm_1, norm_2 in zip(self.convs_sep, self.convs_1x1, self.norms_1, self.norms_2):
            y = F.gelu(norm_1(sep(x * mask)))
            x = x + F.gelu(norm_2(pointwise(y)))
        return x * mask


def rational_quadratic_spline(x: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor,
                              derivatives: torch.Tensor, inverse: bool) -> torch.Tensor:
    """Monotonic rational-quadratic spline on [-B, B], identity outside (linear tails), from
    unnormalised bin widths and heights (..., bins) and inner knot derivatives (..., bins-1)."""
    inside = (x >= -SPLINE_BOUND) & (x <= SPLINE_BOUND)
    # the end knots' derivatives are 1, so the spline meets the identity tails smoothly
    edge = math.log(math.exp(1 - MIN_DERIVATIVE) - 1)
    derivatives = F.pad(derivatives, (1, 1), value=edge)
    slopes = MIN_DERIVATIVE + F.softplus(derivatives)

    def knots(unnormalised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = MIN_BIN + (1 - MIN_BIN * SPLINE_BINS) * F.softmax(unnormalised, dim=-1)
        edges = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
        edges = 2 * SPLINE_BOUND * edges - SPLINE_BOUND
        edges[..., 0], edges[..., -1] = -SPLINE_BOUND, SPLINE_BOUND
        return edges, edges[..., 1:] - edges[..., :-1]

    x_edges, bin_widths = knots(widths)
    y_edges, bin_heights = knots(heights)
    search = (y_edges if inverse else x_edges).clone()
    search[..., -1] += 1e-6
    clamped = x.clamp(-SPLINE_BOUND, SPLINE_BOUND)
    bin_index = ((clamped[..., None] >= search).sum(dim=-1, keepdim=True) - 1).clamp(0, SPLINE_BINS - 1)

    def at(values: torch.Tensor) -> torch.Tensor:
        return values.gather(-1, bin_index)[..., 0]

    x0, width, y0, height = at(x_edges), at(bin_widths), at(y_edges), at(bin_heights)
    delta = height / width
    d0, d1 = at(slopes), slopes[..., 1:].gather(-1, bin_index)[..., 0]
    curvature = d0 + d1 - 2 * delta
    if inverse:
        offset = clamped - y0
        a = offset * curvature + height * (delta - d0)
        b = height * d0 - offset * curvature
        c = -delta * offset
        theta = 2 * c / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))
        out = theta * width + x0
    else:
        theta = (clamped - x0) / width
        between = theta * (1 - theta)
        out = y0 + height * (delta * theta ** 2 + d0 * between) / (delta + curvature * between)
    return torch.where(inside, out, x)


class SplineCoupling(nn.Module):
    """VITS' ConvFlow: the second channel through a spline whose knots the first one sets."""

    def __init__(self, filter_channels: int, kernel: int, layers: int = 3):
        super().__init__()
        self.filter_channels = filter_channels
        self.pre = nn.Conv1d(1, filter_channels, 1)
        self.convs = DilatedDepthwiseConvs(filter_channels, kernel, layers)
        self.proj = nn.Conv1d(filter_channels, 3 * SPLINE_BINS - 1, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool) -> torch.Tensor:
        x0, x1 = x[:, :1], x[:, 1:]
        h = self.proj(self.convs(self.pre(x0), mask, g)) * mask
        h = h.reshape(x0.shape[0], 1, -1, x0.shape[-1]).permute(0, 1, 3, 2)  # (b, 1, t, 3*bins-1)
        scale = math.sqrt(self.filter_channels)
        x1 = rational_quadratic_spline(x1, h[..., :SPLINE_BINS] / scale, h[..., SPLINE_BINS:2 * SPLINE_BINS] / scale,
                                       h[..., 2 * SPLINE_BINS:], inverse=reverse)
        return torch.cat([x0, x1], 1) * mask


class ElementwiseAffine(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool) -> torch.Tensor:
        return ((x - self.m) * torch.exp(-self.logs) if reverse else self.m + torch.exp(self.logs) * x) * mask


class ChannelFlip(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool) -> torch.Tensor:
        return torch.flip(x, [1])


def _flows(channels: int, kernel: int, couplings: int = 4) -> nn.ModuleList:
    return nn.ModuleList([ElementwiseAffine(2), *(module for _ in range(couplings)
                                                  for module in (SplineCoupling(channels, kernel), ChannelFlip()))])


class StochasticDurationPredictor(nn.Module):
    def __init__(self, channels: int, kernel: int, gin: int):
        super().__init__()
        self.pre = nn.Conv1d(channels, channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.convs = DilatedDepthwiseConvs(channels, kernel, 3)
        self.cond = nn.Conv1d(gin, channels, 1)
        self.flows = _flows(channels, kernel)
        # the training-time posterior: loaded, never run
        self.post_pre = nn.Conv1d(1, channels, 1)
        self.post_proj = nn.Conv1d(channels, channels, 1)
        self.post_convs = DilatedDepthwiseConvs(channels, kernel, 3)
        self.post_flows = _flows(channels, kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Log durations (b, 1, t) from the text encoding and noise (b, 2, t), scaled already."""
        condition = self.proj(self.convs(self.pre(x) + self.cond(g), mask)) * mask
        # backwards through the flows; the first coupling is skipped as VITS does in inference
        # (its output channel is discarded anyway)
        reversed_flows = list(reversed(self.flows))
        z = noise
        for flow in [*reversed_flows[:-2], reversed_flows[-1]]:
            z = flow(z, mask, condition, reverse=True)
        return z[:, :1]
