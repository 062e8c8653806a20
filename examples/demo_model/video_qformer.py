"""The demo model's video Q-Former starts with video query `i` reading frame `i`.

Initialised at random, the video Q-Former's cross-attention is about uniform over the frames: every video token is
then about the same average of the whole video, and when anything happens cannot be read from the video tokens.
The demo model trained that way answered every video with the same span. So, with as many video queries as frames
(16), the Q-Former starts as a per-frame read-out:

- the frame position embedding (added to the frame Q-Former's outputs) is `FRAME_POSITION_SCALE` x a Fourier code
  of the frame index (cosines and sines of `2 pi k t / max_frames`, written twice), and video query `i` starts as
  the code of frame `i`; the Fourier codes of two frames have the largest dot product when the frames are the same;
- in the first layer the self-attention adds nothing (zero output projection), so each query keeps its code, and the
  cross-attention's query and key projections are `ATTENTION_GAIN` x the identity: query `i` attends to frame `i`'s
  tokens. Its output projection is scaled up by `CROSS_ATTENTION_OUTPUT_GAIN`, so that what it read dominates
  the query's own code after the LayerNorm that follows;
- in the later layers self- and cross-attention add nothing, so the video tokens stay one per frame; their MLPs
  and everything else keep their random initialisation and all of it trains.
"""

import math

import torch

from modeling_groundinggpt.modeling_groundinggpt import GroundingGPTVideoTower


FRAME_POSITION_SCALE = 3.0
ATTENTION_GAIN = 1.5
CROSS_ATTENTION_OUTPUT_GAIN = 3.0


def fourier_code(num_positions: int, dim: int) -> torch.Tensor:
    """`[num_positions, dim]`: `cos` and `sin` of `2 pi k t / num_positions` for `k < dim // 4`, written twice."""
    positions = torch.arange(num_positions).float()[:, None]
    frequencies = torch.arange(dim // 4).float()[None]
    angles = 2 * math.pi * frequencies * positions / num_positions
    half = torch.cat([angles.cos(), angles.sin()], dim=1)
    return torch.cat([half, half], dim=1)


def init_frame_selective_video_qformer(video_tower: GroundingGPTVideoTower) -> None:
    """Set the frame position embedding, the video queries and the video Q-Former's attention as described above.

    Raises:
        ValueError: if the tower has more video queries than frames, or a Q-Former width not divisible by 4.
    """
    num_frames, width = video_tower.frame_position_embedding.weight.shape
    num_queries = video_tower.video_query_tokens.shape[1]
    if num_queries > num_frames or width % 4:
        raise ValueError(
            f"A frame-selective video Q-Former needs at most one query per frame and a width divisible by 4; got "
            f"{num_queries} queries, {num_frames} frames, width {width}."
        )
    code = fourier_code(num_frames, width)
    video_tower.frame_position_embedding.weight.copy_(FRAME_POSITION_SCALE * code)
    video_tower.video_query_tokens[0].copy_(code[:num_queries])
    for index, layer in enumerate(video_tower.video_qformer.encoder.layer):
        layer.attention.output.dense.weight.zero_()
        layer.attention.output.dense.bias.zero_()
        cross_attention = layer.crossattention
        if index == 0:
            for projection in (cross_attention.attention.query, cross_attention.attention.key):
                projection.weight.copy_(ATTENTION_GAIN * torch.eye(width))
                projection.bias.zero_()
            cross_attention.output.dense.weight.mul_(CROSS_ATTENTION_OUTPUT_GAIN)
        else:
            cross_attention.output.dense.weight.zero_()
            cross_attention.output.dense.bias.zero_()


__all__ = ["fourier_code", "init_frame_selective_video_qformer"]
