"""vLLM's multimodal processing for GroundingGPT, built on this package's `GroundingGPTProcessor`.

vLLM tokenizes the prompt itself and hands the media to the processor separately. The prompt is then re-tokenized
the way `GroundingGPTProcessor` does it (markers expanded in the text, one BOS, the whole text tokenized), so the
ids vLLM runs are exactly this package's `input_ids`; the media go through the package's image processor, video
processor and audio feature extractor. Each `<image>` / `<video>` / `<sound>` marker becomes `<x_start>` +
N x `<x_patch>` + `<x_end>`, and only the N patch tokens receive the media embeddings.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from vllm.multimodal.inputs import MultiModalFieldConfig
from vllm.multimodal.parse import MultiModalDataParser
from vllm.multimodal.processing import (
    BaseDummyInputsBuilder,
    BaseMultiModalProcessor,
    BaseProcessingInfo,
    PromptReplacement,
    PromptUpdateDetails,
)

from modeling_groundinggpt.configuration_groundinggpt import GroundingGPTConfig
from modeling_groundinggpt.processing import GroundingGPTFeatureExtractor, GroundingGPTProcessor

MODALITIES = ("image", "video", "audio")
"""vLLM's modality names; the processor calls audio "audio" too (its marker is `<sound>`)."""


def _marker(processor: GroundingGPTProcessor, modality: str) -> str:
    return getattr(processor, f"{modality}_placeholder")


class PackageAudioResampler:
    """Resamples audio with the feature extractor's own resampler (torchaudio's sinc interpolation), so a waveform
    vLLM received at any rate gives the features this package computes from it."""

    def __init__(self, feature_extractor: GroundingGPTFeatureExtractor):
        self.feature_extractor = feature_extractor
        self.target_sr = feature_extractor.sampling_rate

    def resample(self, audio: np.ndarray, *, orig_sr: float) -> np.ndarray:
        resampled = self.feature_extractor.load_waveform(np.asarray(audio), sampling_rate=int(orig_sr)).numpy()
        return resampled[0] if np.ndim(audio) == 1 else resampled


class GroundingGPTProcessingInfo(BaseProcessingInfo):
    def get_hf_config(self) -> GroundingGPTConfig:
        return self.ctx.get_hf_config(GroundingGPTConfig)

    def get_hf_processor(self, **kwargs: object) -> GroundingGPTProcessor:
        return self.ctx.get_hf_processor(GroundingGPTProcessor, **kwargs)

    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        return {modality: None for modality in MODALITIES}

    def get_num_tokens_per_item(self) -> dict[str, int]:
        """Media embeddings per item: CLIP patches, video Q-Former queries, audio Q-Former queries."""
        config = self.get_hf_config()
        return {
            "image": config.num_image_tokens,
            "video": config.num_video_query_tokens,
            "audio": config.num_audio_query_tokens,
        }

    def get_mm_max_tokens_per_item(self, seq_len: int, mm_counts: Mapping[str, int]) -> Mapping[str, int]:
        # Fixed per item whatever the media size: no need to profile dummy media at start-up.
        return self.get_num_tokens_per_item()

    def get_data_parser(self) -> MultiModalDataParser:
        feature_extractor = self.get_hf_processor().feature_extractor
        parser = MultiModalDataParser(
            target_sr=feature_extractor.sampling_rate,
            expected_hidden_size=self._get_expected_hidden_size(),
            allow_missing_mm_embeddings=self.allow_missing_mm_embeddings,
        )
        parser.audio_resampler = PackageAudioResampler(feature_extractor)
        return parser


class GroundingGPTDummyInputsBuilder(BaseDummyInputsBuilder[GroundingGPTProcessingInfo]):
    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        processor = self.info.get_hf_processor()
        return "".join(_marker(processor, modality) * mm_counts.get(modality, 0) for modality in MODALITIES)

    def get_dummy_mm_data(self, seq_len: int, mm_counts: Mapping[str, int], mm_options: Any = None) -> dict:
        config = self.info.get_hf_config()
        feature_extractor = self.info.get_hf_processor().feature_extractor
        options = mm_options or {}
        image_size = config.vision_config.image_size
        frame_size = config.video_frame_config.image_size
        audio_seconds = feature_extractor.clip_duration * feature_extractor.clips_per_audio
        return {
            "image": self._get_dummy_images(
                width=image_size,
                height=image_size,
                num_images=mm_counts.get("image", 0),
                overrides=options.get("image"),
            ),
            "video": self._get_dummy_videos(
                width=frame_size,
                height=frame_size,
                num_frames=config.max_frames,
                num_videos=mm_counts.get("video", 0),
                overrides=options.get("video"),
            ),
            "audio": self._get_dummy_audios(
                length=int(audio_seconds * feature_extractor.sampling_rate),
                num_audios=mm_counts.get("audio", 0),
                overrides=options.get("audio"),
            ),
        }


class GroundingGPTMultiModalProcessor(BaseMultiModalProcessor[GroundingGPTProcessingInfo]):
    def _call_hf_processor(self, hf_data: Mapping[str, object], hf_kwargs: Mapping[str, object]) -> BatchFeature:
        if "audio" in hf_data:
            # vLLM's data parser already resampled the audio to the extractor's rate.
            hf_kwargs = {**hf_kwargs, "sampling_rate": self.info.get_hf_processor().feature_extractor.sampling_rate}
        outputs = super()._call_hf_processor(hf_data, hf_kwargs)
        if "video_frame_mask" in outputs:
            # One tensor per video with its real frames only: an item's data must not depend on the other videos
            # of the prompt (vLLM caches processed items); the model pads each batch of videos again.
            lengths = outputs.pop("video_frame_mask").sum(dim=1).tolist()
            outputs["pixel_values_videos"] = [
                video[:length] for video, length in zip(outputs["pixel_values_videos"], lengths)
            ]
        return outputs

    def _get_mm_fields_config(
        self, hf_inputs: BatchFeature, hf_processor_mm_kwargs: Mapping[str, object]
    ) -> Mapping[str, MultiModalFieldConfig]:
        return {
            "pixel_values": MultiModalFieldConfig.batched("image"),
            "pixel_values_videos": MultiModalFieldConfig.batched("video"),
            "input_features": MultiModalFieldConfig.batched("audio"),
        }

    def _get_prompt_updates(
        self, mm_items: Any, hf_processor_mm_kwargs: Mapping[str, object], out_mm_kwargs: Any
    ) -> Sequence[PromptReplacement]:
        processor = self.info.get_hf_processor(**hf_processor_mm_kwargs)
        tokenizer = processor.tokenizer
        updates = []
        for modality, count in self.info.get_num_tokens_per_item().items():
            start, token, end = (
                getattr(processor, f"{modality}{suffix}_token_id") for suffix in ("_start", "", "_end")
            )
            updates.append(
                PromptReplacement(
                    modality=modality,
                    target=tokenizer.encode(_marker(processor, modality), add_special_tokens=False),
                    replacement=PromptUpdateDetails.select_token_id([start] + [token] * count + [end], token),
                )
            )
        return updates

    def _apply_prompt_updates(
        self, token_ids: list[int], mm_prompt_updates: Mapping[str, Sequence[Any]]
    ) -> tuple[list[int], Mapping[str, list[Any]]]:
        """Re-tokenizes the prompt as `GroundingGPTProcessor` does instead of splicing the expansion into vLLM's ids:
        the tokens next to a marker are not the same as those next to the added `<x_start>` / `<x_end>` tokens."""
        processor = self.info.get_hf_processor()
        tokenizer = processor.tokenizer
        if token_ids[:1] == [tokenizer.bos_token_id]:
            token_ids = token_ids[1:]
        text = tokenizer.decode(token_ids, clean_up_tokenization_spaces=False)
        for modality in MODALITIES:
            markers, items = text.count(_marker(processor, modality)), len(mm_prompt_updates.get(modality, []))
            if markers != items:
                raise ValueError(
                    f"The prompt contains {markers} {_marker(processor, modality)} markers but {items} {modality} "
                    "items were given; pass exactly one item per marker (the chat template writes them)."
                )
        new_token_ids = tokenizer(processor.expand_media_markers(text))["input_ids"]
        return new_token_ids, self._find_mm_placeholders(new_token_ids, mm_prompt_updates)


__all__ = [
    "GroundingGPTDummyInputsBuilder",
    "GroundingGPTMultiModalProcessor",
    "GroundingGPTProcessingInfo",
    "PackageAudioResampler",
]
