"""Temporal grounding samples: "When is the {color} square visible?" over a short noisy video."""

import math
from pathlib import Path

import cv2
import numpy as np

from .templates import VIDEO_MARKER, VIDEO_QUESTION, conversation, span_answer
from .world import COLORS, paint, random_background, random_squares, to_uint8


VIDEO_FPS = 8
VIDEO_DURATION_RANGE_S = (3, 8)
"""Inclusive range of a video's duration; the frame count is uniform in [3 * 8, 8 * 8]."""

VIDEO_SIDE_RANGE = (96, 160)
"""Inclusive range of a video's width and height. Only even sizes are drawn: mp4v stores even frame sizes."""

MIN_SPAN_FRACTION = 0.25
MAX_SPAN_FRACTION = 0.75
DISTRACTOR_PROBABILITY = 0.5
VIDEO_DIR = "videos"


def write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """Write RGB uint8 frames of one size as an MPEG-4 part 2 (`mp4v`) file with OpenCV."""
    height, width = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v videos to {path}.")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()


def make_video_sample(rng: np.random.Generator, sample_id: str, root: Path) -> dict:
    """Draw one temporal grounding sample, write its video under `root` and return its record.

    The video has n frames at 8 fps (n uniform in [24, 64], duration n / 8 s) and a fixed noisy background. A
    target square of a random palette colour stays at one place and is visible in frames [f1, f2) only, i.e.
    during [t1, t2) = [f1 / 8, f2 / 8) s, with f2 - f1 uniform in [ceil(0.25 n), floor(0.75 n)] (so the square
    is never visible for the whole video) and f1 uniform over the positions that fit. With probability 0.5 a
    distractor square of another colour is visible throughout. The square sides are 20-35 % of the shorter side.

    The record is `{"id", "video", "conversations", "ground_truth"}`; `ground_truth` holds `task` ("video"),
    `color`, `span` [t1, t2] in seconds, `duration` (s), `fps`, `num_frames`, `frame_size` (width, height),
    the `target` and the `distractor` (or None) as `{"color", "box"}`.
    """
    low_frames, high_frames = (seconds * VIDEO_FPS for seconds in VIDEO_DURATION_RANGE_S)
    num_frames = int(rng.integers(low_frames, high_frames + 1))
    low_half, high_half = (side // 2 for side in VIDEO_SIDE_RANGE)
    width, height = (2 * int(half) for half in rng.integers(low_half, high_half + 1, size=2))
    span_frames = int(
        rng.integers(math.ceil(MIN_SPAN_FRACTION * num_frames), math.floor(MAX_SPAN_FRACTION * num_frames) + 1)
    )
    first_frame = int(rng.integers(0, num_frames - span_frames + 1))
    end_frame = first_frame + span_frames

    color_order = [COLORS[index] for index in rng.permutation(len(COLORS))]
    with_distractor = bool(rng.random() < DISTRACTOR_PROBABILITY)
    squares = random_squares(rng, width, height, color_order[: 2 if with_distractor else 1])
    target, distractor = squares[0], (squares[1] if with_distractor else None)

    background = random_background(rng, width, height)
    if distractor is not None:
        paint(background, distractor)
    hidden_frame = to_uint8(background)
    paint(background, target)
    visible_frame = to_uint8(background)
    frames = [visible_frame if first_frame <= index < end_frame else hidden_frame for index in range(num_frames)]

    relative = f"{VIDEO_DIR}/{sample_id}.mp4"
    write_mp4(frames, root / relative, VIDEO_FPS)
    duration = num_frames / VIDEO_FPS
    start_s, end_s = first_frame / VIDEO_FPS, end_frame / VIDEO_FPS
    return {
        "id": sample_id,
        "video": relative,
        "conversations": conversation(
            VIDEO_QUESTION.format(color=target.color),
            [VIDEO_MARKER],
            span_answer(target.color, start_s, end_s, duration),
        ),
        "ground_truth": {
            "task": "video",
            "color": target.color,
            "span": [start_s, end_s],
            "duration": duration,
            "fps": VIDEO_FPS,
            "num_frames": num_frames,
            "frame_size": [width, height],
            "target": target.to_dict(),
            "distractor": None if distractor is None else distractor.to_dict(),
        },
    }


__all__ = ["VIDEO_FPS", "VIDEO_SIDE_RANGE", "make_video_sample", "write_mp4"]
