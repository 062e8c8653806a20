"""ImageBind's audio encoder, the only ImageBind modality GroundingGPT uses (no transformers equivalent exists)."""

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


class ImageBindAudioAttention(nn.Module):
    """
    Multi-head self-attention with the parameter layout of `torch.nn.MultiheadAttention(add_bias_kv=True)`, as
    ImageBind uses: a fused input projection, and a learned key and value (`bias_k`, `bias_v`) appended to every
    sequence. Written out (rather than using `nn.MultiheadAttention`) so that `out_proj` is called as a module,
    which device-map offloading hooks rely on.
    """

    def __init__(self, config: GroundingGPTAudioEncoderConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * config.hidden_size, config.hidden_size))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * config.hidden_size))
        self.bias_k = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.bias_v = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, seq, hidden]` -> same shape."""
        batch_size, seq_length, hidden_size = hidden_states.shape
        query, key, value = nn.functional.linear(hidden_states, self.in_proj_weight, self.in_proj_bias).chunk(3, -1)
        key = torch.cat([key, self.bias_k.expand(batch_size, 1, hidden_size)], dim=1)
        value = torch.cat([value, self.bias_v.expand(batch_size, 1, hidden_size)], dim=1)
        query, key, value = (
            states.view(batch_size, -1, self.num_heads, self.head_dim).transpose(1, 2) for states in (query, key, value)
        )
        attn_output = nn.functional.scaled_dot_product_attention(query, key, value)
        attn_output = attn_output.transpose(1, 2).reshape(batch_size, seq_length, hidden_size)
        return self.out_proj(attn_output)


class ImageBindAudioLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block."""

    def __init__(self, config: GroundingGPTAudioEncoderConfig):
        super().__init__()
        self.norm_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = ImageBindAudioAttention(config)
        self.norm_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ImageBindAudioMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, seq, hidden]` -> same shape."""
        hidden_states = hidden_states + self.attn(self.norm_1(hidden_states))
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
        self.logit_scale = config.logit_scale

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        """`input_features` `[batch, 1, num_mel_bins, target_length]` -> `[batch, projection_dim]`."""
        hidden_states = self.embeddings(input_features)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        pooled = self.head_layernorm(hidden_states)[:, 0]
        embeds = nn.functional.normalize(self.head_projection(pooled), dim=-1, p=2)
        return self.logit_scale * embeds


__all__ = ["ImageBindAudioEncoder"]
