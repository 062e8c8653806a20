"""GroundingGPT configuration: a composite of every encoder, Q-Former and the LLaMA language model."""

from huggingface_hub.dataclasses import strict
from transformers import Blip2QFormerConfig, Blip2VisionConfig, CLIPVisionConfig, LlamaConfig
from transformers.configuration_utils import PreTrainedConfig

from .compat import CompositeConfig, SubConfigSpec


# Config field of each multimodal placeholder token -> the token, in the order the original adds them to the
# vocabulary (`lego/model/builder.py`, `lego/train/train.py`): ids base_vocab_size + 0..8.
PLACEHOLDER_TOKENS = {
    "image_token_id": "<im_patch>",
    "image_start_token_id": "<im_start>",
    "image_end_token_id": "<im_end>",
    "video_token_id": "<vi_patch>",
    "video_start_token_id": "<vi_start>",
    "video_end_token_id": "<vi_end>",
    "audio_token_id": "<so_patch>",
    "audio_start_token_id": "<so_start>",
    "audio_end_token_id": "<so_end>",
}


@strict
class GroundingGPTAudioEncoderConfig(PreTrainedConfig):
    r"""
    Configuration of the audio branch of ImageBind (the only ImageBind modality GroundingGPT uses).

    The defaults are `imagebind_huge`: a 12-layer ViT over 16x16 patches (stride 10) of a 128x204 log-mel
    spectrogram, whose CLS token is layer-normalised, projected to 1024, L2-normalised and scaled by 20.

    Args:
        hidden_size: width of the transformer.
        num_hidden_layers: number of transformer blocks.
        num_attention_heads: attention heads per block.
        intermediate_size: width of the MLP in each block.
        projection_dim: size of the final (normalised) audio embedding.
        num_mel_bins: mel bins of the input spectrogram (its height).
        target_length: frames of the input spectrogram (its width).
        patch_size: kernel of the patch convolution.
        patch_stride: stride of the patch convolution (patches overlap).
        hidden_act: activation of the MLP.
        layer_norm_eps: epsilon of the block and head LayerNorms.
        patch_layer_norm_eps: epsilon of the LayerNorm after the patch convolution.
        logit_scale: the fixed factor applied after L2 normalisation.
        initializer_range: std of the normal initialiser.
    """

    model_type = "groundinggpt_audio_encoder"
    base_config_key = "audio_config"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    projection_dim: int = 1024
    num_mel_bins: int = 128
    target_length: int = 204
    patch_size: int = 16
    patch_stride: int = 10
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    patch_layer_norm_eps: float = 1e-5
    logit_scale: float = 20.0
    initializer_range: float = 0.02

    @property
    def num_patches(self) -> int:
        """Number of patch tokens (without CLS) of one spectrogram."""
        rows = (self.num_mel_bins - self.patch_size) // self.patch_stride + 1
        cols = (self.target_length - self.patch_size) // self.patch_stride + 1
        return rows * cols


@strict
class GroundingGPTConfig(CompositeConfig):
    r"""
    Configuration of [`GroundingGPTForConditionalGeneration`]. The defaults are the released GroundingGPT-7B.

    Sub-configs:
        text_config (`LlamaConfig`): Vicuna-7B v1.5 with the vocabulary grown by the 9 placeholder tokens (32009).
        vision_config (`CLIPVisionConfig`): CLIP ViT-L/14 at 336 px, the image tower.
        video_frame_config (`Blip2VisionConfig`): EVA ViT-g/14 at 224 px that encodes every video frame.
        video_frame_qformer_config (`Blip2QFormerConfig`): the BLIP-2 Q-Former run on each frame.
        video_qformer_config (`Blip2QFormerConfig`): the 2-layer video Q-Former over all frames' queries.
        audio_config (`GroundingGPTAudioEncoderConfig`): ImageBind-huge's audio encoder.
        audio_qformer_config (`Blip2QFormerConfig`): the 2-layer audio Q-Former over the per-clip embeddings.

    Args:
        vision_feature_layer: index into the CLIP tower's `hidden_states` taken as image features (CLS dropped).
        projector_hidden_act: activation between the two linear layers of the image projector.
        video_frame_layernorm_eps: epsilon of BLIP-2's `ln_vision` applied to the EVA output (the EVA blocks
            themselves use `video_frame_config.layer_norm_eps`).
        num_frame_query_tokens: learned queries of the per-frame Q-Former.
        num_video_query_tokens: learned queries of the video Q-Former, i.e. LLM tokens per video.
        max_frames: rows of the frame position embedding, the most frames a video may have.
        num_audio_query_tokens: learned queries of the audio Q-Former, i.e. LLM tokens per audio.
        num_audio_clip_positions: rows of the audio clip position embedding (more than the 3 clips used).
        image_token_id / image_start_token_id / image_end_token_id: `<im_patch>`, `<im_start>`, `<im_end>`.
        video_token_id / video_start_token_id / video_end_token_id: `<vi_patch>`, `<vi_start>`, `<vi_end>`.
        audio_token_id / audio_start_token_id / audio_end_token_id: `<so_patch>`, `<so_start>`, `<so_end>`.
    """

    model_type = "groundinggpt"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(
            config_class=LlamaConfig,
            init_kwargs={
                "vocab_size": 32009,
                "max_position_embeddings": 4096,
                "rms_norm_eps": 1e-5,
                "pad_token_id": 0,
                "bos_token_id": 1,
                "eos_token_id": 2,
            },
        ),
        "vision_config": SubConfigSpec(
            config_class=CLIPVisionConfig,
            init_kwargs={
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "image_size": 336,
                "patch_size": 14,
                "projection_dim": 768,
            },
        ),
        "video_frame_config": SubConfigSpec(config_class=Blip2VisionConfig),
        "video_frame_qformer_config": SubConfigSpec(config_class=Blip2QFormerConfig),
        "video_qformer_config": SubConfigSpec(
            config_class=Blip2QFormerConfig,
            init_kwargs={"num_hidden_layers": 2, "cross_attention_frequency": 1, "encoder_hidden_size": 768},
        ),
        "audio_config": SubConfigSpec(config_class=GroundingGPTAudioEncoderConfig),
        "audio_qformer_config": SubConfigSpec(
            config_class=Blip2QFormerConfig,
            init_kwargs={"num_hidden_layers": 2, "cross_attention_frequency": 1, "encoder_hidden_size": 1024},
        ),
    }

    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    video_frame_config: dict | PreTrainedConfig | None = None
    video_frame_qformer_config: dict | PreTrainedConfig | None = None
    video_qformer_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    audio_qformer_config: dict | PreTrainedConfig | None = None

    vision_feature_layer: int = -2
    projector_hidden_act: str = "gelu"
    video_frame_layernorm_eps: float = 1e-5
    num_frame_query_tokens: int = 32
    num_video_query_tokens: int = 64
    max_frames: int = 64
    num_audio_query_tokens: int = 8
    num_audio_clip_positions: int = 8

    image_token_id: int = 32000
    image_start_token_id: int = 32001
    image_end_token_id: int = 32002
    video_token_id: int = 32003
    video_start_token_id: int = 32004
    video_end_token_id: int = 32005
    audio_token_id: int = 32006
    audio_start_token_id: int = 32007
    audio_end_token_id: int = 32008

    tie_word_embeddings: bool = False

    @property
    def num_image_tokens(self) -> int:
        """Number of `<im_patch>` tokens per image: the CLIP tower's patches (CLS dropped)."""
        return (self.vision_config.image_size // self.vision_config.patch_size) ** 2


__all__ = ["PLACEHOLDER_TOKENS", "GroundingGPTAudioEncoderConfig", "GroundingGPTConfig"]
