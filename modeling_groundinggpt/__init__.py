"""GroundingGPT as a Hugging Face transformers model: importing this package registers it with the Auto classes."""

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

__all__ = [
    "GroundingGPTAudioEncoderConfig",
    "GroundingGPTConfig",
    "GroundingGPTForConditionalGeneration",
    "GroundingGPTModel",
    "GroundingGPTPreTrainedModel",
]
