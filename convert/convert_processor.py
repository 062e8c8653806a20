"""Build the `GroundingGPTProcessor` of an original GroundingGPT (LEGO) checkpoint."""

import json
import os

from modeling_groundinggpt.processing import (
    GroundingGPTFeatureExtractor,
    GroundingGPTImageProcessor,
    GroundingGPTProcessor,
    GroundingGPTVideoProcessor,
)

from .convert_tokenizer import convert_tokenizer


# GroundingGPT-7B's video frames: the cli decodes them at 224 x 224 for the EVA ViT-g.
DEFAULT_VIDEO_FRAME_SIZE = 224


def build_processor(
    original_dir: str | os.PathLike,
    clip_dir: str | os.PathLike,
    encoder_dims: dict | None = None,
) -> GroundingGPTProcessor:
    """Assemble the processor from the original checkpoint folder and the CLIP vision tower folder.

    Args:
        original_dir: the original checkpoint (`config.json` with `image_token_len`, `video_token_len`,
            `sound_token_len`, `max_frame`, and the slow tokenizer files).
        clip_dir: the CLIP folder whose `preprocessor_config.json` the original used
            (`openai/clip-vit-large-patch14-336` for GroundingGPT-7B).
        encoder_dims: optional flat dict of encoder sizes; its `video_frame_height_width` is the video frame size
            (224 when absent).

    Returns:
        The processor; `save_pretrained` writes tokenizer, processor config and chat template.
    """
    with open(os.path.join(original_dir, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    # The CLIP preprocessing settings, plus the square padding of `image_aspect_ratio == "pad"`.
    image_processor = GroundingGPTImageProcessor.from_pretrained(
        os.fspath(clip_dir), do_pad_to_square=config.get("image_aspect_ratio", "pad") == "pad"
    )
    frame_size = (encoder_dims or {}).get("video_frame_height_width", DEFAULT_VIDEO_FRAME_SIZE)
    video_processor = GroundingGPTVideoProcessor(
        size=frame_size,
        num_frames=config["max_frame"],
        image_mean=list(image_processor.image_mean),
        image_std=list(image_processor.image_std),
    )
    return GroundingGPTProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        feature_extractor=GroundingGPTFeatureExtractor(),
        tokenizer=convert_tokenizer(original_dir),
        num_image_tokens=config["image_token_len"],
        num_video_tokens=config["video_token_len"],
        num_audio_tokens=config["sound_token_len"],
    )
