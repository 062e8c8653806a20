"""How vLLM loads GroundingGPT's media: videos decoded by this package's reader, 64 frames by default.

vLLM decodes video URLs (OpenAI `video_url` parts) itself, by default into 32 frames picked with `np.linspace` by
OpenCV at their original size. GroundingGPT was trained on up to `max_frames` (64) frames picked with the original
sampler and scaled by FFmpeg as the original's decord reader scales them, so the model's defaults
(`--media-io-kwargs` still overrides them) select the `groundinggpt` video loader: this package's PyAV reader on
the received bytes, which gives the frames the package's video processor takes from the same file, pixel for pixel.
"""

from typing import Any

from vllm.model_executor.models.config import MODELS_CONFIG_MAP, VerifyAndUpdateConfig
from vllm.multimodal.video import VIDEO_LOADER_REGISTRY, VideoLoader

from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

VIDEO_BACKEND = "groundinggpt"


@VIDEO_LOADER_REGISTRY.register(VIDEO_BACKEND)
class GroundingGPTVideoBackend(VideoLoader):
    """Videos decoded as this package's video processor decodes files: the original sampler, FFmpeg's scaling."""

    @classmethod
    def load_bytes(
        cls, data: bytes, num_frames: int = -1, frame_size: int | None = None, **kwargs: Any
    ) -> tuple[Any, dict[str, Any]]:
        """The sampled frames of the video file `data`, `(T, frame_size, frame_size, 3)` uint8 RGB (original size
        when `frame_size` is None), and vLLM's metadata dict for them.

        Args:
            num_frames: most frames sampled (the model's `max_frames` by default).
            frame_size: side of the square frames, the video tower's input size by default.
        """
        if kwargs:
            raise ValueError(
                f"The {VIDEO_BACKEND} video loader takes `num_frames` and `frame_size`, not "
                f"{', '.join(f'`{name}`' for name in sorted(kwargs))} (--media-io-kwargs / media_io_kwargs)."
            )
        if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames <= 0:
            raise ValueError(f"num_frames must be a positive number of frames, got {num_frames!r}.")
        frames, metadata = read_video_frames(data, max_frames=num_frames, frame_size=frame_size)
        return frames, {
            "total_num_frames": metadata.total_num_frames,
            "fps": metadata.fps,
            "duration": metadata.duration,
            "video_backend": VIDEO_BACKEND,
            "frames_indices": metadata.frames_indices,
            "do_sample_frames": False,
        }


class GroundingGPTMediaDefaults(VerifyAndUpdateConfig):
    @staticmethod
    def verify_and_update_model_config(model_config: Any) -> None:
        if model_config.multimodal_config is None:
            return
        video = model_config.multimodal_config.media_io_kwargs.setdefault("video", {})
        video.setdefault("video_backend", VIDEO_BACKEND)
        video.setdefault("num_frames", model_config.hf_config.max_frames)
        video.setdefault("frame_size", model_config.hf_config.video_frame_config.image_size)


def register_media_defaults(architecture: str) -> None:
    MODELS_CONFIG_MAP[architecture] = GroundingGPTMediaDefaults


__all__ = ["VIDEO_BACKEND", "GroundingGPTVideoBackend", "register_media_defaults"]
