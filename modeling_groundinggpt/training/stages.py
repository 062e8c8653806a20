"""The three GroundingGPT training stages of the paper: which parameters each trains, and its learning rate."""

from collections.abc import Sequence
from dataclasses import dataclass
from types import MethodType

from torch import nn


# Names are relative to `GroundingGPTForConditionalGeneration`; each is a submodule or a bare parameter.
ADAPTERS = (
    "model.image_projector",
    "model.video_tower.video_qformer",
    "model.video_tower.frame_position_embedding",
    "model.video_tower.video_query_tokens",
    "model.video_projector",
    "model.audio_tower.qformer",
    "model.audio_tower.clip_position_embedding",
    "model.audio_tower.query_tokens",
    "model.audio_projector",
)
LANGUAGE_MODEL = ("model.language_model", "lm_head")
# The pretrained encoders: frozen in every stage, and run as at inference (no dropout or drop-path).
FROZEN_ENCODERS = (
    "model.vision_tower",
    "model.video_tower.frame_encoder",
    "model.video_tower.frame_qformer",
    "model.video_tower.frame_query_tokens",
    "model.audio_tower.encoder",
)


@dataclass(frozen=True)
class StagePreset:
    """
    A training stage.

    Attributes:
        stage: 1 (multimodal alignment), 2 (fine-grained alignment) or 3 (multi-granularity instruction tuning);
            0 trains everything, encoders included (training from scratch).
        trainable: submodule / parameter names trained in full, relative to `GroundingGPTForConditionalGeneration`.
        learning_rate: the learning rate of the original scripts (`scripts/pretrain.sh`, `scripts/finetune.sh`).
    """

    stage: int
    trainable: tuple[str, ...]
    learning_rate: float


STAGES: dict[int, StagePreset] = {
    # Not a stage of the paper: every parameter trains, for a model built from scratch (the demo model, whose
    # encoders have no pretrained weights to keep).
    0: StagePreset(stage=0, trainable=FROZEN_ENCODERS + ADAPTERS + LANGUAGE_MODEL, learning_rate=1e-3),
    1: StagePreset(stage=1, trainable=ADAPTERS, learning_rate=1e-3),
    2: StagePreset(stage=2, trainable=ADAPTERS + LANGUAGE_MODEL, learning_rate=2e-5),
    3: StagePreset(stage=3, trainable=ADAPTERS + LANGUAGE_MODEL, learning_rate=2e-5),
}


def get_stage(stage: int) -> StagePreset:
    """The preset of stage 0 (from scratch), 1, 2 or 3."""
    if stage not in STAGES:
        raise ValueError(f"GroundingGPT has training stages {sorted(STAGES)}, got {stage}.")
    return STAGES[stage]


def _get(model: nn.Module, name: str) -> nn.Module | nn.Parameter:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return model.get_parameter(name)


def _stay_in_eval_mode(module: nn.Module, mode: bool = True) -> nn.Module:
    return module


def keep_in_eval_mode(module: nn.Module) -> None:
    """
    Put `module` in eval mode for good: `Trainer` calls `model.train()` every step, which would turn the dropout
    and drop-path of a frozen encoder back on. Frozen BLIP-2 / Video-LLaMA encoders are held in eval mode the same way.
    """
    module.eval()
    module.train = MethodType(_stay_in_eval_mode, module)


def _hold_frozen(target: nn.Module | nn.Parameter) -> None:
    target.requires_grad_(False)
    if isinstance(target, nn.Module):
        keep_in_eval_mode(target)


def freeze_for_stage(model: nn.Module, stage: int, frozen_modules: Sequence[str] = ()) -> list[str]:
    """
    Set `requires_grad` for `stage` on a `GroundingGPTForConditionalGeneration`: the stage's modules train, all
    else is frozen, and the frozen pretrained encoders are kept in eval mode.

    Args:
        model: the model.
        stage: 0 (from scratch), 1, 2 or 3.
        frozen_modules: further submodule / parameter names (relative to the model) to keep frozen, and in eval mode,
            whatever the stage trains; e.g. `("model.vision_tower",)` for a model built from scratch whose image
            encoder is set by hand.

    Returns:
        The names of the trainable parameters.

    Raises:
        ValueError: if a name in `frozen_modules` is neither a submodule nor a parameter of the model.
    """
    preset = get_stage(stage)
    model.requires_grad_(False)
    for name in preset.trainable:
        _get(model, name).requires_grad_(True)
    for name in FROZEN_ENCODERS:
        if name in preset.trainable:
            continue
        _hold_frozen(_get(model, name))
    for name in frozen_modules:
        try:
            target = _get(model, name)
        except AttributeError:
            raise ValueError(f"Cannot freeze {name!r}: the model has no such submodule or parameter.") from None
        _hold_frozen(target)
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


__all__ = ["ADAPTERS", "FROZEN_ENCODERS", "LANGUAGE_MODEL", "STAGES", "StagePreset", "freeze_for_stage", "get_stage", "keep_in_eval_mode"]
