"""Pictures of grounding answers: labelled boxes on an image, and a video timeline with the answer's spans."""

import os
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .processing.grounding import GroundedBox, GroundedSpan
from .processing.image_processing_groundinggpt import ImageLike, load_image
from .processing.video_processing_groundinggpt import read_video_frames


PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, color: tuple[int, int, int], size: int) -> None:
    """A filled tag with white text whose top-left corner is `xy`."""
    font = _font(size)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color)
    draw.text(xy, text, fill=(255, 255, 255), font=font)


def draw_boxes(image: ImageLike, boxes: Sequence[GroundedBox], line_width: int | None = None) -> Image.Image:
    """Draw each box (pixels of `image`) with its phrase as a label, one colour per box.

    Args:
        image: a path, PIL image or array (as accepted by the processor).
        boxes: `[{"phrase": str, "box": [x1, y1, x2, y2]}]`, e.g. `GroundingAnswer.boxes`.
        line_width: outline width in pixels; by default about 1/150 of the shorter side (at least 2).

    Returns:
        A new RGB image.
    """
    canvas = load_image(image).copy()
    width, height = canvas.size
    line_width = line_width or max(2, round(min(width, height) / 150))
    font_size = max(10, round(min(width, height) / 30))
    draw = ImageDraw.Draw(canvas)
    for index, item in enumerate(boxes):
        color = PALETTE[index % len(PALETTE)]
        x1, y1, x2, y2 = item["box"]
        draw.rectangle((x1, y1, x2, y2), outline=color, width=line_width)
        if item["phrase"]:
            label_y = y1 - font_size - 4 if y1 - font_size - 4 >= 0 else y1 + line_width + 2
            _label(draw, (x1 + line_width, label_y), item["phrase"], color, font_size)
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
) -> Image.Image:
    """A strip of sampled frames above a time axis on which each span (seconds) is marked.

    Frames whose time falls inside a span get a border of that span's colour; each span is drawn as a coloured bar
    on the axis with its phrase and `start-end s` written under it.

    Args:
        video: a local video file.
        spans: `[{"phrase": str, "span": [start_s, end_s]}]`, e.g. `GroundingAnswer.spans`.
        num_frames: frames shown (uniformly sampled, as the model samples them).
        frame_height: thumbnail height in pixels.
        duration: the axis length in seconds; the decoded video's duration by default.
    """
    thumbnails, times, video_duration = read_thumbnails(video, num_frames, frame_height)
    duration = duration or video_duration
    gap, border, axis_height = 4, 4, 36
    width = sum(thumbnail.width for thumbnail in thumbnails) + gap * (len(thumbnails) + 1)
    font_size = 12
    text_rows = max(1, len(spans))
    canvas = Image.new("RGB", (width, frame_height + 2 * gap + axis_height + text_rows * (font_size + 8) + gap), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for thumbnail, time in zip(thumbnails, times):
        canvas.paste(thumbnail, (x, gap))
        for index, item in enumerate(spans):
            start, end = item["span"]
            if start <= time <= end:
                color = PALETTE[index % len(PALETTE)]
                draw.rectangle((x, gap, x + thumbnail.width - 1, gap + frame_height - 1), outline=color, width=border)
        x += thumbnail.width + gap

    axis_top = frame_height + 2 * gap
    left, right = gap, width - gap
    draw.rectangle((left, axis_top + 8, right, axis_top + 16), fill=(210, 210, 210))
    for index, item in enumerate(spans):
        color = PALETTE[index % len(PALETTE)]
        start, end = (min(max(value / duration, 0.0), 1.0) for value in item["span"])
        draw.rectangle((left + start * (right - left), axis_top + 4, left + end * (right - left), axis_top + 20), fill=color)
        text = f"{item['phrase'] or 'span'}: {item['span'][0]:.1f}-{item['span'][1]:.1f} s"
        _label(draw, (left, axis_top + axis_height + index * (font_size + 8) + 2), text, color, font_size)
    font = _font(font_size - 2)
    draw.text((left, axis_top + 20), "0 s", fill=(0, 0, 0), font=font)
    end_label = f"{duration:.1f} s"
    draw.text((right - draw.textlength(end_label, font=font), axis_top + 20), end_label, fill=(0, 0, 0), font=font)
    return canvas


__all__ = ["PALETTE", "draw_boxes", "draw_timeline", "read_thumbnails"]
