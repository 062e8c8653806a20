"""Scoring generated answers against a synthetic dataset's ground truth, through `post_process_grounding`."""

from collections.abc import Sequence
from typing import TypedDict

from modeling_groundinggpt.processing.grounding import post_process_grounding

from .metrics import box_iou, span_iou


class TaskScore(TypedDict):
    """Scores of one task: `hit_rate` is Acc@threshold for boxes and R@1@IoU=threshold for spans."""

    num_samples: int
    hit_rate: float
    mean_iou: float
    unparsed: int


def predicted_region(record: dict, text: str) -> list[float] | None:
    """The first box (image and sound tasks, in pixels) or span (video task, in seconds) of a generated answer,
    or None when the answer holds none."""
    truth = record["ground_truth"]
    if truth["task"] == "video":
        (result,) = post_process_grounding([text], video_durations=[truth["duration"]])
        return result["spans"][0]["span"] if result["spans"] else None
    (result,) = post_process_grounding([text], image_sizes=[truth["image_size"]])
    return result["boxes"][0]["box"] if result["boxes"] else None


def sample_iou(record: dict, text: str) -> float | None:
    """IoU of the answer's first box/span with the record's ground truth; None when the answer holds none."""
    truth = record["ground_truth"]
    region = predicted_region(record, text)
    if region is None:
        return None
    return span_iou(region, truth["span"]) if truth["task"] == "video" else box_iou(region, truth["box"])


def evaluate_answers(records: Sequence[dict], texts: Sequence[str], threshold: float = 0.5) -> dict[str, TaskScore]:
    """Score one generated answer per record, per task.

    Returns:
        `{task: {"num_samples", "hit_rate", "mean_iou", "unparsed"}}` for every task present; an answer without a
        box/span counts as IoU 0 and is also counted in `unparsed`.
    """
    if len(records) != len(texts):
        raise ValueError(f"Got {len(texts)} answers for {len(records)} records.")
    per_task: dict[str, list[float | None]] = {}
    for record, text in zip(records, texts):
        per_task.setdefault(record["ground_truth"]["task"], []).append(sample_iou(record, text))
    scores: dict[str, TaskScore] = {}
    for task, ious in per_task.items():
        values = [0.0 if iou is None else iou for iou in ious]
        scores[task] = {
            "num_samples": len(values),
            "hit_rate": sum(value >= threshold for value in values) / len(values),
            "mean_iou": sum(values) / len(values),
            "unparsed": sum(iou is None for iou in ious),
        }
    return scores


__all__ = ["TaskScore", "evaluate_answers", "predicted_region", "sample_iou"]
