"""The demo model's CLIP tower and EVA frame encoder, set by hand to palette-colour encoders and kept frozen while
the demo model trains.

GroundingGPT-7B keeps its pretrained CLIP frozen. The demo model has no pretrained CLIP, and a tower trained from
scratch with everything else was the slowest part to learn: the language model needs to know which palette colours
each part of a patch shows before it can pick the rectangle of the asked colour and read its edges. So the demo's
CLIP tower computes that directly, with the unchanged CLIP architecture (one encoder layer):

- the patch embedding averages each colour channel over every sub-cell of the patch (`SUBCELLS` x `SUBCELLS` per
  patch), written twice with opposite signs: the token's mean over its channels, which LayerNorm subtracts, then
  does not depend on the colours;
- the position embedding is a sine-cosine code of the patch's row and column at frequencies 1, 1/2, 1/4, ... (also
  written twice with opposite signs), `POSITION_SCALE` times larger than the colours, so that `pre_layrnorm` divides
  every token by almost the same number and the colours keep their scale;
- the encoder layer's attention is off (zero output projection). Its MLP holds one unit per sub-cell and palette
  colour, a linear detector of that colour (`palette_detectors`): 1 on the colour, at most 0 on any background
  colour and any other palette colour, so about the covered fraction on a sub-cell partly covered; and, for every
  mean-colour channel, two units that subtract it again;
- each output token is therefore `[palette responses of its sub-cells (times RESPONSE_SCALE), zeros, position code]`.

The EVA frame encoder (`init_palette_frame_encoder`) is set the same way.
"""

import functools
import itertools

import torch
from torch import nn
from transformers import Blip2VisionConfig, Blip2VisionModel, CLIPVisionConfig, CLIPVisionModel

from modeling_groundinggpt.synthetic.world import BACKGROUND_CHANNEL_RANGE, PALETTE


SUBCELLS = 4
"""Sub-cells per patch side whose mean colour the tower classifies (24 px patches: 6 x 6 px sub-cells)."""
BACKGROUND_MARGIN = 10.0
"""RGB units around the background range that a detector still answers at most 0 to (pixel noise, resizing)."""
POSITION_SCALE = 80.0
"""How much larger than the mean colours the position code is written (LayerNorms then divide every token by
almost the same number: within 0.2%)."""
RESPONSE_SCALE = 3.0
"""Size of a full palette response in the output tokens, where the position code's entries are about +-2.8."""
DETECTOR_GAIN = 10.0
"""Slope of a detector unit's pre-activation: its activation is then within 1% of a ReLU away from 0."""


def nearest_point_in_hull(vertices: torch.Tensor, point: torch.Tensor, steps: int = 5000) -> torch.Tensor:
    """The point of the convex hull of `vertices` (`[n, d]`) nearest to `point` (`[d]`), by projected gradient
    descent on the convex weights of the vertices."""
    vertices, point = vertices.double(), point.double()
    weights = torch.full((len(vertices),), 1.0 / len(vertices), dtype=torch.float64)
    step_size = 0.5 / torch.linalg.matrix_norm(vertices, ord=2) ** 2
    ranks = torch.arange(1, len(vertices) + 1, dtype=torch.float64)
    for _ in range(steps):
        weights = weights - step_size * 2 * vertices @ (vertices.T @ weights - point)
        # Euclidean projection onto the probability simplex
        ordered = torch.sort(weights, descending=True).values
        excess = ordered.cumsum(0) - 1
        last = int((ordered - excess / ranks > 0).nonzero().max())
        weights = (weights - excess[last] / (last + 1)).clamp(min=0)
    return vertices.T @ weights


@functools.cache
def _palette_detectors() -> tuple[torch.Tensor, torch.Tensor]:
    """`palette_detectors`, computed once (about a second of projected gradient descent)."""
    low, high = BACKGROUND_CHANNEL_RANGE
    corners = torch.tensor(
        list(itertools.product((low - BACKGROUND_MARGIN, high + BACKGROUND_MARGIN), repeat=3)), dtype=torch.float64
    )
    palette = torch.tensor(list(PALETTE.values()), dtype=torch.float64)
    weights, biases = [], []
    for index, colour in enumerate(palette):
        others = torch.cat([corners, palette[torch.arange(len(palette)) != index]])
        nearest = nearest_point_in_hull(others, colour)
        normal = (colour - nearest) / (colour - nearest).pow(2).sum()
        weights.append(normal)
        biases.append(-normal @ nearest)
    return torch.stack(weights), torch.stack(biases)


def palette_detectors() -> tuple[torch.Tensor, torch.Tensor]:
    """For each palette colour `c`, the linear response `r_c(v) = weights[c] @ v + biases[c]` of an RGB colour `v`
    (0-255) that is 1 at `c` and at most 0 on every background colour (each channel within
    `BACKGROUND_CHANNEL_RANGE` widened by `BACKGROUND_MARGIN`) and every other palette colour, with the widest
    margin: its zero plane passes through the point of their convex hull nearest to `c`, perpendicular to the line
    to `c`.

    Returns:
        `weights` `[num_colours, 3]` and `biases` `[num_colours]`, float64.
    """
    weights, biases = _palette_detectors()
    return weights.clone(), biases.clone()


def _grid_code(grid_size: int, num_frequencies: int) -> torch.Tensor:
    """`[grid_size**2, 4 * num_frequencies]`: sine and cosine of the row and of the column of every row-major patch
    at frequencies 1, 1/2, 1/4, ...; every row has squared norm `2 * num_frequencies`."""
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    code = [
        wave(index.flatten().float() / 2**k)
        for k in range(num_frequencies)
        for index in (rows, cols)
        for wave in (torch.sin, torch.cos)
    ]
    return torch.stack(code, dim=1)


def palette_encoder_sizes(position_width: int) -> tuple[int, int]:
    """`(hidden_size, intermediate_size)` of a palette encoder with a position code of `position_width` channels (a
    multiple of 8): the mean colours twice and the position code; one detector per sub-cell and palette colour and
    two subtracting units per mean-colour channel."""
    colour_width = 6 * SUBCELLS**2
    return colour_width + position_width, SUBCELLS**2 * len(PALETTE) + 2 * colour_width


def _check_layout(config: CLIPVisionConfig | Blip2VisionConfig) -> int:
    """The width of the position code for a tower `config`; raises `ValueError` if the config has another layout."""
    colour_width = 6 * SUBCELLS**2
    position_width = config.hidden_size - colour_width
    intermediate_size = palette_encoder_sizes(position_width)[1]
    if (
        config.num_hidden_layers != 1
        or config.patch_size % SUBCELLS
        or position_width <= 0
        or position_width % 8
        or config.intermediate_size != intermediate_size
    ):
        raise ValueError(
            f"The palette encoder needs 1 layer, a patch size divisible by {SUBCELLS}, hidden_size {colour_width} + "
            f"a positive multiple of 8 and intermediate_size {intermediate_size}; got {config.num_hidden_layers} "
            f"layers, patch size {config.patch_size}, hidden_size {config.hidden_size}, intermediate_size "
            f"{config.intermediate_size}."
        )
    return position_width


def _set_embeddings(
    patch_embedding: nn.Conv2d, position_embedding: torch.Tensor, config: CLIPVisionConfig | Blip2VisionConfig
) -> float:
    """Patch embedding = sub-cell mean colours, twice with opposite signs; position embedding (`[1 + patches,
    hidden]`, CLS first) = the grid code, twice with opposite signs, times `POSITION_SCALE`. Returns the standard
    deviation over the channels of a token whose colours are all 0, which LayerNorms divide by."""
    num_subcells = SUBCELLS**2
    colour_width = 3 * num_subcells
    cell = config.patch_size // SUBCELLS
    patch_embedding.weight.zero_()
    if patch_embedding.bias is not None:
        patch_embedding.bias.zero_()
    for subcell, channel in itertools.product(range(num_subcells), range(3)):
        row, col = divmod(subcell, SUBCELLS)
        window = (slice(row * cell, (row + 1) * cell), slice(col * cell, (col + 1) * cell))
        for sign, offset in ((1, 0), (-1, colour_width)):
            patch_embedding.weight[offset + 3 * subcell + channel, channel][window] = sign / cell**2
    code = _grid_code(config.image_size // config.patch_size, (config.hidden_size - 2 * colour_width) // 8)
    position_embedding.zero_()
    position_embedding[1:, 2 * colour_width :] = POSITION_SCALE * torch.cat([code, -code], dim=1)
    return float(POSITION_SCALE * (2 * code[0].pow(2).sum() / config.hidden_size) ** 0.5)


def _set_layer(
    attention_output: nn.Linear,
    norm: nn.LayerNorm,
    mlp: nn.Module,
    token_std: float,
    stream_scale: float,
    image_mean: list[float],
    image_std: list[float],
) -> None:
    """Attention off; the MLP (after the LayerNorm `norm`, which sees a mean colour m as m / `token_std`) adds
    `RESPONSE_SCALE` x each sub-cell's palette responses and removes the mean colours, which the residual stream
    holds times `stream_scale` (1 after a LayerNorm, `token_std` before one)."""
    num_subcells, num_colours = SUBCELLS**2, len(PALETTE)
    attention_output.weight.zero_()
    attention_output.bias.zero_()
    norm.weight.fill_(1.0)
    norm.bias.zero_()
    weights, biases = palette_detectors()
    # r(v) with v = 255 * (std * m + mean), as a function of the normalised mean colour m
    mean, std = torch.tensor(image_mean, dtype=torch.float64), torch.tensor(image_std, dtype=torch.float64)
    normalised_weights = 255 * weights * std
    normalised_biases = 255 * weights @ mean + biases
    for linear in (mlp.fc1, mlp.fc2):
        linear.weight.zero_()
        linear.bias.zero_()
    unit = 0
    for subcell, colour in itertools.product(range(num_subcells), range(num_colours)):
        inputs = slice(3 * subcell, 3 * subcell + 3)
        mlp.fc1.weight[unit, inputs] = (DETECTOR_GAIN * token_std * normalised_weights[colour]).float()
        mlp.fc1.bias[unit] = DETECTOR_GAIN * normalised_biases[colour]
        mlp.fc2.weight[num_colours * subcell + colour, unit] = RESPONSE_SCALE / DETECTOR_GAIN
        unit += 1
    # act(z) - act(-z) = z for (quick) GELU, so each pair of units subtracts one mean-colour channel exactly
    for channel, sign in itertools.product(range(6 * num_subcells), (1, -1)):
        mlp.fc1.weight[unit, channel] = sign
        mlp.fc2.weight[channel, unit] = -sign * stream_scale
        unit += 1


def init_palette_encoder(vision_tower: CLIPVisionModel, image_mean: list[float], image_std: list[float]) -> None:
    """Set the weights of a one-layer CLIP tower to the palette-colour encoder described in this module.

    `image_mean`/`image_std` are the processor's pixel normalisation (the detectors act on RGB values). The config
    must have one layer and the sizes of `palette_encoder_sizes`.

    Raises:
        ValueError: for a config that does not have this layout.
    """
    _check_layout(vision_tower.config)
    embeddings = vision_tower.embeddings
    embeddings.class_embedding.zero_()
    token_std = _set_embeddings(embeddings.patch_embedding, embeddings.position_embedding.weight, vision_tower.config)
    vision_tower.pre_layrnorm.weight.fill_(1.0)
    vision_tower.pre_layrnorm.bias.zero_()
    layer = vision_tower.encoder.layers[0]
    _set_layer(layer.self_attn.out_proj, layer.layer_norm2, layer.mlp, token_std, 1.0, image_mean, image_std)


def init_palette_frame_encoder(
    frame_encoder: Blip2VisionModel, image_mean: list[float], image_std: list[float]
) -> None:
    """The same encoder in a one-layer EVA ViT (BLIP-2 vision model) with its closing LayerNorm (`ln_vision`).

    EVA has no LayerNorm before its first layer, so the residual stream holds the colours and the position code
    unnormalised; the closing LayerNorm, which divides by about `token_std`, multiplies the responses back by it.

    Raises:
        ValueError: for a config that does not have the layout of `init_palette_encoder`.
    """
    position_width = _check_layout(frame_encoder.config)
    embeddings = frame_encoder.embeddings
    embeddings.class_embedding.zero_()
    token_std = _set_embeddings(embeddings.patch_embedding, embeddings.position_embedding[0], frame_encoder.config)
    layer = frame_encoder.encoder.layers[0]
    _set_layer(layer.self_attn.projection, layer.layer_norm2, layer.mlp, token_std, token_std, image_mean, image_std)
    frame_encoder.post_layernorm.weight.fill_(1.0)
    frame_encoder.post_layernorm.weight[: frame_encoder.config.hidden_size - position_width] = token_std
    frame_encoder.post_layernorm.bias.zero_()


__all__ = [
    "SUBCELLS",
    "init_palette_encoder",
    "init_palette_frame_encoder",
    "nearest_point_in_hull",
    "palette_detectors",
    "palette_encoder_sizes",
]
