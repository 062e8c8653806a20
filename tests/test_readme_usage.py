"""The README's usage flow (AutoProcessor + AutoModelForImageTextToText + post_process_grounding) runs as written."""

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor


def _generate(model, processor, messages, metadata=True):
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"return_metadata": metadata},
    )
    metadata = {key: inputs.pop(key) for key in ("image_sizes", "video_metadata") if key in inputs}
    output = model.generate(**inputs.to(model.device), max_new_tokens=6)
    return processor.post_process_image_text_to_text(output[:, inputs["input_ids"].shape[1] :]), metadata


def test_readme_usage_for_image_video_and_sound(converted_dir, fixtures_dir):
    model = AutoModelForImageTextToText.from_pretrained(converted_dir, dtype=torch.bfloat16, device_map="auto")
    processor = AutoProcessor.from_pretrained(converted_dir)
    media = fixtures_dir / "media"

    image_message = [{"role": "user", "content": [
        {"type": "image", "path": str(media / "image.png")}, {"type": "text", "text": "Where is the red box?"}]}]
    answer, metadata = _generate(model, processor, image_message)
    assert metadata["image_sizes"] == [(80, 48)]
    result = processor.post_process_grounding(answer, image_sizes=metadata["image_sizes"])
    assert result[0]["text"] == answer[0] and isinstance(result[0]["boxes"], list)

    video_message = [{"role": "user", "content": [
        {"type": "video", "path": str(media / "video.mp4")}, {"type": "text", "text": "When does it move?"}]}]
    answer, metadata = _generate(model, processor, video_message)
    durations = [m.duration for m in metadata["video_metadata"]]
    assert durations == [2.0]
    assert processor.post_process_grounding(answer, video_durations=durations)[0]["text"] == answer[0]

    sound_message = [{"role": "user", "content": [
        {"type": "audio", "path": str(media / "audio.wav")}, {"type": "image", "path": str(media / "image.png")},
        {"type": "text", "text": "Which object makes this sound?"}]}]
    answer, _ = _generate(model, processor, sound_message, metadata=False)
    assert isinstance(answer[0], str)
