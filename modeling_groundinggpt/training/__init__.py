"""Supervised fine-tuning of GroundingGPT with TRL's `SFTTrainer`: data, collator, stage presets, LoRA."""

from .collator import IGNORE_INDEX, GroundingGPTDataCollator
from .data import conversation_to_messages, load_sft_dataset
from .lora import lora_config_for_stage, merge_lora_checkpoint
from .stages import STAGES, StagePreset, freeze_for_stage, get_stage
from .trainer import build_sft_trainer, load_model_and_processor

__all__ = [
    "IGNORE_INDEX",
    "STAGES",
    "GroundingGPTDataCollator",
    "StagePreset",
    "build_sft_trainer",
    "conversation_to_messages",
    "freeze_for_stage",
    "get_stage",
    "load_model_and_processor",
    "load_sft_dataset",
    "lora_config_for_stage",
    "merge_lora_checkpoint",
]
