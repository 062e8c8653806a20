"""The three benchmarks: how a sample becomes a request, how an answer is scored, and which metrics are reported.

Default prompts, for the released GroundingGPT-7B (a checkpoint may carry its own, see
`harness.resolve_prompt`). The paper does not publish its evaluation prompts. REC uses the prompt the author
says RefCOCO was tested with (lzw-lzw/GroundingGPT issue #11: "Can you describe the region that corresponds to
<obj> in this image?", the expression in place of `<obj>`); sound localization uses the original demo's example
verbatim; for Charades-STA nothing is published, so the default asks for the span in the answer format the model
was trained on (`{start, end}` relative to the duration). Override them with `--prompt`; `{expression}` /
`{query}` is replaced by the sample's text.

Scoring: the first box (or span) of the answer is the prediction; an answer without one scores IoU 0.
"""

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..inference import GroundingAnswer, GroundingRequest
from .formats import RefSample, Sample, SoundSample, TemporalSample
from .metrics import box_iou, hit_rate, mean_iou, temporal_iou


def _media(root: Path, relative: str) -> str:
    return str(root / relative)


@dataclass(frozen=True)
class EvalTask(ABC):
    """A benchmark: its name, title, prompt placeholder and default prompt; subclasses define the scoring."""

    name: str
    title: str
    placeholder: str | None
    default_prompt: str

    @abstractmethod
    def question(self, sample: Sample, prompt: str) -> str:
        """The prompt with the sample's text in place of the placeholder."""

    @abstractmethod
    def request(self, sample: Sample, prompt: str, media_root: Path) -> GroundingRequest:
        """The model request of one sample, media paths resolved against `media_root`."""

    @abstractmethod
    def score(self, sample: Sample, answer: GroundingAnswer) -> dict[str, Any]:
        """The per-sample record fields: `prediction` (or None), `target` and `iou`."""

    @abstractmethod
    def split_metrics(self, ious: Sequence[float]) -> dict[str, float]:
        """The reported metrics (percent) of one split from its per-sample IoUs."""

    def check_prompt(self, prompt: str) -> None:
        """Raise ValueError if a custom prompt lacks the sample placeholder."""
        if self.placeholder is not None and self.placeholder not in prompt:
            raise ValueError(f"The {self.name} prompt must contain {self.placeholder}, got {prompt!r}.")

    def summarize(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One `{"split", "num_samples", "metrics"}` row per split, in order of first appearance."""
        by_split: dict[str, list[float]] = defaultdict(list)
        for record in records:
            by_split[record["split"]].append(record["iou"])
        return [
            {"split": split, "num_samples": len(ious), "metrics": self.split_metrics(ious)}
            for split, ious in by_split.items()
        ]


class BoxAccuracyTask(EvalTask):
    """Acc@0.5: the share of samples whose predicted box has IoU >= 0.5 with the target."""

    def split_metrics(self, ious: Sequence[float]) -> dict[str, float]:
        return {"Acc@0.5": hit_rate(ious, 0.5)}


class RefCOCOTask(BoxAccuracyTask):
    def question(self, sample: RefSample, prompt: str) -> str:
        return prompt.replace("{expression}", sample.expression)

    def request(self, sample: RefSample, prompt: str, media_root: Path) -> GroundingRequest:
        return GroundingRequest(self.question(sample, prompt), image=_media(media_root, sample.image))

    def score(self, sample: RefSample, answer: GroundingAnswer) -> dict[str, Any]:
        prediction = answer.boxes[0]["box"] if answer.boxes else None
        iou = box_iou(prediction, sample.box) if prediction else 0.0
        return {"prediction": prediction, "target": sample.box, "iou": iou}


class SoundTask(BoxAccuracyTask):
    """Sound localization: the prediction counts with its best IoU over the sample's boxes."""

    def question(self, sample: SoundSample, prompt: str) -> str:
        return prompt

    def request(self, sample: SoundSample, prompt: str, media_root: Path) -> GroundingRequest:
        return GroundingRequest(
            prompt, image=_media(media_root, sample.image), audio=_media(media_root, sample.audio)
        )

    def score(self, sample: SoundSample, answer: GroundingAnswer) -> dict[str, Any]:
        prediction = answer.boxes[0]["box"] if answer.boxes else None
        iou = max(box_iou(prediction, box) for box in sample.boxes) if prediction else 0.0
        return {"prediction": prediction, "target": sample.boxes, "iou": iou}


class CharadesTask(EvalTask):
    """R@1 at IoU 0.3/0.5/0.7 and mIoU of the first predicted span (seconds)."""

    def question(self, sample: TemporalSample, prompt: str) -> str:
        return prompt.replace("{query}", sample.query)

    def request(self, sample: TemporalSample, prompt: str, media_root: Path) -> GroundingRequest:
        return GroundingRequest(
            self.question(sample, prompt), video=_media(media_root, sample.video), video_duration=sample.duration
        )

    def score(self, sample: TemporalSample, answer: GroundingAnswer) -> dict[str, Any]:
        prediction = answer.spans[0]["span"] if answer.spans and answer.video_duration else None
        iou = temporal_iou(prediction, sample.span) if prediction else 0.0
        return {"prediction": prediction, "target": sample.span, "iou": iou}

    def split_metrics(self, ious: Sequence[float]) -> dict[str, float]:
        return {
            "R@1,IoU=0.3": hit_rate(ious, 0.3),
            "R@1,IoU=0.5": hit_rate(ious, 0.5),
            "R@1,IoU=0.7": hit_rate(ious, 0.7),
            "mIoU": mean_iou(ious),
        }


TASKS: dict[str, EvalTask] = {
    "refcoco": RefCOCOTask(
        name="refcoco",
        title="Referring expression comprehension (RefCOCO/RefCOCO+/RefCOCOg)",
        placeholder="{expression}",
        default_prompt="Can you describe the region that corresponds to {expression} in this image?",
    ),
    "charades": CharadesTask(
        name="charades",
        title="Temporal video grounding (Charades-STA)",
        placeholder="{query}",
        default_prompt=(
            'During which part of the video does "{query}" happen? '
            "Give the start and end as fractions of the video length in {start, end} format."
        ),
    ),
    "sound": SoundTask(
        name="sound",
        title="Sound source localization (VGG-SS)",
        placeholder=None,
        default_prompt=(
            "Where is the sound's point of emission in this image? "
            "Include the object positions in [x0, y0, x1, y1] format."
        ),
    ),
}


__all__ = ["TASKS", "CharadesTask", "EvalTask", "RefCOCOTask", "SoundTask"]
