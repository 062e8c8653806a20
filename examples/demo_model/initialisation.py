"""The demo model's starting weights: transformers' model with a from-scratch initialisation and the hand-set parts
(palette-colour encoders, per-frame video Q-Former, colour look-up head)."""

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from modeling_groundinggpt.configuration_groundinggpt import GroundingGPTConfig
from modeling_groundinggpt.modeling_groundinggpt import GroundingGPTForConditionalGeneration
from modeling_groundinggpt.modeling_imagebind_audio import ImageBindAudioAttention

from .colour_lookup import colour_word_ids, init_colour_lookup
from .palette_encoder import init_palette_encoder, init_palette_frame_encoder
from .video_qformer import init_frame_selective_video_qformer


def _sincos(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """`[len(positions), dim]` fixed sine-cosine embeddings of integer positions."""
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 2) / (dim // 2))
    angles = positions.reshape(-1, 1).float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def init_demo_model(
    config: GroundingGPTConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 0
) -> GroundingGPTForConditionalGeneration:
    """A randomly initialised demo model for `tokenizer` (the one `config` was made from) to train from scratch.

    transformers' default initialisation (N(0, 0.02) weights) is made for fine-tuning pretrained parts; from
    scratch it lets the model ignore its media for a long time: the Q-Formers pass on almost nothing of their input
    (different sounds give audio embeddings ~3% apart, different videos far less) and the language model's
    attention stays uniform. So:
    - every linear/convolution weight is drawn from N(0, 1/fan_in);
    - the token embeddings are drawn from N(0, 1), the scale of the media embeddings those layers produce: with
      N(0, 0.02) text embeddings 50x smaller than the media ones, the language model did not learn to read even the
      4-way colour of a sound (measured: 50% colour accuracy after 300 steps, 100% with N(0, 1) at 200);
    - the audio clip position embeddings start as 1D sine-cosine embeddings, so that positions are not drowned by
      content (at N(0, 0.02) a position is ~2% of a clip token);
    - the CLIP tower and the EVA frame encoder are the hand-set palette-colour encoders of
      `palette_encoder.py`, which `train_demo_model.py` keeps frozen;
    - the video Q-Former starts with video query `i` reading frame `i` (`video_qformer.py`); at random it averages
      all frames alike, and the model trained that way answered every video with the same span;
    - head 0 of the language model's first layer starts as a look-up of the asked colour among the image tokens
      (`colour_lookup.py`); from a random start the model boxed a rectangle of any colour.
    """
    torch.manual_seed(seed)
    model = GroundingGPTForConditionalGeneration(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.normal_(module.weight, std=module.weight[0].numel() ** -0.5)
            elif isinstance(module, ImageBindAudioAttention):
                nn.init.normal_(module.in_proj_weight, std=module.in_proj_weight.shape[1] ** -0.5)
        nn.init.normal_(model.get_input_embeddings().weight, std=1.0)
        init_palette_encoder(model.model.vision_tower, list(OPENAI_CLIP_MEAN), list(OPENAI_CLIP_STD))
        init_palette_frame_encoder(model.model.video_tower.frame_encoder, list(OPENAI_CLIP_MEAN), list(OPENAI_CLIP_STD))
        init_frame_selective_video_qformer(model.model.video_tower)
        clip_positions = model.model.audio_tower.clip_position_embedding
        clip_positions.weight.copy_(_sincos(torch.arange(clip_positions.num_embeddings), clip_positions.embedding_dim))
        init_colour_lookup(model, colour_word_ids(tokenizer))
    return model


__all__ = ["init_demo_model"]
