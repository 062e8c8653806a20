"""Grounding text: boxes and spans written by `format_*` come back from `post_process_grounding`; the parser is
tolerant of any model output."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeling_groundinggpt.processing import format_box, format_span, parse_grounding, post_process_grounding


IMAGE_SIZES = {"landscape": (640, 480), "portrait": (375, 1000), "square": (512, 512), "wide": (4000, 300)}


def _tolerance(image_size):
    return max(1.0, max(image_size) / 2000) + 1e-9


@pytest.mark.parametrize("shape", sorted(IMAGE_SIZES))
@pytest.mark.parametrize("spaced", [True, False])
def test_box_round_trip(shape, spaced):
    image_size = IMAGE_SIZES[shape]
    width, height = image_size
    boxes = [(0, 0, width, height), (10.4, 20.6, 101.2, 99.9), (width * 0.3, height * 0.55, width * 0.71, height - 1)]
    for box in boxes:
        text = format_box(box, image_size)
        if not spaced:
            text = text.replace(" ", "")
        (result,) = post_process_grounding([f"The thing{text}."], image_sizes=[image_size])
        (parsed,) = result["boxes"]
        assert parsed["phrase"] == "The thing"
        assert max(abs(a - b) for a, b in zip(parsed["box"], box)) <= _tolerance(image_size), (text, parsed, box)


def test_box_is_relative_to_the_padded_square():
    # An 80x48 image is padded to 80x80 with 16 rows above it (the original `load_image_square` offset).
    assert format_box((10, 12, 40, 42), (80, 48)) == "[0.125, 0.350, 0.500, 0.725]"
    assert format_box((8, 0, 40, 48), (48, 80)) == "[0.300, 0.000, 0.700, 0.600]"


@pytest.mark.parametrize("duration", [2.0, 37.5, 3600.0])
def test_span_round_trip(duration):
    for start, end in [(0.0, duration), (0.1 * duration, 0.35 * duration), (duration / 3, duration / 2)]:
        text = format_span(start, end, duration)
        for variant in (text, text.replace(" ", "")):
            (result,) = post_process_grounding([f"It moves {variant}."], video_durations=[duration])
            (parsed,) = result["spans"]
            assert parsed["phrase"] == "It moves"
            assert abs(parsed["span"][0] - start) <= 0.01 * duration
            assert abs(parsed["span"][1] - end) <= 0.01 * duration


def test_format_span_matches_the_model_format():
    assert format_span(1.6, 3.6, 10.0) == "{0.16, 0.36}"


def test_phrases_and_consecutive_boxes():
    text = "A dog[0.1, 0.1, 0.2, 0.2] and two cups [0.3,0.3,0.4,0.4][0.5, 0.5, 0.6, 0.6]. It barks in {0.10, 0.20}."
    result = parse_grounding(text)
    assert [box["phrase"] for box in result["boxes"]] == ["A dog", "and two cups", "and two cups"]
    assert result["boxes"][1]["box"] == [0.3, 0.3, 0.4, 0.4]
    assert result["spans"] == [{"phrase": "It barks in", "span": [0.1, 0.2]}]
    assert result["text"] == text


def test_boxes_are_clamped_to_the_image_and_ordered():
    (result,) = post_process_grounding(["x [0.9, 0.0, 0.1, 1.0]"], image_sizes=[(100, 50)])
    # Square of side 100, image rows 25..75: y outside the image is clamped.
    assert result["boxes"][0]["box"] == [10.0, 0.0, 90.0, 50.0]


def test_without_sizes_values_stay_relative():
    (result,) = post_process_grounding("Here [0.1, 0.2, 0.3, 0.4] {0.5, 0.75}")
    assert result["boxes"][0]["box"] == [0.1, 0.2, 0.3, 0.4]
    assert result["spans"][0]["span"] == [0.5, 0.75]


def test_wrong_number_of_sizes_is_a_clear_error():
    with pytest.raises(ValueError, match="2 texts but 1 image_sizes"):
        post_process_grounding(["a", "b"], image_sizes=[(10, 10)])


NEAR_MISSES = [
    "[0.1, 0.2",
    "[0.1, 0.2, 0.3]",
    "[0.1, 0.2, 0.3, 0.4, 0.5]",
    "{nan, 1}",
    "[nan, 0.1, 0.2, 0.3]",
    "[1e999, 0.1, 0.2, 0.3]",
    "{1e999, 2e999}",
    "[-1e-999, 0, 0, 0]",
    "[., 0.1, 0.2, 0.3]",
    "[0.1,,0.2,0.3,0.4]",
    "{0.1 0.2}",
    "[[[[",
    "]]]}}}",
    "[0.1, 0.2, 0.3, 0.4",
    "",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_skipped(text):
    result = parse_grounding(text, image_size=(640, 480), video_duration=10.0)
    for box in result["boxes"]:
        assert all(0 <= value <= 640 for value in box["box"])
    for span in result["spans"]:
        assert all(0 <= value <= 10.0 for value in span["span"])


_fragments = st.sampled_from(
    ["[", "]", "{", "}", ",", ", ", " ", ".", "-", "+", "e", "E", "nan", "inf", "1e999", "0.5", "1", "0", "\n", "box"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(), st.lists(_fragments, max_size=40).map("".join)),
    st.one_of(st.none(), st.tuples(st.integers(1, 5000), st.integers(1, 5000))),
    st.one_of(st.none(), st.floats(min_value=1e-3, max_value=1e6)),
)
def test_parser_never_raises_on_model_output(text, image_size, duration):
    result = parse_grounding(text, image_size=image_size, video_duration=duration)
    assert set(result) == {"text", "boxes", "spans"}
    for box in result["boxes"]:
        assert len(box["box"]) == 4 and box["box"][0] <= box["box"][2] and box["box"][1] <= box["box"][3]
        assert all(type(value) is float for value in box["box"])


BAD_SIZES = [(0, 10), (-1, 5), (math.inf, 10), (10, -math.inf), (math.nan, 10), (80.5, 48), (80,), (80, 48, 3),
             "80x48", 80, (True, 48), ("80", "48")]


@pytest.mark.parametrize("size", BAD_SIZES, ids=repr)
def test_an_invalid_image_size_is_an_error_never_relative_boxes(size):
    with pytest.raises(ValueError, match=r"^image_size must be \(width, height\) in whole pixels"):
        parse_grounding("x[0.1, 0.2, 0.3, 0.4]", image_size=size)
    with pytest.raises(ValueError, match=r"^image_sizes\[1\] must be \(width, height\) in whole pixels"):
        post_process_grounding(["a", "x[0.1, 0.2, 0.3, 0.4]"], image_sizes=[(80, 48), size])


@pytest.mark.parametrize("duration", [0, -2.0, math.inf, -math.inf, math.nan, "10 s", [10.0]], ids=repr)
def test_an_invalid_duration_is_an_error_never_relative_spans(duration):
    with pytest.raises(ValueError, match="^video_duration must be a positive, finite number of seconds"):
        parse_grounding("x{0.1, 0.2}", video_duration=duration)
    with pytest.raises(ValueError, match=r"^video_durations\[0\] must be a positive, finite number of seconds"):
        post_process_grounding(["x{0.1, 0.2}", "y"], video_durations=[duration, None])


def test_sizes_and_durations_must_come_one_per_text():
    with pytest.raises(ValueError, match=r"Got 1 texts but 2 image_sizes; .* e.g. \[\(width, height\)\] for one text"):
        post_process_grounding(["x[0.1, 0.2, 0.3, 0.4]"], image_sizes=(80, 48))
    with pytest.raises(ValueError, match="Got 2 texts but 1 video_durations"):
        post_process_grounding(["a", "b"], video_durations=[2.0])
    with pytest.raises(ValueError, match="video_durations must be a list with one entry"):
        post_process_grounding(["a"], video_durations=2.0)


@pytest.mark.parametrize("text", [None, b"x[0.1, 0.2, 0.3, 0.4]", [1, 2, 3]], ids=repr)
def test_texts_must_be_decoded_strings(text):
    with pytest.raises(TypeError, match=r"^texts\[0\] must be a decoded string"):
        post_process_grounding([text])
    with pytest.raises(TypeError, match="^text must be a decoded string"):
        parse_grounding(text)


def test_a_decimal_point_does_not_end_the_phrase():
    result = parse_grounding("It is 2.5 m wide. The cup 0.3 m high[0.1, 0.2, 0.3, 0.4] stands.")
    assert [box["phrase"] for box in result["boxes"]] == ["The cup 0.3 m high"]


@pytest.mark.parametrize("malformed", ["[nan, 0.1, 0.2, 0.3]", "[1e999, 0.1, 0.2, 0.3]", "[0.1, 0.2, 0.3]",
                                       "[0.1, 0.2, 0.3, 0.4, 0.5]", "{0.1}", "{inf, 0.2}"])
def test_a_skipped_malformed_box_keeps_its_phrase_to_itself(malformed):
    result = parse_grounding(f"The cat{malformed} and the dog[0.1, 0.2, 0.3, 0.4] {{0.1, 0.2}}")
    assert result["boxes"] == [{"phrase": "and the dog", "box": [0.1, 0.2, 0.3, 0.4]}]
    assert result["spans"] == [{"phrase": "and the dog", "span": [0.1, 0.2]}]


def test_clamped_coordinates_stay_floats():
    (result,) = post_process_grounding(["x[0, 0, 1.5, 2]"], image_sizes=[(80, 48)])
    assert result["boxes"][0]["box"] == [0.0, 0.0, 80.0, 48.0]
    assert all(type(value) is float for value in result["boxes"][0]["box"])


def test_format_refuses_values_it_cannot_write():
    with pytest.raises(ValueError, match="box_xyxy_pixels must be 4 finite numbers"):
        format_box((0, 0, math.nan, 5), (80, 48))
    with pytest.raises(ValueError, match="image_size must be"):
        format_box((0, 0, 5, 5), (math.inf, 48))
    with pytest.raises(ValueError, match="duration_s must be a positive, finite number of seconds"):
        format_span(0.0, 1.0, math.inf)
    with pytest.raises(ValueError, match=r"\(start_s, end_s\) must be 2 finite numbers"):
        format_span(math.nan, 1.0, 10.0)
