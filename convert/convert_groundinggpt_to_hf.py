"""
Convert an original GroundingGPT checkpoint ("LEGO" format, e.g. `zwli/GroundingGPT`) plus the CLIP ViT it was
trained with (`openai/clip-vit-large-patch14-336`) into a self-describing Hugging Face folder that
`AutoModelForImageTextToText.from_pretrained` / `AutoProcessor.from_pretrained` load offline.

    python convert/convert_groundinggpt_to_hf.py --original DIR --clip DIR --output DIR \
        [--encoder-dims FILE] [--dtype float32|bfloat16|float16]

The conversion streams tensor by tensor (peak memory: the imports plus about one tensor and its cast copy, whatever
the shard sizes), reads `.bin` files with `torch.load(weights_only=True, mmap=True)`, maps every key by an explicit
rule (`key_mapping.py`), checks every name and shape against the model built from the converted config before a
shard's data is read, and writes into a temporary folder that is renamed to `--output` only when complete.
"""

import argparse
import ctypes
import json
import mmap
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
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
from modeling_groundinggpt.convert.safetensors_writer import SafetensorsWriter
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


class _ShardReader:
    """One weight file, read one tensor at a time: safetensors lazily, `.bin` with
    `torch.load(weights_only=True, mmap=True)` (no pickled code; the file mapped, not read in). `release` gives the
    memory of a tensor that is done with back to the system, so a shard never becomes resident as a whole."""

    def __init__(self, path: Path):
        self.path = path
        try:
            if path.suffix == ".safetensors":
                self._reader = safe_open(str(path), framework="pt")
                self.shapes = {key: torch.Size(self._reader.get_slice(key).get_shape()) for key in self._reader.keys()}
                self._tensors = None
            else:
                self._tensors = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                self.shapes = {key: tensor.shape for key, tensor in self._tensors.items()}
        except Exception as error:  # torch/safetensors raise several types for truncated or corrupt files
            raise ValueError(f"Cannot read weight file {path}: {error}") from error

    def get(self, key: str) -> torch.Tensor:
        try:
            return self._reader.get_tensor(key) if self._tensors is None else self._tensors[key]
        except Exception as error:
            raise ValueError(f"Cannot read {key!r} from weight file {self.path}: {error}") from error

    def release(self, key: str) -> None:
        if self._tensors is not None:
            _drop_mapped_pages(self._tensors.pop(key))


def _drop_mapped_pages(tensor: torch.Tensor) -> None:
    """Unmap the resident pages of a tensor that lives in a private, read-only file mapping (`torch.load(mmap=True)`):
    they are clean copies of the file, read again if ever touched. Only whole pages inside the tensor's own storage
    are dropped."""
    if _MADVISE is None or tensor.device.type != "cpu":
        return
    storage = tensor.untyped_storage()
    start = -(-storage.data_ptr() // _PAGE_SIZE) * _PAGE_SIZE
    end = (storage.data_ptr() + storage.nbytes()) // _PAGE_SIZE * _PAGE_SIZE
    if end > start:
        _MADVISE(ctypes.c_void_p(start), ctypes.c_size_t(end - start), mmap.MADV_DONTNEED)


def _libc_madvise():
    if not hasattr(mmap, "MADV_DONTNEED") or sys.platform != "linux":
        return None
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return madvise


_MADVISE = _libc_madvise()
_PAGE_SIZE = mmap.PAGESIZE


def _clip_weights(clip_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (clip_dir / name).is_file():
            return clip_dir / name
    raise FileNotFoundError(f"No CLIP weights (model.safetensors or pytorch_model.bin) in {clip_dir}.")


@dataclass
class _Output:
    """One converted tensor: its name, shape, and its sources (keys of the current shard, or parts held over from
    an earlier shard)."""

    target: str
    shape: torch.Size
    sources: list[str | torch.Tensor]


class _ShardConverter:
    """Renames and checks tensors against the expected state dict, from their shapes alone; joins EVA's q/v biases
    (zero key bias in between), also across shards."""

    def __init__(self, expected_shapes: dict[str, torch.Size], dtype: torch.dtype):
        self.expected_shapes = expected_shapes
        self.dtype = dtype
        self.written: set[str] = set()
        self.pending_bias_parts: dict[str, dict[str, str | torch.Tensor]] = {}
        self._cast_buffer: torch.Tensor | None = None

    def _check(self, source_key: str, target: str, shape: torch.Size) -> None:
        if target not in self.expected_shapes:
            raise KeyError(f"Original key {source_key!r} maps to {target!r}, which the model does not have.")
        if target in self.written:
            raise KeyError(f"Original key {source_key!r} maps to {target!r}, which was already written.")
        if shape != self.expected_shapes[target]:
            raise ValueError(
                f"Shape mismatch for original key {source_key!r} -> {target!r}: checkpoint has "
                f"{tuple(shape)}, the converted config expects {tuple(self.expected_shapes[target])}. "
                "Check --encoder-dims and the original config.json."
            )
        self.written.add(target)

    def plan(self, shard: _ShardReader, map_key) -> list[_Output]:
        """The converted tensors `shard` completes, in its order; every name and shape checked, no data read. A
        bias part whose partner is in a later shard is kept (copied: it is small)."""
        outputs = []
        for key, shape in shard.shapes.items():
            mapped = map_key(key)
            if mapped.target is None:
                continue
            if mapped.fused_part is None:
                self._check(key, mapped.target, shape)
                outputs.append(_Output(mapped.target, shape, [key]))
                continue
            parts = self.pending_bias_parts.setdefault(mapped.target, {})
            parts[mapped.fused_part] = key
            if len(parts) == 2:
                del self.pending_bias_parts[mapped.target]
                fused_shape = torch.Size([3 * shape[0]])
                self._check(key, mapped.target, fused_shape)
                outputs.append(_Output(mapped.target, fused_shape, [parts["q"], parts["v"]]))
        for parts in self.pending_bias_parts.values():
            for part, source in parts.items():
                if isinstance(source, str) and source in shard.shapes:
                    parts[part] = shard.get(source).clone()
        return outputs

    def tensor(self, output: _Output, shard: _ShardReader) -> torch.Tensor:
        """The converted tensor of `output`, cast to the output dtype; valid until the next call (a cast is written
        into one buffer reused for every tensor: fresh copies, once freed, tend to stay with the allocator)."""
        parts = [shard.get(source) if isinstance(source, str) else source for source in output.sources]
        if len(parts) == 2:  # EVA attention: [q_bias, zero k_bias, v_bias]
            parts = [torch.cat([parts[0], torch.zeros_like(parts[0]), parts[1]])]
        tensor = parts[0]
        if tensor.dtype == self.dtype:
            return tensor.contiguous()
        if self._cast_buffer is None or self._cast_buffer.numel() < tensor.numel():
            self._cast_buffer = None
            self._cast_buffer = torch.empty(tensor.numel(), dtype=self.dtype)
        cast = self._cast_buffer[: tensor.numel()].view(tensor.shape)
        cast.copy_(tensor)
        return cast

    def finish(self) -> None:
        if self.pending_bias_parts:
            raise KeyError(f"Incomplete EVA attention biases (q_bias/v_bias pairs): {sorted(self.pending_bias_parts)}")
        missing = sorted(set(self.expected_shapes) - self.written)
        if missing:
            raise KeyError(
                f"The original checkpoint and CLIP folder do not provide {len(missing)} weights: {missing[:10]}"
            )


def _expected_shapes(config: GroundingGPTConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = GroundingGPTForConditionalGeneration(config)
    return {key: tensor.shape for key, tensor in model.state_dict().items()}


def _write_weights(original_dir: Path, clip_dir: Path, converter: _ShardConverter, folder: Path) -> None:
    """One safetensors file per original shard (plus one for CLIP) and the index (or a single
    `model.safetensors`); tensors are read, cast and written one at a time."""
    sources = [(path, map_original_key) for path in _original_shards(original_dir)]
    sources.append((_clip_weights(clip_dir), map_clip_key))
    names: list[str] = []
    weight_map: dict[str, int] = {}
    total_size = 0
    for path, map_key in tqdm(sources, desc="Converting shards", unit="shard"):
        shard = _ShardReader(path)
        outputs = converter.plan(shard, map_key)
        if not outputs:
            continue
        names.append(f"part-{len(names):05d}.safetensors")
        layout = {output.target: (converter.dtype, output.shape) for output in outputs}
        with SafetensorsWriter(folder / names[-1], layout, metadata={"format": "pt"}) as writer:
            for output in outputs:
                tensor = converter.tensor(output, shard)
                writer.write(output.target, tensor)
                total_size += tensor.numel() * tensor.element_size()
                del tensor
                for source in output.sources:
                    if isinstance(source, str):
                        shard.release(source)
        weight_map.update({output.target: len(names) - 1 for output in outputs})
        del shard
    converter.finish()
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
        _write_weights(original_dir, clip_dir, converter, staging)
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
