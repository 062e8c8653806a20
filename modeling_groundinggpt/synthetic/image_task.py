"""Image grounding samples: "Where is the {color} box?" over a noisy image with 1-3 coloured rectangles."""

from pathlib import Path

import numpy as np
import PIL.Image

from .templates import IMAGE_MARKER, IMAGE_QUESTION, box_answer, conversation
from .world import Rectangle, paint, random_background, random_rectangles, to_uint8


IMAGE_SIDE_RANGE = (96, 256)
"""Inclusive range of an image's width and of its height, in pixels."""

IMAGE_DIR = "images"


def random_image_scene(
    rng: np.random.Generator, min_objects: int, max_objects: int
) -> tuple[np.ndarray, list[Rectangle]]:
    """A uint8 RGB image of random size (each side uniform in [96, 256]) with `min_objects`-`max_objects`
    non-overlapping rectangles of distinct colours, each side 15-50 % of the image's width/height."""
    width, height = (int(side) for side in rng.integers(IMAGE_SIDE_RANGE[0], IMAGE_SIDE_RANGE[1] + 1, size=2))
    count = int(rng.integers(min_objects, max_objects + 1))
    canvas = random_background(rng, width, height)
    rectangles = random_rectangles(rng, width, height, count)
    for rectangle in rectangles:
        paint(canvas, rectangle)
    return to_uint8(canvas), rectangles


def save_image(pixels: np.ndarray, root: Path, sample_id: str) -> str:
    """Write a PNG under `root/images/` and return its path relative to `root` (forward slashes)."""
    relative = f"{IMAGE_DIR}/{sample_id}.png"
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(pixels, mode="RGB").save(root / relative)
    return relative


def make_image_sample(rng: np.random.Generator, sample_id: str, root: Path) -> dict:
    """Draw one image grounding sample, write its image under `root` and return its record.

    The record is `{"id", "image", "conversations", "ground_truth"}`; `ground_truth` holds `task` ("image"),
    the asked `color`, its pixel `box`, the `image_size` (width, height) and every drawn object.
    """
    pixels, rectangles = random_image_scene(rng, 1, 3)
    target = rectangles[int(rng.integers(len(rectangles)))]
    image_size = [pixels.shape[1], pixels.shape[0]]
    return {
        "id": sample_id,
        "image": save_image(pixels, root, sample_id),
        "conversations": conversation(
            IMAGE_QUESTION.format(color=target.color),
            [IMAGE_MARKER],
            box_answer(target.color, target.box, image_size),
        ),
        "ground_truth": {
            "task": "image",
            "color": target.color,
            "box": list(target.box),
            "image_size": image_size,
            "objects": [rectangle.to_dict() for rectangle in rectangles],
        },
    }


__all__ = ["IMAGE_SIDE_RANGE", "make_image_sample", "random_image_scene", "save_image"]
