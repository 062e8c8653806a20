"""GroundingGPT as a Hugging Face transformers model: importing this package registers it with the Auto classes."""

from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    AutoModelForPreTraining,
)

from .configuration_groundinggpt import GroundingGPTAudioEncoderConfig, GroundingGPTConfig
from .modeling_groundinggpt import (
    GroundingGPTForConditionalGeneration,
    GroundingGPTModel,
    GroundingGPTPreTrainedModel,
)

AutoConfig.register(GroundingGPTConfig.model_type, GroundingGPTConfig, exist_ok=True)
AutoConfig.register(GroundingGPTAudioEncoderConfig.model_type, GroundingGPTAudioEncoderConfig, exist_ok=True)
AutoModel.register(GroundingGPTConfig, GroundingGPTModel, exist_ok=True)
for _auto_class in (AutoModelForImageTextToText, AutoModelForMultimodalLM, AutoModelForPreTraining):
    _auto_class.register(GroundingGPTConfig, GroundingGPTForConditionalGeneration, exist_ok=True)

from . import processing  # noqa: E402  (registers GroundingGPTProcessor with AutoProcessor; needs the config above)

DEMO_MODEL = str(Path(__file__).resolve().parent / "demo_model")
"""Folder of the embedded demo model: a 3.2M-parameter GroundingGPT trained on the synthetic world
(`examples/demo_model/train_demo_model.py`; see its model card). Load it like any checkpoint, offline."""

__all__ = [
    "DEMO_MODEL",
    "GroundingGPTAudioEncoderConfig",
    "GroundingGPTConfig",
    "GroundingGPTForConditionalGeneration",
    "GroundingGPTModel",
    "GroundingGPTPreTrainedModel",
]
