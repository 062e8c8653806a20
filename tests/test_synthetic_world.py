"""Synthetic world generator: determinism, the issue's spec (sizes, colours, layouts, spans, tones), the JSON
format, and answers that parse back to the ground truth."""

import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest
import soundfile

from modeling_groundinggpt.processing import format_box, format_span, post_process_grounding
from modeling_groundinggpt.synthetic import (
    PALETTE,
    TONE_FREQUENCIES_HZ,
    generate_dataset,
    load_dataset,
    record_messages,
    write_dataset,
)
from modeling_groundinggpt.synthetic.world import boxes_overlap


NUM_SAMPLES = 12
MEDIA_KEYS = ("image", "video", "sound")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    root = tmp_path_factory.mktemp("synthetic")
    return root, {task: generate_dataset(task, NUM_SAMPLES, seed=7, root=root) for task in MEDIA_KEYS}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _media_digests(root: Path, records: list[dict]) -> list[str]:
    return [_digest(root / record[key]) for record in records for key in MEDIA_KEYS if key in record]


@pytest.mark.parametrize("task", MEDIA_KEYS)
def test_deterministic_for_a_seed_and_prefix_stable(task, tmp_path):
    first = generate_dataset(task, 4, seed=3, root=tmp_path / "a")
    again = generate_dataset(task, 4, seed=3, root=tmp_path / "b")
    assert first == again
    assert _media_digests(tmp_path / "a", first) == _media_digests(tmp_path / "b", again)
    # A sample depends on (task, seed, index) only: a shorter dataset is a prefix, `start` continues it.
    assert generate_dataset(task, 2, seed=3, root=tmp_path / "c") == first[:2]
    assert generate_dataset(task, 2, seed=3, root=tmp_path / "d", start=2) == first[2:]
    other = generate_dataset(task, 4, seed=4, root=tmp_path / "e")
    assert [record["ground_truth"] for record in other] != [record["ground_truth"] for record in first]


def test_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="task must be one of"):
        generate_dataset("audio", 1, seed=0, root=tmp_path)


def _check_rectangles(pixels: np.ndarray, objects: list[dict], count_range: tuple[int, int]) -> None:
    height, width = pixels.shape[:2]
    assert count_range[0] <= len(objects) <= count_range[1]
    assert len({obj["color"] for obj in objects}) == len(objects)
    background = np.ones((height, width), dtype=bool)
    for index, obj in enumerate(objects):
        x1, y1, x2, y2 = obj["box"]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert math.ceil(0.15 * width) <= x2 - x1 <= 0.5 * width
        assert math.ceil(0.15 * height) <= y2 - y1 <= 0.5 * height
        assert (pixels[y1:y2, x1:x2] == PALETTE[obj["color"]]).all()
        background[y1:y2, x1:x2] = False
        assert not any(boxes_overlap(obj["box"], other["box"]) for other in objects[index + 1 :])
    # Background: one colour with channels in [60, 200] plus Gaussian noise of sigma 8.
    values = pixels[background].astype(np.float64)
    assert ((values.mean(axis=0) > 58) & (values.mean(axis=0) < 202)).all()
    assert ((values.std(axis=0) > 7) & (values.std(axis=0) < 9)).all()


def _check_box_answer(record: dict, pixels: np.ndarray) -> None:
    truth = record["ground_truth"]
    assert truth["image_size"] == [pixels.shape[1], pixels.shape[0]]
    assert truth["box"] in [obj["box"] for obj in truth["objects"] if obj["color"] == truth["color"]]
    answer = record["conversations"][1]["value"]
    assert answer == f"The {truth['color']} box{format_box(truth['box'], truth['image_size'])}."
    (parsed,) = post_process_grounding([answer], image_sizes=[truth["image_size"]])
    (box,) = parsed["boxes"]
    assert box["phrase"] == f"The {truth['color']} box"
    # 3 decimals of a side of at most 256 px: within 0.13 px.
    assert np.allclose(box["box"], truth["box"], atol=0.2)


def test_image_samples_follow_the_spec(datasets):
    root, records = datasets
    for record in records["image"]:
        truth = record["ground_truth"]
        assert set(record) == {"id", "image", "conversations", "ground_truth"}
        assert record["conversations"][0] == {"from": "human", "value": f"<image>\nWhere is the {truth['color']} box?"}
        with PIL.Image.open(root / record["image"]) as image:
            assert image.mode == "RGB"
            pixels = np.asarray(image)
        assert 96 <= pixels.shape[0] <= 256 and 96 <= pixels.shape[1] <= 256
        _check_rectangles(pixels, truth["objects"], (1, 3))
        _check_box_answer(record, pixels)


def _region_mean(frame: np.ndarray, box: list[int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    # Inner part only: mp4v blurs the edges of the squares.
    return frame[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3].reshape(-1, 3).mean(axis=0)


def test_video_samples_follow_the_spec(datasets):
    root, records = datasets
    for record in records["video"]:
        truth = record["ground_truth"]
        assert set(record) == {"id", "video", "conversations", "ground_truth"}
        assert record["conversations"][0]["value"] == f"<video>\nWhen is the {truth['color']} square visible?"
        capture = cv2.VideoCapture(str(root / record["video"]))
        assert capture.get(cv2.CAP_PROP_FPS) == 8
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        capture.release()
        num_frames, duration = len(frames), truth["duration"]
        assert num_frames == truth["num_frames"] and 24 <= num_frames <= 64 and duration == num_frames / 8
        height, width = frames[0].shape[:2]
        assert [width, height] == truth["frame_size"] and 96 <= width <= 160 and 96 <= height <= 160
        start, end = truth["span"]
        assert 0 <= start < end <= duration and end - start >= 0.25 * duration

        squares = [truth["target"]] + ([truth["distractor"]] if truth["distractor"] else [])
        assert len({square["color"] for square in squares}) == len(squares) == 1 + (truth["distractor"] is not None)
        for square in squares:
            x1, y1, x2, y2 = square["box"]
            assert x2 - x1 == y2 - y1 and 0.2 * min(width, height) <= x2 - x1 <= 0.35 * min(width, height)
            assert 0 <= x1 and x2 <= width and 0 <= y1 and y2 <= height
        if truth["distractor"]:
            assert not boxes_overlap(truth["target"]["box"], truth["distractor"]["box"])
        for index, frame in enumerate(frames):
            target_distance = np.abs(_region_mean(frame, truth["target"]["box"]) - PALETTE[truth["color"]]).max()
            visible = start <= index / 8 < end
            assert target_distance < 20 if visible else target_distance > 30, (record["id"], index)
            if truth["distractor"]:
                distractor = truth["distractor"]
                assert np.abs(_region_mean(frame, distractor["box"]) - PALETTE[distractor["color"]]).max() < 20

        answer = record["conversations"][1]["value"]
        assert answer == f"The {truth['color']} square is visible in {format_span(start, end, duration)}."
        (parsed,) = post_process_grounding([answer], video_durations=[duration])
        (span,) = parsed["spans"]
        assert span["phrase"] == f"The {truth['color']} square is visible in"
        assert np.allclose(span["span"], truth["span"], atol=0.005 * duration + 1e-9)


def test_sound_samples_follow_the_spec(datasets):
    root, records = datasets
    for record in records["sound"]:
        truth = record["ground_truth"]
        assert set(record) == {"id", "image", "sound", "conversations", "ground_truth"}
        assert record["conversations"][0]["value"] == "<sound>\n<image>\nWhich object makes this sound?"
        with PIL.Image.open(root / record["image"]) as image:
            pixels = np.asarray(image)
        _check_rectangles(pixels, truth["objects"], (2, 3))
        _check_box_answer(record, pixels)

        waveform, sampling_rate = soundfile.read(root / record["sound"])
        assert sampling_rate == 16000 and waveform.ndim == 1
        assert 2.0 <= len(waveform) / sampling_rate <= 5.0
        assert truth["audio_duration"] == len(waveform) / sampling_rate
        spectrum = np.abs(np.fft.rfft(waveform))
        peak_hz = np.argmax(spectrum) * sampling_rate / len(waveform)
        assert truth["frequency_hz"] == TONE_FREQUENCIES_HZ[truth["color"]]
        assert abs(peak_hz - truth["frequency_hz"]) <= 1.0
        # Amplitude 0.3 sine (power 0.045) plus noise of sigma 0.01 (power 1e-4).
        assert np.sqrt(np.mean(waveform**2)) == pytest.approx(np.sqrt(0.045 + 1e-4), rel=0.02)


def test_json_format_round_trip(datasets, tmp_path):
    root, records = datasets
    all_records = [record for task in MEDIA_KEYS for record in records[task]]
    path = write_dataset(all_records, root, filename="all.json")
    assert path == root / "all.json"
    assert load_dataset(path) == json.loads(path.read_text()) == all_records
    assert len({record["id"] for record in all_records}) == len(all_records)
    for record in all_records:
        for key in MEDIA_KEYS:
            if key in record:
                assert not Path(record[key]).is_absolute() and (root / record[key]).is_file()
        assert [turn["from"] for turn in record["conversations"]] == ["human", "gpt"]


@pytest.mark.parametrize("task", MEDIA_KEYS)
def test_record_messages_give_the_training_prompt(datasets, task):
    from modeling_groundinggpt.processing import CHAT_TEMPLATE, DEFAULT_SYSTEM_PROMPT
    from transformers.utils.chat_template_utils import render_jinja_template

    root, records = datasets
    record = records[task][0]
    messages = record_messages(record, root, with_answer=True)
    for item in messages[0]["content"]:
        if item["type"] != "text":
            assert Path(item["path"]).is_file()
    (rendered,), _ = render_jinja_template(conversations=[messages], chat_template=CHAT_TEMPLATE)
    human, answer = (turn["value"] for turn in record["conversations"])
    assert rendered == f"{DEFAULT_SYSTEM_PROMPT}###Human: {human}###Assistant: {answer}###"
