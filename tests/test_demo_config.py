"""The demo model's config and processor: every branch present, under the size budget, consistent with each other,
and a forward pass and generation from processor-built image, video and sound+image inputs."""

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from demo_model.configuration import build_demo_processor, demo_config
from demo_model.initialisation import init_demo_model
from demo_model.tokenizer import train_demo_tokenizer
from modeling_groundinggpt import GroundingGPTForConditionalGeneration
from modeling_groundinggpt.convert.convert_groundinggpt_to_hf import build_generation_config
from modeling_groundinggpt.convert.convert_tokenizer import MULTIMODAL_TOKENS
from modeling_groundinggpt.synthetic import generate_dataset, record_messages


MAX_CHECKPOINT_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def tokenizer():
    return train_demo_tokenizer()


@pytest.fixture(scope="module")
def config(tokenizer):
    return demo_config(tokenizer)


@pytest.fixture(scope="module")
def processor(tokenizer, config):
    return build_demo_processor(tokenizer, config)


@pytest.fixture(scope="module")
def model(config):
    torch.manual_seed(0)
    return GroundingGPTForConditionalGeneration(config).eval()


def test_config_matches_the_tokenizer(tokenizer, config):
    assert config.text_config.vocab_size == len(tokenizer)
    assert config.text_config.pad_token_id == tokenizer.pad_token_id == 0
    assert (config.text_config.bos_token_id, config.text_config.eos_token_id) == (1, 2)
    fields = [f"{name}{suffix}_token_id" for name in ("image", "video", "audio") for suffix in ("", "_start", "_end")]
    assert [getattr(config, field) for field in fields] == tokenizer.convert_tokens_to_ids(list(MULTIMODAL_TOKENS))


def test_processor_matches_the_config(processor, config):
    vision = config.vision_config
    assert processor.num_image_tokens == (vision.image_size // vision.patch_size) ** 2 == 16
    assert processor.image_processor.crop_size == {"height": vision.image_size, "width": vision.image_size}
    assert processor.video_processor.size == config.video_frame_config.image_size
    assert processor.video_processor.num_frames == config.max_frames
    assert processor.num_video_tokens == config.num_video_query_tokens
    assert processor.num_audio_tokens == config.num_audio_query_tokens
    audio = config.audio_config
    assert (processor.feature_extractor.num_mel_bins, processor.feature_extractor.target_length) == (
        audio.num_mel_bins,
        audio.target_length,
    )


def test_every_branch_within_the_size_budget(model, tmp_path):
    inner = model.model
    for branch in (inner.vision_tower, inner.video_tower, inner.audio_tower, inner.language_model):
        assert sum(parameter.numel() for parameter in branch.parameters()) > 0
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    assert 4 * num_parameters <= MAX_CHECKPOINT_BYTES
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size <= MAX_CHECKPOINT_BYTES


def test_forward_and_generate_from_processor_inputs(model, processor, tmp_path):
    records = [generate_dataset(task, 1, seed=2, root=tmp_path)[0] for task in ("image", "video", "sound")]
    conversations = [record_messages(record, tmp_path, with_answer=True) for record in records]
    inputs = processor.apply_chat_template(conversations, tokenize=True, return_dict=True, return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 3, 96, 96)
    assert inputs["pixel_values_videos"].shape == (1, 16, 3, 64, 64)
    assert inputs["input_features"].shape == (1, 3, 1, 128, 204)
    assert inputs["input_ids"].shape[1] < model.config.text_config.max_position_embeddings
    with torch.no_grad():
        output = model(**inputs, labels=inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100))
    assert output.logits.shape == (*inputs["input_ids"].shape, len(processor.tokenizer))
    assert torch.isfinite(output.loss)

    prompts = [record_messages(record, tmp_path) for record in records]
    prompt_inputs = processor.apply_chat_template(
        prompts, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    generated = model.generate(**prompt_inputs, max_new_tokens=3, do_sample=False)
    assert generated.shape == (3, prompt_inputs["input_ids"].shape[1] + 3)


def test_save_and_reload_with_auto_classes(model, processor, tokenizer, config, tmp_path):
    model.generation_config = build_generation_config(config, tokenizer)
    assert model.generation_config.eos_token_id == [2, tokenizer.convert_tokens_to_ids("###")]
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded_processor = AutoProcessor.from_pretrained(tmp_path)
    reloaded_model = AutoModelForImageTextToText.from_pretrained(tmp_path)
    assert isinstance(reloaded_model, GroundingGPTForConditionalGeneration)
    assert reloaded_processor.num_image_tokens == processor.num_image_tokens
    assert reloaded_processor.video_processor.to_dict() == processor.video_processor.to_dict()
    assert reloaded_processor.image_processor.crop_size == processor.image_processor.crop_size
    state, reloaded_state = model.state_dict(), reloaded_model.state_dict()
    assert state.keys() == reloaded_state.keys()
    assert all(torch.equal(state[key], reloaded_state[key]) for key in state)


def test_initialisation_puts_text_media_and_positions_on_one_scale(tokenizer, config, processor, tmp_path):
    """From scratch, the language model only learns to read media whose embeddings are on the scale of its token
    embeddings, and the video Q-Former only sees time through frame position embeddings on the scale of the frames."""
    model = init_demo_model(config, tokenizer, seed=0)
    records = [generate_dataset(task, 2, seed=3, root=tmp_path)[0] for task in ("image", "video", "sound")]
    inputs = processor.apply_chat_template(
        [record_messages(record, tmp_path) for record in records], add_generation_prompt=True, tokenize=True,
        return_dict=True, return_tensors="pt",
    )
    inner = model.model
    with torch.no_grad():
        text = inner.get_input_embeddings().weight.norm(dim=-1).mean()
        media = {
            "image": inner.get_image_features(inputs["pixel_values"]),
            "video": inner.get_video_features(inputs["pixel_values_videos"], inputs["video_frame_mask"]),
            "audio": inner.get_audio_features(inputs["input_features"]),
        }
    for name, features in media.items():
        ratio = float(features.norm(dim=-1).mean() / text)
        assert 1 / 3 <= ratio <= 3, f"{name} embeddings are {ratio:.2f}x the text embeddings"
    frame_positions = inner.video_tower.frame_position_embedding.weight
    assert float(frame_positions.norm(dim=-1).min()) >= 0.5 * config.video_qformer_config.hidden_size ** 0.5
    assert len({tuple(row.tolist()) for row in frame_positions}) == config.max_frames
