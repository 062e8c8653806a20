"""Input handling of the GroundingGPT processor: image formats and types, and clear errors on bad input."""

import json

import cv2
import numpy as np
import PIL.Image
import pytest
import soundfile
import torch

from conftest import FIXTURES
from modeling_groundinggpt.convert.convert_processor import build_processor
from modeling_groundinggpt.processing.image_processing_groundinggpt import load_image
from modeling_groundinggpt.processing.video_processing_groundinggpt import uniform_frame_indices


@pytest.fixture(scope="module")
def processor():
    return build_processor(
        FIXTURES / "original_checkpoint",
        FIXTURES / "clip_vision",
        json.loads((FIXTURES / "encoder_dims.json").read_text()),
    )


IMAGE = FIXTURES / "media" / "image.png"


def _reference_pixels(processor):
    return processor.image_processor(str(IMAGE), return_tensors="pt")["pixel_values"]


def test_image_input_types_agree(processor):
    reference = _reference_pixels(processor)
    rgb = PIL.Image.open(IMAGE).convert("RGB")
    array = np.asarray(rgb)
    for image in (rgb, array, torch.from_numpy(array), torch.from_numpy(array).permute(2, 0, 1), f"file://{IMAGE}"):
        pixels = processor.image_processor(image, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(pixels, reference, atol=0, rtol=0)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1", "I;16"])
def test_image_modes_become_rgb(mode, tmp_path):
    base = PIL.Image.open(IMAGE).convert("RGB")
    if mode == "I;16":
        gray = np.asarray(base.convert("L"), dtype=np.uint16) * 257
        image = PIL.Image.fromarray(gray)
        assert image.mode == "I;16"
        expected = np.asarray(base.convert("L").convert("RGB"))
    else:
        image = base.convert(mode)
        expected = np.asarray(image.convert("RGB"))
    path = tmp_path / ("image.tiff" if mode == "CMYK" else "image.png")
    image.save(path)
    loaded = load_image(str(path))
    assert loaded.mode == "RGB" and loaded.size == (80, 48)
    assert np.abs(np.asarray(loaded).astype(int) - expected.astype(int)).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    image = PIL.Image.open(IMAGE).convert("RGB")
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(str(path)).size == (48, 80)


def test_missing_files_name_the_path(processor, tmp_path):
    missing = str(tmp_path / "nowhere.png")
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        processor(text="<image>\nHi", images=[missing])
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        processor(text="<video>\nHi", videos=[str(tmp_path / "nowhere.mp4")])
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        processor(text="<sound>\nHi", audio=[str(tmp_path / "nowhere.wav")])


@pytest.mark.parametrize("content", [b"", b"this is not media at all" * 10])
def test_empty_or_corrupt_files_name_the_path(processor, tmp_path, content):
    for name, kwargs in (
        ("bad.png", lambda p: {"text": "<image>\nHi", "images": [p]}),
        ("bad.mp4", lambda p: {"text": "<video>\nHi", "videos": [p]}),
        ("bad.wav", lambda p: {"text": "<sound>\nHi", "audio": [p]}),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=name):
            processor(**kwargs(str(path)))


def test_video_without_frames(processor, tmp_path):
    path = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    writer.release()
    with pytest.raises(ValueError, match="empty.mp4"):
        processor.video_processor(str(path))
    with pytest.raises(ValueError, match="Video 0: .*at least one frame"):
        processor.video_processor(np.zeros((0, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="No video"):
        processor.video_processor([])


def test_audio_shorter_than_one_frame(processor, tmp_path):
    path = tmp_path / "click.wav"
    soundfile.write(path, np.zeros(100, dtype=np.float32), 16000)  # 6 ms < 25 ms
    with pytest.raises(ValueError, match=r"Audio 0 .*click.wav.*25 ms"):
        processor.feature_extractor(str(path))


def test_short_audio_gives_three_identical_zero_padded_clips(processor):
    waveform = np.sin(np.arange(8000) * 0.05).astype(np.float32)  # 0.5 s
    features = processor.feature_extractor(waveform, sampling_rate=16000)["input_features"]
    assert features.shape == (1, 3, 1, 128, 204)
    # The three windows hold the same samples; they differ only through the original's in-place mean subtraction
    # (every clip re-rounds the shared float32 samples), amplified by the log of near-empty mel bins: <= 6e-5 here.
    torch.testing.assert_close(features[0, 0], features[0, 1], atol=1e-4, rtol=0)
    torch.testing.assert_close(features[0, 0], features[0, 2], atol=1e-4, rtol=0)
    # 0.5 s gives 48 frames of 10 ms; the rest is zero padding before normalisation.
    padding_value = (np.float32(0) - processor.feature_extractor.mean) / processor.feature_extractor.std  # float32 math
    assert torch.all(features[0, :, :, :, 48:] == torch.tensor(padding_value))
    assert not torch.any(features[0, :, :, :, 47] == torch.tensor(padding_value))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "<image>\nHi", "images": [str(IMAGE)] * 2}, "1 <image> markers but 2 image items"),
        ({"text": "<image>\n<image>\nHi", "images": [str(IMAGE)]}, "2 <image> markers but 1 image items"),
        ({"text": "<video>\nHi"}, "1 <video> markers but 0 video items"),
        ({"text": "Hi", "audio": [np.zeros(16000, dtype=np.float32)]}, "0 <sound> markers but 1 audio items"),
        ({"text": ["<image>\nA", "B"], "images": [[], [str(IMAGE)]]}, "Text 0 contains 1 <image> markers but 0 image"),
    ],
)
def test_marker_and_media_counts_must_agree(processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        processor(**kwargs)


def test_uniform_indices_never_exceed_max_frames():
    assert uniform_frame_indices(17, 7).tolist() == [0, 2, 4, 7, 9, 12, 14]
    assert uniform_frame_indices(20, 8).tolist() == [0, 2, 5, 7, 10, 12, 15, 17]
    assert uniform_frame_indices(3, 8).tolist() == [0, 1, 2]
    for total in range(1, 200):
        for max_frames in (1, 6, 7, 8, 64):
            indices = uniform_frame_indices(total, max_frames)
            assert len(indices) == min(total, max_frames) and indices[-1] < total
