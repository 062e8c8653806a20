"""Drawings: labelled boxes change the pixels on the box outline; the timeline marks the span and its frames."""

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES
from modeling_groundinggpt.visualization import PALETTE, draw_boxes, draw_timeline, read_thumbnails


def test_draw_boxes_outlines_each_box_in_its_colour():
    image = Image.new("RGB", (200, 120), (255, 255, 255))
    boxes = [{"phrase": "", "box": [20.0, 30.0, 120.0, 100.0]}, {"phrase": "the cup", "box": [130.0, 40.0, 190.0, 110.0]}]
    drawn = np.asarray(draw_boxes(image, boxes, line_width=2))
    assert drawn.shape == (120, 200, 3)
    # Every outline pixel has the box colour, the inside and the outside are untouched.
    assert (drawn[30:101, 20] == PALETTE[0]).all() and (drawn[100, 20:121] == PALETTE[0]).all()
    assert (drawn[60:101, 130] == PALETTE[1]).all() and (drawn[110, 130:191] == PALETTE[1]).all()
    assert (drawn[50:90, 40:100] == 255).all() and (drawn[0:25, 0:15] == 255).all()
    # The phrase label sits above the second box, in its colour.
    assert (drawn[20:40, 130:190] == PALETTE[1]).all(axis=-1).sum() > 50


def test_draw_boxes_on_the_fixture_file_keeps_its_size():
    original = Image.open(FIXTURES / "media" / "image.png").convert("RGB")
    drawn = draw_boxes(FIXTURES / "media" / "image.png", [{"phrase": "x", "box": [10.0, 8.0, 40.0, 40.0]}])
    assert drawn.size == original.size
    changed = np.any(np.asarray(drawn) != np.asarray(original), axis=-1)
    assert changed[8:41, 40].all()  # the right edge of the box


def test_timeline_marks_the_span():
    thumbnails, times, duration = read_thumbnails(FIXTURES / "media" / "video.mp4", 4, 48)
    assert len(thumbnails) == 4 and duration == pytest.approx(2.0)
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5])
    picture = draw_timeline(FIXTURES / "media" / "video.mp4", [{"phrase": "move", "span": [0.5, 1.0]}], num_frames=4,
                            frame_height=48)
    pixels = np.asarray(picture)
    gap = 4
    axis = pixels[48 + 2 * gap + 12]  # the middle row of the span bar
    span_columns = np.flatnonzero((axis == PALETTE[0]).all(axis=-1))
    width = picture.width - 2 * gap
    assert span_columns.min() == pytest.approx(gap + 0.25 * width, abs=2)
    assert span_columns.max() == pytest.approx(gap + 0.5 * width, abs=2)
    # Frames at 0.5 s and 1.0 s are framed in the span colour, the frame at 0 s is not.
    first_width = thumbnails[0].width
    assert not (pixels[gap + 1, gap + 1] == PALETTE[0]).all()
    second_left = gap + first_width + gap
    assert (pixels[gap + 1, second_left + 1] == PALETTE[0]).all()


def test_timeline_of_a_missing_or_broken_video(tmp_path):
    with pytest.raises(FileNotFoundError):
        draw_timeline(tmp_path / "missing.mp4", [])
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="Could not open the video file .*broken.mp4"):
        draw_timeline(tmp_path / "broken.mp4", [])


@pytest.mark.parametrize("background", [PALETTE[0], (0, 0, 0), (255, 255, 255)])
def test_outlines_stay_visible_on_any_colour(background):
    """On a background of the box's own colour, on black and on white, the outline differs from the background
    on both of its sides: a dark line outside it and a light line inside it."""
    image = Image.new("RGB", (200, 120), background)
    drawn = np.asarray(draw_boxes(image, [{"phrase": "", "box": [20.0, 30.0, 120.0, 100.0]}], line_width=3))
    column = drawn[60, 15:30]  # across the left edge: outside, dark line, 3 colour pixels, light line, inside
    assert (column[4] == (0, 0, 0)).all() and (column[5:8] == PALETTE[0]).all() and (column[8] == 255).all()
    assert (column[4] != background).any() or (column[8] != background).any()


def test_expected_box_is_drawn_in_light_and_dark_dashes_with_its_label():
    image = Image.new("RGB", (200, 120), (90, 90, 90))
    drawn = np.asarray(draw_boxes(image, [{"phrase": "cup", "box": [20.0, 20.0, 60.0, 60.0]}],
                                  expected=[100.0, 30.0, 180.0, 80.0], expected_label="expected (IoU 0.00, a miss)",
                                  line_width=2))
    top_edge = drawn[30, 100:181]
    assert ((top_edge == 0).all(axis=-1).sum() > 20) and ((top_edge == 255).all(axis=-1).sum() > 20)
    assert (drawn[50:60, 120:160] == 90).all()  # inside untouched
    label_rows = drawn[83:100, 100:200]  # the white label under the box, with dark text
    assert (label_rows == 255).all(axis=-1).sum() > 200 and (label_rows == 0).all(axis=-1).sum() > 20


def test_scale_enlarges_the_picture_and_its_boxes():
    image = Image.new("RGB", (40, 30), (255, 255, 255))
    drawn = draw_boxes(image, [{"phrase": "", "box": [10.0, 10.0, 20.0, 20.0]}], line_width=2, scale=3)
    assert drawn.size == (120, 90)
    assert (np.asarray(drawn)[45, 30] == PALETTE[0]).all()  # the left edge at x = 10 * 3


def test_timeline_marks_the_expected_span_under_the_axis():
    picture = draw_timeline(FIXTURES / "media" / "video.mp4", [{"phrase": "move", "span": [0.5, 1.0]}], num_frames=4,
                            frame_height=48, expected=[1.0, 2.0])
    pixels = np.asarray(picture)
    gap = 4
    dashes = pixels[48 + 2 * gap + 24]  # the top row of the expected bar, on the white background
    dark = np.flatnonzero((dashes == 0).all(axis=-1))
    width = picture.width - 2 * gap
    assert dark.min() == pytest.approx(gap + 0.5 * width, abs=2) and dark.max() == pytest.approx(gap + width, abs=7)
    assert len(dark) == pytest.approx(0.5 * 0.5 * width, rel=0.2)  # dashes over half of the bar
