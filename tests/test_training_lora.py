"""LoRA on the language model: what trains, gradient checkpointing with LoRA, merging into a full checkpoint."""

import pytest
import torch
from peft import PeftModel
from test_training_sft import grounding_dataset
from trl import SFTConfig

from modeling_groundinggpt import GroundingGPTForConditionalGeneration
from modeling_groundinggpt.training import (
    GroundingGPTDataCollator,
    build_sft_trainer,
    load_model_and_processor,
    lora_config_for_stage,
    merge_lora_checkpoint,
)


def base_name(peft_name: str) -> str:
    """The name of a (non-LoRA) parameter of the PEFT-wrapped model in the unwrapped model."""
    name = peft_name.removeprefix("base_model.model.")
    for wrapper in (".base_layer", ".original_module", ".modules_to_save.default"):
        name = name.replace(wrapper, "")
    return name


def test_stage_one_has_no_lora():
    with pytest.raises(ValueError, match="LoRA applies to stages 2 and 3"):
        lora_config_for_stage(1)


def test_lora_with_gradient_checkpointing_trains_only_lora_and_adapters(converted_dir, fixtures_dir, tmp_path):
    model, processor = load_model_and_processor(converted_dir)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = SFTConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        gradient_checkpointing=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    peft_config = lora_config_for_stage(2, r=4, lora_alpha=8, lora_dropout=0.0)
    trainer = build_sft_trainer(
        model, processor, args, grounding_dataset(), stage=2, peft_config=peft_config, media_root=fixtures_dir / "media"
    )
    peft_model = trainer.model
    assert isinstance(peft_model, PeftModel)
    trainable = {name for name, parameter in peft_model.named_parameters() if parameter.requires_grad}
    assert all(".lora_" in name or ".modules_to_save." in name for name in trainable)
    lora_names = {name for name in trainable if ".lora_" in name}
    assert lora_names and all(".language_model.layers." in name for name in lora_names)
    assert {name.split(".modules_to_save.")[0] for name in trainable - lora_names} == {
        f"base_model.model.model.{name}" for name in peft_config.modules_to_save
    }

    trainer.train()
    # Trainer enables checkpointing when training starts.
    assert all(layer.gradient_checkpointing for layer in peft_model.get_base_model().model.language_model.layers)
    for name, parameter in peft_model.named_parameters():
        if ".lora_" in name:
            continue
        original = before[base_name(name)]
        if name in trainable:  # an adapter trained in full (`modules_to_save`); the data has images only
            assert torch.equal(parameter, original) != ("image_projector" in name), name
        else:
            assert torch.equal(parameter, original), name
    assert all(parameter.abs().sum() > 0 for name, parameter in peft_model.named_parameters() if ".lora_B." in name)

    # The adapter folder merges into a complete checkpoint whose outputs are the adapted model's.
    trainer.save_model(str(tmp_path / "adapter"))
    merged_dir = merge_lora_checkpoint(tmp_path / "adapter", tmp_path / "merged")
    merged = GroundingGPTForConditionalGeneration.from_pretrained(merged_dir).eval()
    batch = GroundingGPTDataCollator(processor, media_root=fixtures_dir / "media")(list(grounding_dataset())[:2])
    batch.pop("labels")
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(**batch).logits
        actual = merged(**batch).logits
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    assert (merged_dir / "processor_config.json").exists() and (merged_dir / "chat_template.jinja").exists()
