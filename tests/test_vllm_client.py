"""The `vllm serve` client helpers (no vLLM needed): files as OpenAI content parts, answers in pixels and seconds."""

import base64

import pytest

from modeling_groundinggpt.vllm.client import ground_answer, media_part


def test_media_parts_carry_the_files(fixtures_dir):
    media = fixtures_dir / "media"
    image = media_part("image", media / "image.png")
    assert image["type"] == "image_url"
    header, data = image["image_url"]["url"].split(",", 1)
    assert header == "data:image/png;base64" and base64.b64decode(data) == (media / "image.png").read_bytes()

    video = media_part("video", media / "video.mp4")
    assert video["type"] == "video_url" and video["video_url"]["url"].startswith("data:video/mp4;base64,")

    audio = media_part("audio", media / "audio.wav")
    assert audio == {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode((media / "audio.wav").read_bytes()).decode(), "format": "wav"},
    }
    with pytest.raises(ValueError, match="kind must be"):
        media_part("text", media / "image.png")


def test_ground_answer_gives_what_the_processor_gives_with_the_metadata(converted_dir, fixtures_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(converted_dir)
    media = fixtures_dir / "media"
    answer = "The red box[0.125, 0.250, 0.500, 0.750] moves at {0.20, 0.60}."
    inputs = processor(
        text=["<image>\n<video>\nq"], images=[str(media / "image.png")], videos=[str(media / "video.mp4")],
        return_metadata=True,
    )
    expected = processor.post_process_grounding(
        [answer], image_sizes=inputs["image_sizes"], video_durations=[inputs["video_metadata"][0].duration]
    )[0]
    result = ground_answer(answer, image=media / "image.png", video=media / "video.mp4")
    assert result == expected
    assert result["spans"][0]["span"] == pytest.approx([0.4, 1.2])  # the 2 s reference video
    assert ground_answer(answer)["boxes"][0]["box"] == [0.125, 0.25, 0.5, 0.75]
