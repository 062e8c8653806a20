"""Helpers for a client of `vllm serve`: local media as OpenAI content parts, answers as pixel boxes and seconds.

Needs neither vLLM nor a GPU: a client machine installs the package (with the `vllm-client` extra for `openai`).
"""

import base64
import mimetypes
import os
from pathlib import Path

from modeling_groundinggpt.processing.grounding import GroundingResult, parse_grounding
from modeling_groundinggpt.processing.image_processing_groundinggpt import load_image
from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

_PART_TYPES = {"image": "image_url", "video": "video_url"}


def media_part(kind: str, path: str | os.PathLike) -> dict:
    """An OpenAI chat content part carrying a local file: `kind` is "image", "video" or "audio".

    Images and videos go as base64 `data:` URLs (`image_url` / `video_url` parts), audio as an `input_audio` part,
    so the server needs no access to the client's files.
    """
    path = Path(path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    if kind == "audio":
        return {"type": "input_audio", "input_audio": {"data": data, "format": path.suffix.lstrip(".").lower()}}
    if kind not in _PART_TYPES:
        raise ValueError(f"kind must be 'image', 'video' or 'audio', got {kind!r}.")
    mime = mimetypes.guess_type(path.name)[0] or f"{kind}/{path.suffix.lstrip('.')}"
    return {"type": _PART_TYPES[kind], _PART_TYPES[kind]: {"url": f"data:{mime};base64,{data}"}}


def ground_answer(
    answer: str, image: str | os.PathLike | None = None, video: str | os.PathLike | None = None
) -> GroundingResult:
    """The boxes and time spans of a served answer, in pixels of `image` and seconds of `video` (the files the
    question was about); without them they stay relative, as the model writes them.

    Returns:
        `{"text", "boxes": [{"phrase", "box": [x1, y1, x2, y2]}], "spans": [{"phrase", "span": [start, end]}]}`,
        as `GroundingGPTProcessor.post_process_grounding`.
    """
    image_size = load_image(image).size if image is not None else None
    duration = read_video_frames(video, max_frames=1, frame_size=None)[1].duration if video is not None else None
    return parse_grounding(answer, image_size=image_size, video_duration=duration)


__all__ = ["ground_answer", "media_part"]
