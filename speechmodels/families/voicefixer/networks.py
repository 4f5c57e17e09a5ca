"""VoiceFixer's two networks (Liu et al., 2021), written here to load the published
checkpoints with strict key matching:

- the analysis module (``vf.ckpt``, a flat state dict): a Conv1d STFT front end (``f_helper``)
  and mel filterbank (``mel.fb``) at 44.1 kHz, then ``generator``: a mask network
  (``denoiser``: batch-norms, linears, two batch-normed bidirectional 2-layer GRUs) and a
  residual U-Net (``unet``: six pre-activation residual encoder blocks, a centre block, six
  decoder blocks) that restore the log-mel spectrogram;
- the synthesis module (``model.ckpt-1490000_trimed.pt``, under ``"generator"``): a
  weight-normalised mel-to-waveform generator (``condnet`` of five 1-D convolutions, then four
  transposed-convolution upsamplers, 7x7x3x3 = 441 = the hop, each followed by a dilated
  residual stack).

Every width, depth and upsampling factor is read from the checkpoint's tensor shapes, so the
published sizes and the tests' small random checkpoints in the same layout run the same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from speechmodels.torch_state import fold_weight_norm

BN_MOMENTUM = 0.01
UNET_LEVELS = 6


class StftFrontEnd(nn.Module):
    """The analysis module's spectrogram front end, with the checkpoint's own DFT kernels
    (window x DFT, as Conv1d weights) and mel filterbank. The inverse-STFT kernels are in
    the file too; restoration never inverts, so they are only kept for strict loading."""

    def __init__(self, n_fft: int, n_mels: int, hop: int):
        super().__init__()
        bins = n_fft // 2 + 1
        self.hop = hop
        self.n_fft = n_fft
        self.stft_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.stft_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.register_buffer("istft_real", torch.zeros(n_fft, n_fft, 1))
        self.register_buffer("istft_imag", torch.zeros(n_fft, n_fft, 1))
        self.register_buffer("istft_reverse", torch.zeros(bins - 2, bins, 1))
        self.register_buffer("istft_overlap_add", torch.zeros(n_fft, 1, n_fft, 1))
        self.register_buffer("mel_fb", torch.zeros(bins, n_mels))

    def mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> linear-magnitude mel (batch, 1, frames, n_mels), centred frames."""
        padded = F.pad(waveform[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real, imag = self.stft_real(padded), self.stft_imag(padded)  # (batch, bins, frames)
        magnitude = torch.sqrt(torch.clamp(real ** 2 + imag ** 2, min=1e-8))
        return (magnitude.transpose(1, 2) @ self.mel_fb)[:, None]

    # checkpoint key -> attribute here
    KEYS = {"f_helper.stft.conv_real.weight": "stft_real.weight", "f_helper.stft.conv_imag.weight": "stft_imag.weight",
            "f_helper.istft.conv_real.weight": "istft_real", "f_helper.istft.conv_imag.weight": "istft_imag",
            "f_helper.istft.reverse.weight": "istft_reverse", "f_helper.istft.overlap_add.weight": "istft_overlap_add",
            "mel.fb": "mel_fb"}


class BatchNormGRU(nn.Module):
    """BatchNorm over a (batch, 1, frames, features) map, then a bidirectional GRU over frames."""

    def __init__(self, features: int, hidden: int, layers: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.gru = nn.GRU(features, hidden, num_layers=layers, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.bn(x).squeeze(1))
        return out.unsqueeze(1)


def mask_network(n_mels: int, first: int, second: int, gru_hidden: int, gru_layers: int) -> nn.Sequential:
    """The denoiser: a per-frame mask in [0, 1] over the mel bins. The index of each layer in
    the Sequential is its key in the checkpoint (dropouts are no-ops at inference)."""
    return nn.Sequential(
        nn.BatchNorm2d(1), nn.Linear(n_mels, first), nn.ReLU(),
        nn.BatchNorm2d(1), nn.Linear(first, second), nn.Dropout(0.5), nn.ReLU(),
        BatchNormGRU(second, gru_hidden, gru_layers), BatchNormGRU(2 * gru_hidden, gru_hidden, gru_layers),
        nn.BatchNorm2d(1), nn.ReLU(), nn.Linear(2 * gru_hidden, second), nn.Dropout(0.5),
        nn.BatchNorm2d(1), nn.ReLU(), nn.Linear(second, n_mels), nn.Sigmoid(),
    )


class ResidualConv(nn.Module):
    """Pre-activation residual block: BN, leaky ReLU, 3x3 conv, twice; a 1x1 conv shortcut
    when the width changes."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels_in, momentum=BN_MOMENTUM)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.leaky_relu(self.bn1(x), 0.01))
        y = self.conv2(F.leaky_relu(self.bn2(y), 0.01))
        return (self.shortcut(x) if self.shortcut is not None else x) + y


class EncoderLevel(nn.Module):
    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv_block1 = ResidualConv(channels_in, channels_out)
        self.conv_block2 = ResidualConv(channels_out, channels_out)
        self.conv_block3 = ResidualConv(channels_out, channels_out)
        self.conv_block4 = ResidualConv(channels_out, channels_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv_block4(self.conv_block3(self.conv_block2(self.conv_block1(x))))
        return F.avg_pool2d(x, 2), x


class DecoderLevel(nn.Module):
    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels_in)
        self.conv1 = nn.ConvTranspose2d(channels_in, channels_out, 3, stride=2, bias=False)
        self.conv_block2 = ResidualConv(2 * channels_out, channels_out)
        self.conv_block3 = ResidualConv(channels_out, channels_out)
        self.conv_block4 = ResidualConv(channels_out, channels_out)
        self.conv_block5 = ResidualConv(channels_out, channels_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.bn1(x)))[:, :, :-1, :]  # 2T+1 frames back to 2T
        x = torch.cat((x, skip), dim=1)
        return self.conv_block5(self.conv_block4(self.conv_block3(self.conv_block2(x))))


class RestorationUNet(nn.Module):
    def __init__(self, channels_in: int, widths: list[int]):
        super().__init__()
        levels = [channels_in, *widths]
        for level in range(UNET_LEVELS):
            self.add_module(f"encoder_block{level + 1}", EncoderLevel(levels[level], levels[level + 1]))
        self.conv_block7 = ResidualConv(widths[-1], widths[-1])
        # decoder k joins encoder 7-k's output: it narrows to that level's width
        for k in range(1, UNET_LEVELS + 1):
            channels_in = widths[-1] if k == 1 else widths[UNET_LEVELS + 1 - k]
            self.add_module(f"decoder_block{k}", DecoderLevel(channels_in, widths[UNET_LEVELS - k]))
        self.after_conv_block1 = ResidualConv(widths[0], widths[0])
        self.after_conv2 = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        stride = 2 ** UNET_LEVELS
        x = F.pad(x, (0, 0, 0, -(-frames // stride) * stride - frames))[..., :-1]  # drop the top mel bin
        skips = []
        for level in range(1, UNET_LEVELS + 1):
            x, skip = getattr(self, f"encoder_block{level}")(x)
            skips.append(skip)
        x = self.conv_block7(x)
        for level in range(1, UNET_LEVELS + 1):
            x = getattr(self, f"decoder_block{level}")(x, skips[-level])
        x = self.after_conv2(self.after_conv_block1(x))
        return F.pad(x, (0, 1))[:, :, :frames, :]


class Restorer(nn.Module):
    """Waveform at 44.1 kHz -> restored linear-magnitude mel (batch, 1, frames, n_mels)."""

    def __init__(self, n_fft: int, n_mels: int, hop: int, mask_sizes: tuple[int, int, int, int], widths: list[int]):
        super().__init__()
        self.front = StftFrontEnd(n_fft, n_mels, hop)
        self.denoiser = mask_network(n_mels, *mask_sizes)
        self.unet = RestorationUNet(2, widths)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        noisy = self.front.mel(waveform)
        masked = self.denoiser(noisy) * noisy
        log_masked = torch.log10(torch.clamp(masked, min=1e-8))
        unet_in = torch.cat([torch.log10(torch.clamp(noisy, min=1e-8)), log_masked], dim=1)
        log_mel = self.unet(unet_in) + log_masked
        return 10 ** torch.clamp(log_mel, max=5.0)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], hop: int) -> Restorer:
        """Sizes from the tensors of a ``vf.ckpt``-layout state dict, then a strict load."""
        bins, _, n_fft = state["f_helper.stft.conv_real.weight"].shape
        n_mels = state["mel.fb"].shape[1]
        gru_layers = sum(1 for key in state if key.startswith("generator.denoiser.7.gru.weight_ih_l")
                         and not key.endswith("_reverse"))
        mask_sizes = (state["generator.denoiser.1.weight"].shape[0], state["generator.denoiser.4.weight"].shape[0],
                      state["generator.denoiser.7.gru.weight_hh_l0"].shape[1], gru_layers)
        widths = [state[f"generator.unet.encoder_block{level}.conv_block1.conv1.weight"].shape[0]
                  for level in range(1, UNET_LEVELS + 1)]
        model = cls(n_fft, n_mels, hop, mask_sizes, widths)
        model.load_state_dict(_restorer_keys_to_ours(state), strict=True)
        return model.eval()


def _restorer_keys_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ours = {}
    for key, tensor in state.items():
        if key in StftFrontEnd.KEYS:
            ours[f"front.{StftFrontEnd.KEYS[key]}"] = tensor
        elif key.startswith("generator."):
            ours[key[len("generator."):]] = tensor
        # "vocoder.*" is a folded copy of the synthesis module: the vocoder family loads its own
    return ours


# --- synthesis module -------------------------------------------------------------------


class ResidualStack(nn.Module):
    """Dilated residual 1-D blocks: leaky ReLU, conv (dilation 3^i), leaky ReLU, conv."""

    def __init__(self, channels: int, depth: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(
            nn.LeakyReLU(0.01), nn.Conv1d(channels, channels, 3, dilation=3 ** (i % 10), padding=3 ** (i % 10)),
            nn.LeakyReLU(0.01), nn.Conv1d(channels, channels, 3, padding=1)) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


class Upsampler(nn.Module):
    """x + sin(x), then a transposed convolution that multiplies the frames by ``factor``.
    (``skip_conv`` is in the checkpoint; the published configuration never adds its output.)"""

    def __init__(self, channels_in: int, channels_out: int, factor: int):
        super().__init__()
        self.skip_conv = nn.Conv1d(channels_in, channels_out, 1)
        self.layer = nn.ConvTranspose1d(channels_in, channels_out, 2 * factor, factor,
                                        padding=factor // 2 + factor % 2, output_padding=factor % 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x + torch.sin(x))


class MelVocoder(nn.Module):
    """Normalised mel (batch, n_mels, frames) -> waveform (batch, 1, frames x prod(factors))."""

    def __init__(self, n_mels: int, cond_channels: int, channels: int, factors: list[int], depths: list[int]):
        super().__init__()
        convs = [nn.Conv1d(n_mels if i == 0 else cond_channels, cond_channels, 3, padding=1) for i in range(5)]
        self.condnet = nn.Sequential(*(module for conv in convs for module in (conv, nn.ELU())))
        layers: list[nn.Module] = [nn.ReflectionPad1d(3), nn.Conv1d(cond_channels, channels, 7), nn.LeakyReLU(0.2)]
        width = channels
        for factor, depth in zip(factors, depths):
            layers += [Upsampler(width, width // 2, factor), ResidualStack(width // 2, depth), nn.LeakyReLU(0.2)]
            width //= 2
        layers += [nn.ReflectionPad1d(3), nn.Conv1d(width, 1, 7), nn.Tanh()]
        self.generator = nn.Sequential(*layers)

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        return self.generator(self.condnet(conditions))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> MelVocoder:
        """Sizes from a ``model.ckpt-1490000_trimed.pt`` ``generator`` state dict (weight-norm
        pairs folded first), then a strict load."""
        state = fold_weight_norm(state)
        cond_channels, n_mels, _ = state["condnet.0.weight"].shape
        channels = state["generator.1.weight"].shape[0]
        factors, depths, index = [], [], 3
        while f"generator.{index}.layer.weight" in state:
            factors.append(state[f"generator.{index}.layer.weight"].shape[2] // 2)
            depths.append(len({key.split(".")[3] for key in state if key.startswith(f"generator.{index + 1}.layers.")}))
            index += 3
        model = cls(n_mels, cond_channels, channels, factors, depths)
        model.load_state_dict(state, strict=True)
        return model.eval()


def mel_weights(n_mels: int) -> torch.Tensor:
    """The per-bin gain the synthesis module divides the restored mel by before its dB scale."""
    return 18.8927416350036 * torch.exp(0.0269863588184314 * torch.linspace(1, n_mels, n_mels))


def vocoder_conditions(mel: torch.Tensor) -> torch.Tensor:
    """Restored linear mel (batch, frames, n_mels) -> the vocoder's input (batch, n_mels,
    frames + padding): weighted, to dB (floor -100 dB, minus 20), scaled symmetrically to
    [-4, 4] over a -115 dB range, and padded with 4-5 frames of silence (-4)."""
    weighted = torch.abs(mel / mel_weights(mel.shape[-1]))
    decibels = 20 * torch.log10(torch.clamp(weighted, min=math.pow(10, -100 / 20))) - 20.0
    scaled = torch.clamp(8.0 * (decibels + 115.0) / 115.0 - 4.0, -4.0, 4.0).transpose(1, 2)
    pad = scaled.shape[-1] % 2 + 4
    return torch.cat([scaled, torch.full((*scaled.shape[:2], pad), -4.0)], dim=-1)
