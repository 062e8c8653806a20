"""GroundingGPTDataCollator: labels token by token, media placeholders, truncation; the original-format loader."""

import json

import pytest
import torch

from modeling_groundinggpt.processing import GroundingGPTProcessor
from modeling_groundinggpt.training import IGNORE_INDEX, GroundingGPTDataCollator, load_sft_dataset
from modeling_groundinggpt.training.data import conversation_to_messages


@pytest.fixture(scope="module")
def processor(converted_dir) -> GroundingGPTProcessor:
    return GroundingGPTProcessor.from_pretrained(converted_dir)


@pytest.fixture(scope="module")
def media_root(fixtures_dir):
    return fixtures_dir / "media"


def two_turn_sample() -> dict:
    return {
        "id": "two-turn",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image"},
                    {"type": "video"},
                    {"type": "audio"},
                    {"type": "text", "text": "Where is the dog?"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "The dog[0.10, 0.20, 0.30, 0.40]."}]},
            {"role": "user", "content": "When does it bark?"},
            {"role": "assistant", "content": "It barks in {0.25, 0.75}."},
        ],
        "images": ["image.png"],
        "videos": ["video.mp4"],
        "audios": ["audio.wav"],
    }


def text_sample() -> dict:
    return {
        "id": "text",
        "messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}],
    }


def find(sequence: list[int], pattern: list[int], start: int = 0) -> int:
    for index in range(start, len(sequence) - len(pattern) + 1):
        if sequence[index : index + len(pattern)] == pattern:
            return index
    return -1


def expected_labels(processor, input_ids: list[int]) -> list[int]:
    """Independent oracle on token ids: loss from just after each `###Assistant:` through the next `###`."""
    tokenizer = processor.tokenizer
    prompt = tokenizer("###Assistant:", add_special_tokens=False)["input_ids"][1:]  # drop the metaspace token
    separator = tokenizer.convert_tokens_to_ids(["<0x23>"] * 3)
    labels = [IGNORE_INDEX] * len(input_ids)
    position = find(input_ids, prompt)
    while position >= 0:
        start = position + len(prompt)
        end = find(input_ids, separator, start) + len(separator)
        labels[start:end] = input_ids[start:end]
        position = find(input_ids, prompt, end)
    return labels


def test_labels_token_by_token_on_two_turn_multimodal_sample(processor, media_root):
    collator = GroundingGPTDataCollator(processor, media_root=media_root)
    batch = collator([two_turn_sample(), text_sample()])

    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    length = int(mask[0].sum())
    assert mask[0].all() and length == ids.shape[1]  # the longest row has no padding
    assert labels[0].tolist() == expected_labels(processor, ids[0].tolist())
    decoded = processor.tokenizer.decode(ids[0][labels[0] != IGNORE_INDEX])
    assert decoded == "The dog[0.10, 0.20, 0.30, 0.40].### It barks in {0.25, 0.75}.###"

    # The text-only row: right padding, no loss on padding, loss only on its answer.
    text_length = int(mask[1].sum())
    assert mask[1, :text_length].all() and not mask[1, text_length:].any()
    assert (ids[1, text_length:] == processor.tokenizer.pad_token_id).all()
    assert (labels[1, text_length:] == IGNORE_INDEX).all()
    assert labels[1].tolist()[:text_length] == expected_labels(processor, ids[1, :text_length].tolist())
    assert processor.tokenizer.decode(ids[1][labels[1] != IGNORE_INDEX]) == "Hi.###"

    multimodal_ids = torch.tensor(
        [getattr(processor, f"{name}{suffix}_token_id") for name in ("image", "video", "audio") for suffix in ("_start", "", "_end")]
    )
    assert (labels[torch.isin(ids, multimodal_ids)] == IGNORE_INDEX).all()
    assert labels[0, 0] == IGNORE_INDEX and ids[0, 0] == processor.tokenizer.bos_token_id


def test_media_placeholders_and_tensors(processor, media_root):
    collator = GroundingGPTDataCollator(processor, media_root=media_root)
    batch = collator([two_turn_sample(), text_sample()])
    ids = batch["input_ids"]
    for name, count in (("image", 16), ("video", 6), ("audio", 4)):
        assert getattr(processor, f"num_{name}_tokens") == count
        assert (ids[0] == getattr(processor, f"{name}_token_id")).sum() == count
        assert (ids[0] == getattr(processor, f"{name}_start_token_id")).sum() == 1
        assert not torch.isin(ids[1], torch.tensor([getattr(processor, f"{name}_token_id")])).any()
    assert batch["pixel_values"].shape == (1, 3, 56, 56)
    assert batch["pixel_values_videos"].shape[:3] == (1, 8, 3) and batch["video_frame_mask"].shape == (1, 8)
    assert batch["input_features"].shape == (1, 3, 1, 128, 204)

    # A batch without media encodes none: no dummy image/video/audio.
    text_only = collator([text_sample(), text_sample()])
    assert set(text_only) == {"input_ids", "attention_mask", "labels"}


def test_marker_and_media_counts_must_agree(processor, media_root):
    collator = GroundingGPTDataCollator(processor, media_root=media_root)
    missing_image = {**two_turn_sample(), "images": []}
    with pytest.raises(ValueError, match="two-turn"):
        collator([missing_image])
    extra_image = {**text_sample(), "images": ["image.png"]}
    with pytest.raises(ValueError, match="marker"):
        collator([extra_image])
    literal_patch = {
        "messages": [{"role": "user", "content": "<im_patch> hi"}, {"role": "assistant", "content": "Hi."}]
    }
    with pytest.raises(ValueError, match="<im_patch>"):
        collator([literal_patch])


def image_in_second_turn_sample() -> dict:
    return {
        "id": "late-image",
        "messages": [
            {"role": "user", "content": "Hello."},
            {"role": "assistant", "content": "Hello, ask me about an image."},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the dog?"}]},
            {"role": "assistant", "content": "The dog[0.10, 0.20, 0.30, 0.40]."},
        ],
        "images": ["image.png"],
    }


def test_truncation_never_cuts_a_media_run(processor, media_root):
    full = GroundingGPTDataCollator(processor, media_root=media_root)([image_in_second_turn_sample()])
    ids = full["input_ids"][0]
    run_start = int((ids == processor.image_start_token_id).nonzero())
    run_end = int((ids == processor.image_end_token_id).nonzero())

    # A cut inside the image run drops the whole run and the image; the first answer keeps its loss.
    for max_length in (run_start + 1, run_start + 8, run_end):
        batch = GroundingGPTDataCollator(processor, media_root=media_root, max_length=max_length)(
            [image_in_second_turn_sample(), text_sample()]
        )
        assert batch["input_ids"].shape[1] == run_start
        assert "pixel_values" not in batch
        assert batch["labels"][0].tolist() == full["labels"][0, :run_start].tolist()
        assert processor.tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != IGNORE_INDEX]) == (
            "Hello, ask me about an image.###"
        )

    # A cut after the run keeps the image.
    batch = GroundingGPTDataCollator(processor, media_root=media_root, max_length=run_end + 1)(
        [image_in_second_turn_sample()]
    )
    assert batch["input_ids"].shape[1] == run_end + 1 and batch["pixel_values"].shape[0] == 1

    # No assistant token left: an error.
    with pytest.raises(ValueError, match="no assistant token"):
        GroundingGPTDataCollator(processor, media_root=media_root, max_length=10)([image_in_second_turn_sample()])


def test_sample_without_assistant_turn_is_an_error(processor):
    with pytest.raises(ValueError, match="no assistant token"):
        GroundingGPTDataCollator(processor)([{"messages": [{"role": "user", "content": "Hi."}]}])


def test_original_json_format(tmp_path, processor, media_root):
    records = [
        {
            "id": 7,
            "image": "image.png",
            "sound": "audio.wav",
            "conversations": [
                {"from": "human", "value": "Which object makes this sound?\n<image> <sound>"},
                {"from": "gpt", "value": "The blue box[0.05, 0.70, 0.35, 0.95]."},
            ],
        },
        {"id": "t", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]},
    ]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records))
    dataset = load_sft_dataset(str(path))
    assert dataset.column_names == ["id", "messages", "audios", "videos", "images"]
    assert dataset[0]["images"] == ["image.png"] and dataset[0]["audios"] == ["audio.wav"]
    assert dataset[1]["images"] == dataset[1]["videos"] == dataset[1]["audios"] == []

    # The markers go first, sounds before images, as in the original `preprocess_multimodal`.
    text = processor.apply_chat_template(dataset[0]["messages"], tokenize=False)
    assert text.endswith("###Human: <sound>\n<image>\nWhich object makes this sound?###Assistant: The blue box[0.05, 0.70, 0.35, 0.95].###")
    batch = GroundingGPTDataCollator(processor, media_root=media_root)(list(dataset))
    assert batch["pixel_values"].shape[0] == 1 and batch["input_features"].shape[0] == 1

    with pytest.raises(ValueError, match="1 <image> markers but 0 image"):
        conversation_to_messages({"id": "x", "conversations": [{"from": "human", "value": "<image>\nHi"}]})
