"""Grounding text of GroundingGPT: boxes `[x1, y1, x2, y2]` and time spans `{start, end}`.

Coordinate conventions (those of the original training data and of `lego/mm_utils.postprocess_output`):

- A box is written as four numbers in [0, 1] with 3 decimals, relative to the *padded square* image the model
  sees: an image of size (W, H) is pasted into a square of side S = max(W, H) at offset
  ((S - W) // 2, (S - H) // 2), and a pixel x becomes (x + offset_x) / S.
- A time span is written as two numbers in [0, 1] with 2 decimals, relative to the video duration.
"""

import math
import re
from collections.abc import Sequence
from typing import Any, TypedDict


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_BOX_PATTERN = re.compile(r"\[\s*({0})\s*,\s*({0})\s*,\s*({0})\s*,\s*({0})\s*\]".format(_NUMBER))
_SPAN_PATTERN = re.compile(r"\{{\s*({0})\s*,\s*({0})\s*\}}".format(_NUMBER))
# A phrase never reaches back over the end of the previous sentence.
_SENTENCE_END = re.compile(r"[.!?;\n]")
_PHRASE_STRIP = " \t\r\n,:;-"


class GroundedBox(TypedDict):
    phrase: str
    box: list[float]


class GroundedSpan(TypedDict):
    phrase: str
    span: list[float]


class GroundingResult(TypedDict):
    text: str
    boxes: list[GroundedBox]
    spans: list[GroundedSpan]


def _square_geometry(image_size: Sequence[float]) -> tuple[int, int, int, int, int]:
    width, height = (int(value) for value in image_size)
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size must be a positive (width, height), got {tuple(image_size)}.")
    side = max(width, height)
    return width, height, side, (side - width) // 2, (side - height) // 2


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def format_box(box_xyxy_pixels: Sequence[float], image_size: Sequence[int]) -> str:
    """Write a pixel box the way GroundingGPT reads and writes boxes.

    Args:
        box_xyxy_pixels: (x1, y1, x2, y2) in pixels of the original image.
        image_size: (width, height) of the original image, as `PIL.Image.size`.

    Returns:
        e.g. `"[0.125, 0.250, 0.500, 0.875]"`: the box relative to the padded square, clamped to [0, 1].
    """
    width, height, side, offset_x, offset_y = _square_geometry(image_size)
    x1, y1, x2, y2 = (float(value) for value in box_xyxy_pixels)
    normalized = (
        (_clamp(x1, 0, width) + offset_x) / side,
        (_clamp(y1, 0, height) + offset_y) / side,
        (_clamp(x2, 0, width) + offset_x) / side,
        (_clamp(y2, 0, height) + offset_y) / side,
    )
    return "[" + ", ".join(f"{value:.3f}" for value in normalized) + "]"


def format_span(start_s: float, end_s: float, duration_s: float) -> str:
    """Write a time span the way GroundingGPT reads and writes them.

    Args:
        start_s, end_s: the span in seconds.
        duration_s: the video duration in seconds.

    Returns:
        e.g. `"{0.16, 0.36}"`: the span relative to the duration, clamped to [0, 1].
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}.")
    start, end = (_clamp(float(value) / duration_s, 0.0, 1.0) for value in (start_s, end_s))
    return f"{{{start:.2f}, {end:.2f}}}"


def _finite_unit_values(match: re.Match) -> list[float] | None:
    try:
        values = [float(group) for group in match.groups()]
    except ValueError:
        return None
    if not all(math.isfinite(value) for value in values):
        return None
    return [_clamp(value, 0.0, 1.0) for value in values]


def _phrase(text: str, previous_end: int, start: int, previous_phrase: str) -> str:
    segment = text[previous_end:start]
    sentence_ends = list(_SENTENCE_END.finditer(segment))
    if sentence_ends:
        segment = segment[sentence_ends[-1].end() :]
    phrase = segment.strip(_PHRASE_STRIP)
    if not phrase and not segment.strip():
        # Several boxes in a row ("the cups[...][...]") all belong to the phrase before the first one.
        return previous_phrase
    return phrase


def parse_grounding(
    text: str,
    image_size: Sequence[int] | None = None,
    video_duration: float | None = None,
) -> GroundingResult:
    """Extract the boxes and time spans of one generated text; malformed ones are skipped, this never raises.

    Phrase rule: the phrase of a box or span is the text between the previous box/span (or the start of the text)
    and this one, cut after the last sentence end (`.`, `!`, `?`, `;`, newline) and stripped of spaces and
    `,:;-`. E.g. `"The red box[0.1, 0.2, 0.3, 0.4]"` gives `"The red box"` and `"It is at {0.1, 0.2}."` gives
    `"It is at"`. Boxes/spans that directly follow another one share its phrase.

    Args:
        text: the decoded model output.
        image_size: (width, height) of the original image. If given, boxes are returned in its pixels (padding
            removed, clamped to the image); otherwise they stay relative to the padded square.
        video_duration: video duration in seconds. If given, spans are returned in seconds; otherwise relative.

    Returns:
        `{"text": text, "boxes": [{"phrase", "box": [x1, y1, x2, y2]}], "spans": [{"phrase", "span": [s, e]}]}`.
    """
    if not isinstance(text, str):
        return {"text": "", "boxes": [], "spans": []}
    geometry = None
    if image_size is not None:
        try:
            geometry = _square_geometry(image_size)
        except (TypeError, ValueError):
            geometry = None
    duration = None
    if video_duration is not None:
        try:
            duration = float(video_duration)
        except (TypeError, ValueError):
            duration = None
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            duration = None

    matches = sorted(
        [("box", match) for match in _BOX_PATTERN.finditer(text)]
        + [("span", match) for match in _SPAN_PATTERN.finditer(text)],
        key=lambda item: item[1].start(),
    )
    boxes: list[GroundedBox] = []
    spans: list[GroundedSpan] = []
    previous_end, previous_phrase = 0, ""
    for kind, match in matches:
        values = _finite_unit_values(match)
        if values is None:
            continue
        phrase = _phrase(text, previous_end, match.start(), previous_phrase)
        previous_end, previous_phrase = match.end(), phrase
        if kind == "box":
            x1, x2 = sorted(values[0::2])
            y1, y2 = sorted(values[1::2])
            if geometry is not None:
                width, height, side, offset_x, offset_y = geometry
                x1, x2 = (_clamp(value * side - offset_x, 0.0, width) for value in (x1, x2))
                y1, y2 = (_clamp(value * side - offset_y, 0.0, height) for value in (y1, y2))
            boxes.append({"phrase": phrase, "box": [x1, y1, x2, y2]})
        else:
            start, end = sorted(values)
            if duration is not None:
                start, end = start * duration, end * duration
            spans.append({"phrase": phrase, "span": [start, end]})
    return {"text": text, "boxes": boxes, "spans": spans}


def _per_text(values: Any, num_texts: int, name: str) -> list[Any]:
    if values is None:
        return [None] * num_texts
    values = list(values)
    if len(values) != num_texts:
        raise ValueError(f"Got {num_texts} texts but {len(values)} {name}; pass one entry (or None) per text.")
    return values


def post_process_grounding(
    texts: str | Sequence[str],
    image_sizes: Sequence[Sequence[int] | None] | None = None,
    video_durations: Sequence[float | None] | None = None,
) -> list[GroundingResult]:
    """Run `parse_grounding` over a batch of texts.

    Args:
        texts: one decoded output or a list of them.
        image_sizes: one (width, height) or None per text (e.g. `inputs["image_sizes"]` from the processor with
            `return_metadata=True`, one image per conversation).
        video_durations: one duration in seconds or None per text.

    Returns:
        One `{"text", "boxes", "spans"}` dict per text (see `parse_grounding`).
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    sizes = _per_text(image_sizes, len(texts), "image_sizes")
    durations = _per_text(video_durations, len(texts), "video_durations")
    return [parse_grounding(text, size, duration) for text, size, duration in zip(texts, sizes, durations)]


__all__ = ["format_box", "format_span", "parse_grounding", "post_process_grounding"]
