"""`groundinggpt demo`: run a model on the bundled example media and write the pictures of its answers.

The examples are listed in `demo_media/manifest.json` (filled by the step that trains and ships the demo model):

```json
{"examples": [
  {"name": "image", "image": "shapes.png", "question": "Where is the red circle?", "expected": [10, 20, 60, 80]},
  {"name": "video", "video": "moving.mp4", "question": "When does the square move?", "expected": [1.5, 3.0]},
  {"name": "sound", "image": "scene.png", "audio": "beep.wav", "question": "Which object makes the sound?"}
]}
```

Media paths are relative to the manifest's folder. An example with a `video` gets a timeline picture, one with an
`image` (and optionally an `audio`) a picture of its boxes. `expected`, optional, is the right answer: a box
`[x1, y1, x2, y2]` in pixels of the image, or a span `[start, end]` in seconds of the video. It is drawn beside the
answer and the answer is scored against it (IoU of the first box or span; a hit from 0.5, as in the benchmarks),
so that a miss shows as a miss.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .evaluation.metrics import box_iou, temporal_iou
from .inference import GenerationOptions, GroundingAnswer, GroundingGPT, GroundingRequest
from .visualization import draw_boxes, draw_timeline


DEMO_MEDIA_DIR = Path(__file__).resolve().parent / "demo_media"
DEFAULT_MANIFEST = DEMO_MEDIA_DIR / "manifest.json"
HIT_IOU = 0.5
# Demo pictures of small images are enlarged until their shorter side reaches this, so labels stay legible.
MIN_PICTURE_SIDE = 320


@dataclass(frozen=True)
class DemoExample:
    """One manifest entry, media paths resolved; `expected` is a pixel box (image) or a span in seconds (video)."""

    name: str
    question: str
    image: Path | None = None
    video: Path | None = None
    audio: Path | None = None
    expected: tuple[float, ...] | None = None


def _expected(path: Path, entry: dict) -> tuple[float, ...] | None:
    if "expected" not in entry:
        return None
    value, count = entry["expected"], 2 if "video" in entry else 4
    if not (
        isinstance(value, list)
        and len(value) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        kind = "span [start, end] in seconds" if count == 2 else "box [x1, y1, x2, y2] in pixels"
        raise ValueError(f"{path}: `expected` of example {entry['name']!r} must be a {kind}, got {value!r}.")
    return tuple(float(v) for v in value)


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> list[DemoExample]:
    """Read and check a demo manifest.

    Raises:
        FileNotFoundError: no manifest, or a listed media file is missing. ValueError: malformed manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No demo manifest at {path}: this installation bundles no demo media; pass --manifest FILE "
            "(format: see `modeling_groundinggpt/demo.py`)."
        )
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["examples"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a demo manifest {{\"examples\": [...]}} ({error}).") from None
    examples = []
    for index, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("question"), str)):
            raise ValueError(f"{path}: example {index} needs a `name` and a `question`.")
        if ("image" in entry) == ("video" in entry):
            raise ValueError(f"{path}: example {entry['name']!r} needs exactly one of `image` and `video`.")
        if "audio" in entry and "video" in entry:
            raise ValueError(f"{path}: example {entry['name']!r}: `audio` goes with an `image`, not a `video`.")
        media = {kind: path.parent / entry[kind] for kind in ("image", "video", "audio") if kind in entry}
        for kind, media_path in media.items():
            if not media_path.is_file():
                raise FileNotFoundError(f"{path}: the {kind} of example {entry['name']!r} is missing: {media_path}")
        examples.append(
            DemoExample(name=entry["name"], question=entry["question"], expected=_expected(path, entry), **media)
        )
    if not examples:
        raise ValueError(f"{path} lists no examples.")
    return examples


def answer_iou(example: DemoExample, answer: GroundingAnswer) -> float | None:
    """IoU of the answer's first box (or span) with the expected one; 0 without one; None without `expected`."""
    if example.expected is None:
        return None
    if example.video is not None:
        return temporal_iou(answer.spans[0]["span"], example.expected) if answer.spans else 0.0
    return box_iou(answer.boxes[0]["box"], example.expected) if answer.boxes else 0.0


def verdict(iou: float) -> str:
    """`"IoU 0.87, a hit"` or `"IoU 0.37, a miss"` (a hit from `HIT_IOU`)."""
    return f"IoU {iou:.2f}, {'a hit' if iou >= HIT_IOU else 'a miss'}"


def run_demo(
    grounder: GroundingGPT,
    output_dir: str | Path,
    manifest: str | Path = DEFAULT_MANIFEST,
    options: GenerationOptions | None = None,
) -> list[dict[str, Any]]:
    """Answer every manifest example and write `{name}.png` (boxes or timeline, with the expected answer) and
    `results.json` (pixels rounded to 0.01, seconds and IoU to 0.001).

    Returns:
        One `{"name", "question", "answer", "boxes", "spans", "expected", "iou", "drawing"}` dict per example
        (`expected` and `iou` are None when the manifest gives no expected answer).
    """
    examples = load_manifest(manifest)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for example in examples:
        request = GroundingRequest(example.question, image=example.image, video=example.video, audio=example.audio)
        answer: GroundingAnswer = grounder.ground_batch([request], options)[0]
        iou = answer_iou(example, answer)
        expected_label = "expected" if iou is None else f"expected ({verdict(iou)})"
        if example.video is not None:
            picture = draw_timeline(example.video, answer.spans, duration=answer.video_duration,
                                    expected=example.expected, expected_label=expected_label)
        else:
            short_side = min(answer.image_size) if answer.image_size else MIN_PICTURE_SIDE
            picture = draw_boxes(example.image, answer.boxes, expected=example.expected, expected_label=expected_label,
                                 scale=max(1, math.ceil(MIN_PICTURE_SIDE / short_side)))
        drawing = output_dir / f"{example.name}.png"
        picture.save(drawing)
        results.append({
            "name": example.name,
            "question": example.question,
            **answer.to_dict(rounded=True),
            "expected": list(example.expected) if example.expected is not None else None,
            "iou": round(iou, 3) if iou is not None else None,
            "drawing": str(drawing),
        })
    (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


__all__ = [
    "DEFAULT_MANIFEST",
    "DEMO_MEDIA_DIR",
    "HIT_IOU",
    "DemoExample",
    "answer_iou",
    "load_manifest",
    "run_demo",
    "verdict",
]
