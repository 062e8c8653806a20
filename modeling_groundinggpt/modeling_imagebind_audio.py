"""ImageBind's audio encoder, the only ImageBind modality GroundingGPT uses (no transformers equivalent exists)."""

import math

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_groundinggpt import GroundingGPTAudioEncoderConfig


class ImageBindAudioEmbeddings(nn.Module):
    """Overlapping patches of the spectrogram, a CLS token and learned position embeddings."""

    def __init__(self, config: GroundingGPTAudioEncoderConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            in_channels=1,
            out_channels=config.hidden_size,
            kernel_size=config.patch_size,
            stride=config.patch_stride,
            bias=False,
        )
        self.patch_layernorm = nn.LayerNorm(config.hidden_size, eps=config.patch_layer_norm_eps)
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embedding = nn.Parameter(torch.zeros(1, config.num_patches + 1, config.hidden_size))

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        """`input_features` `[batch, 1, num_mel_bins, target_length]` -> `[batch, 1 + num_patches, hidden]`."""
        patches = self.patch_embedding(input_features.to(self.patch_embedding.weight.dtype))
        patches = self.patch_layernorm(patches.flatten(2).transpose(1, 2))
        class_embeds = self.class_embedding.expand(patches.shape[0], -1, -1)
        return torch.cat([class_embeds, patches], dim=1) + self.position_embedding


class ImageBindAudioMLP(nn.Module):
    def __init__(self, config: GroundingGPTAudioEncoderConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class ImageBindAudioLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block. The attention adds a learned key/value bias token (`add_bias_kv`)."""

    def __init__(self, config: GroundingGPTAudioEncoderConfig):
        super().__init__()
        self.norm_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = nn.MultiheadAttention(
            config.hidden_size, config.num_attention_heads, bias=True, add_bias_kv=True, batch_first=True
        )
        self.norm_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ImageBindAudioMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, seq, hidden]` -> same shape."""
        normed = self.norm_1(hidden_states)
        hidden_states = hidden_states + self.attn(normed, normed, normed, need_weights=False)[0]
        return hidden_states + self.mlp(self.norm_2(hidden_states))


class ImageBindAudioEncoder(nn.Module):
    """
    ImageBind's audio trunk and head: spectrogram -> CLS token -> LayerNorm -> linear projection
    -> L2 normalisation -> fixed scale (20 for audio). Stochastic depth of the original is omitted: GroundingGPT
    keeps this encoder frozen and in eval mode.
    """

    def __init__(self, config: GroundingGPTAudioEncoderConfig):
        super().__init__()
        self.config = config
        self.embeddings = ImageBindAudioEmbeddings(config)
        self.layers = nn.ModuleList([ImageBindAudioLayer(config) for _ in range(config.num_hidden_layers)])
        self.head_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        # The original stores the scale as the buffer log(20) and exponentiates it at run time (in float32).
        self.register_buffer("log_logit_scale", torch.tensor(math.log(config.logit_scale)), persistent=True)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        """`input_features` `[batch, 1, num_mel_bins, target_length]` -> `[batch, projection_dim]`."""
        hidden_states = self.embeddings(input_features)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        pooled = self.head_layernorm(hidden_states)[:, 0]
        embeds = nn.functional.normalize(self.head_projection(pooled), dim=-1, p=2)
        return self.log_logit_scale.exp().to(embeds.dtype) * embeds


__all__ = ["ImageBindAudioEncoder"]
