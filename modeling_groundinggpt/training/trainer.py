"""Model, processor and `SFTTrainer` construction for a GroundingGPT training stage."""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from datasets import Dataset
from peft import PeftConfig
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from ..generation_groundinggpt import stop_at_separator
from ..loading import check_local_folder, from_pretrained_checked
from ..modeling_groundinggpt import GroundingGPTForConditionalGeneration
from ..processing import GroundingGPTProcessor
from ..processing.chat_template import SEPARATOR
from .collator import GroundingGPTDataCollator
from .stages import freeze_for_stage


def load_model_and_processor(
    model_name_or_path: str | os.PathLike, **from_pretrained_kwargs: Any
) -> tuple[GroundingGPTForConditionalGeneration, GroundingGPTProcessor]:
    """
    Load a converted GroundingGPT folder for training.

    Weights are loaded in float32 unless `from_pretrained_kwargs` sets `dtype`: the optimizer then updates float32
    master weights, and `bf16=True` in the training arguments runs the computation in bfloat16 autocast.

    Raises:
        FileNotFoundError: a local-looking path that is not a model folder. ValueError: weights that do not cover
            the config (see `loading.from_pretrained_checked`).
    """
    from_pretrained_kwargs.setdefault("dtype", torch.float32)
    model = from_pretrained_checked(GroundingGPTForConditionalGeneration, model_name_or_path, **from_pretrained_kwargs)
    processor = GroundingGPTProcessor.from_pretrained(check_local_folder(model_name_or_path))
    return model, processor


def build_sft_trainer(
    model: GroundingGPTForConditionalGeneration,
    processor: GroundingGPTProcessor,
    args: SFTConfig,
    train_dataset: Dataset,
    stage: int,
    peft_config: PeftConfig | None = None,
    media_root: str | os.PathLike | Mapping[str, str | os.PathLike] | None = None,
    eval_dataset: Dataset | None = None,
    callbacks: list[TrainerCallback] | None = None,
    frozen_modules: Sequence[str] = (),
) -> SFTTrainer:
    """
    An `SFTTrainer` for one GroundingGPT training stage.

    The model is frozen for `stage` (see [`freeze_for_stage`]); with `peft_config` (e.g. from
    [`lora_config_for_stage`]) the trainer wraps it with PEFT, which then decides what trains. The batches come from
    [`GroundingGPTDataCollator`], so the dataset keeps its raw columns: `args.remove_unused_columns` is set to
    `False` and dataset preparation is skipped (`dataset_kwargs={"skip_prepare_dataset": True}`). The processor is
    the trainer's `processing_class`, so every checkpoint folder also holds the tokenizer, processor and chat
    template. The model's generation config is set to stop after the answer separator the model learns to write
    (see [`stop_at_separator`]), so every checkpoint's `generate` and pipeline stop there too.

    Args:
        model: a `GroundingGPTForConditionalGeneration`, e.g. from [`load_model_and_processor`].
        processor: its `GroundingGPTProcessor`.
        args: the training arguments; `args.max_length` is the collator's truncation length.
        train_dataset: a dataset with `messages` and optionally `images`/`videos`/`audios` (see [`load_sft_dataset`]).
        stage: 0 (from scratch: everything trains), 1, 2 or 3.
        peft_config: a PEFT config for LoRA training, or `None` to train the stage's parameters in full.
        media_root: where relative media paths are resolved (see [`GroundingGPTDataCollator`]).
        eval_dataset: optional evaluation data, in the same format.
        callbacks: extra `TrainerCallback`s.
        frozen_modules: further submodules kept frozen whatever the stage trains (see [`freeze_for_stage`]).

    Raises:
        FileNotFoundError: a media file of the datasets is missing (checked here, before training starts).
    """
    args.remove_unused_columns = False
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    freeze_for_stage(model, stage, frozen_modules)
    stop_at_separator(model.generation_config, processor.tokenizer, SEPARATOR)
    collator = GroundingGPTDataCollator(processor=processor, media_root=media_root, max_length=args.max_length)
    eval_datasets = eval_dataset.values() if isinstance(eval_dataset, Mapping) else [eval_dataset]
    for dataset in [train_dataset, *eval_datasets]:
        if dataset is not None:
            collator.check_media_files(dataset)
    return SFTTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=callbacks,
    )


__all__ = ["build_sft_trainer", "load_model_and_processor"]
