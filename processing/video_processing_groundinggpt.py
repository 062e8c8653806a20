"""Video processor for GroundingGPT: uniform frame sampling (files decoded with PyAV), resize, CLIP normalisation."""

import math
import numbers
import os
from typing import Any

import cv2
import numpy as np
import PIL.Image
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata

from .image_processing_groundinggpt import _local_path, load_image
from .video_decoding import decode_sampled_frames, uniform_frame_indices


VideoLike = str | os.PathLike | np.ndarray | torch.Tensor | list[PIL.Image.Image] | list[np.ndarray]


def read_video_frames(
    video: str | os.PathLike | bytes, max_frames: int, frame_size: int | None
) -> tuple[np.ndarray, VideoMetadata]:
    """Decode the uniformly sampled frames of a local video file, or of a video file's bytes (see `video_decoding`:
    keyframe seeking where it pays, frames scaled like the original's decord reader, bilinear).

    Returns:
        frames: uint8 array of shape (T, frame_size, frame_size, 3), RGB (original height and width when
            `frame_size` is None).
        metadata: `VideoMetadata` with the real frame count, mean fps, width/height, duration (s, from the frames'
            timestamps, not from the headers) and the sampled `frames_indices` (`metadata.timestamps` gives their
            times in seconds).

    Raises:
        FileNotFoundError: missing file. ValueError: the file cannot be decoded, has no frames, or its timing
            cannot be told.
    """
    source = video if isinstance(video, bytes) else _local_path(video, "video")
    frames, index, positions = decode_sampled_frames(source, max_frames, frame_size)
    metadata = VideoMetadata(
        total_num_frames=index.num_frames,
        fps=index.fps,
        width=index.width,
        height=index.height,
        duration=index.duration,
        video_backend="pyav",
        frames_indices=positions.tolist(),
    )
    return frames, metadata


def sample_frame_list(
    frames: Any, max_frames: int, frame_size: int, fps: float | None = None
) -> tuple[np.ndarray, VideoMetadata]:
    """Sample and resize an in-memory video: a list of frames (PIL or (H, W, C) arrays) or a (T, H, W, C) array.

    The same uniform sampler as for files is applied. `fps`, if known, fills in the duration and timestamps.

    Raises:
        ValueError: no frames, or an `fps` that is not a positive number.
    """
    real = isinstance(fps, (numbers.Real, np.integer, np.floating)) and not isinstance(fps, (bool, np.bool_))
    if fps is not None and not (real and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}.")
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if len(frames) == 0:
        raise ValueError("A video given as frames needs at least one frame.")
    indices = uniform_frame_indices(len(frames), max_frames)
    resized = []
    for index in indices.tolist():
        frame = np.asarray(load_image(frames[index]))
        height, width = frame.shape[:2]
        resized.append(cv2.resize(frame, (frame_size, frame_size), interpolation=cv2.INTER_LINEAR))
    metadata = VideoMetadata(
        total_num_frames=len(frames),
        fps=fps,
        width=width,
        height=height,
        duration=len(frames) / fps if fps else None,
        video_backend=None,
        frames_indices=indices.tolist(),
    )
    return np.stack(resized), metadata


def is_single_video(video: Any) -> bool:
    """A path, a 4D array/tensor, or a non-empty list of frames (PIL images or 3D arrays/tensors)."""
    if isinstance(video, (str, os.PathLike)):
        return True
    if isinstance(video, (np.ndarray, torch.Tensor)):
        return video.ndim == 4
    if isinstance(video, (list, tuple)) and len(video) > 0:
        return all(
            isinstance(frame, PIL.Image.Image) or (isinstance(frame, (np.ndarray, torch.Tensor)) and frame.ndim == 3)
            for frame in video
        )
    return False


def flatten_videos(videos: Any) -> list[VideoLike]:
    """Flatten (nested) lists of videos into a flat list of single videos."""
    if is_single_video(videos):
        return [videos]
    if isinstance(videos, (list, tuple)):
        return [video for item in videos for video in flatten_videos(item)]
    raise ValueError(
        f"Unsupported video input of type {type(videos).__name__}: expected a path, a (T, H, W, C) array or a "
        "list of frames."
    )


class GroundingGPTVideoProcessor(VideoProcessorMixin):
    r"""
    Video processor of GroundingGPT, reproducing the original inference path without decord or torchvision.

    Each video (local file decoded with PyAV, or frames in memory) is uniformly sampled to at most `num_frames`
    frames with the original sampler, each frame is resized to `size` x `size` (no crop, deterministic; files as
    the original's decord reader, in-memory frames with OpenCV's bilinear filter), scaled to [0, 1] and normalised
    with the CLIP mean/std. Videos with fewer frames are padded at the end with zeros.

    Returns a `BatchFeature` with:
        - `pixel_values_videos`: `(num_videos, T, 3, size, size)` float32, T the most sampled frames in the batch;
        - `video_frame_mask`: `(num_videos, T)` int64, 1 for real frames and 0 for padding;
        - `video_metadata` (only with `return_metadata=True`): one `VideoMetadata` per video.
    """

    valid_kwargs = VideosKwargs
    model_input_names = ["pixel_values_videos", "video_frame_mask"]

    def __init__(
        self,
        size: int = 224,
        num_frames: int = 64,
        image_mean: list[float] | tuple[float, ...] = OPENAI_CLIP_MEAN,
        image_std: list[float] | tuple[float, ...] = OPENAI_CLIP_STD,
        **kwargs,
    ) -> None:
        if isinstance(size, dict):
            size = size["height"]
        super().__init__(**kwargs)
        self.size = int(size)
        self.num_frames = int(num_frames)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["video_processor_type"] = output.pop("image_processor_type", type(self).__name__)
        output.pop("_valid_kwargs_names", None)
        return output

    def load_video(
        self, video: VideoLike, num_frames: int | None = None, fps: float | None = None
    ) -> tuple[np.ndarray, VideoMetadata]:
        """Sample one video: uint8 frames of shape (T, size, size, 3) and its `VideoMetadata`."""
        num_frames = self.num_frames if num_frames is None else num_frames
        if isinstance(video, (str, os.PathLike)):
            return read_video_frames(video, num_frames, self.size)
        return sample_frame_list(video, num_frames, self.size, fps=fps)

    def preprocess(
        self,
        videos: Any,
        num_frames: int | None = None,
        fps: float | None = None,
        return_metadata: bool = False,
        return_tensors: str | None = "pt",
        **kwargs: Unpack[VideosKwargs],
    ) -> BatchFeature:
        """Process one video or a (nested) list of videos; see the class docstring for the outputs.

        Args:
            videos: local paths, `(T, H, W, C)` arrays/tensors or lists of frames, possibly nested.
            num_frames: most frames sampled per video; defaults to `self.num_frames` (the model's `max_frames`).
            fps: frame rate of videos given as frames, only used for their metadata (duration, timestamps).
            return_metadata: also return `video_metadata`.
            return_tensors: `"pt"` (default), `"np"` or None.
        """
        flat_videos = flatten_videos(videos)
        if not flat_videos:
            raise ValueError("No video was given.")
        clips, metadata = [], []
        for index, video in enumerate(flat_videos):
            try:
                frames, video_metadata = self.load_video(video, num_frames=num_frames, fps=fps)
            except (ValueError, FileNotFoundError) as error:
                raise type(error)(f"Video {index}: {error}") from error
            clips.append(frames)
            metadata.append(video_metadata)

        max_length = max(len(frames) for frames in clips)
        mean = np.asarray(self.image_mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.image_std, dtype=np.float32)[:, None, None]
        pixel_values = np.zeros((len(clips), max_length, 3, self.size, self.size), dtype=np.float32)
        frame_mask = np.zeros((len(clips), max_length), dtype=np.int64)
        for index, frames in enumerate(clips):
            # Written in place, channels read through a transposed view: no temporary copy of the output.
            # Division (not multiplication by 1/255) as the original `ToTensorVideo`, to match it bit for bit.
            normalised = pixel_values[index, : len(frames)]
            np.divide(frames.transpose(0, 3, 1, 2), np.float32(255.0), out=normalised)
            normalised -= mean
            normalised /= std
            frame_mask[index, : len(frames)] = 1

        data = {"pixel_values_videos": pixel_values, "video_frame_mask": frame_mask}
        if return_metadata:
            data["video_metadata"] = metadata
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])


__all__ = ["GroundingGPTVideoProcessor", "read_video_frames", "uniform_frame_indices"]
