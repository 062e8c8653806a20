"""Grounding metrics against hand-computed values, IoU edge cases included."""

import pytest

from modeling_groundinggpt.evaluation.metrics import box_iou, hit_rate, mean_iou, temporal_iou


@pytest.mark.parametrize(
    ("box_a", "box_b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # identical
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),  # half overlap: 50 / (100 + 100 - 50)
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),  # touching corners
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # disjoint
        ([0, 0, 10, 10], [2, 2, 7, 7], 25 / 100),  # contained: inner / outer
        ([2, 2, 7, 7], [0, 0, 10, 10], 25 / 100),  # symmetric
        ([10, 10, 0, 0], [0, 0, 10, 10], 1.0),  # swapped corners mean the same box
        ([10, 0, 0, 10], [5, 0, 15, 10], 50 / 150),  # swapped x only
        ([5, 5, 5, 5], [0, 0, 10, 10], 0.0),  # zero-area point inside a box
        ([0, 5, 10, 5], [0, 0, 10, 10], 0.0),  # zero-height line
        ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),  # two zero-area boxes: union 0
        ([0.1, 0.2, 0.4, 0.6], [0.2, 0.2, 0.5, 0.6], (0.2 * 0.4) / (0.12 + 0.12 - 0.08)),  # fractions
    ],
)
def test_box_iou(box_a, box_b, expected):
    assert box_iou(box_a, box_b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("span_a", "span_b", "expected"),
    [
        ([0, 10], [0, 10], 1.0),
        ([0, 10], [5, 15], 5 / 15),
        ([0, 10], [10, 20], 0.0),  # touching
        ([0, 10], [2, 4], 2 / 10),  # contained
        ([10, 0], [0, 10], 1.0),  # swapped ends
        ([3, 3], [0, 10], 0.0),  # zero length
        ([3, 3], [3, 3], 0.0),
        ([24.3, 30.4], [25.0, 31.0], (30.4 - 25.0) / (31.0 - 24.3)),
    ],
)
def test_temporal_iou(span_a, span_b, expected):
    assert temporal_iou(span_a, span_b) == pytest.approx(expected)


def test_hit_rate_and_mean_iou():
    ious = [0.0, 0.3, 0.5, 0.49999, 0.7, 1.0]
    assert hit_rate(ious, 0.5) == pytest.approx(100 * 3 / 6)  # >= 0.5 counts
    assert hit_rate(ious, 0.3) == pytest.approx(100 * 5 / 6)
    assert hit_rate(ious, 0.7) == pytest.approx(100 * 2 / 6)
    assert mean_iou(ious) == pytest.approx(100 * sum(ious) / 6)
    assert hit_rate([], 0.5) == 0.0 and mean_iou([]) == 0.0
