"""GroundingGPT: LLaMA with a CLIP image tower, an EVA + Q-Former video tower and an ImageBind audio tower."""

import torch
from torch import nn
from transformers import Blip2QFormerModel, Blip2VisionModel, CLIPVisionModel, LlamaModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.generation import GenerationMixin
from transformers.modeling_utils import PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple

from .compat import (
    CACHE_NAME,
    MultimodalBaseModelOutputWithPast,
    MultimodalCausalLMOutputWithPast,
    slice_logits_to_keep,
)
from .configuration_groundinggpt import GroundingGPTConfig
from .generation_groundinggpt import SeparatorStoppingCriteria
from .modeling_imagebind_audio import ImageBindAudioAttention, ImageBindAudioEncoder


class GroundingGPTImageProjector(nn.Module):
    """Two-layer MLP from CLIP patch features to the LLM width (the original `mm_vision_projector`)."""

    def __init__(self, config: GroundingGPTConfig):
        super().__init__()
        self.linear_1 = nn.Linear(config.vision_config.hidden_size, config.text_config.hidden_size)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(config.text_config.hidden_size, config.text_config.hidden_size)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(image_features)))


class GroundingGPTFrameEncoder(Blip2VisionModel):
    """
    BLIP-2's EVA ViT-g followed by BLIP-2's `ln_vision`, which is this model's `post_layernorm`. `ln_vision` uses a
    different epsilon than the ViT blocks, so it is rebuilt with its own.
    """

    def __init__(self, config, post_layernorm_eps: float):
        super().__init__(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=post_layernorm_eps)


class GroundingGPTVideoTower(nn.Module):
    """
    Frames -> EVA ViT -> per-frame Q-Former queries + frame position embedding -> video Q-Former queries.
    Padding frames (``video_frame_mask == 0``) are never encoded and are masked out of the video Q-Former's
    cross-attention, so a padded video gives the result of the unpadded one.
    """

    def __init__(self, config: GroundingGPTConfig):
        super().__init__()
        frame_width = config.video_frame_qformer_config.hidden_size
        self.frame_encoder = GroundingGPTFrameEncoder(config.video_frame_config, config.video_frame_layernorm_eps)
        self.frame_query_tokens = nn.Parameter(torch.zeros(1, config.num_frame_query_tokens, frame_width))
        self.frame_qformer = Blip2QFormerModel(config.video_frame_qformer_config)
        self.frame_position_embedding = nn.Embedding(config.max_frames, frame_width)
        self.video_query_tokens = nn.Parameter(
            torch.zeros(1, config.num_video_query_tokens, config.video_qformer_config.hidden_size)
        )
        self.video_qformer = Blip2QFormerModel(config.video_qformer_config)

    def forward(self, pixel_values_videos: torch.Tensor, video_frame_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pixel_values_videos: `[n_videos, n_frames, 3, height, width]`.
            video_frame_mask: `[n_videos, n_frames]`, 1 for real frames, 0 for padding at the end.

        Returns:
            `[n_videos, num_video_query_tokens, video_qformer_hidden]`.
        """
        n_videos, n_frames = video_frame_mask.shape
        frame_mask = video_frame_mask.bool()
        frames = pixel_values_videos[frame_mask]
        frame_embeds = self.frame_encoder(pixel_values=frames).last_hidden_state
        frame_queries = self.frame_qformer(
            query_embeds=self.frame_query_tokens.expand(frames.shape[0], -1, -1),
            encoder_hidden_states=frame_embeds,
        ).last_hidden_state

        frame_index = torch.arange(n_frames, device=frame_mask.device).expand(n_videos, -1)[frame_mask]
        frame_queries = frame_queries + self.frame_position_embedding(frame_index).unsqueeze(1)

        num_queries = frame_queries.shape[1]
        video_tokens = frame_queries.new_zeros(n_videos, n_frames, num_queries, frame_queries.shape[-1])
        video_tokens[frame_mask] = frame_queries
        video_tokens = video_tokens.flatten(1, 2)
        video_tokens_mask = frame_mask.repeat_interleave(num_queries, dim=1).long()

        return self.video_qformer(
            query_embeds=self.video_query_tokens.expand(n_videos, -1, -1),
            encoder_hidden_states=video_tokens,
            encoder_attention_mask=video_tokens_mask,
        ).last_hidden_state


class GroundingGPTAudioTower(nn.Module):
    """
    Audio clips -> ImageBind audio embedding per clip + clip position embedding -> audio Q-Former queries.
    The Q-Former cross-attends over one (normalised, scaled) ImageBind embedding per clip.
    """

    def __init__(self, config: GroundingGPTConfig):
        super().__init__()
        self.encoder = ImageBindAudioEncoder(config.audio_config)
        self.clip_position_embedding = nn.Embedding(config.num_audio_clip_positions, config.audio_config.projection_dim)
        self.query_tokens = nn.Parameter(
            torch.zeros(1, config.num_audio_query_tokens, config.audio_qformer_config.hidden_size)
        )
        self.qformer = Blip2QFormerModel(config.audio_qformer_config)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input_features: `[n_audios, n_clips, 1, num_mel_bins, target_length]` normalised log-mel fbanks.

        Returns:
            `[n_audios, num_audio_query_tokens, audio_qformer_hidden]`.
        """
        n_audios, n_clips = input_features.shape[:2]
        clip_embeds = self.encoder(input_features.flatten(0, 1)).view(n_audios, n_clips, -1)
        clip_positions = torch.arange(n_clips, device=clip_embeds.device)
        clip_embeds = clip_embeds + self.clip_position_embedding(clip_positions)
        return self.qformer(
            query_embeds=self.query_tokens.expand(n_audios, -1, -1),
            encoder_hidden_states=clip_embeds,
        ).last_hidden_state


class GroundingGPTPreTrainedModel(PreTrainedModel):
    config: GroundingGPTConfig
    base_model_prefix = "model"
    input_modalities = ("image", "video", "audio", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = [
        "LlamaDecoderLayer",
        "CLIPEncoderLayer",
        "GroundingGPTVideoTower",
        "GroundingGPTAudioTower",
    ]
    _skip_keys_device_placement = [CACHE_NAME]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # The decode step (no media, static cache) is one graph: `generate(cache_implementation="static")` compiles it
    # with `CompileConfig(fullgraph=True)`. Media are only encoded in the prefill, which `generate` runs eagerly.
    _can_compile_fullgraph = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.text_config.initializer_range
        if isinstance(module, GroundingGPTVideoTower):
            init.normal_(module.frame_query_tokens, mean=0.0, std=std)
            init.normal_(module.video_query_tokens, mean=0.0, std=std)
        elif isinstance(module, GroundingGPTAudioTower):
            init.normal_(module.query_tokens, mean=0.0, std=std)
        elif isinstance(module, ImageBindAudioAttention):
            init.xavier_uniform_(module.in_proj_weight)
            init.zeros_(module.in_proj_bias)
            init.xavier_normal_(module.bias_k)
            init.xavier_normal_(module.bias_v)
        elif isinstance(module, ImageBindAudioEncoder):
            init.trunc_normal_(module.embeddings.class_embedding, std=module.config.initializer_range)
            init.trunc_normal_(module.embeddings.position_embedding, std=module.config.initializer_range)


class GroundingGPTModel(GroundingGPTPreTrainedModel):
    """GroundingGPT without the language-model head: merges media features into the LLaMA input embeddings."""

    def __init__(self, config: GroundingGPTConfig):
        super().__init__(config)
        self.vision_tower = CLIPVisionModel(config.vision_config)
        self.image_projector = GroundingGPTImageProjector(config)
        self.video_tower = GroundingGPTVideoTower(config)
        self.video_projector = nn.Linear(config.video_qformer_config.hidden_size, config.text_config.hidden_size)
        self.audio_tower = GroundingGPTAudioTower(config)
        self.audio_projector = nn.Linear(config.audio_qformer_config.hidden_size, config.text_config.hidden_size)
        self.language_model = LlamaModel(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """
        `pixel_values` `[n_images, 3, height, width]` -> LLM-ready features `[n_images, num_patches, text_hidden]`
        (CLIP hidden state `config.vision_feature_layer`, CLS dropped, through the MLP projector).
        """
        vision_outputs = self.vision_tower(pixel_values=pixel_values, output_hidden_states=True)
        patch_features = vision_outputs.hidden_states[self.config.vision_feature_layer][:, 1:]
        return self.image_projector(patch_features)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor, video_frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        `pixel_values_videos` `[n_videos, n_frames, 3, height, width]` (and optionally `video_frame_mask`
        `[n_videos, n_frames]`, 0 on padding frames at the end) -> `[n_videos, num_video_query_tokens, text_hidden]`.
        """
        n_videos, n_frames = pixel_values_videos.shape[:2]
        if n_frames > self.config.max_frames:
            raise ValueError(f"Videos have {n_frames} frames but the model takes at most {self.config.max_frames}.")
        if video_frame_mask is None:
            video_frame_mask = torch.ones(n_videos, n_frames, dtype=torch.long, device=pixel_values_videos.device)
        elif video_frame_mask.shape != (n_videos, n_frames):
            raise ValueError(
                f"video_frame_mask has shape {tuple(video_frame_mask.shape)}, expected {(n_videos, n_frames)}."
            )
        mask = video_frame_mask.bool()
        if not mask[:, 0].all() or (mask[:, 1:] & ~mask[:, :-1]).any():
            raise ValueError("video_frame_mask must mark at least one frame per video and padding only at the end.")
        return self.video_projector(self.video_tower(pixel_values_videos, mask))

    def get_audio_features(self, input_features: torch.Tensor) -> torch.Tensor:
        """
        `input_features` `[n_audios, n_clips, 1, num_mel_bins, target_length]`
        -> `[n_audios, num_audio_query_tokens, text_hidden]`.
        """
        n_clips = input_features.shape[1]
        if n_clips > self.config.num_audio_clip_positions:
            raise ValueError(
                f"Audio has {n_clips} clips but the model takes at most {self.config.num_audio_clip_positions}."
            )
        return self.audio_projector(self.audio_tower(input_features))

    def _scatter_features(
        self,
        input_ids: torch.Tensor,
        inputs_embeds: torch.Tensor,
        features: torch.Tensor,
        token_id: int,
        modality: str,
    ) -> torch.Tensor:
        """Writes `features` `[n_media, tokens_per_media, hidden]` at the `token_id` positions of the batch, in order."""
        placeholder_mask = input_ids == token_id
        n_placeholders = int(placeholder_mask.sum())
        n_features = features.shape[0] * features.shape[1]
        if n_placeholders != n_features:
            raise ValueError(
                f"{modality}: the input has {n_placeholders} placeholder tokens (id {token_id}) but the "
                f"{features.shape[0]} {modality} item(s) give {n_features} feature vectors "
                f"({features.shape[1]} per item)."
            )
        features = features.to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(placeholder_mask.unsqueeze(-1).to(inputs_embeds.device), features)

    def _check_placeholders_have_media(self, input_ids: torch.Tensor, cache: Cache | None, **media) -> None:
        """Placeholder ids of a modality whose media input is None are an error, in a prompt. Tokens that `generate`
        feeds back (the cache holds the prompt) are the model's own, not checked; nor while compiling: `generate`
        compiles its decode steps only, so the check costs the compiled graph nothing."""
        if torch.compiler.is_compiling() or (cache is not None and cache.get_seq_length() != 0):
            return
        config = self.config
        for argument, modality, token_id in (
            ("pixel_values", "image", config.image_token_id),
            ("pixel_values_videos", "video", config.video_token_id),
            ("input_features", "audio", config.audio_token_id),
        ):
            if media[argument] is None:
                count = int((input_ids == token_id).sum())
                if count:
                    raise ValueError(
                        f"input_ids hold {count} {modality} placeholder tokens (id {token_id}) but {argument} is None: "
                        f"pass the {modality} input, or leave its placeholders out of the text."
                    )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_frame_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | MultimodalBaseModelOutputWithPast:
        """
        Args:
            input_ids: `[batch, seq]` with `<im_patch>`/`<vi_patch>`/`<so_patch>` runs where media go.
            pixel_values: `[n_images, 3, H, W]`, images in order of their placeholder runs across the batch.
            pixel_values_videos: `[n_videos, n_frames, 3, H, W]`, likewise.
            video_frame_mask: `[n_videos, n_frames]`, 0 on padding frames (at the end).
            input_features: `[n_audios, n_clips, 1, num_mel_bins, target_length]`, likewise.
            kwargs: go to the LLaMA model, e.g. the KV cache (`cache`; `past_key_values` before transformers 5.24,
                see `compat.CACHE_NAME`) and `use_cache`.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        has_media = pixel_values is not None or pixel_values_videos is not None or input_features is not None
        if has_media and input_ids is None:
            raise ValueError("Media inputs need input_ids to locate their placeholder tokens.")
        if input_ids is not None:
            self._check_placeholders_have_media(
                input_ids, kwargs.get(CACHE_NAME), pixel_values=pixel_values, pixel_values_videos=pixel_values_videos,
                input_features=input_features,
            )

        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            image_features = self.get_image_features(pixel_values)
            inputs_embeds = self._scatter_features(
                input_ids, inputs_embeds, image_features, self.config.image_token_id, "image"
            )
        if pixel_values_videos is not None:
            video_features = self.get_video_features(pixel_values_videos, video_frame_mask)
            inputs_embeds = self._scatter_features(
                input_ids, inputs_embeds, video_features, self.config.video_token_id, "video"
            )
        if input_features is not None:
            audio_features = self.get_audio_features(input_features)
            inputs_embeds = self._scatter_features(
                input_ids, inputs_embeds, audio_features, self.config.audio_token_id, "audio"
            )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        return MultimodalBaseModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_NAME: outputs.get(CACHE_NAME)},
        )


class GroundingGPTForConditionalGeneration(GroundingGPTPreTrainedModel, GenerationMixin):
    """
    GroundingGPT with the language-model head; `generate` encodes media once, in the prefill step, and stops after
    the answer separator `###` as the checkpoint's generation config says (see `generation_groundinggpt`).
    """

    def __init__(self, config: GroundingGPTConfig):
        super().__init__(config)
        self.model = GroundingGPTModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """See [`GroundingGPTModel.get_image_features`]."""
        return self.model.get_image_features(pixel_values)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor, video_frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """See [`GroundingGPTModel.get_video_features`]."""
        return self.model.get_video_features(pixel_values_videos, video_frame_mask)

    def get_audio_features(self, input_features: torch.Tensor) -> torch.Tensor:
        """See [`GroundingGPTModel.get_audio_features`]."""
        return self.model.get_audio_features(input_features)

    def _expand_inputs_for_generation(
        self,
        expand_size: int = 1,
        is_encoder_decoder: bool = False,
        input_ids: torch.LongTensor | None = None,
        **model_kwargs,
    ) -> tuple[torch.LongTensor, dict]:
        """
        Beam search and `num_return_sequences` repeat every row `expand_size` times; each row's media must be
        repeated with it, as a block. (The default repeats each media item in place, which pairs media with the
        wrong rows as soon as a sample holds several items of one modality.)
        """
        if expand_size == 1 or input_ids is None:
            return super()._expand_inputs_for_generation(expand_size, is_encoder_decoder, input_ids, **model_kwargs)
        config = self.config
        modalities = (
            (("pixel_values",), config.image_token_id, config.num_image_tokens),
            (("pixel_values_videos", "video_frame_mask"), config.video_token_id, config.num_video_query_tokens),
            (("input_features",), config.audio_token_id, config.num_audio_query_tokens),
        )
        media = {}
        for keys, token_id, tokens_per_item in modalities:
            counts = ((input_ids == token_id).sum(dim=1) // tokens_per_item).tolist()
            starts = [sum(counts[:row]) for row in range(len(counts))]
            index = [i for start, count in zip(starts, counts) for _ in range(expand_size) for i in range(start, start + count)]
            for key in keys:
                if model_kwargs.get(key) is not None:
                    values = model_kwargs.pop(key)
                    media[key] = values[torch.tensor(index, dtype=torch.long, device=values.device)]
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size, is_encoder_decoder, input_ids, **model_kwargs
        )
        return input_ids, {**model_kwargs, **media}

    def _get_stopping_criteria(self, generation_config, stopping_criteria, *args, **kwargs):
        """The default criteria, plus the separator's token sequence where it is several tokens
        (`generation_config.separator_token_ids`), which `eos_token_id` cannot express."""
        criteria = super()._get_stopping_criteria(generation_config, stopping_criteria, *args, **kwargs)
        sequences = getattr(generation_config, "separator_token_ids", None)
        if sequences:
            criteria.append(SeparatorStoppingCriteria(sequences))
        return criteria

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_frame_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | MultimodalCausalLMOutputWithPast:
        """
        Inputs as [`GroundingGPTModel.forward`], plus `labels` `[batch, seq]` (-100 where no loss is taken) and
        `logits_to_keep`. Returns logits `[batch, seq, vocab]`.
        """
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            video_frame_mask=video_frame_mask,
            input_features=input_features,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )

        return MultimodalCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_NAME: outputs.get(CACHE_NAME)},
        )


__all__ = ["GroundingGPTForConditionalGeneration", "GroundingGPTModel", "GroundingGPTPreTrainedModel"]
