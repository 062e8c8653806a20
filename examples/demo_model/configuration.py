"""The tiny GroundingGPT of the demo model: its config and the matching processor.

Every branch of GroundingGPT-7B is present, scaled down so that the model learns the synthetic world (see
`modeling_groundinggpt.synthetic`) on a 2-core CPU and its float32 checkpoint stays under 20 MB:

- language model: LLaMA, 4 layers, width 192, 6 heads, MLP 512, over the demo tokenizer's ~417 tokens;
- images: CLIP ViT, 96 px with 24 px patches (16 image tokens), 1 layer of width 128, set by hand to a
  palette-colour encoder and frozen in training (`palette_encoder.py`); its output is used
  (`vision_feature_layer=-1`; GroundingGPT-7B takes the layer before the last);
- videos: at most 16 frames of 64 x 64 px, each through a 1-layer EVA ViT (16 px patches, width 128), the same
  hand-set palette-colour encoder, also frozen, and a 2-layer frame Q-Former with 4 queries; then a 2-layer
  video Q-Former with one query per frame (16 video tokens), which starts with query `i` reading frame `i`
  (`video_qformer.py`);
- audio: the ImageBind audio encoder (2 layers, width 64) over the unchanged ImageBind input, three 2 s clips of
  128 x 204 log-mel fbanks, and a 2-layer audio Q-Former with 4 queries (4 audio tokens).

Media token counts are small so that a sample stays short (about 160 tokens for an image with a sound). The starting
weights are `initialisation.init_demo_model`'s.
"""

from transformers import (
    Blip2QFormerConfig,
    Blip2VisionConfig,
    CLIPVisionConfig,
    LlamaConfig,
    PreTrainedTokenizerBase,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from modeling_groundinggpt.configuration_groundinggpt import (
    PLACEHOLDER_TOKENS,
    GroundingGPTAudioEncoderConfig,
    GroundingGPTConfig,
)
from modeling_groundinggpt.processing import (
    GroundingGPTFeatureExtractor,
    GroundingGPTImageProcessor,
    GroundingGPTProcessor,
    GroundingGPTVideoProcessor,
)
from modeling_groundinggpt.synthetic import CHECKPOINT_EVAL_PROMPTS

from .palette_encoder import palette_encoder_sizes


DEMO_IMAGE_SIZE = 96
DEMO_IMAGE_PATCH_SIZE = 24
DEMO_VIDEO_FRAME_SIZE = 64
DEMO_VIDEO_PATCH_SIZE = 16
DEMO_MAX_FRAMES = 16
DEMO_NUM_FRAME_QUERY_TOKENS = 4
DEMO_NUM_VIDEO_TOKENS = 16
DEMO_NUM_AUDIO_TOKENS = 4
DEMO_MAX_POSITION_EMBEDDINGS = 512


def _token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise ValueError(f"The tokenizer does not know the token {token!r}.")
    return token_id


def _qformer(hidden_size: int, encoder_hidden_size: int) -> Blip2QFormerConfig:
    """A 2-layer Q-Former with cross-attention in every layer (queries only, no text input), without dropout."""
    return Blip2QFormerConfig(
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=4 * hidden_size,
        cross_attention_frequency=1,
        encoder_hidden_size=encoder_hidden_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def demo_config(tokenizer: PreTrainedTokenizerBase) -> GroundingGPTConfig:
    """The demo model's config for `tokenizer` (e.g. `train_demo_tokenizer()`).

    The vocabulary size, the `<unk>`/`<s>`/`</s>` ids (pad = `<unk>`) and the nine multimodal token ids are read
    from the tokenizer, so any tokenizer with those tokens works.
    """
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=6,
        max_position_embeddings=DEMO_MAX_POSITION_EMBEDDINGS,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    encoder_width, encoder_intermediate_size = palette_encoder_sizes(position_width=32)
    vision_config = CLIPVisionConfig(
        hidden_size=encoder_width,
        intermediate_size=encoder_intermediate_size,
        num_hidden_layers=1,
        num_attention_heads=4,
        image_size=DEMO_IMAGE_SIZE,
        patch_size=DEMO_IMAGE_PATCH_SIZE,
        projection_dim=128,
    )
    frame_width, qformer_width, audio_width = vision_config.hidden_size, 64, 64
    video_frame_config = Blip2VisionConfig(
        hidden_size=frame_width,
        intermediate_size=vision_config.intermediate_size,
        num_hidden_layers=1,
        num_attention_heads=4,
        image_size=DEMO_VIDEO_FRAME_SIZE,
        patch_size=DEMO_VIDEO_PATCH_SIZE,
        qkv_bias=True,
    )
    audio_config = GroundingGPTAudioEncoderConfig(
        hidden_size=audio_width,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=4 * audio_width,
        projection_dim=audio_width,
    )
    token_ids = {
        field: _token_id(tokenizer, token) for field, token in PLACEHOLDER_TOKENS.items()
    }
    return GroundingGPTConfig(
        text_config=text_config,
        vision_config=vision_config,
        video_frame_config=video_frame_config,
        video_frame_qformer_config=_qformer(qformer_width, frame_width),
        video_qformer_config=_qformer(qformer_width, qformer_width),
        audio_config=audio_config,
        audio_qformer_config=_qformer(qformer_width, audio_config.projection_dim),
        vision_feature_layer=-1,
        num_frame_query_tokens=DEMO_NUM_FRAME_QUERY_TOKENS,
        num_video_query_tokens=DEMO_NUM_VIDEO_TOKENS,
        max_frames=DEMO_MAX_FRAMES,
        num_audio_query_tokens=DEMO_NUM_AUDIO_TOKENS,
        num_audio_clip_positions=8,
        **token_ids,
    )


def build_demo_processor(
    tokenizer: PreTrainedTokenizerBase, config: GroundingGPTConfig | None = None
) -> GroundingGPTProcessor:
    """The `GroundingGPTProcessor` matching `config` (default: `demo_config(tokenizer)`).

    Image size, frame size, frame count and the image/video/audio token counts are all read from the config;
    the audio features keep ImageBind's layout (3 clips of 2 s, 128 mel bins x 204 frames, as in `audio_config`).
    """
    config = demo_config(tokenizer) if config is None else config
    vision = config.vision_config
    audio = config.audio_config
    image_processor = GroundingGPTImageProcessor(
        size={"shortest_edge": vision.image_size},
        crop_size={"height": vision.image_size, "width": vision.image_size},
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )
    video_processor = GroundingGPTVideoProcessor(
        size=config.video_frame_config.image_size,
        num_frames=config.max_frames,
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )
    feature_extractor = GroundingGPTFeatureExtractor(
        num_mel_bins=audio.num_mel_bins, target_length=audio.target_length
    )
    return GroundingGPTProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        feature_extractor=feature_extractor,
        tokenizer=tokenizer,
        num_image_tokens=config.num_image_tokens,
        num_video_tokens=config.num_video_query_tokens,
        num_audio_tokens=config.num_audio_query_tokens,
        evaluation_prompts=CHECKPOINT_EVAL_PROMPTS,  # the questions it is trained on, for `groundinggpt eval`
    )


__all__ = [
    "DEMO_IMAGE_SIZE",
    "DEMO_MAX_FRAMES",
    "DEMO_NUM_AUDIO_TOKENS",
    "DEMO_NUM_VIDEO_TOKENS",
    "DEMO_VIDEO_FRAME_SIZE",
    "build_demo_processor",
    "demo_config",
]
