"""vLLM's multimodal processor for GroundingGPT builds exactly this package's prompt ids and media tensors."""

import numpy as np
import pytest
import torch

from vllm_prompts import CASES, MIXED_BATCH, VLLM_MISSING, VLLM_MODULE, build_prompt, package_messages

pytest.importorskip(VLLM_MODULE, reason=VLLM_MISSING)


MEDIA_KEYS = {"image": "pixel_values", "video": "pixel_values_videos", "audio": "input_features"}
MEDIA_CASES = [name for name, (items, _) in CASES.items() if items]
"""Text prompts never reach the multimodal processor; their ids are checked in test_generation."""


@pytest.fixture(scope="module")
def mm_processor(llm):
    from vllm.multimodal import MULTIMODAL_REGISTRY

    return MULTIMODAL_REGISTRY.create_processor(llm.llm_engine.model_config)


def _process(mm_processor, prompt):
    vllm_input = prompt.vllm
    items = mm_processor.info.parse_mm_data(vllm_input.get("multi_modal_data", {}))
    return mm_processor(vllm_input["prompt"], items)


@pytest.mark.parametrize("name", MEDIA_CASES)
def test_prompt_ids_and_media_equal_the_package_processor(mm_processor, tiny64_processor, decoded_media, name):
    prompt = build_prompt(name, tiny64_processor, decoded_media)
    result = _process(mm_processor, prompt)
    assert result["prompt_token_ids"] == prompt.package_inputs["input_ids"][0].tolist()

    for modality, items in result["mm_kwargs"].items():
        key = MEDIA_KEYS[modality]
        expected = prompt.package_inputs[key]
        if modality == "video":
            # Each video item holds its real frames only; the package pads the videos of a batch.
            lengths = prompt.package_inputs["video_frame_mask"].sum(dim=1).tolist()
            expected = [video[:length] for video, length in zip(expected, lengths)]
        assert len(items) == len(expected)
        for item, tensor in zip(items, expected):
            torch.testing.assert_close(item[key].data, tensor, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["image", "video", "image+audio", "two videos"])
def test_embeddings_go_to_the_patch_tokens_only(mm_processor, tiny64_processor, decoded_media, name, tiny64_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny64_dir)
    patch_ids = {"image": config.image_token_id, "video": config.video_token_id, "audio": config.audio_token_id}
    result = _process(mm_processor, build_prompt(name, tiny64_processor, decoded_media))
    ids = torch.tensor(result["prompt_token_ids"])
    for modality, ranges in result["mm_placeholders"].items():
        for placeholder in ranges:
            span = ids[placeholder.offset : placeholder.offset + placeholder.length]
            # <x_start> + N x <x_patch> + <x_end>, embeddings on the N patch tokens.
            assert span[1:-1].eq(patch_ids[modality]).all() and not span[[0, -1]].eq(patch_ids[modality]).any()
            assert placeholder.is_embed.tolist() == (span == patch_ids[modality]).tolist()


def test_mixed_batch_ids_equal_the_package_batch(mm_processor, tiny64_processor, decoded_media):
    """The package pads a batch on the left; without the padding every row is vLLM's prompt."""
    prompts = [build_prompt(name, tiny64_processor, decoded_media) for name in MIXED_BATCH]
    batch = tiny64_processor.apply_chat_template(
        [package_messages(name, decoded_media) for name in MIXED_BATCH],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    for prompt, row, mask in zip(prompts, batch["input_ids"], batch["attention_mask"]):
        expected = row[mask.bool()].tolist()
        if prompt.vllm.get("multi_modal_data"):
            assert _process(mm_processor, prompt)["prompt_token_ids"] == expected
        assert prompt.package_inputs["input_ids"][0].tolist() == expected


def test_marker_and_media_counts_must_agree(mm_processor, tiny64_processor, decoded_media):
    prompt = build_prompt("image", tiny64_processor, decoded_media)
    items = mm_processor.info.parse_mm_data({"image": [decoded_media["image"], decoded_media["image"]]})
    with pytest.raises(ValueError, match="1 <image> markers but 2 image items"):
        mm_processor(prompt.vllm["prompt"], items)


@pytest.fixture(scope="module")
def video_media_io(llm):
    """vLLM's video reader with the model's defaults (`--media-io-kwargs` unset), as the server builds it."""
    from vllm.multimodal.media import ImageMediaIO, VideoMediaIO

    defaults = llm.llm_engine.model_config.multimodal_config.media_io_kwargs["video"]
    return defaults, VideoMediaIO(ImageMediaIO(), **defaults)


def test_video_files_reach_the_model_as_the_package_reads_them(
    video_media_io, mm_processor, tiny64_processor, decoded_media
):
    """A served video (a `video_url` part: vLLM gets the file's bytes) gives the frames and pixels this package's
    processor takes from the same file: the original sampler and FFmpeg's scaling, not vLLM's OpenCV frames."""
    from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

    defaults, media_io = video_media_io
    video_processor = tiny64_processor.video_processor
    assert defaults == {"video_backend": "groundinggpt", "num_frames": 8, "frame_size": video_processor.size}
    frames, metadata = media_io.load_file(decoded_media["video_path"]).media
    expected, expected_metadata = read_video_frames(decoded_media["video_path"], 8, video_processor.size)
    np.testing.assert_array_equal(frames, expected)
    assert (metadata["total_num_frames"], metadata["duration"], metadata["frames_indices"]) == (
        20,
        2.0,
        expected_metadata.frames_indices,
    )

    prompt = build_prompt("video", tiny64_processor, decoded_media)
    result = mm_processor(prompt.vllm["prompt"], mm_processor.info.parse_mm_data({"video": [(frames, metadata)]}))
    package = tiny64_processor.video_processor(videos=[str(decoded_media["video_path"])])
    (item,) = result["mm_kwargs"]["video"]
    torch.testing.assert_close(item["pixel_values_videos"].data, package["pixel_values_videos"][0], atol=0, rtol=0)


def test_video_loader_refuses_bad_bytes_and_unknown_options(video_media_io, decoded_media):
    from modeling_groundinggpt.vllm.media import GroundingGPTVideoBackend

    with pytest.raises(ValueError, match=r"Could not open the video \(11 bytes\)"):
        GroundingGPTVideoBackend.load_bytes(b"not a video", num_frames=8)
    data = decoded_media["video_path"].read_bytes()
    with pytest.raises(ValueError, match="takes `num_frames` and `frame_size`, not `fps`"):
        GroundingGPTVideoBackend.load_bytes(data, num_frames=8, fps=2)
    with pytest.raises(ValueError, match="num_frames must be a positive number of frames, got -1"):
        GroundingGPTVideoBackend.load_bytes(data)
