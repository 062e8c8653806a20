"""Fine-tune GroundingGPT with TRL's SFTTrainer, one training stage at a time.

    python examples/train_sft.py --model_name_or_path groundinggpt-7b --data_path data.json --media_root media/ \
        --stage 3 --output_dir out --max_steps 100

    accelerate launch --config_file examples/accelerate_configs/ddp.yaml examples/train_sft.py ...

Besides the options below, every `trl.SFTConfig` / `transformers.TrainingArguments` field is an option
(`--per_device_train_batch_size`, `--learning_rate`, `--save_steps`, `--report_to`, `--resume_from_checkpoint`, ...).
The learning rate defaults to the stage's (1e-3 for stage 1, 2e-5 for stages 2 and 3), bf16 to whether the GPU
supports it, and `--max_length` to 2048 (the original `model_max_length`).
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser
from trl import SFTConfig

from modeling_groundinggpt.training import (
    build_sft_trainer,
    get_stage,
    load_model_and_processor,
    load_sft_dataset,
    lora_config_for_stage,
    merge_lora_checkpoint,
)


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(metadata={"help": "A converted GroundingGPT folder or Hub id."})
    data_path: str = field(
        metadata={"help": "GroundingGPT JSON file(s), comma-separated, or a Hugging Face dataset with `messages`."}
    )
    media_root: str | None = field(default=None, metadata={"help": "Folder that relative media paths are in."})
    stage: int = field(
        default=3,
        metadata={"help": "Training stage: 1, 2 or 3 (the paper's); 0 trains every parameter (from scratch).",
                  "choices": [0, 1, 2, 3]},
    )
    frozen_modules: list[str] = field(
        default_factory=list,
        metadata={"help": "Submodules kept frozen whatever the stage trains, relative to the model "
                          "(e.g. model.vision_tower)."},
    )
    lora: bool = field(
        default=False,
        metadata={"help": "Train LoRA on the language model (stages 2-3); also writes a merged model to OUTPUT_DIR/merged."},
    )
    lora_r: int = field(default=128, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=256, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})


def parse_args(argv: list[str]) -> tuple[ScriptArguments, SFTConfig]:
    parser = HfArgumentParser((ScriptArguments, SFTConfig))
    known, _ = parser.parse_known_args(argv)
    parser.set_defaults(
        learning_rate=get_stage(known.stage).learning_rate,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        max_length=2048,
    )
    return parser.parse_args_into_dataclasses(argv)


def main(argv: list[str]) -> None:
    script_args, training_args = parse_args(argv)
    # The data first: its errors (file, line or sample id, field) come before the model has been loaded.
    train_dataset = load_sft_dataset(script_args.data_path)
    model, processor = load_model_and_processor(script_args.model_name_or_path, **(training_args.model_init_kwargs or {}))
    training_args.model_init_kwargs = None  # used here; SFTTrainer would warn that it ignores them
    peft_config = None
    if script_args.lora:
        peft_config = lora_config_for_stage(
            script_args.stage, r=script_args.lora_r, lora_alpha=script_args.lora_alpha, lora_dropout=script_args.lora_dropout
        )
    trainer = build_sft_trainer(
        model,
        processor,
        training_args,
        train_dataset,
        stage=script_args.stage,
        peft_config=peft_config,
        media_root=script_args.media_root,
        frozen_modules=script_args.frozen_modules,
    )

    resume = training_args.resume_from_checkpoint
    if resume is not None and resume.lower() in ("true", "false"):
        resume = resume.lower() == "true"  # True: the last checkpoint in output_dir
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)

    if script_args.lora and trainer.is_world_process_zero():
        merged = merge_lora_checkpoint(training_args.output_dir, Path(training_args.output_dir) / "merged")
        print(f"Merged model written to {merged}")


if __name__ == "__main__":
    main(sys.argv[1:])
