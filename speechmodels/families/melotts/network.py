"""MeloTTS (``myshell-ai/MeloTTS-*``: ``config.json`` + ``checkpoint.pth``), written here to
load ``["model"]`` strictly (less the training-only posterior encoder ``enc_q``).

MeloTTS is VITS2 as Bert-VITS2 shaped it: OpenVoice V1's base speaker (the duration
predictors, speaker table and HiFi-GAN decoder are the same modules) with a text encoder
that also embeds each phone's tone and language and two BERT feature streams, conditions its
transformer on the speaker, and a flow whose couplings are small transformers.

BERT: upstream adds per-phone features from a language BERT (``bert-base-uncased`` for
English, 768 wide, through ``ja_bert_proj``; 1024 wide through ``bert_proj`` for Chinese).
Those weights are not available here, so the features are zeros: both projections then add
their biases only. Speech stays intelligible; its prosody is flatter than upstream's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from pydantic import Field
from torch import nn

from speechmodels.families.openvoice.base_speaker import BaseSpeaker, BaseSpeakerConfig
from speechmodels.families.openvoice.network import Flow
from speechmodels.families.openvoice.text_encoder import RelativeTransformer

BERT_WIDTH, JA_BERT_WIDTH = 1024, 768
class MeloConfig(BaseSpeakerConfig):
    """``config.json``: ``data`` (with ``spk2id``), ``model`` and the top-level ``symbols``,
    ``num_tones`` and ``num_languages``."""

    spk2id: dict[str, int]
    num_tones: int
    num_languages: int
    speakers: dict[str, int] = Field(default_factory=dict)
    n_layers_trans_flow: int = 3
    n_flow_layer: int = 4
    use_transformer_flow: bool = True
    flow_share_parameter: bool = False
    use_spk_conditioned_encoder: bool = True
    use_vc: bool = False  # the text encoder then sees no speaker

    @classmethod
    def from_json(cls, document: dict) -> MeloConfig:
        return cls.model_validate({**document.get("data", {}), **document.get("model", {}),
                                   **{key: document[key] for key in ("symbols", "num_tones", "num_languages")
                                      if key in document}})


class MeloTextEncoder(nn.Module):
    def __init__(self, c: MeloConfig):
        super().__init__()
        self.hidden, self.out_channels = c.hidden_channels, c.inter_channels
        self.emb = nn.Embedding(len(c.symbols), c.hidden_channels)
        self.tone_emb = nn.Embedding(c.num_tones, c.hidden_channels)
        self.language_emb = nn.Embedding(c.num_languages, c.hidden_channels)
        self.bert_proj = nn.Conv1d(BERT_WIDTH, c.hidden_channels, 1)
        self.ja_bert_proj = nn.Conv1d(JA_BERT_WIDTH, c.hidden_channels, 1)
        self.encoder = RelativeTransformer(c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers,
                                           c.kernel_size, gin=c.gin_channels if c.use_spk_conditioned_encoder else 0)
        self.proj = nn.Conv1d(c.hidden_channels, 2 * c.inter_channels, 1)

    def forward(self, ids: torch.Tensor, tones: torch.Tensor, languages: torch.Tensor, g: torch.Tensor):
        length = ids.shape[-1]
        # zero BERT features (see the module docstring) projected are the projections' biases
        x = (self.emb(ids) + self.tone_emb(tones) + self.language_emb(languages)
             + self.bert_proj.bias + self.ja_bert_proj.bias)
        x = (x * math.sqrt(self.hidden)).transpose(1, 2)
        mask = torch.ones(1, 1, length, dtype=x.dtype, device=x.device)
        x = self.encoder(x * mask, mask, g)
        stats = self.proj(x) * mask
        return x, stats[:, :self.out_channels], stats[:, self.out_channels:], mask


class MeloNetwork(BaseSpeaker):
    def __init__(self, config: MeloConfig):
        if config.flow_share_parameter:
            raise ValueError("MeloTTS checkpoints with a shared flow transformer (flow_share_parameter) are not "
                             "supported")
        c = config

        def coupling_transformer() -> nn.Module:  # three layers, kernel 5, speaker-conditioned
            return RelativeTransformer(c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers_trans_flow, 5,
                                       gin=c.gin_channels)

        if c.use_transformer_flow and c.n_layers_trans_flow != 3:
            raise ValueError("MeloTTS's transformer flow has 3 layers per coupling (its code asserts it), "
                             f"not {c.n_layers_trans_flow}")
        # n_flow_layer counts the transformer couplings, or (VITS' flow) the WaveNet layers of each
        flow = Flow(c.inter_channels, c.hidden_channels, c.gin_channels, flows=c.n_flow_layer,
                    encoder=coupling_transformer) if c.use_transformer_flow else \
            Flow(c.inter_channels, c.hidden_channels, c.gin_channels, layers=c.n_flow_layer)
        super().__init__(config, enc_p=MeloTextEncoder(config), flow=flow)

    def encode(self, tokens: Mapping[str, torch.Tensor], g: torch.Tensor):
        return self.enc_p(tokens["ids"], tokens["tones"], tokens["languages"], None if self.config.use_vc else g)
