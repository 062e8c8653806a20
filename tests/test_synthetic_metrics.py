"""Grounding metrics on hand-computed cases, and scoring of generated answers against the ground truth."""

import pytest

from modeling_groundinggpt.synthetic import (
    box_accuracy,
    box_iou,
    evaluate_answers,
    generate_dataset,
    span_iou,
    span_recall_at_1,
)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges
        ((0, 0, 10, 10), (10, 10, 20, 20), 0.0),  # touching corners
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),  # disjoint
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),  # contained
        ((10, 10, 0, 0), (0, 0, 10, 10), 1.0),  # swapped corners
        ((10, 0, 0, 10), (5, 15, 15, 5), 25 / 175),  # swapped x of one, swapped y of the other
        ((5, 5, 5, 5), (0, 0, 10, 10), 0.0),  # zero-area point inside
        ((0, 0, 10, 0), (0, 0, 10, 0), 0.0),  # identical zero-area lines
        ((0.1, 0.2, 0.3, 0.4), (0.2, 0.2, 0.4, 0.4), 0.02 / 0.06),
    ],
)
def test_box_iou(first, second, expected):
    assert box_iou(first, second) == pytest.approx(expected)
    assert box_iou(second, first) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((0, 2), (0, 2), 1.0),
        ((0, 2), (1, 3), 1 / 3),
        ((0, 1), (1, 2), 0.0),  # touching
        ((0, 1), (3, 4), 0.0),  # disjoint
        ((0, 4), (1, 2), 0.25),  # contained
        ((2, 0), (0, 2), 1.0),  # swapped
        ((1, 1), (1, 1), 0.0),  # both empty
        ((1, 1), (0, 2), 0.0),  # empty inside
    ],
)
def test_span_iou(first, second, expected):
    assert span_iou(first, second) == pytest.approx(expected)
    assert span_iou(second, first) == pytest.approx(expected)


def test_hit_rates():
    targets = [(0, 0, 10, 10)] * 4
    # IoU exactly 0.5 counts as a hit; None (no box in the answer) is a miss.
    predictions = [(0, 0, 10, 10), (0, 0, 10, 20), (0, 0, 10, 21), None]
    assert box_accuracy(predictions, targets) == 0.5
    assert box_accuracy(predictions, targets, threshold=0.3) == 0.75
    assert span_recall_at_1([(0, 1), (0, 2), (3, 4)], [(0, 1), (0, 1), (0, 1)]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="predictions"):
        box_accuracy(predictions[:2], targets)
    with pytest.raises(ValueError, match="at least one"):
        span_recall_at_1([], [])


def test_evaluate_answers(tmp_path):
    records = [
        record for task in ("image", "video", "sound") for record in generate_dataset(task, 3, seed=11, root=tmp_path)
    ]
    answers = [record["conversations"][1]["value"] for record in records]
    scores = evaluate_answers(records, answers)
    assert set(scores) == {"image", "video", "sound"}
    for score in scores.values():
        assert score["num_samples"] == 3 and score["hit_rate"] == 1.0 and score["unparsed"] == 0
        # Rounding to 2 decimals of the duration costs a span of a quarter of the video at most 8 % of its IoU.
        assert score["mean_iou"] > 0.9

    # One answer without a box, one with a box far off, one right: 1/3.
    image_records = records[:3]
    far_box = "The red box[0.000, 0.000, 0.010, 0.010]."
    score = evaluate_answers(image_records, ["I do not know.", far_box, answers[2]])["image"]
    assert score["hit_rate"] == pytest.approx(1 / 3) and score["unparsed"] == 1
    video_record = records[3]
    start, end = video_record["ground_truth"]["span"]
    duration = video_record["ground_truth"]["duration"]
    first_half = f"The square is visible in {{{start / duration:.2f}, {(start + end) / 2 / duration:.2f}}}."
    assert evaluate_answers([video_record], [first_half])["video"]["mean_iou"] == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="answers"):
        evaluate_answers(records, answers[:-1])
