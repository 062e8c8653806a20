"""GroundingGPT as a native vLLM model: vLLM's own Llama decoder (paged attention, tensor and pipeline parallel) fed
by this package's image, video and audio towers and projectors.

The towers are this package's modules, and the media features come from `GroundingGPTModel`'s own
`get_image_features` / `get_video_features` / `get_audio_features`, so vLLM and `generate` embed media identically.
The weights are the converted folder's safetensors, renamed by prefix only.
"""

from collections.abc import Iterable

import torch
from torch import nn
from transformers import CLIPVisionModel
from vllm.config import VllmConfig
from vllm.model_executor.models.interfaces import MultiModalEmbeddings, SupportsMultiModal, SupportsPP
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    WeightsMapper,
    init_vllm_registered_model,
    maybe_prefix,
)
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.sequence import IntermediateTensors

from modeling_groundinggpt.modeling_groundinggpt import (
    GroundingGPTAudioTower,
    GroundingGPTImageProjector,
    GroundingGPTModel,
    GroundingGPTVideoTower,
)

from .processing import GroundingGPTDummyInputsBuilder, GroundingGPTMultiModalProcessor, GroundingGPTProcessingInfo

MEDIA_INPUTS = {"pixel_values": "image", "pixel_values_videos": "video", "input_features": "audio"}
"""Keyword argument of `embed_multimodal` -> modality."""


def _pad_videos(videos: torch.Tensor | list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Videos `[n_frames_i, 3, H, W]` (a list, or one stacked tensor) -> `[n, max_frames, 3, H, W]` padded at the
    end, and the frame mask `[n, max_frames]`."""
    if isinstance(videos, torch.Tensor):
        return videos, torch.ones(videos.shape[:2], dtype=torch.long, device=videos.device)
    lengths = torch.tensor([len(video) for video in videos], device=videos[0].device)
    padded = torch.nn.utils.rnn.pad_sequence(list(videos), batch_first=True)
    frame_mask = (torch.arange(padded.shape[1], device=padded.device) < lengths[:, None]).long()
    return padded, frame_mask


@MULTIMODAL_REGISTRY.register_processor(
    GroundingGPTMultiModalProcessor,
    info=GroundingGPTProcessingInfo,
    dummy_inputs=GroundingGPTDummyInputsBuilder,
)
class GroundingGPTForConditionalGeneration(nn.Module, SupportsMultiModal, SupportsPP):
    """GroundingGPT for vLLM. Checkpoint keys: `model.language_model.*` -> vLLM's Llama, `lm_head.*` -> its head,
    `model.<tower or projector>.*` -> the same module here; any other key is refused by name."""

    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_prefix={
            "model.language_model.": "language_model.model.",
            "lm_head.": "language_model.lm_head.",
            "model.": "",
        }
    )

    get_image_features = GroundingGPTModel.get_image_features
    get_video_features = GroundingGPTModel.get_video_features
    get_audio_features = GroundingGPTModel.get_audio_features

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        return {"image": "<image>", "video": "<video>", "audio": "<sound>"}.get(modality)

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        self.configure_mm_token_handling(
            vocab_size=config.text_config.vocab_size,
            mm_token_ids=[config.image_token_id, config.video_token_id, config.audio_token_id],
        )
        with self._mark_tower_model(vllm_config, "image"):
            self.vision_tower = CLIPVisionModel(config.vision_config)
            self.image_projector = GroundingGPTImageProjector(config)
        with self._mark_tower_model(vllm_config, "video"):
            self.video_tower = GroundingGPTVideoTower(config)
            self.video_projector = nn.Linear(config.video_qformer_config.hidden_size, config.text_config.hidden_size)
        with self._mark_tower_model(vllm_config, "audio"):
            self.audio_tower = GroundingGPTAudioTower(config)
            self.audio_projector = nn.Linear(config.audio_qformer_config.hidden_size, config.text_config.hidden_size)
        with self._mark_language_model(vllm_config):
            self.language_model = init_vllm_registered_model(
                vllm_config=vllm_config,
                hf_config=config.text_config,
                prefix=maybe_prefix(prefix, "language_model"),
                architectures=["LlamaForCausalLM"],
            )
        self.make_empty_intermediate_tensors = self.language_model.make_empty_intermediate_tensors

    def embed_multimodal(self, **kwargs: object) -> MultiModalEmbeddings:
        """One `[tokens_per_item, hidden]` tensor per media item, modality by modality in the order vLLM passes
        them (each modality's items in prompt order)."""
        embeddings: list[torch.Tensor] = []
        for name, value in kwargs.items():
            if value is None or name not in MEDIA_INPUTS:
                continue
            if name == "pixel_values":
                features = self.get_image_features(value)
            elif name == "pixel_values_videos":
                features = self.get_video_features(*_pad_videos(value))
            else:
                features = self.get_audio_features(value)
            embeddings.extend(features)
        return embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor | IntermediateTensors:
        if intermediate_tensors is not None:
            inputs_embeds = None
        return self.language_model.model(input_ids, positions, intermediate_tensors, inputs_embeds=inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.language_model.compute_logits(hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return AutoWeightsLoader(self).load_weights(weights, mapper=self.hf_to_vllm_mapper)


__all__ = ["GroundingGPTForConditionalGeneration"]
