"""The synthetic world of the demo model: palette, tones, noisy backgrounds and non-overlapping coloured rectangles.

Pixel boxes are `(x1, y1, x2, y2)` integers with exclusive ends: a rectangle fills the pixels `x1 <= x < x2`,
`y1 <= y < y2`, so the box is also its exact continuous extent (what `format_box` normalises).
"""

import math
from dataclasses import dataclass

import numpy as np


PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 230),
    "yellow": (235, 215, 40),
}
"""RGB colour of every object colour name."""

TONE_FREQUENCIES_HZ: dict[str, float] = {"red": 440.0, "green": 660.0, "blue": 880.0, "yellow": 1320.0}
"""Frequency of the tone each colour makes in the sound localisation task."""

COLORS: tuple[str, ...] = tuple(PALETTE)

BACKGROUND_CHANNEL_RANGE = (60, 200)
"""Inclusive range of each channel of a background colour."""

BACKGROUND_NOISE_STD = 8.0
"""Standard deviation of the per-pixel, per-channel Gaussian noise added to backgrounds."""

_MAX_PLACEMENT_TRIES = 100
_MAX_LAYOUT_TRIES = 1000

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Rectangle:
    """A filled, axis-aligned rectangle of one palette colour; `box` is `(x1, y1, x2, y2)` with exclusive ends."""

    color: str
    box: Box

    def to_dict(self) -> dict:
        return {"color": self.color, "box": list(self.box)}


def boxes_overlap(first: Box, second: Box) -> bool:
    """Whether two exclusive-end boxes share at least one pixel (touching edges do not overlap)."""
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A (height, width, 3) float64 canvas: a random colour (channels in [60, 200]) plus Gaussian noise (sigma 8).

    The noise is not clipped here; `to_uint8` clips once the objects are painted.
    """
    low, high = BACKGROUND_CHANNEL_RANGE
    color = rng.integers(low, high + 1, size=3)
    return color[None, None, :] + rng.normal(0.0, BACKGROUND_NOISE_STD, size=(height, width, 3))


def paint(canvas: np.ndarray, rectangle: Rectangle) -> None:
    """Fill `rectangle` on an (H, W, 3) RGB canvas in place with its flat palette colour."""
    x1, y1, x2, y2 = rectangle.box
    canvas[y1:y2, x1:x2] = PALETTE[rectangle.color]


def to_uint8(canvas: np.ndarray) -> np.ndarray:
    """Round and clip a float canvas to uint8 RGB."""
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def side_range(length: int, min_fraction: float, max_fraction: float) -> tuple[int, int]:
    """Inclusive integer range of a side between `min_fraction` and `max_fraction` of `length`."""
    return math.ceil(min_fraction * length), math.floor(max_fraction * length)


def place_boxes(
    rng: np.random.Generator, width: int, height: int, sizes: list[tuple[int, int]]
) -> list[Box] | None:
    """Place boxes of the given (width, height) sizes uniformly inside the image without overlaps.

    Each box gets up to 100 random positions; returns None when one of them finds no free position.
    """
    placed: list[Box] = []
    for box_width, box_height in sizes:
        for _ in range(_MAX_PLACEMENT_TRIES):
            x1 = int(rng.integers(0, width - box_width + 1))
            y1 = int(rng.integers(0, height - box_height + 1))
            candidate = (x1, y1, x1 + box_width, y1 + box_height)
            if not any(boxes_overlap(candidate, other) for other in placed):
                placed.append(candidate)
                break
        else:
            return None
    return placed


def random_rectangles(
    rng: np.random.Generator,
    width: int,
    height: int,
    count: int,
    min_fraction: float = 0.15,
    max_fraction: float = 0.5,
) -> list[Rectangle]:
    """`count` non-overlapping rectangles of distinct palette colours.

    Each rectangle's width is uniform in [min_fraction, max_fraction] of the image width and its height likewise
    of the image height (integers). Layouts that do not fit are drawn again.
    """
    if not 1 <= count <= len(COLORS):
        raise ValueError(f"count must be in [1, {len(COLORS)}], got {count}.")
    colors = [COLORS[index] for index in rng.permutation(len(COLORS))[:count]]
    widths, heights = side_range(width, min_fraction, max_fraction), side_range(height, min_fraction, max_fraction)
    for _ in range(_MAX_LAYOUT_TRIES):
        sizes = [
            (int(rng.integers(widths[0], widths[1] + 1)), int(rng.integers(heights[0], heights[1] + 1)))
            for _ in range(count)
        ]
        boxes = place_boxes(rng, width, height, sizes)
        if boxes is not None:
            return [Rectangle(color, box) for color, box in zip(colors, boxes)]
    raise RuntimeError(f"Could not place {count} rectangles in a {width}x{height} image.")


def random_squares(
    rng: np.random.Generator,
    width: int,
    height: int,
    colors: list[str],
    min_fraction: float = 0.2,
    max_fraction: float = 0.35,
) -> list[Rectangle]:
    """Non-overlapping squares of the given colours, each side uniform in [min_fraction, max_fraction] of the
    shorter image side."""
    sides = side_range(min(width, height), min_fraction, max_fraction)
    for _ in range(_MAX_LAYOUT_TRIES):
        sizes = [(side, side) for side in rng.integers(sides[0], sides[1] + 1, size=len(colors)).tolist()]
        boxes = place_boxes(rng, width, height, sizes)
        if boxes is not None:
            return [Rectangle(color, box) for color, box in zip(colors, boxes)]
    raise RuntimeError(f"Could not place {len(colors)} squares in a {width}x{height} frame.")


__all__ = [
    "BACKGROUND_CHANNEL_RANGE",
    "BACKGROUND_NOISE_STD",
    "COLORS",
    "PALETTE",
    "TONE_FREQUENCIES_HZ",
    "Rectangle",
    "boxes_overlap",
    "paint",
    "place_boxes",
    "random_background",
    "random_rectangles",
    "random_squares",
    "side_range",
    "to_uint8",
]
