"""The evaluation annotation formats: one JSON object per line (JSONL), one sample per object.

Media paths are relative to a media root (by default the annotation file's folder) or absolute. Boxes are pixel
`[x1, y1, x2, y2]` of the original image, spans are `[start, end]` in seconds.

- `refcoco` (RefCOCO / RefCOCO+ / RefCOCOg REC):
  `{"id": "refcoco_val_0", "split": "refcoco_val", "image": "COCO_train2014_000000000073.jpg",
  "expression": "the man on the left", "box": [x1, y1, x2, y2]}`
- `charades` (Charades-STA temporal grounding):
  `{"id": "3MSZA_0", "split": "test", "video": "3MSZA.mp4", "query": "person turns on the light",
  "span": [24.3, 30.4], "duration": 30.96}` (`duration` optional: the decoded video's duration is used without it)
- `sound` (sound source localization, VGG-SS):
  `{"id": "abc_000030", "split": "test", "image": "frames/abc_000030.jpg", "audio": "audio/abc_000030.wav",
  "boxes": [[x1, y1, x2, y2], ...]}` (a prediction is correct if it matches any of the boxes)

`split` is optional everywhere (default `"test"`); `id` must be unique within a file. `source` is optional too: the
dataset the sample comes from, written by the converters of the official releases (`refcoco`, `refcoco+`,
`refcocog`, `charades-sta`, `vggss`; `synthetic` for the package's synthetic world). Results are attributed to a
public benchmark only through it; samples without one are custom data.
"""

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class AnnotationFormatError(ValueError):
    """An annotation file does not follow the documented format; the message names the file and the line."""


@dataclass(frozen=True)
class RefSample:
    """One referring expression of RefCOCO/RefCOCO+/RefCOCOg: find `box` (pixels) from `expression`."""

    id: str
    image: str
    expression: str
    box: list[float]
    split: str = "test"
    source: str | None = None


@dataclass(frozen=True)
class TemporalSample:
    """One Charades-STA query: find `span` (seconds) of `video` from `query`."""

    id: str
    video: str
    query: str
    span: list[float]
    duration: float | None = None
    split: str = "test"
    source: str | None = None


@dataclass(frozen=True)
class SoundSample:
    """One sound localization sample: find the object making the sound of `audio` in `image`."""

    id: str
    image: str
    audio: str
    boxes: list[list[float]]
    split: str = "test"
    source: str | None = None


Sample = RefSample | TemporalSample | SoundSample


def _numbers(value: Any, count: int, field: str) -> list[float]:
    if not (isinstance(value, list) and len(value) == count):
        raise ValueError(f"`{field}` must be a list of {count} numbers, got {value!r}")
    if not all(isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item) for item in value):
        raise ValueError(f"`{field}` must hold finite numbers, got {value!r}")
    return [float(item) for item in value]


def _text(record: dict, field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{field}` must be a non-empty string, got {value!r}")
    return value


def _split(record: dict) -> str:
    return _text(record, "split") if "split" in record else "test"


def _source(record: dict) -> str | None:
    return _text(record, "source") if "source" in record else None


def parse_ref(record: dict) -> RefSample:
    """A `refcoco` record as a `RefSample` (raises ValueError naming the bad field)."""
    return RefSample(
        id=_text(record, "id"),
        image=_text(record, "image"),
        expression=_text(record, "expression"),
        box=_numbers(record.get("box"), 4, "box"),
        split=_split(record),
        source=_source(record),
    )


def parse_temporal(record: dict) -> TemporalSample:
    """A `charades` record as a `TemporalSample` (raises ValueError naming the bad field)."""
    duration = record.get("duration")
    if duration is not None:
        duration = _numbers([duration], 1, "duration")[0]
        if duration <= 0:
            raise ValueError(f"`duration` must be positive, got {duration}")
    return TemporalSample(
        id=_text(record, "id"),
        video=_text(record, "video"),
        query=_text(record, "query"),
        span=_numbers(record.get("span"), 2, "span"),
        duration=duration,
        split=_split(record),
        source=_source(record),
    )


def parse_sound(record: dict) -> SoundSample:
    """A `sound` record as a `SoundSample` (raises ValueError naming the bad field)."""
    boxes = record.get("boxes")
    if not isinstance(boxes, list) or not boxes:
        raise ValueError(f"`boxes` must be a non-empty list of [x1, y1, x2, y2], got {boxes!r}")
    return SoundSample(
        id=_text(record, "id"),
        image=_text(record, "image"),
        audio=_text(record, "audio"),
        boxes=[_numbers(box, 4, "boxes[]") for box in boxes],
        split=_split(record),
        source=_source(record),
    )


PARSERS = {"refcoco": parse_ref, "charades": parse_temporal, "sound": parse_sound}


def read_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield `(line_number, decoded_object)` for the non-empty lines of a JSONL file.

    Raises:
        FileNotFoundError: no such file. AnnotationFormatError: a line is not UTF-8 text or not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Annotation file not found: {str(path)!r}")
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise AnnotationFormatError(f"{path}:{line_number}: not UTF-8 text ({error.reason}).") from None
            except json.JSONDecodeError as error:
                raise AnnotationFormatError(f"{path}:{line_number}: not a JSON object ({error.msg}).") from None


def load_samples(task: str, path: str | Path) -> list[Sample]:
    """Read and validate the annotation JSONL of `task` (`refcoco`, `charades` or `sound`).

    Raises:
        FileNotFoundError: no such file.
        AnnotationFormatError: a line is not a JSON object of the task's format, an id repeats, or the file is empty.
    """
    parse = PARSERS[task]
    samples: list[Sample] = []
    seen: set[str] = set()
    for line_number, record in read_jsonl(path):
        if not isinstance(record, dict):
            raise AnnotationFormatError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}.")
        try:
            sample = parse(record)
        except ValueError as error:
            raise AnnotationFormatError(f"{path}:{line_number}: not a `{task}` sample: {error}.") from None
        if sample.id in seen:
            raise AnnotationFormatError(f"{path}:{line_number}: the id {sample.id!r} appears twice.")
        seen.add(sample.id)
        samples.append(sample)
    if not samples:
        raise AnnotationFormatError(f"{path}: no samples.")
    return samples


def write_samples(samples: list[Sample], path: str | Path) -> Path:
    """Write samples as JSONL (the format `load_samples` reads); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for sample in samples:
            record = {key: value for key, value in asdict(sample).items() if value is not None}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


__all__ = [
    "AnnotationFormatError",
    "RefSample",
    "Sample",
    "SoundSample",
    "TemporalSample",
    "load_samples",
    "read_jsonl",
    "write_samples",
]
