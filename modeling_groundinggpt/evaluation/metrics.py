"""Grounding metrics: box IoU, temporal IoU and the benchmark scores built on them.

Boxes are `[x1, y1, x2, y2]` and spans `[start, end]`; corners given in the wrong order are sorted first, so a
"swapped" box or span means the same region. A zero-area box (or zero-length span) has IoU 0 with everything, also
with itself, because its union is 0 or its intersection is 0.
"""

from collections.abc import Iterable, Sequence


def _ordered(low: float, high: float) -> tuple[float, float]:
    return (low, high) if low <= high else (high, low)


def box_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """Intersection over union of two boxes `[x1, y1, x2, y2]` (any unit, corners in any order).

    Touching boxes (shared edge, no overlap) give 0; a box contained in another gives area(inner) / area(outer).
    """
    ax1, ax2 = _ordered(float(box_a[0]), float(box_a[2]))
    ay1, ay2 = _ordered(float(box_a[1]), float(box_a[3]))
    bx1, bx2 = _ordered(float(box_b[0]), float(box_b[2]))
    by1, by2 = _ordered(float(box_b[1]), float(box_b[3]))
    intersection = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - intersection
    return intersection / union if union > 0 else 0.0


def temporal_iou(span_a: Sequence[float], span_b: Sequence[float]) -> float:
    """Intersection over union of two time spans `[start, end]` (any unit, ends in any order)."""
    a1, a2 = _ordered(float(span_a[0]), float(span_a[1]))
    b1, b2 = _ordered(float(span_b[0]), float(span_b[1]))
    intersection = max(0.0, min(a2, b2) - max(a1, b1))
    union = (a2 - a1) + (b2 - b1) - intersection
    return intersection / union if union > 0 else 0.0


def hit_rate(ious: Iterable[float], threshold: float) -> float:
    """Percentage of IoUs >= `threshold` (REC Acc@0.5, Charades-STA R@1 IoU=m). An empty input gives 0."""
    values = list(ious)
    return 100.0 * sum(value >= threshold for value in values) / len(values) if values else 0.0


def mean_iou(ious: Iterable[float]) -> float:
    """Mean IoU in percent. An empty input gives 0."""
    values = list(ious)
    return 100.0 * sum(values) / len(values) if values else 0.0


__all__ = ["box_iou", "hit_rate", "mean_iou", "temporal_iou"]
