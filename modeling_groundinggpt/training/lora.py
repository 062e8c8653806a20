"""LoRA on GroundingGPT's language model through PEFT, and merging a trained adapter into a full checkpoint."""

import json
from pathlib import Path

from peft import LoraConfig, PeftModel

from ..loading import from_pretrained_checked
from ..modeling_groundinggpt import GroundingGPTForConditionalGeneration
from ..processing import GroundingGPTProcessor
from .stages import get_stage


# Every linear layer of the LLaMA decoder, and nothing in the towers.
LANGUAGE_MODEL_LINEARS = r"model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


def lora_config_for_stage(
    stage: int, r: int = 128, lora_alpha: int = 256, lora_dropout: float = 0.05, **kwargs
) -> LoraConfig:
    """
    A LoRA config for stages 2 and 3: LoRA on the language model's linear layers, and the stage's adapter
    modules (projectors, video/audio Q-Formers, frame/clip position embeddings) trained in full through
    `modules_to_save`. The video and audio query tokens are bare parameters, which PEFT cannot train next to an
    adapter, so they keep their stage-1 values. Defaults follow the original LLaVA LoRA recipe (r=128, alpha=256).

    Raises:
        ValueError: for stage 1, which does not train the language model.
    """
    preset = get_stage(stage)
    if "model.language_model" not in preset.trainable:
        raise ValueError(f"Stage {stage} keeps the language model frozen; LoRA applies to stages 2 and 3.")
    # PEFT matches `modules_to_save` by name suffix: keep enough of each path to be unambiguous.
    modules_to_save = [
        name.removeprefix("model.")
        for name in preset.trainable
        if name not in ("model.language_model", "lm_head") and not name.endswith("query_tokens")
    ]
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=LANGUAGE_MODEL_LINEARS,
        modules_to_save=modules_to_save,
        task_type="CAUSAL_LM",
        **kwargs,
    )


def merge_lora_checkpoint(
    adapter_dir: str | Path, output_dir: str | Path, base_model_name_or_path: str | Path | None = None
) -> Path:
    """
    Merge a LoRA adapter folder saved by the trainer (a checkpoint or the final output) into the base model and
    write a complete GroundingGPT folder (model, tokenizer, processor, chat template) that `from_pretrained` loads.

    Args:
        adapter_dir: folder with `adapter_config.json`, the adapter weights and the processor.
        output_dir: the merged folder to write.
        base_model_name_or_path: the base model; defaults to the one recorded in `adapter_config.json`.
    """
    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if base_model_name_or_path is None:
        base_model_name_or_path = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = from_pretrained_checked(GroundingGPTForConditionalGeneration, base_model_name_or_path)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(output_dir)
    GroundingGPTProcessor.from_pretrained(adapter_dir).save_pretrained(output_dir)
    return output_dir


__all__ = ["LANGUAGE_MODEL_LINEARS", "lora_config_for_stage", "merge_lora_checkpoint"]
