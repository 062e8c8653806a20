"""`groundinggpt demo`: run a model on the bundled example media and write the pictures of its answers.

The examples are listed in `demo_media/manifest.json` (filled by the step that trains and ships the demo model):

```json
{"examples": [
  {"name": "image", "image": "shapes.png", "question": "Where is the red circle?"},
  {"name": "video", "video": "moving.mp4", "question": "When does the square move?"},
  {"name": "sound", "image": "scene.png", "audio": "beep.wav", "question": "Which object makes the sound?"}
]}
```

Media paths are relative to the manifest's folder. An example with a `video` gets a timeline picture, one with an
`image` (and optionally an `audio`) a picture of its boxes.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inference import GenerationOptions, GroundingAnswer, GroundingGPT, GroundingRequest
from .visualization import draw_boxes, draw_timeline


DEMO_MEDIA_DIR = Path(__file__).resolve().parent / "demo_media"
DEFAULT_MANIFEST = DEMO_MEDIA_DIR / "manifest.json"


@dataclass(frozen=True)
class DemoExample:
    """One manifest entry, media paths resolved."""

    name: str
    question: str
    image: Path | None = None
    video: Path | None = None
    audio: Path | None = None


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
        examples.append(DemoExample(name=entry["name"], question=entry["question"], **media))
    if not examples:
        raise ValueError(f"{path} lists no examples.")
    return examples


def run_demo(
    grounder: GroundingGPT,
    output_dir: str | Path,
    manifest: str | Path = DEFAULT_MANIFEST,
    options: GenerationOptions | None = None,
) -> list[dict[str, Any]]:
    """Answer every manifest example and write `{name}.png` (boxes or timeline) and `results.json`.

    Returns:
        One `{"name", "question", "answer", "boxes", "spans", "drawing"}` dict per example.
    """
    examples = load_manifest(manifest)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for example in examples:
        request = GroundingRequest(example.question, image=example.image, video=example.video, audio=example.audio)
        answer: GroundingAnswer = grounder.ground_batch([request], options)[0]
        if example.video is not None:
            picture = draw_timeline(example.video, answer.spans, duration=answer.video_duration)
        else:
            picture = draw_boxes(example.image, answer.boxes)
        drawing = output_dir / f"{example.name}.png"
        picture.save(drawing)
        results.append({"name": example.name, "question": example.question, **answer.to_dict(), "drawing": str(drawing)})
    (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


__all__ = ["DEFAULT_MANIFEST", "DEMO_MEDIA_DIR", "DemoExample", "load_manifest", "run_demo"]
