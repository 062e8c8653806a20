"""Pictures of grounding answers: labelled boxes on an image, and a video timeline with the answer's spans."""

import os
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .processing.grounding import GroundedBox, GroundedSpan
from .processing.image_processing_groundinggpt import ImageLike, load_image
from .processing.video_processing_groundinggpt import read_video_frames


PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230))
DARK, LIGHT = (0, 0, 0), (255, 255, 255)
EXPECTED_LABEL = "expected"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light colours, white on dark ones (by luma)."""
    red, green, blue = background
    return DARK if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else LIGHT


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, color: tuple[int, int, int], size: int) -> None:
    """A filled tag with a dark edge and legible text whose top-left corner is `xy`."""
    font = _font(size)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color, outline=DARK)
    draw.text(xy, text, fill=_text_color(color), font=font)


def outline(draw: ImageDraw.ImageDraw, xyxy: Sequence[float], color: tuple[int, int, int], width: int) -> None:
    """A `width`-pixel outline of `color` just inside `xyxy`, between a dark line outside it and a light line inside
    it, so that it stays visible on any background, its own colour included."""
    x1, y1, x2, y2 = xyxy
    draw.rectangle((x1 - 1, y1 - 1, x2 + 1, y2 + 1), outline=DARK, width=1)
    draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
    if x2 - x1 > 2 * width and y2 - y1 > 2 * width:
        draw.rectangle((x1 + width, y1 + width, x2 - width, y2 - width), outline=LIGHT, width=1)


def dashed_outline(draw: ImageDraw.ImageDraw, xyxy: Sequence[float], width: int, dash: int | None = None) -> None:
    """A `width`-pixel outline just inside `xyxy` in alternating light and dark dashes: visible on any background
    and unlike the coloured outlines of answers (used for the expected box)."""
    x1, y1, x2, y2 = xyxy
    dash = dash or max(4, 3 * width)
    draw.rectangle((x1, y1, x2, y2), outline=LIGHT, width=width)
    for start in range(int(x1), int(x2) + 1, 2 * dash):
        end = min(start + dash - 1, x2)
        draw.rectangle((start, y1, end, y1 + width - 1), fill=DARK)
        draw.rectangle((start, y2 - width + 1, end, y2), fill=DARK)
    for start in range(int(y1), int(y2) + 1, 2 * dash):
        end = min(start + dash - 1, y2)
        draw.rectangle((x1, start, x1 + width - 1, end), fill=DARK)
        draw.rectangle((x2 - width + 1, start, x2, end), fill=DARK)


def draw_boxes(
    image: ImageLike,
    boxes: Sequence[GroundedBox],
    line_width: int | None = None,
    expected: Sequence[float] | None = None,
    expected_label: str = EXPECTED_LABEL,
    scale: int = 1,
) -> Image.Image:
    """Draw each box (pixels of `image`) with its phrase as a label, one colour per box, and optionally the
    expected box, in light/dark dashes labelled `expected_label` under it. Every outline has a dark and a light
    edge, so it shows on any colour.

    Args:
        image: a path, PIL image or array (as accepted by the processor).
        boxes: `[{"phrase": str, "box": [x1, y1, x2, y2]}]`, e.g. `GroundingAnswer.boxes`.
        line_width: outline width in pixels of the drawing; by default about 1/150 of the shorter side (at least 2).
        expected: the box the answer should have given (pixels of `image`), e.g. a benchmark's target.
        expected_label: the label of the expected box (e.g. with the answer's IoU).
        scale: draw on the image enlarged this many times (nearest neighbour), for small images.

    Returns:
        A new RGB image (`scale` times the size of `image`).
    """
    canvas = load_image(image).copy()
    if scale > 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.Resampling.NEAREST)
    width, height = canvas.size
    line_width = line_width or max(2, round(min(width, height) / 150))
    font_size = max(10, round(min(width, height) / 30))
    draw = ImageDraw.Draw(canvas)
    labels = []  # drawn over all outlines
    if expected is not None:
        x1, y1, x2, y2 = (value * scale for value in expected)
        dashed_outline(draw, (x1, y1, x2, y2), line_width)
        label_y = y2 + line_width + 2 if y2 + line_width + font_size + 6 <= height else y2 - line_width - font_size - 4
        labels.append(((x1 + line_width, label_y), expected_label, LIGHT))
    for index, item in enumerate(boxes):
        color = PALETTE[index % len(PALETTE)]
        x1, y1, x2, y2 = (value * scale for value in item["box"])
        outline(draw, (x1, y1, x2, y2), color, line_width)
        if item["phrase"]:
            label_y = y1 - font_size - 4 if y1 - font_size - 4 >= 0 else y1 + line_width + 2
            labels.append(((x1 + line_width, label_y), item["phrase"], color))
    for xy, text, color in labels:
        _label(draw, xy, text, color, font_size)
    return canvas


def read_thumbnails(path: str | os.PathLike, num_frames: int, height: int) -> tuple[list[Image.Image], list[float], float]:
    """Uniformly sampled frames of a video file (decoded like the model's input), resized to `height` keeping the
    aspect ratio.

    Returns:
        The frames, their times in seconds, and the video duration in seconds.

    Raises:
        FileNotFoundError: no such file. ValueError: the file cannot be decoded or has no frame rate.
    """
    frames, metadata = read_video_frames(path, num_frames, frame_size=None)
    if metadata.duration is None:
        raise ValueError(f"The video file {os.fspath(path)!r} has no frame rate: its frames have no times.")
    thumbnails = [
        Image.fromarray(frame).resize((max(1, round(frame.shape[1] * height / frame.shape[0])), height))
        for frame in frames
    ]
    return thumbnails, list(metadata.timestamps), metadata.duration


def draw_timeline(
    video: str | os.PathLike,
    spans: Sequence[GroundedSpan],
    num_frames: int = 8,
    frame_height: int = 96,
    duration: float | None = None,
    expected: Sequence[float] | None = None,
    expected_label: str = EXPECTED_LABEL,
) -> Image.Image:
    """A strip of sampled frames above a time axis on which each span (seconds) is marked.

    Frames whose time falls inside a span get a border of that span's colour; each span is drawn as a coloured bar
    on the axis with its phrase and `start-end s` written under it. The expected span, if given, is drawn under
    the axis in light/dark dashes and written last as `expected_label: start-end s`.

    Args:
        video: a local video file.
        spans: `[{"phrase": str, "span": [start_s, end_s]}]`, e.g. `GroundingAnswer.spans`.
        num_frames: frames shown (uniformly sampled, as the model samples them).
        frame_height: thumbnail height in pixels.
        duration: the axis length in seconds; the decoded video's duration by default.
        expected: the span the answer should have given, in seconds (e.g. a benchmark's target).
        expected_label: its label (e.g. with the answer's IoU).
    """
    thumbnails, times, video_duration = read_thumbnails(video, num_frames, frame_height)
    duration = duration or video_duration
    gap, border, axis_height = 4, 4, 44
    width = sum(thumbnail.width for thumbnail in thumbnails) + gap * (len(thumbnails) + 1)
    font_size = 12
    text_rows = max(1, len(spans) + (expected is not None))
    canvas = Image.new("RGB", (width, frame_height + 2 * gap + axis_height + text_rows * (font_size + 8) + gap), LIGHT)
    draw = ImageDraw.Draw(canvas)
    x = gap
    for thumbnail, time in zip(thumbnails, times):
        canvas.paste(thumbnail, (x, gap))
        for index, item in enumerate(spans):
            start, end = item["span"]
            if start <= time <= end:
                frame = (x, gap, x + thumbnail.width - 1, gap + frame_height - 1)
                outline(draw, frame, PALETTE[index % len(PALETTE)], border)
        x += thumbnail.width + gap

    axis_top = frame_height + 2 * gap
    left, right = gap, width - gap

    def position(seconds: float) -> float:
        return left + min(max(seconds / duration, 0.0), 1.0) * (right - left)

    draw.rectangle((left, axis_top + 8, right, axis_top + 16), fill=(210, 210, 210))
    rows = []
    for index, item in enumerate(spans):
        color = PALETTE[index % len(PALETTE)]
        start, end = (position(value) for value in item["span"])
        draw.rectangle((start, axis_top + 4, end, axis_top + 20), fill=color, outline=DARK)
        rows.append((f"{item['phrase'] or 'span'}: {item['span'][0]:.1f}-{item['span'][1]:.1f} s", color))
    if expected is not None:
        start, end = (position(value) for value in expected)
        dashed_outline(draw, (start, axis_top + 24, end, axis_top + 31), 4, dash=6)
        rows.append((f"{expected_label}: {expected[0]:.1f}-{expected[1]:.1f} s", LIGHT))
    for row, (text, color) in enumerate(rows):
        _label(draw, (left, axis_top + axis_height + row * (font_size + 8) + 2), text, color, font_size)
    font = _font(font_size - 2)
    draw.text((left, axis_top + 32), "0 s", fill=DARK, font=font)
    end_label = f"{duration:.1f} s"
    draw.text((right - draw.textlength(end_label, font=font), axis_top + 32), end_label, fill=DARK, font=font)
    return canvas


__all__ = ["PALETTE", "dashed_outline", "draw_boxes", "draw_timeline", "outline", "read_thumbnails"]
