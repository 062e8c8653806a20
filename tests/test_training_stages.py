"""Stage presets: one SFTTrainer step of each stage changes exactly the parameters the stage trains."""

import pytest
import torch
from datasets import Dataset
from test_training_collator import two_turn_sample
from trl import SFTConfig

from modeling_groundinggpt.training import STAGES, build_sft_trainer, freeze_for_stage, get_stage, load_model_and_processor


ADAPTER_PREFIXES = (
    "model.image_projector.",
    "model.video_tower.video_qformer.",
    "model.video_tower.frame_position_embedding.",
    "model.video_tower.video_query_tokens",
    "model.video_projector.",
    "model.audio_tower.qformer.",
    "model.audio_tower.clip_position_embedding.",
    "model.audio_tower.query_tokens",
    "model.audio_projector.",
)


def as_dataset_row(sample: dict) -> dict:
    """`sample` with every message content as a list of items, the one layout an Arrow column can hold."""
    messages = [
        {**message, "content": [{"type": "text", "text": message["content"]}]}
        if isinstance(message["content"], str)
        else message
        for message in sample["messages"]
    ]
    return {**sample, "messages": messages}


def expected_trainable(names: list[str], stage: int) -> set[str]:
    prefixes = ADAPTER_PREFIXES + (("model.language_model.", "lm_head.") if stage > 1 else ())
    return {name for name in names if name.startswith(prefixes)}


def test_presets():
    assert get_stage(1).learning_rate == 1e-3 and get_stage(2).learning_rate == get_stage(3).learning_rate == 2e-5
    assert STAGES[2].trainable == STAGES[3].trainable
    with pytest.raises(ValueError, match="stages"):
        get_stage(4)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_one_step_changes_exactly_the_stage_parameters(stage, converted_dir, fixtures_dir, tmp_path):
    model, processor = load_model_and_processor(converted_dir)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        learning_rate=1e-3,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    dataset = Dataset.from_list([as_dataset_row(two_turn_sample())])
    trainer = build_sft_trainer(model, processor, args, dataset, stage=stage, media_root=fixtures_dir / "media")
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable == expected_trainable(list(before), stage)

    trainer.train()
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed == trainable
    # The frozen encoders stayed in eval mode (no dropout / drop-path) through `model.train()`.
    for encoder in (
        model.model.vision_tower,
        model.model.video_tower.frame_encoder,
        model.model.video_tower.frame_qformer,
        model.model.audio_tower.encoder,
    ):
        assert not any(module.training for module in encoder.modules())
    assert model.model.video_tower.video_qformer.training


def one_step_stage_zero_trainer(converted_dir, fixtures_dir, tmp_path, frozen_modules=()):
    """The converted tiny model, a copy of its parameters, and a one-step stage-0 trainer on one sample."""
    model, processor = load_model_and_processor(converted_dir)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = SFTConfig(
        output_dir=str(tmp_path), max_steps=1, learning_rate=1e-3, bf16=False, report_to="none",
        save_strategy="no", disable_tqdm=True,
    )
    dataset = Dataset.from_list([as_dataset_row(two_turn_sample())])
    trainer = build_sft_trainer(
        model, processor, args, dataset, stage=0, media_root=fixtures_dir / "media", frozen_modules=frozen_modules
    )
    return model, before, trainer


def test_stage_zero_trains_everything_encoders_included(converted_dir, fixtures_dir, tmp_path):
    """Stage 0 (from scratch, used for the demo model) trains every parameter and leaves the encoders trainable."""
    model, before, trainer = one_step_stage_zero_trainer(converted_dir, fixtures_dir, tmp_path)
    assert all(parameter.requires_grad for parameter in model.parameters())
    trainer.train()
    unchanged = {name for name, parameter in model.named_parameters() if torch.equal(parameter, before[name])}
    # Only what the forward never reaches: the CLIP layer after the feature layer (-2) and CLIP's post-layernorm.
    assert unchanged and all(
        name.startswith(("model.vision_tower.encoder.layers.2.", "model.vision_tower.post_layernorm.")) for name in unchanged
    ), sorted(unchanged)
    assert model.model.video_tower.frame_encoder.training and model.model.audio_tower.encoder.training


def test_frozen_modules_stay_unchanged_and_in_eval_mode_in_stage_zero(converted_dir, fixtures_dir, tmp_path):
    """`frozen_modules` holds a module frozen on top of the stage (the demo model's hand-set CLIP tower)."""
    model, before, trainer = one_step_stage_zero_trainer(
        converted_dir, fixtures_dir, tmp_path, frozen_modules=["model.vision_tower", "model.audio_tower.query_tokens"]
    )
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert frozen == {
        name for name in before if name.startswith(("model.vision_tower.", "model.audio_tower.query_tokens"))
    }
    trainer.train()
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed and not changed & frozen
    assert not any(module.training for module in model.model.vision_tower.modules())
    assert model.model.video_tower.frame_encoder.training


def test_freezing_an_unknown_module_is_an_error(converted_dir):
    model, _ = load_model_and_processor(converted_dir)
    with pytest.raises(ValueError, match="model.vision_towr"):
        freeze_for_stage(model, 0, ["model.vision_towr"])
