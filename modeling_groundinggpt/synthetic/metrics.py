"""Grounding metrics: box IoU, temporal IoU, and the share of predictions at or above an IoU threshold.

Acc@0.5 (boxes) and R@1@IoU=0.5 (spans) are both `hit_rate`: the top-1 prediction of each sample counts as a hit
when its IoU with the ground truth is >= the threshold; a missing prediction (None) is a miss.
"""

from collections.abc import Callable, Sequence


def _interval_iou(first: tuple[float, float], second: tuple[float, float]) -> tuple[float, float]:
    """(intersection, union) lengths of two intervals given in either order."""
    a_start, a_end = sorted(first)
    b_start, b_end = sorted(second)
    intersection = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    return intersection, (a_end - a_start) + (b_end - b_start) - intersection


def box_iou(first: Sequence[float], second: Sequence[float]) -> float:
    """Intersection over union of two `(x1, y1, x2, y2)` boxes.

    Swapped corners are reordered; touching boxes give 0; a box inside another gives the area ratio; when the
    union has zero area (both boxes degenerate) the IoU is 0.
    """
    x_overlap, _ = _interval_iou((first[0], first[2]), (second[0], second[2]))
    y_overlap, _ = _interval_iou((first[1], first[3]), (second[1], second[3]))
    intersection = x_overlap * y_overlap
    first_area = abs(first[2] - first[0]) * abs(first[3] - first[1])
    second_area = abs(second[2] - second[0]) * abs(second[3] - second[1])
    union = first_area + second_area - intersection
    return float(intersection / union) if union > 0 else 0.0


def span_iou(first: Sequence[float], second: Sequence[float]) -> float:
    """Temporal intersection over union of two `(start, end)` spans (either order); 0 when both are empty."""
    intersection, union = _interval_iou((first[0], first[1]), (second[0], second[1]))
    return float(intersection / union) if union > 0 else 0.0


def hit_rate(
    predictions: Sequence[Sequence[float] | None],
    targets: Sequence[Sequence[float]],
    iou: Callable[[Sequence[float], Sequence[float]], float],
    threshold: float = 0.5,
) -> float:
    """Share of samples whose prediction has `iou(prediction, target) >= threshold` (None counts as a miss)."""
    if len(predictions) != len(targets):
        raise ValueError(f"Got {len(predictions)} predictions for {len(targets)} targets.")
    if not targets:
        raise ValueError("hit_rate needs at least one sample.")
    hits = sum(
        prediction is not None and iou(prediction, target) >= threshold
        for prediction, target in zip(predictions, targets)
    )
    return hits / len(targets)


def box_accuracy(
    predictions: Sequence[Sequence[float] | None], targets: Sequence[Sequence[float]], threshold: float = 0.5
) -> float:
    """Acc@threshold of top-1 boxes (`hit_rate` with `box_iou`)."""
    return hit_rate(predictions, targets, box_iou, threshold)


def span_recall_at_1(
    predictions: Sequence[Sequence[float] | None], targets: Sequence[Sequence[float]], threshold: float = 0.5
) -> float:
    """R@1 at IoU threshold of top-1 spans (`hit_rate` with `span_iou`)."""
    return hit_rate(predictions, targets, span_iou, threshold)


__all__ = ["box_accuracy", "box_iou", "hit_rate", "span_iou", "span_recall_at_1"]
