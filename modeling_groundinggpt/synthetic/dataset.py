"""Synthetic datasets in the GroundingGPT / LLaVA JSON format: generation, writing, reading, chat messages.

A dataset is a folder `root` holding `data.json` (a JSON list of records) and the media under `images/`,
`videos/` and `sounds/`, referenced by paths relative to `root`. A record is

    {"id": "image-0-000003", "image": "images/image-0-000003.png",
     "conversations": [{"from": "human", "value": "<image>\\nWhere is the red box?"},
                       {"from": "gpt", "value": "The red box[0.123, 0.456, 0.789, 0.901]."}],
     "ground_truth": {...}}

with `"video"` instead of `"image"` for videos, and both `"sound"` and `"image"` for sound localisation. The
`ground_truth` field (pixel boxes, spans in seconds, sizes, durations; see the `make_*_sample` functions) is for
evaluation; training reads `id`, the media keys and `conversations` only.
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .image_task import make_image_sample
from .sound_task import make_sound_sample
from .templates import IMAGE_MARKER, SOUND_MARKER, VIDEO_MARKER
from .video_task import make_video_sample


Task = Literal["image", "video", "sound"]
TASKS: tuple[Task, ...] = ("image", "video", "sound")

_SAMPLE_MAKERS: dict[str, Callable[[np.random.Generator, str, Path], dict]] = {
    "image": make_image_sample,
    "video": make_video_sample,
    "sound": make_sound_sample,
}
_MEDIA_KEYS = {"sound": ("audio", SOUND_MARKER), "video": ("video", VIDEO_MARKER), "image": ("image", IMAGE_MARKER)}
"""Record key -> (chat content type, data marker), in the chat template's marker order."""


def sample_rng(task: Task, seed: int, index: int) -> np.random.Generator:
    """The generator of one sample: depends on (task, seed, index) only, so datasets of one seed share prefixes."""
    return np.random.default_rng(np.random.SeedSequence([seed, TASKS.index(task), index]))


def generate_dataset(task: Task, n: int, seed: int, root: str | Path, start: int = 0) -> list[dict]:
    """Generate `n` samples of one task, writing their media under `root`.

    Args:
        task: "image" (box of a coloured rectangle), "video" (time span of a coloured square) or "sound" (box of
            the rectangle whose colour's tone plays).
        n: number of samples.
        seed: dataset seed; the same (task, seed, index) always gives the same sample.
        root: dataset folder; media paths in the records are relative to it.
        start: index of the first sample (to extend a dataset).

    Returns:
        The records, ids `f"{task}-{seed}-{index:06d}"`.
    """
    if task not in _SAMPLE_MAKERS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    if n < 0 or start < 0:
        raise ValueError(f"n and start must be non-negative, got n={n}, start={start}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    make_sample = _SAMPLE_MAKERS[task]
    return [
        make_sample(sample_rng(task, seed, index), f"{task}-{seed}-{index:06d}", root)
        for index in range(start, start + n)
    ]


def write_dataset(records: Sequence[dict], root: str | Path, filename: str = "data.json") -> Path:
    """Write the records as a JSON list to `root/filename` and return that path."""
    path = Path(root) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(records), indent=1) + "\n", encoding="utf-8")
    return path


def load_dataset(path: str | Path) -> list[dict]:
    """Read the records of a dataset's JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def record_messages(record: dict, root: str | Path, with_answer: bool = False) -> list[dict[str, Any]]:
    """The record's first exchange as transformers chat messages with absolute media paths.

    `processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)` then
    gives the model the same prompt the training text holds. With `with_answer`, the gpt turn is appended as an
    assistant message.
    """
    root = Path(root)
    human, answer = record["conversations"][0]["value"], record["conversations"][1]["value"]
    markers = {marker for _, marker in _MEDIA_KEYS.values()}
    question = "\n".join(line for line in human.split("\n") if line not in markers)
    content: list[dict[str, Any]] = [
        {"type": content_type, "path": str(root / record[key])}
        for key, (content_type, _) in _MEDIA_KEYS.items()
        if key in record
    ]
    content.append({"type": "text", "text": question})
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if with_answer:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


__all__ = ["TASKS", "Task", "generate_dataset", "load_dataset", "record_messages", "sample_rng", "write_dataset"]
