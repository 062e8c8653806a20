"""
Rules that map every key of an original GroundingGPT ("LEGO") state dict onto this package's parameter names.

Each original key matches exactly one rule. A rule either renames the key (regex substitution), drops it (with the
reason), or merges it into a fused parameter (EVA's separate q/v biases become the bias of HF BLIP-2's fused qkv).
A key that matches no rule is an error: the converter never guesses.
"""

import re
from dataclasses import dataclass

_QFORMER_LAYER_RENAMES = [
    (r"\.attention\.self\.", ".attention.attention."),
    (r"\.crossattention\.self\.", ".crossattention.attention."),
]


@dataclass(frozen=True)
class RenameRule:
    """Rename `pattern` -> `replacement` (a `re.sub` template), then apply `then` substitutions."""

    pattern: str
    replacement: str
    then: tuple[tuple[str, str], ...] = ()

    def apply(self, key: str) -> str | None:
        if re.fullmatch(self.pattern, key) is None:
            return None
        new_key = re.sub(self.pattern, self.replacement, key)
        for old, new in self.then:
            new_key = re.sub(old, new, new_key)
        return new_key


@dataclass(frozen=True)
class DropRule:
    """Drop keys matching `pattern`; `reason` says why the model does not need them."""

    pattern: str
    reason: str


@dataclass(frozen=True)
class FusedBiasRule:
    """
    EVA attention keeps `q_bias` and `v_bias` (no key bias); HF BLIP-2 has one `qkv.bias` = [q_bias, 0, v_bias].
    `pattern` captures the block prefix and the part (`q` or `v`).
    """

    pattern: str
    target: str

    def match(self, key: str) -> tuple[str, str] | None:
        found = re.fullmatch(self.pattern, key)
        if found is None:
            return None
        return self.target.format(found.group(1)), found.group(2)


def _qformer_rule(original: str, ours: str) -> RenameRule:
    """A BLIP-2 Q-Former of the original (`<original>.bert.*`) onto HF `Blip2QFormerModel` at `ours`."""
    return RenameRule(
        rf"model\.{original}\.bert\.(embeddings\.LayerNorm|encoder\.layer)\.(.+)",
        rf"{ours}.\1.\2",
        then=(("embeddings\\.LayerNorm", "layernorm"), *_QFORMER_LAYER_RENAMES),
    )


_AUDIO = r"model\.audio_encoder\.modality_(?:preprocessors|trunks|heads|postprocessors)\.audio\."
_EVA = r"model\.visual_encoder\."
_VIDEO_TOWER = "model.video_tower"
_FRAME_ENCODER = f"{_VIDEO_TOWER}.frame_encoder"
_AUDIO_ENCODER = "model.audio_tower.encoder"

RENAME_RULES: list[RenameRule] = [
    # LLaMA (Vicuna) language model and head.
    RenameRule(r"model\.(embed_tokens|layers|norm)\.(.+)", r"model.language_model.\1.\2"),
    RenameRule(r"lm_head\.weight", "lm_head.weight"),
    # Image projector: nn.Sequential(Linear, GELU, Linear).
    RenameRule(r"model\.mm_vision_projector\.0\.(weight|bias)", r"model.image_projector.linear_1.\1"),
    RenameRule(r"model\.mm_vision_projector\.2\.(weight|bias)", r"model.image_projector.linear_2.\1"),
    # EVA ViT-g (video frames) onto HF Blip2VisionModel, and BLIP-2's ln_vision as its post_layernorm.
    RenameRule(_EVA + r"cls_token", f"{_FRAME_ENCODER}.embeddings.class_embedding"),
    RenameRule(_EVA + r"pos_embed", f"{_FRAME_ENCODER}.embeddings.position_embedding"),
    RenameRule(_EVA + r"patch_embed\.proj\.(weight|bias)", rf"{_FRAME_ENCODER}.embeddings.patch_embedding.\1"),
    RenameRule(_EVA + r"blocks\.(\d+)\.norm(1|2)\.(weight|bias)", rf"{_FRAME_ENCODER}.encoder.layers.\1.layer_norm\2.\3"),
    RenameRule(_EVA + r"blocks\.(\d+)\.attn\.qkv\.weight", rf"{_FRAME_ENCODER}.encoder.layers.\1.self_attn.qkv.weight"),
    RenameRule(
        _EVA + r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", rf"{_FRAME_ENCODER}.encoder.layers.\1.self_attn.projection.\2"
    ),
    RenameRule(_EVA + r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", rf"{_FRAME_ENCODER}.encoder.layers.\1.mlp.\2.\3"),
    RenameRule(r"model\.ln_vision\.(weight|bias)", rf"{_FRAME_ENCODER}.post_layernorm.\1"),
    # Video branch: frame Q-Former, frame positions, video Q-Former, projection.
    RenameRule(r"model\.query_tokens", f"{_VIDEO_TOWER}.frame_query_tokens"),
    _qformer_rule("Qformer", f"{_VIDEO_TOWER}.frame_qformer"),
    RenameRule(r"model\.video_frame_position_embedding\.weight", f"{_VIDEO_TOWER}.frame_position_embedding.weight"),
    RenameRule(r"model\.video_query_tokens", f"{_VIDEO_TOWER}.video_query_tokens"),
    _qformer_rule("video_Qformer", f"{_VIDEO_TOWER}.video_qformer"),
    RenameRule(r"model\.llama_proj\.(weight|bias)", r"model.video_projector.\1"),
    # ImageBind, audio modality only.
    RenameRule(_AUDIO + r"cls_token", f"{_AUDIO_ENCODER}.embeddings.class_embedding"),
    RenameRule(_AUDIO + r"rgbt_stem\.proj\.weight", f"{_AUDIO_ENCODER}.embeddings.patch_embedding.weight"),
    RenameRule(_AUDIO + r"rgbt_stem\.norm_layer\.(weight|bias)", rf"{_AUDIO_ENCODER}.embeddings.patch_layernorm.\1"),
    RenameRule(_AUDIO + r"pos_embedding_helper\.pos_embed", f"{_AUDIO_ENCODER}.embeddings.position_embedding"),
    RenameRule(_AUDIO + r"blocks\.(\d+)\.(.+)", rf"{_AUDIO_ENCODER}.layers.\1.\2"),
    RenameRule(_AUDIO + r"0\.(weight|bias)", rf"{_AUDIO_ENCODER}.head_layernorm.\1"),
    RenameRule(_AUDIO + r"2\.weight", f"{_AUDIO_ENCODER}.head_projection.weight"),
    # Audio branch: clip positions, audio Q-Former, projection.
    RenameRule(r"model\.audio_position_embedding\.weight", "model.audio_tower.clip_position_embedding.weight"),
    RenameRule(r"model\.audio_query_tokens", "model.audio_tower.query_tokens"),
    _qformer_rule("audio_Qformer", "model.audio_tower.qformer"),
    RenameRule(r"model\.audio_llama_proj\.(weight|bias)", r"model.audio_projector.\1"),
]

FUSED_BIAS_RULE = FusedBiasRule(
    _EVA + r"blocks\.(\d+)\.attn\.(q|v)_bias", _FRAME_ENCODER + ".encoder.layers.{}.self_attn.qkv.bias"
)

DROP_RULES: list[DropRule] = [
    DropRule(
        r"model\.audio_encoder\.modality_(?:preprocessors|trunks|heads|postprocessors)\."
        r"(?:vision|text|depth|thermal|imu)\..+",
        "ImageBind's vision/text/depth/thermal/IMU modalities: GroundingGPT only encodes audio with ImageBind.",
    ),
    DropRule(
        r"model\.(?:Qformer|video_Qformer|audio_Qformer)\.bert\.embeddings\.position_ids",
        "Position ids of the Q-Former's text embeddings, which the original deletes (queries only, no text).",
    ),
    DropRule(
        r"model\.audio_encoder\.modality_postprocessors\.audio\.1\.log_logit_scale",
        "ImageBind's fixed (non-learnable) audio logit scale log(20): `audio_config.logit_scale` holds it.",
    ),
    DropRule(
        r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq",
        "RoPE frequencies, recomputed from the config by transformers' LLaMA.",
    ),
]

# CLIP vision tower: the original keeps it outside the state dict and loads it from the CLIP folder.
CLIP_RENAME_RULE = RenameRule(r"vision_model\.(.+)", r"model.vision_tower.\1")
CLIP_DROP_RULES = [
    DropRule(
        r"(?:text_model\..+|text_projection\.weight|visual_projection\.weight|logit_scale)",
        "CLIP's text tower and contrastive projections: GroundingGPT only uses the vision transformer's hidden states.",
    ),
    DropRule(
        r"vision_model\.embeddings\.position_ids",
        "Position ids buffer stored by older transformers versions; transformers recomputes it.",
    ),
]


@dataclass(frozen=True)
class MappedKey:
    """Where one original key goes: a renamed key, a part of a fused bias, or nowhere (dropped)."""

    target: str | None
    fused_part: str | None = None
    drop_reason: str | None = None


def map_original_key(key: str) -> MappedKey:
    """Maps one key of the original GroundingGPT state dict; raises `KeyError` naming a key no rule covers."""
    for rule in DROP_RULES:
        if re.fullmatch(rule.pattern, key):
            return MappedKey(target=None, drop_reason=rule.reason)
    fused = FUSED_BIAS_RULE.match(key)
    if fused is not None:
        return MappedKey(target=fused[0], fused_part=fused[1])
    for rule in RENAME_RULES:
        target = rule.apply(key)
        if target is not None:
            return MappedKey(target=target)
    raise KeyError(f"No conversion rule for original key {key!r}: refusing to guess where it belongs.")


def map_clip_key(key: str) -> MappedKey:
    """Maps one key of the CLIP checkpoint (CLIPVisionModel or full CLIPModel)."""
    for rule in CLIP_DROP_RULES:
        if re.fullmatch(rule.pattern, key):
            return MappedKey(target=None, drop_reason=rule.reason)
    target = CLIP_RENAME_RULE.apply(key)
    if target is None:
        raise KeyError(f"No conversion rule for CLIP key {key!r}: refusing to guess where it belongs.")
    return MappedKey(target=target)
