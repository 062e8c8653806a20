"""
Convert an original GroundingGPT checkpoint ("LEGO" format, e.g. `zwli/GroundingGPT`) plus the CLIP ViT it was
trained with (`openai/clip-vit-large-patch14-336`) into a self-describing Hugging Face folder that
`AutoModelForImageTextToText.from_pretrained` / `AutoProcessor.from_pretrained` load offline.

    python convert/convert_groundinggpt_to_hf.py --original DIR --clip DIR --output DIR \
        [--encoder-dims FILE] [--dtype float32|bfloat16|float16]

The conversion streams shard by shard (peak memory about one original shard), reads `.bin` files with
`torch.load(weights_only=True)`, maps every key by an explicit rule (`key_mapping.py`), checks every shape against
the model built from the converted config, and writes into a temporary folder that is renamed to `--output` only
when complete.
"""

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import (
    Blip2QFormerConfig,
    Blip2VisionConfig,
    CLIPVisionConfig,
    GenerationConfig,
    LlamaConfig,
)
from transformers.utils import logging

from modeling_groundinggpt import GroundingGPTAudioEncoderConfig, GroundingGPTConfig
from modeling_groundinggpt import GroundingGPTForConditionalGeneration
from modeling_groundinggpt.configuration_groundinggpt import PLACEHOLDER_TOKENS
from modeling_groundinggpt.convert.convert_tokenizer import saved_added_token_ids
from modeling_groundinggpt.convert.key_mapping import map_clip_key, map_original_key
from modeling_groundinggpt.generation_groundinggpt import stop_at_separator
from modeling_groundinggpt.loading import check_local_folder
from modeling_groundinggpt.processing.chat_template import SEPARATOR

logger = logging.get_logger(__name__)

# Sizes the original code hard-codes instead of saving them in config.json (flat keys as in the reference
# fixture's `encoder_dims.json`). These are the released model's: EVA ViT-g/14 at 224 px, BLIP-2's bert-base
# Q-Former, imagebind_huge's audio branch.
DEFAULT_ENCODER_DIMS: dict[str, float | int | bool | str] = {
    "mm_vision_select_layer": -2,
    "eva.img_size": 224,
    "eva.patch_size": 14,
    "eva.embed_dim": 1408,
    "eva.depth": 39,
    "eva.num_heads": 16,
    "eva.mlp_ratio": 4.3637,
    "eva.qkv_bias": True,
    "eva.norm_layer_eps": 1e-6,
    "ln_vision.eps": 1e-5,
    "video_frame_height_width": 224,
    "qformer.hidden_size": 768,
    "qformer.num_hidden_layers": 12,
    "qformer.num_attention_heads": 12,
    "qformer.intermediate_size": 3072,
    "qformer.cross_attention_freq": 2,
    "qformer.layer_norm_eps": 1e-12,
    "qformer.hidden_act": "gelu",
    "qformer.max_position_embeddings": 512,
    "qformer.vocab_size": 30522,
    "video_qformer.num_hidden_layers": 2,
    "video_qformer.cross_attention_freq": 1,
    "audio_qformer.num_hidden_layers": 2,
    "audio_qformer.cross_attention_freq": 1,
    "audio_position_embedding.num_embeddings": 8,
    "imagebind.audio_embed_dim": 768,
    "imagebind.audio_num_blocks": 12,
    "imagebind.audio_num_heads": 12,
    "imagebind.out_embed_dim": 1024,
    "imagebind.audio_kernel_size": 16,
    "imagebind.audio_stride": 10,
    "imagebind.audio_num_mel_bins": 128,
    "imagebind.audio_target_len": 204,
    "imagebind.audio_logit_scale": 20.0,
}


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def read_special_token_ids(original_dir: Path) -> dict[str, int]:
    """Ids of the 9 placeholder tokens (config field -> id), from the original tokenizer files."""
    vocab = saved_added_token_ids(original_dir)
    missing = [token for token in PLACEHOLDER_TOKENS.values() if token not in vocab]
    if missing:
        raise ValueError(f"The original tokenizer in {original_dir} lacks the placeholder tokens {missing}.")
    return {name: vocab[token] for name, token in PLACEHOLDER_TOKENS.items()}


def build_config(original_config: dict, clip_dir: Path, encoder_dims: dict, token_ids: dict[str, int]) -> GroundingGPTConfig:
    """The [`GroundingGPTConfig`] of an original checkpoint: LLaMA sizes from its config.json, CLIP from
    `clip_dir`, the hard-coded encoder sizes from `encoder_dims` (see `DEFAULT_ENCODER_DIMS`)."""
    dims = {**DEFAULT_ENCODER_DIMS, **encoder_dims}
    text_config = LlamaConfig(
        vocab_size=original_config["vocab_size"],
        hidden_size=original_config["hidden_size"],
        intermediate_size=original_config["intermediate_size"],
        num_hidden_layers=original_config["num_hidden_layers"],
        num_attention_heads=original_config["num_attention_heads"],
        num_key_value_heads=original_config.get("num_key_value_heads", original_config["num_attention_heads"]),
        hidden_act=original_config.get("hidden_act", "silu"),
        max_position_embeddings=original_config["max_position_embeddings"],
        rms_norm_eps=original_config["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": original_config.get("rope_theta", 10000.0)},
        attention_bias=original_config.get("attention_bias", False),
        tie_word_embeddings=original_config.get("tie_word_embeddings", False),
        pad_token_id=original_config.get("pad_token_id", 0),
        bos_token_id=original_config.get("bos_token_id", 1),
        eos_token_id=original_config.get("eos_token_id", 2),
    )
    vision_config = CLIPVisionConfig.from_pretrained(clip_dir)
    qformer_kwargs = {
        "hidden_size": dims["qformer.hidden_size"],
        "num_attention_heads": dims["qformer.num_attention_heads"],
        "intermediate_size": dims["qformer.intermediate_size"],
        "layer_norm_eps": dims["qformer.layer_norm_eps"],
        "hidden_act": dims["qformer.hidden_act"],
        "max_position_embeddings": dims["qformer.max_position_embeddings"],
        "vocab_size": dims["qformer.vocab_size"],
    }

    def qformer(prefix: str, encoder_hidden_size: int) -> Blip2QFormerConfig:
        """A BLIP-2 Q-Former with bert-base-like sizes and the depth / cross-attention frequency of `prefix`."""
        return Blip2QFormerConfig(
            **qformer_kwargs,
            num_hidden_layers=dims[f"{prefix}.num_hidden_layers"],
            cross_attention_frequency=dims[f"{prefix}.cross_attention_freq"],
            encoder_hidden_size=encoder_hidden_size,
        )

    eva_width = dims["eva.embed_dim"]
    audio_embed_dim = dims["imagebind.audio_embed_dim"]
    return GroundingGPTConfig(
        text_config=text_config,
        vision_config=vision_config,
        video_frame_config=Blip2VisionConfig(
            hidden_size=eva_width,
            intermediate_size=int(eva_width * dims["eva.mlp_ratio"]),
            num_hidden_layers=dims["eva.depth"],
            num_attention_heads=dims["eva.num_heads"],
            image_size=dims["eva.img_size"],
            patch_size=dims["eva.patch_size"],
            layer_norm_eps=dims["eva.norm_layer_eps"],
            qkv_bias=dims["eva.qkv_bias"],
        ),
        video_frame_qformer_config=qformer("qformer", encoder_hidden_size=eva_width),
        video_qformer_config=qformer("video_qformer", encoder_hidden_size=dims["qformer.hidden_size"]),
        audio_config=GroundingGPTAudioEncoderConfig(
            hidden_size=audio_embed_dim,
            num_hidden_layers=dims["imagebind.audio_num_blocks"],
            num_attention_heads=dims["imagebind.audio_num_heads"],
            intermediate_size=4 * audio_embed_dim,
            projection_dim=dims["imagebind.out_embed_dim"],
            num_mel_bins=dims["imagebind.audio_num_mel_bins"],
            target_length=dims["imagebind.audio_target_len"],
            patch_size=dims["imagebind.audio_kernel_size"],
            patch_stride=dims["imagebind.audio_stride"],
            logit_scale=dims["imagebind.audio_logit_scale"],
        ),
        audio_qformer_config=qformer("audio_qformer", encoder_hidden_size=dims["imagebind.out_embed_dim"]),
        vision_feature_layer=original_config.get("mm_vision_select_layer", dims["mm_vision_select_layer"]),
        video_frame_layernorm_eps=dims["ln_vision.eps"],
        num_frame_query_tokens=original_config["num_query_token"],
        num_video_query_tokens=original_config["video_token_len"],
        max_frames=original_config["max_frame"],
        num_audio_query_tokens=original_config["sound_token_len"],
        num_audio_clip_positions=dims["audio_position_embedding.num_embeddings"],
        **token_ids,
    )


def build_generation_config(config: GroundingGPTConfig, tokenizer) -> GenerationConfig:
    """Greedy decoding that stops at `</s>` or after the answer separator `###` (see `stop_at_separator`)."""
    text_config = config.text_config
    generation_config = GenerationConfig(
        bos_token_id=text_config.bos_token_id,
        pad_token_id=text_config.pad_token_id,
        do_sample=False,
        max_new_tokens=512,
    )
    return stop_at_separator(generation_config, tokenizer, SEPARATOR)


def _original_shards(original_dir: Path) -> list[Path]:
    """The weight files of the original checkpoint, in index order (sharded or single, .bin or safetensors)."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index_file = original_dir / index_name
        if index_file.is_file():
            weight_map = json.loads(index_file.read_text())["weight_map"]
            shards = [original_dir / name for name in dict.fromkeys(weight_map.values())]
            missing = [shard.name for shard in shards if not shard.is_file()]
            if missing:
                raise FileNotFoundError(f"Shards listed in {index_file} are missing: {missing}")
            return shards
    for single_name in ("model.safetensors", "pytorch_model.bin"):
        if (original_dir / single_name).is_file():
            return [original_dir / single_name]
    raise FileNotFoundError(f"No weights (index, model.safetensors or pytorch_model.bin) found in {original_dir}.")


def _load_shard(path: Path) -> dict[str, torch.Tensor]:
    """Reads one weight file: safetensors directly, `.bin` with `torch.load(weights_only=True)` (no pickled code)."""
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as reader:
                return {key: reader.get_tensor(key) for key in reader.keys()}
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch/safetensors raise several types for truncated or corrupt files
        raise ValueError(f"Cannot read weight file {path}: {error}") from error


def _clip_weights(clip_dir: Path) -> dict[str, torch.Tensor]:
    safetensors_file = clip_dir / "model.safetensors"
    if safetensors_file.is_file():
        return _load_shard(safetensors_file)
    bin_file = clip_dir / "pytorch_model.bin"
    if bin_file.is_file():
        return _load_shard(bin_file)
    raise FileNotFoundError(f"No CLIP weights (model.safetensors or pytorch_model.bin) in {clip_dir}.")


class _ShardConverter:
    """Renames, checks and casts tensors against the expected state dict; joins EVA's q/v biases across shards."""

    def __init__(self, expected_shapes: dict[str, torch.Size], dtype: torch.dtype):
        self.expected_shapes = expected_shapes
        self.dtype = dtype
        self.written: set[str] = set()
        self.pending_bias_parts: dict[str, dict[str, torch.Tensor]] = {}

    def _check(self, source_key: str, target: str, tensor: torch.Tensor) -> torch.Tensor:
        if target not in self.expected_shapes:
            raise KeyError(f"Original key {source_key!r} maps to {target!r}, which the model does not have.")
        if target in self.written:
            raise KeyError(f"Original key {source_key!r} maps to {target!r}, which was already written.")
        if tensor.shape != self.expected_shapes[target]:
            raise ValueError(
                f"Shape mismatch for original key {source_key!r} -> {target!r}: checkpoint has "
                f"{tuple(tensor.shape)}, the converted config expects {tuple(self.expected_shapes[target])}. "
                "Check --encoder-dims and the original config.json."
            )
        self.written.add(target)
        return tensor.to(self.dtype).contiguous()

    def convert(self, tensors: dict[str, torch.Tensor], map_key) -> dict[str, torch.Tensor]:
        converted = {}
        for key, tensor in tensors.items():
            mapped = map_key(key)
            if mapped.target is None:
                continue
            if mapped.fused_part is None:
                converted[mapped.target] = self._check(key, mapped.target, tensor)
                continue
            parts = self.pending_bias_parts.setdefault(mapped.target, {})
            parts[mapped.fused_part] = tensor
            if len(parts) == 2:
                fused = torch.cat([parts["q"], torch.zeros_like(parts["q"]), parts["v"]])
                converted[mapped.target] = self._check(key, mapped.target, fused)
                del self.pending_bias_parts[mapped.target]
        return converted

    def finish(self) -> None:
        if self.pending_bias_parts:
            raise KeyError(f"Incomplete EVA attention biases (q_bias/v_bias pairs): {sorted(self.pending_bias_parts)}")
        missing = sorted(set(self.expected_shapes) - self.written)
        if missing:
            raise KeyError(f"The original checkpoint and CLIP folder do not provide {len(missing)} weights: {missing[:10]}")


def _expected_shapes(config: GroundingGPTConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = GroundingGPTForConditionalGeneration(config)
    return {key: tensor.shape for key, tensor in model.state_dict().items()}


def _converted_shards(
    original_dir: Path, clip_dir: Path, converter: _ShardConverter
) -> Iterator[dict[str, torch.Tensor]]:
    shards = _original_shards(original_dir)
    for shard in tqdm(shards, desc="Converting shards", unit="shard"):
        yield converter.convert(_load_shard(shard), map_original_key)
    yield converter.convert(_clip_weights(clip_dir), map_clip_key)
    converter.finish()


def _write_weights(shards: Iterator[dict[str, torch.Tensor]], folder: Path) -> None:
    """Writes one safetensors file per converted shard plus the index (or a single `model.safetensors`)."""
    names: list[str] = []
    weight_map: dict[str, int] = {}
    total_size = 0
    for tensors in shards:
        if not tensors:
            continue
        names.append(f"part-{len(names):05d}.safetensors")
        save_file(tensors, str(folder / names[-1]), metadata={"format": "pt"})
        weight_map.update({key: len(names) - 1 for key in tensors})
        total_size += sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
        del tensors
    if len(names) == 1:
        (folder / names[0]).rename(folder / "model.safetensors")
        return
    final_names = [f"model-{i + 1:05d}-of-{len(names):05d}.safetensors" for i in range(len(names))]
    for name, final_name in zip(names, final_names):
        (folder / name).rename(folder / final_name)
    index = {
        "metadata": {"total_size": total_size},
        "weight_map": {key: final_names[i] for key, i in sorted(weight_map.items())},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def convert_checkpoint(
    original_dir: str | Path,
    clip_dir: str | Path,
    output_dir: str | Path,
    encoder_dims: dict | None = None,
    dtype: str = "float32",
) -> Path:
    """
    Converts an original GroundingGPT checkpoint to a Hugging Face folder (model, config, generation config,
    tokenizer, processor with chat template). Returns `output_dir`. `output_dir` must not exist yet; it appears
    only once everything is written.
    """
    from modeling_groundinggpt.convert.convert_processor import build_processor

    original_dir = Path(check_local_folder(original_dir, "original checkpoint", hub=False))
    clip_dir = Path(check_local_folder(clip_dir, "CLIP", hub=False))
    output_dir = Path(output_dir)
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    if output_dir.exists():
        raise FileExistsError(f"Output folder {output_dir} already exists; choose a new path.")
    original_config_file = original_dir / "config.json"
    try:
        original_config = json.loads(original_config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{original_config_file} is not a JSON file ({error}).") from None
    if not isinstance(original_config, dict):
        raise ValueError(f"{original_config_file} is not a JSON object.")
    if original_config.get("model_type") != "LEGO":
        raise ValueError(
            f"{original_config_file} is not an original GroundingGPT config (model_type 'LEGO'), "
            f"got model_type {original_config.get('model_type')!r}."
        )

    encoder_dims = dict(encoder_dims or {})
    config = build_config(original_config, clip_dir, encoder_dims, read_special_token_ids(original_dir))
    config.dtype = DTYPES[dtype]
    processor = build_processor(original_dir, clip_dir, encoder_dims)
    for name, token in PLACEHOLDER_TOKENS.items():
        if processor.tokenizer.convert_tokens_to_ids(token) != getattr(config, name):
            raise ValueError(f"Tokenizer id of {token} disagrees with the original checkpoint's {name}.")

    created = [folder for folder in output_dir.parents if not folder.exists()]
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        converter = _ShardConverter(_expected_shapes(config), DTYPES[dtype])
        _write_weights(_converted_shards(original_dir, clip_dir, converter), staging)
        config.save_pretrained(staging)
        build_generation_config(config, processor.tokenizer).save_pretrained(staging)
        processor.save_pretrained(staging)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(created[-1] if created else staging, ignore_errors=True)
        raise
    logger.info(f"Wrote the converted GroundingGPT checkpoint to {output_dir}")
    return output_dir


def _read_encoder_dims(path: str | None) -> dict | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"Encoder dims file not found: {path!r}")
    try:
        dims = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--encoder-dims {path} is not a JSON file ({error}).") from None
    if not isinstance(dims, dict):
        raise ValueError(f"--encoder-dims {path} must hold a JSON object of sizes, got {type(dims).__name__}.")
    return dims


def main(argv: list[str] | None = None) -> int:
    """Run the converter; returns the exit code (an error is one line on stderr unless `--debug`)."""
    parser = argparse.ArgumentParser(prog="convert_groundinggpt_to_hf.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, help="Original GroundingGPT checkpoint folder (LEGO format).")
    parser.add_argument("--clip", required=True, help="CLIP ViT folder (openai/clip-vit-large-patch14-336).")
    parser.add_argument("--output", required=True, help="New folder for the converted checkpoint.")
    parser.add_argument(
        "--encoder-dims",
        help="Flat JSON overriding the encoder sizes the original code hard-codes (format of encoder_dims.json).",
    )
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    args = parser.parse_args(argv)
    logging.set_verbosity_info()
    try:
        encoder_dims = _read_encoder_dims(args.encoder_dims)
        convert_checkpoint(args.original, args.clip, args.output, encoder_dims=encoder_dims, dtype=args.dtype)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"{parser.prog}: error: {' '.join(str(error).split()) or type(error).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
