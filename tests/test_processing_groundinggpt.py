"""GroundingGPTProcessor reproduces the original inference inputs from the raw fixture media and questions."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoProcessor
from transformers.audio_utils import spectrogram

from conftest import CASE_NAMES, FIXTURES, load_case
from modeling_groundinggpt.convert.convert_processor import build_processor
from modeling_groundinggpt.processing import GroundingGPTProcessor


CASE_MEDIA = {
    "image": ("image", "image.png"),
    "image_two_turn": ("image", "image.png"),
    "video": ("video", "video.mp4"),
    "audio": ("audio", "audio.wav"),
    "text": None,
}
START_TOKENS = ("<im_start>", "<vi_start>", "<so_start>")


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    """Built from the original files, saved, and reloaded offline through AutoProcessor."""
    built = build_processor(
        FIXTURES / "original_checkpoint",
        FIXTURES / "clip_vision",
        json.loads((FIXTURES / "encoder_dims.json").read_text()),
    )
    folder = tmp_path_factory.mktemp("processor")
    built.save_pretrained(folder)
    return AutoProcessor.from_pretrained(folder)


def case_messages(case: str) -> list[dict]:
    """The case conversation as chat messages: the raw media file and the questions/answers without placeholders."""
    description, _ = load_case(case)
    messages = []
    for index, (role, content) in enumerate(description["conversation_messages"]):
        if content is None:
            continue  # the generation prompt
        if content.startswith(START_TOKENS):
            content = content.split("\n", 1)[1]
        items = []
        if index == 0 and CASE_MEDIA[case] is not None:
            kind, file_name = CASE_MEDIA[case]
            items.append({"type": kind, "path": str(FIXTURES / "media" / file_name)})
        items.append({"type": "text", "text": content})
        messages.append({"role": "user" if role == "Human" else "assistant", "content": items})
    return messages


def apply(processor, messages, **kwargs):
    return processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt", **kwargs
    )


def test_loaded_processor_keeps_its_settings(processor):
    assert isinstance(processor, GroundingGPTProcessor)
    assert (processor.num_image_tokens, processor.num_video_tokens, processor.num_audio_tokens) == (16, 6, 4)
    assert (processor.video_processor.size, processor.video_processor.num_frames) == (56, 8)
    assert processor.image_processor.crop_size.height == 56
    assert processor.image_token_id == 800 and processor.video_token_id == 803 and processor.audio_token_id == 806


@pytest.mark.parametrize("case", CASE_NAMES)
def test_prompt_text_matches_the_original(processor, case):
    description, _ = load_case(case)
    prompt = processor.apply_chat_template(case_messages(case), add_generation_prompt=True)
    for name, count in (("image", 16), ("video", 6), ("audio", 4)):
        placeholder = getattr(processor, f"{name}_placeholder")
        prompt = prompt.replace(placeholder, processor._expansion(name, count))
    assert prompt == description["prompt"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_input_ids_match_the_original(processor, case):
    description, _ = load_case(case)
    inputs = apply(processor, case_messages(case))
    assert inputs["input_ids"].tolist() == [description["input_ids"]]
    assert inputs["attention_mask"].tolist() == [[1] * len(description["input_ids"])]


@pytest.mark.parametrize("case", ["image", "image_two_turn"])
def test_pixel_values_match_the_original(processor, case):
    _, tensors = load_case(case)
    inputs = apply(processor, case_messages(case))
    assert inputs["pixel_values"].shape == tensors["pixel_values"].shape
    torch.testing.assert_close(inputs["pixel_values"], tensors["pixel_values"], atol=1e-4, rtol=0)


def test_audio_features_match_the_original(processor):
    _, tensors = load_case("audio")
    inputs = apply(processor, case_messages("audio"))
    assert inputs["input_features"].shape == (1, 3, 1, 128, 204)
    # Measured max |diff| 6.2e-4, in the lowest-energy mel bins (log of ~1e-7 powers): float32 rounding of the
    # original's torchaudio fbank against transformers' float64 spectrogram. The resampled waveform agrees to 6e-8.
    torch.testing.assert_close(inputs["input_features"], tensors["audio_features"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("num_samples", [400, 1_000, 32_000, 40_007])
def test_vectorised_fbank_equals_the_transformers_spectrogram(processor, num_samples):
    """`_fbank` frames the clip with strides instead of `spectrogram`'s Python loop; the numbers must not change."""
    extractor = processor.feature_extractor
    clip = np.random.default_rng(num_samples).normal(scale=0.3, size=num_samples).astype(np.float32)
    reference = spectrogram(
        clip, extractor.window, frame_length=extractor.frame_length, hop_length=extractor.hop_length,
        fft_length=extractor.fft_length, power=2.0, center=False, preemphasis=0.97, mel_filters=extractor.mel_filters,
        mel_floor=float(np.finfo(np.float32).eps), log_mel="log", remove_dc_offset=True,
    )
    reference = np.pad(reference, ((0, 0), (0, max(0, extractor.target_length - reference.shape[1]))))
    features = extractor._fbank(clip)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, reference[:, : extractor.target_length])


def test_audio_resampling_matches_torchaudio(processor):
    _, tensors = load_case("audio")
    waveform = processor.feature_extractor.load_waveform(str(FIXTURES / "media" / "audio.wav"))
    torch.testing.assert_close(waveform, tensors["audio_waveform_16k"], atol=1e-6, rtol=0)


def test_video_frames_are_the_original_decord_frames(processor):
    _, tensors = load_case("video")
    frames, metadata = processor.video_processor.load_video(str(FIXTURES / "media" / "video.mp4"))
    reference = tensors["video_frames_raw"].permute(1, 2, 3, 0).numpy()  # (T, H, W, C)
    assert metadata.frames_indices == [0, 2, 5, 7, 10, 12, 15, 17]
    # FFmpeg's bilinear `scale` then `format=rgb24`, as decord's reader: the very same bytes.
    np.testing.assert_array_equal(frames, reference.astype(np.uint8))
    np.testing.assert_array_equal(reference, reference.round())


def test_video_normalisation_is_exact_on_the_original_frames(processor):
    _, tensors = load_case("video")
    frames = list(tensors["video_frames_raw"].permute(1, 2, 3, 0).to(torch.uint8).numpy())
    outputs = processor.video_processor(frames)
    expected = tensors["video_pixels"].permute(0, 2, 1, 3, 4)  # the model's frames-first layout
    torch.testing.assert_close(outputs["pixel_values_videos"], expected, atol=0, rtol=0)
    assert outputs["video_frame_mask"].tolist() == [[1] * 8]


def test_video_inputs_layout(processor):
    inputs = apply(processor, case_messages("video"))
    assert inputs["pixel_values_videos"].shape == (1, 8, 3, 56, 56)
    assert inputs["video_frame_mask"].dtype == torch.int64


def test_metadata_only_on_request(processor):
    image_path, video_path = str(FIXTURES / "media" / "image.png"), str(FIXTURES / "media" / "video.mp4")
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "path": image_path}, {"type": "video", "path": video_path}, {"type": "text", "text": "Hi"}],
        }
    ]
    plain = apply(processor, messages)
    assert "image_sizes" not in plain and "video_metadata" not in plain
    with_metadata = apply(processor, messages, processor_kwargs={"return_metadata": True})
    assert with_metadata["image_sizes"] == [(80, 48)]
    (metadata,) = with_metadata["video_metadata"]
    assert metadata.duration == pytest.approx(2.0)
    assert metadata.timestamps == pytest.approx([0.0, 0.2, 0.5, 0.7, 1.0, 1.2, 1.5, 1.7])


def test_media_order_in_one_message_is_sound_video_image(processor):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "path": str(FIXTURES / "media" / "image.png")},
                {"type": "text", "text": "Describe."},
                {"type": "audio", "path": str(FIXTURES / "media" / "audio.wav")},
                {"type": "video", "path": str(FIXTURES / "media" / "video.mp4")},
            ],
        }
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt.endswith("###Human: <sound>\n<video>\n<image>\nDescribe.###Assistant:")
    inputs = apply(processor, messages)
    ids = inputs["input_ids"][0].tolist()
    starts = [ids.index(processor.audio_start_token_id), ids.index(processor.video_start_token_id), ids.index(processor.image_start_token_id)]
    assert starts == sorted(starts)
    assert ids.count(processor.image_token_id) == 16 and ids.count(processor.video_token_id) == 6
    assert ids.count(processor.audio_token_id) == 4
    assert {"pixel_values", "pixel_values_videos", "video_frame_mask", "input_features"} <= set(inputs)


def test_call_with_data_style_markers_equals_the_chat_template(processor):
    description, tensors = load_case("image")
    question = description["conversation_messages"][0][1].split("\n", 1)[1]
    text = processor.apply_chat_template(case_messages("image"), add_generation_prompt=True)
    assert f"<image>\n{question}" in text
    inputs = processor(text=text, images=[str(FIXTURES / "media" / "image.png")], return_tensors="pt")
    assert inputs["input_ids"].tolist() == [description["input_ids"]]
    torch.testing.assert_close(inputs["pixel_values"], tensors["pixel_values"], atol=1e-4, rtol=0)


def test_batch_is_left_padded_and_rows_equal_single_conversations(processor):
    conversations = [case_messages("image_two_turn"), case_messages("text")]
    batch = apply(processor, conversations)
    lengths = [len(load_case(case)[0]["input_ids"]) for case in ("image_two_turn", "text")]
    assert batch["input_ids"].shape == (2, max(lengths))
    for row, (case, length) in enumerate(zip(("image_two_turn", "text"), lengths)):
        padding = max(lengths) - length
        assert batch["attention_mask"][row].tolist() == [0] * padding + [1] * length
        assert batch["input_ids"][row, :padding].tolist() == [processor.tokenizer.pad_token_id] * padding
        single = apply(processor, [conversations[row]])
        assert batch["input_ids"][row, padding:].tolist() == single["input_ids"][0].tolist()
    assert batch["pixel_values"].shape == (1, 3, 56, 56)


def test_videos_with_different_frame_counts_are_padded_at_the_end(processor):
    frames = [np.full((20, 30, 3), value, dtype=np.uint8) for value in range(0, 250, 50)]
    outputs = processor.video_processor([str(FIXTURES / "media" / "video.mp4"), frames[:3]])
    assert outputs["pixel_values_videos"].shape == (2, 8, 3, 56, 56)
    assert outputs["video_frame_mask"].tolist() == [[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0]]
    assert outputs["pixel_values_videos"][1, 3:].abs().max() == 0


def test_post_processing_helpers(processor):
    ids = processor.tokenizer("The box[0.125, 0.350, 0.500, 0.725].###Human: more", add_special_tokens=False, return_tensors="pt").input_ids
    (text,) = processor.post_process_image_text_to_text(ids)
    assert text == "The box[0.125, 0.350, 0.500, 0.725]."
    (result,) = processor.post_process_grounding([text], image_sizes=[(80, 48)])
    assert result["boxes"] == [{"phrase": "The box", "box": [10.0, 12.0, 40.0, 42.0]}]
    assert processor.format_box((10, 12, 40, 42), (80, 48)) == "[0.125, 0.350, 0.500, 0.725]"
    assert processor.format_span(1, 2, 4) == "{0.25, 0.50}"


def test_system_message_and_string_content(processor):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi."}]},
        {"role": "user", "content": [{"type": "text", "text": "Where"}, {"type": "text", "text": "now?"}]},
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt == "Be brief.###Human: Hello###Assistant: Hi.###Human: Where now?###Assistant:"
    with pytest.raises(Exception, match="Roles must be user or assistant"):
        processor.apply_chat_template([{"role": "tool", "content": "x"}])
