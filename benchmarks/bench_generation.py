"""Generation speed: decode tokens/s and time to first token of GroundingGPT for text, image, video and image+audio
prompts, at batch 1 and 8, with the default (dynamic) cache, the static cache and the static cache with the compiled
decode step, against a bare `LlamaForCausalLM` with the same text config and transformers'
`LlavaForConditionalGeneration` with the same LLM and CLIP sizes (both given this model's weights, so that their
greedy ids can be compared too). Random weights, variants interleaved.

    python -m benchmarks.bench_generation [--small] [--new-tokens 32] [--repeats 3]
    python -m benchmarks.bench_generation --device cuda --full-size [--hbm-tbps 4.8]

CPU default: a mid-size model (LLaMA 1024 wide, 8 layers, the real 32009-token vocabulary, CLIP at 336 px with the
real 576 image tokens, 64 video frames, small encoders), float32. `--small`: a quick check with a smaller one.
`--full-size`: the released 7B sizes (LLaMA-7B, CLIP ViT-L/14-336, EVA ViT-g, ImageBind-huge audio) in bfloat16
(on a GPU: about 45 GB for the three models).

Each `generate` call is timed token by token (a streamer notes when each new token arrives): time to first token =
from the call to the first new token (media encoding and prefill included); decode tokens/s = tokens after the first
over the time they took, per sequence; `aggregate` multiplies by the batch size. The compiled variants use the package's `decode_compile_config` (the decode step
compiled with the full graph), the first call of each shape pays the compilation in an untimed warm-up round.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import (
    Blip2QFormerConfig,
    Blip2VisionConfig,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
)

from modeling_groundinggpt import GroundingGPTAudioEncoderConfig, GroundingGPTConfig
from modeling_groundinggpt import GroundingGPTForConditionalGeneration
from modeling_groundinggpt.inference import decode_compile_config

from benchmarks.timing import interleaved, print_table, ratio


MODES = ("default", "static", "static+compile")
PROMPTS = ("text", "image", "video", "image+audio")


def random_config(size: str) -> GroundingGPTConfig:
    """`full`: the released 7B; `mid` / `small`: narrower and shallower, with the real vocabulary and token counts."""
    if size == "full":
        return GroundingGPTConfig()
    width, layers = (1024, 8) if size == "mid" else (256, 2)
    encoder = {"hidden_size": 256, "intermediate_size": 1024, "num_attention_heads": 4}
    qformer = {**encoder, "num_hidden_layers": 2}
    return GroundingGPTConfig(
        text_config=LlamaConfig(
            vocab_size=32009, hidden_size=width, intermediate_size=int(width * 2.6875), num_hidden_layers=layers,
            num_attention_heads=width // 64, max_position_embeddings=4096, pad_token_id=0, bos_token_id=1,
            eos_token_id=2,
        ),
        vision_config=CLIPVisionConfig(**encoder, num_hidden_layers=4, image_size=336, patch_size=14),
        video_frame_config=Blip2VisionConfig(**encoder, num_hidden_layers=2, image_size=224, patch_size=14),
        video_frame_qformer_config=Blip2QFormerConfig(**qformer, encoder_hidden_size=256),
        video_qformer_config=Blip2QFormerConfig(**qformer, cross_attention_frequency=1, encoder_hidden_size=256),
        audio_config=GroundingGPTAudioEncoderConfig(**encoder, num_hidden_layers=2, projection_dim=256),
        audio_qformer_config=Blip2QFormerConfig(**qformer, cross_attention_frequency=1, encoder_hidden_size=256),
    )


def build_models(config: GroundingGPTConfig, device: torch.device, dtype: torch.dtype) -> dict[str, torch.nn.Module]:
    """GroundingGPT with random weights, and the bare LLaMA and the LLaVA holding the same LLM / CLIP weights."""
    torch.manual_seed(0)
    with torch.device(device):
        groundinggpt = GroundingGPTForConditionalGeneration(config).to(dtype).eval()
        llama = LlamaForCausalLM(config.text_config).to(dtype).eval()
        llava = LlavaForConditionalGeneration(
            LlavaConfig(
                text_config=config.text_config, vision_config=config.vision_config,
                image_token_id=config.image_token_id, vision_feature_layer=config.vision_feature_layer,
                vision_feature_select_strategy="default", projector_hidden_act=config.projector_hidden_act,
                image_seq_length=config.num_image_tokens,
            )
        ).to(dtype).eval()
    weights = groundinggpt.state_dict()
    llama.load_state_dict(
        {key.replace("model.language_model.", "model."): value for key, value in weights.items()
         if key.startswith(("model.language_model.", "lm_head."))}
    )
    llava_parts = ("model.language_model.", "model.vision_tower.", "model.image_projector.", "lm_head.")
    renamed = {key.replace("model.image_projector.", "model.multi_modal_projector."): value
               for key, value in weights.items() if key.startswith(llava_parts)}
    missing, unexpected = llava.load_state_dict(renamed, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"LLaVA weights do not line up: missing {missing}, unexpected {unexpected}")
    for model in (groundinggpt, llama, llava):
        model.generation_config.pad_token_id = config.text_config.pad_token_id
    return {"groundinggpt": groundinggpt, "llama": llama, "llava": llava}


def prompt_inputs(config: GroundingGPTConfig, prompt: str, batch: int, device, dtype) -> dict[str, torch.Tensor]:
    """A system prompt + media placeholder runs + a question, as the processor lays them out, with random media."""
    generator = torch.Generator().manual_seed(1)
    text = lambda n: torch.randint(3, 32000, (n,), generator=generator).tolist()  # noqa: E731
    ids, media = [config.text_config.bos_token_id, *text(40)], {}
    if "audio" in prompt:
        ids += [config.audio_start_token_id, *[config.audio_token_id] * config.num_audio_query_tokens,
                config.audio_end_token_id, *text(1)]
        media["input_features"] = torch.randn(batch, 3, 1, 128, 204, generator=generator)
    if prompt == "video":
        ids += [config.video_start_token_id, *[config.video_token_id] * config.num_video_query_tokens,
                config.video_end_token_id, *text(1)]
        size = config.video_frame_config.image_size
        media["pixel_values_videos"] = torch.randn(batch, config.max_frames, 3, size, size, generator=generator)
    if prompt.startswith("image"):
        ids += [config.image_start_token_id, *[config.image_token_id] * config.num_image_tokens,
                config.image_end_token_id, *text(1)]
        size = config.vision_config.image_size
        media["pixel_values"] = torch.randn(batch, 3, size, size, generator=generator)
    ids += text(20)
    inputs = {"input_ids": torch.tensor([ids] * batch), "attention_mask": torch.ones(batch, len(ids), dtype=torch.long)}
    inputs.update(media)
    return {k: v.to(device, dtype if v.is_floating_point() else None) for k, v in inputs.items()}


class TokenClock:
    """A `generate` streamer that only notes when each new token arrives (the first `put` is the prompt)."""

    def __init__(self, device: torch.device):
        self.device, self.started, self.times, self.prompt_seen = device, time.perf_counter(), [], False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class Variant:
    model: str
    prompt: str
    batch: int
    mode: str

    @property
    def name(self) -> str:
        return f"{self.model} {self.prompt} b{self.batch} {self.mode}"


def mode_kwargs(mode: str, device: torch.device) -> dict:
    if mode == "default":
        return {"disable_compile": True}
    if mode == "static":
        return {"cache_implementation": "static", "disable_compile": True}
    return {"cache_implementation": "static", "compile_config": decode_compile_config(device)}


def default_variants(full_size: bool) -> list[Variant]:
    if full_size:  # the GPU figures: every prompt at batch 1 and 8, default vs static + compile, bare LLaMA beside
        modes = ("default", "static+compile")
        variants = [Variant("groundinggpt", p, b, m) for p in PROMPTS for b in (1, 8) for m in modes]
        variants += [Variant("llama", "text", b, m) for b in (1, 8) for m in modes]
        return variants + [Variant("llava", "image", 1, "default")]
    variants = [Variant("groundinggpt", prompt, 1, "default") for prompt in PROMPTS]
    variants += [Variant("llama", "text", 1, "default"), Variant("llava", "image", 1, "default")]
    variants += [Variant("groundinggpt", "image", 1, mode) for mode in ("static", "static+compile")]
    return variants + [Variant("groundinggpt", "image", 8, mode) for mode in ("default", "static")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-size", action="store_true", help="the released 7B sizes in bfloat16")
    parser.add_argument("--small", action="store_true", help="a smaller model, for a quick check")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hbm-tbps", type=float, help="memory bandwidth (TB/s): also print the decode roofline")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.full_size else torch.float32
    config = random_config("full" if args.full_size else "small" if args.small else "mid")
    models = build_models(config, device, dtype)
    variants = default_variants(args.full_size)
    inputs = {v: prompt_inputs(config, v.prompt, v.batch, device, dtype) for v in variants}
    outputs: dict[Variant, torch.Tensor] = {}
    first_token: dict[Variant, list[float]] = {v: [] for v in variants}
    per_token: dict[Variant, list[float]] = {v: [] for v in variants}

    def generate(variant: Variant) -> Callable[[], None]:
        def run() -> None:
            clock = TokenClock(device)
            with torch.inference_mode():
                outputs[variant] = models[variant.model].generate(
                    **inputs[variant], max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                    do_sample=False, streamer=clock, **mode_kwargs(variant.mode, device),
                )
            first_token[variant].append(clock.times[0] - clock.started)
            per_token[variant].append((clock.times[-1] - clock.times[0]) / (len(clock.times) - 1))
        return run

    interleaved({v.name: generate(v) for v in variants}, args.repeats, warmup=1)
    for times in (*first_token.values(), *per_token.values()):
        del times[0]  # the warm-up round (compilation included)
    rows = []
    for v in variants:
        rate = 1 / statistics.median(per_token[v])
        rows.append((v.name, f"{rate:.1f}", f"{rate * v.batch:.1f}", f"{1 / min(per_token[v]):.1f}",
                     f"{statistics.median(first_token[v]):.3f}"))
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    size = "7B (released sizes)" if args.full_size else "small" if args.small else "mid-size"
    print_table(
        f"{size} random weights, {dtype}, {machine}; {args.new_tokens} new tokens, {args.repeats} rounds",
        rows,
        ("variant", "decode tok/s", "aggregate tok/s", "best tok/s", "first token s"),
    )

    def compare(label: str, faster: Variant, slower: Variant, aggregate: bool = False) -> None:
        if faster not in per_token or slower not in per_token:
            return
        scale = faster.batch / slower.batch if aggregate else 1.0
        median, _ = ratio(per_token[slower], per_token[faster])  # seconds per token: slower / faster
        same = outputs[faster].shape == outputs[slower].shape and torch.equal(outputs[faster], outputs[slower])
        identical = f", identical ids: {'yes' if same else 'no'}" if faster.batch == slower.batch else ""
        print(f"{label}: {scale * median:.2f}x decode tok/s{identical}")

    print()
    for batch in (1, 8):
        for mode in MODES:
            compare(f"groundinggpt / bare llama, text b{batch} {mode}", Variant("groundinggpt", "text", batch, mode),
                    Variant("llama", "text", batch, mode))
    compare("groundinggpt / llava, image b1", Variant("groundinggpt", "image", 1, "default"),
            Variant("llava", "image", 1, "default"))
    for prompt in PROMPTS:
        for mode in MODES:
            compare(f"{prompt}: batch 8 / batch 1 aggregate, {mode}", Variant("groundinggpt", prompt, 8, mode),
                    Variant("groundinggpt", prompt, 1, mode), aggregate=True)
        for batch in (1, 8):
            for mode in ("static", "static+compile"):
                compare(f"{prompt} b{batch}: {mode} / default", Variant("groundinggpt", prompt, batch, mode),
                        Variant("groundinggpt", prompt, batch, "default"))
    compare("image b8 static / image b1 default, aggregate", Variant("groundinggpt", "image", 8, "static"),
            Variant("groundinggpt", "image", 1, "default"), aggregate=True)
    if args.hbm_tbps:
        llm = models["groundinggpt"]
        weights = [*llm.model.language_model.parameters(), llm.lm_head.weight]
        weight_bytes = sum(p.numel() * p.element_size() for p in weights)
        roofline = args.hbm_tbps * 1e12 / weight_bytes
        print(f"\nLLM weights read per decode step: {weight_bytes / 1e9:.1f} GB -> roofline {roofline:.0f} tok/s at "
              f"{args.hbm_tbps} TB/s (batch 1)")
        for v in variants:
            if v.batch == 1:
                print(f"  {v.name}: {1 / statistics.median(per_token[v]) / roofline:.0%} of the roofline")


if __name__ == "__main__":
    main()
