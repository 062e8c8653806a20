"""Grounding text of GroundingGPT: boxes `[x1, y1, x2, y2]` and time spans `{start, end}`.

Coordinate conventions (those of the original training data and of `lego/mm_utils.postprocess_output`):

- A box is written as four numbers in [0, 1] with 3 decimals, relative to the *padded square* image the model
  sees: an image of size (W, H) is pasted into a square of side S = max(W, H) at offset
  ((S - W) // 2, (S - H) // 2), and a pixel x becomes (x + offset_x) / S.
- A time span is written as two numbers in [0, 1] with 2 decimals, relative to the video duration.
"""

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any, TypedDict


# `nan` and `inf` count as numbers so that a box holding them is recognised, and skipped, as a malformed box.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:inf(?:inity)?|nan)"
_NUMBER_PATTERN = re.compile(_NUMBER)
# Any bracketed list of numbers is a box candidate and any braced one a span candidate: those without exactly four
# (two) finite numbers are skipped, but still end the phrase before them.
_NUMBER_LIST = r"\s*(?:{0})(?:\s*,\s*(?:{0}))*\s*".format(_NUMBER)
_CANDIDATES = {"box": (re.compile(r"\[({})\]".format(_NUMBER_LIST)), 4),
               "span": (re.compile(r"\{{({})\}}".format(_NUMBER_LIST)), 2)}
# A phrase never reaches back over the end of the previous sentence; the point of a decimal number ends none.
_SENTENCE_END = re.compile(r"[!?;\n]|\.(?!\d)")
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


def _real(value: Any) -> float | None:
    """`value` as a float if it is a real number (Python, numpy or 0-d tensor; not a string or bool), else None."""
    if isinstance(value, (str, bytes, bool)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _square_geometry(image_size: Any, name: str = "image_size") -> tuple[int, int, int, int, int]:
    """(width, height, side, offset_x, offset_y) of the padded square of an image of `image_size` = (width, height).

    Raises:
        ValueError: `image_size` is not a pair of positive whole numbers of pixels (named `name` in the message).
    """
    try:
        values = [_real(value) for value in image_size]
    except TypeError:
        values = []
    if len(values) != 2 or not all(value is not None and math.isfinite(value) and value >= 1 and value % 1 == 0
                                   for value in values):
        raise ValueError(f"{name} must be (width, height) in whole pixels, both positive, got {image_size!r}.")
    width, height = (int(value) for value in values)
    side = max(width, height)
    return width, height, side, (side - width) // 2, (side - height) // 2


def _duration(duration: Any, name: str) -> float:
    value = _real(duration)
    if value is None or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {duration!r}.")
    return value


def _finite_numbers(values: Sequence[Any], count: int, name: str) -> list[float]:
    numbers_ = [_real(value) for value in values] if isinstance(values, Sequence) else []
    if len(numbers_) != count or not all(value is not None and math.isfinite(value) for value in numbers_):
        raise ValueError(f"{name} must be {count} finite numbers, got {values!r}.")
    return numbers_


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def format_box(box_xyxy_pixels: Sequence[float], image_size: Sequence[int]) -> str:
    """Write a pixel box the way GroundingGPT reads and writes boxes.

    Args:
        box_xyxy_pixels: (x1, y1, x2, y2) in pixels of the original image.
        image_size: (width, height) of the original image, as `PIL.Image.size`.

    Returns:
        e.g. `"[0.125, 0.250, 0.500, 0.875]"`: the box relative to the padded square, clamped to [0, 1].

    Raises:
        ValueError: the box is not four finite numbers, or the size not two positive whole numbers.
    """
    width, height, side, offset_x, offset_y = _square_geometry(image_size)
    x1, y1, x2, y2 = _finite_numbers(box_xyxy_pixels, 4, "box_xyxy_pixels")
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

    Raises:
        ValueError: a time is not a finite number, or the duration not a positive finite one.
    """
    duration = _duration(duration_s, "duration_s")
    start, end = (_clamp(value / duration, 0.0, 1.0) for value in _finite_numbers((start_s, end_s), 2, "(start_s, end_s)"))
    return f"{{{start:.2f}, {end:.2f}}}"


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


def _parse(text: str, geometry: tuple[int, int, int, int, int] | None, duration: float | None) -> GroundingResult:
    candidates = sorted(
        ((kind, match, count) for kind, (pattern, count) in _CANDIDATES.items() for match in pattern.finditer(text)),
        key=lambda item: item[1].start(),
    )
    boxes: list[GroundedBox] = []
    spans: list[GroundedSpan] = []
    previous_end, previous_phrase = 0, ""
    for kind, match, count in candidates:
        phrase = _phrase(text, previous_end, match.start(), previous_phrase)
        previous_end, previous_phrase = match.end(), phrase
        values = [float(number) for number in _NUMBER_PATTERN.findall(match.group(1))]
        if len(values) != count or not all(math.isfinite(value) for value in values):
            continue  # malformed: skipped, its phrase with it
        values = [_clamp(value, 0.0, 1.0) for value in values]
        if kind == "box":
            x1, x2 = sorted(values[0::2])
            y1, y2 = sorted(values[1::2])
            if geometry is not None:
                width, height, side, offset_x, offset_y = geometry
                x1, x2 = (_clamp(value * side - offset_x, 0.0, float(width)) for value in (x1, x2))
                y1, y2 = (_clamp(value * side - offset_y, 0.0, float(height)) for value in (y1, y2))
            boxes.append({"phrase": phrase, "box": [x1, y1, x2, y2]})
        else:
            start, end = sorted(values)
            if duration is not None:
                start, end = start * duration, end * duration
            spans.append({"phrase": phrase, "span": [start, end]})
    return {"text": text, "boxes": boxes, "spans": spans}


def _checked_text(text: Any, name: str) -> str:
    if not isinstance(text, str):
        raise TypeError(
            f"{name} must be a decoded string, got {type(text).__name__}; decode generated ids first "
            "(`processor.post_process_image_text_to_text`)."
        )
    return text


def parse_grounding(
    text: str,
    image_size: Sequence[int] | None = None,
    video_duration: float | None = None,
) -> GroundingResult:
    """Extract the boxes and time spans of one generated text; malformed ones in the text are skipped.

    Phrase rule: the phrase of a box or span is the text between the previous box/span (or the start of the text)
    and this one, cut after the last sentence end (`.` except the point of a decimal number, `!`, `?`, `;`,
    newline) and stripped of spaces and `,:;-`. E.g. `"The red box[0.1, 0.2, 0.3, 0.4]"` gives `"The red box"` and
    `"It is at {0.1, 0.2}."` gives `"It is at"`. Boxes/spans that directly follow another one share its phrase. A
    malformed box or span (a bracketed list of other than four numbers, a braced one of other than two, or a number
    that is not finite) is skipped together with its phrase.

    Args:
        text: the decoded model output; any text parses (the model's output is never an error).
        image_size: (width, height) of the original image. If given, boxes are returned in its pixels (padding
            removed, clamped to the image); otherwise they stay relative to the padded square.
        video_duration: video duration in seconds. If given, spans are returned in seconds; otherwise relative.

    Returns:
        `{"text": text, "boxes": [{"phrase", "box": [x1, y1, x2, y2]}], "spans": [{"phrase", "span": [s, e]}]}`.

    Raises:
        TypeError: `text` is not a string. ValueError: `image_size` is not two positive whole numbers of pixels, or
            `video_duration` not a positive finite number of seconds.
    """
    geometry = None if image_size is None else _square_geometry(image_size)
    duration = None if video_duration is None else _duration(video_duration, "video_duration")
    return _parse(_checked_text(text, "text"), geometry, duration)


def _per_text(values: Any, num_texts: int, name: str) -> list[Any]:
    if values is None:
        return [None] * num_texts
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{name} must be a list with one entry (or None) per text, got {values!r}.")
    values = list(values)
    if len(values) != num_texts:
        raise ValueError(
            f"Got {num_texts} texts but {len(values)} {name}; pass one entry (or None) per text"
            + (", e.g. [(width, height)] for one text." if name == "image_sizes" else ".")
        )
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

    Raises:
        TypeError: a text is not a string. ValueError: `image_sizes` / `video_durations` do not hold one entry per
            text, or an entry is not a valid size / duration (the message names it, e.g. `image_sizes[1]`).
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    sizes = _per_text(image_sizes, len(texts), "image_sizes")
    durations = _per_text(video_durations, len(texts), "video_durations")
    return [
        _parse(
            _checked_text(text, f"texts[{index}]"),
            None if size is None else _square_geometry(size, f"image_sizes[{index}]"),
            None if duration is None else _duration(duration, f"video_durations[{index}]"),
        )
        for index, (text, size, duration) in enumerate(zip(texts, sizes, durations))
    ]


__all__ = ["format_box", "format_span", "parse_grounding", "post_process_grounding"]
