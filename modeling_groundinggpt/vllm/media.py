"""How vLLM loads GroundingGPT's media: videos sampled with this package's frame sampler, 64 frames by default.

vLLM decodes video URLs (OpenAI `video_url` parts) itself, by default into 32 frames picked with `np.linspace`.
GroundingGPT was trained on up to `max_frames` (64) frames picked with the original sampler, so the model's
defaults (`--media-io-kwargs` still overrides them) select the `groundinggpt` video loader: vLLM's OpenCV decoding
with `uniform_frame_indices`, the frames this package's video processor takes from the same file.
"""

from typing import Any

from vllm.model_executor.models.config import MODELS_CONFIG_MAP, VerifyAndUpdateConfig
from vllm.multimodal.video import VIDEO_LOADER_REGISTRY, VideoBackend

from modeling_groundinggpt.processing.video_processing_groundinggpt import uniform_frame_indices

VIDEO_BACKEND = "groundinggpt"


@VIDEO_LOADER_REGISTRY.register(VIDEO_BACKEND)
class GroundingGPTVideoBackend(VideoBackend):
    """vLLM's OpenCV video loader, sampling frames as the original GroundingGPT (and this package) does."""

    @classmethod
    def compute_frames_index_to_sample(cls, source: Any, target: Any, **kwargs) -> list[int]:
        if target.num_frames <= 0:
            return list(range(source.total_frames_num))
        return uniform_frame_indices(source.total_frames_num, target.num_frames).tolist()


class GroundingGPTMediaDefaults(VerifyAndUpdateConfig):
    @staticmethod
    def verify_and_update_model_config(model_config: Any) -> None:
        if model_config.multimodal_config is None:
            return
        video = model_config.multimodal_config.media_io_kwargs.setdefault("video", {})
        video.setdefault("video_backend", VIDEO_BACKEND)
        video.setdefault("num_frames", model_config.hf_config.max_frames)


def register_media_defaults(architecture: str) -> None:
    MODELS_CONFIG_MAP[architecture] = GroundingGPTMediaDefaults


__all__ = ["VIDEO_BACKEND", "GroundingGPTVideoBackend", "register_media_defaults"]
