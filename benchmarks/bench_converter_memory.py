"""Converter memory: peak RSS of `convert/convert_groundinggpt_to_hf.py` (the whole process, imports included)
against the largest input shard, for float32 and bfloat16 output.

    python -m benchmarks.bench_converter_memory [--shards 4] [--shard-mb 500] [--repeats 1]

It writes an original-format ("LEGO") checkpoint in a temporary folder (removed at the end): the reference
fixture's tokenizer, CLIP tower and encoder sizes with a wider and deeper random float32 LLaMA, saved as `.bin`
shards of about `--shard-mb` MB with `pytorch_model.bin.index.json`, like the original training code does. Each
conversion runs in a fresh process; its peak RSS is that process's VmHWM.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from modeling_groundinggpt.convert.convert_groundinggpt_to_hf import _expected_shapes, build_config
from modeling_groundinggpt.convert.key_mapping import map_original_key

from benchmarks.timing import print_table


REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("GROUNDINGGPT_FIXTURES", REPO.parent / "shared" / "fixtures" / "original-tiny"))
TOKEN_IDS = {
    "image_token_id": 800, "image_start_token_id": 801, "image_end_token_id": 802,
    "video_token_id": 803, "video_start_token_id": 804, "video_end_token_id": 805,
    "audio_token_id": 806, "audio_start_token_id": 807, "audio_end_token_id": 808,
}


def original_key_shapes(original_config: dict, encoder_dims: dict) -> dict[str, list[int]]:
    """Every key of an original checkpoint with `original_config`'s LLaMA and the fixture's encoders: the fixture's
    keys, LLaMA layers repeated, shapes taken from the model the converter builds for that config."""
    tiny = json.loads((FIXTURES / "key_shapes.json").read_text())
    expected = _expected_shapes(build_config(original_config, FIXTURES / "clip_vision", encoder_dims, TOKEN_IDS))
    shapes = {}
    for key, tiny_shape in tiny.items():
        if key.startswith("model.layers.1."):
            continue
        keys = [key]
        if key.startswith("model.layers.0."):
            keys = [key.replace("layers.0.", f"layers.{i}.") for i in range(original_config["num_hidden_layers"])]
        for name in keys:
            mapped = map_original_key(name)
            if mapped.target is None:
                shapes[name] = tiny_shape
            elif mapped.fused_part is None:
                shapes[name] = list(expected[mapped.target])
            else:
                shapes[name] = [expected[mapped.target][0] // 3]
    return shapes


def write_checkpoint(folder: Path, shards: int, shard_mb: int) -> int:
    """An original checkpoint of about `shards` x `shard_mb` MB; returns the largest shard's size in bytes."""
    folder.mkdir()
    for name in ("added_tokens.json", "generation_config.json", "special_tokens_map.json", "tokenizer.model",
                 "tokenizer_config.json"):
        shutil.copy(FIXTURES / "original_checkpoint" / name, folder / name)
    encoder_dims = json.loads((FIXTURES / "encoder_dims.json").read_text())
    config = json.loads((FIXTURES / "original_checkpoint" / "config.json").read_text())
    hidden, intermediate = 2048, 5504
    layer_bytes = 4 * (4 * hidden * hidden + 3 * hidden * intermediate)
    config.update(hidden_size=hidden, intermediate_size=intermediate, num_attention_heads=16, num_key_value_heads=16,
                  num_hidden_layers=max(1, round(shards * shard_mb * 2**20 / layer_bytes)))
    (folder / "config.json").write_text(json.dumps(config, indent=2))

    generator = torch.Generator().manual_seed(0)
    groups, current, current_bytes = [], [], 0
    for key, shape in original_key_shapes(config, encoder_dims).items():
        size = 4 * torch.Size(shape).numel()
        if current and current_bytes + size > shard_mb * 2**20:
            groups.append(current)
            current, current_bytes = [], 0
        current.append((key, shape))
        current_bytes += size
    groups.append(current)
    weight_map, largest = {}, 0
    for index, group in enumerate(groups):
        name = f"pytorch_model-{index + 1:05d}-of-{len(groups):05d}.bin"
        torch.save({key: torch.randn(shape, generator=generator) * 0.02 for key, shape in group}, folder / name)
        weight_map.update({key: name for key, _ in group})
        largest = max(largest, (folder / name).stat().st_size)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return largest


# Runs the converter script as `__main__` and prints the process's peak RSS (kB) as the last line: VmHWM, not
# `ru_maxrss`, which keeps the high-water mark of the forking parent across `exec`.
_MEASURE = (
    "import runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "finally:\n"
    "    print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
)


def convert_in_child(original: Path, output: Path, dtype: str) -> tuple[float, float]:
    """(peak RSS in bytes, seconds) of one conversion in a fresh process."""
    command = [
        sys.executable, "-c", _MEASURE, str(REPO / "convert" / "convert_groundinggpt_to_hf.py"),
        "--original", str(original), "--clip", str(FIXTURES / "clip_vision"),
        "--encoder-dims", str(FIXTURES / "encoder_dims.json"), "--output", str(output), "--dtype", dtype,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"The conversion failed:\n{result.stderr[-3000:]}")
    return int(result.stdout.split()[-1]) * 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-mb", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as folder:
        original = Path(folder) / "original"
        largest = write_checkpoint(original, args.shards, args.shard_mb)
        shard_files = sorted(original.glob("*.bin"))
        rows = []
        for _ in range(args.repeats):
            for dtype in ("float32", "bfloat16"):
                output = Path(folder) / f"converted-{dtype}"
                peak, seconds = convert_in_child(original, output, dtype)
                shutil.rmtree(output)
                rows.append((dtype, f"{peak / 2**20:.0f}", f"{peak / largest:.2f}x", f"{seconds:.1f}"))
        print_table(
            f"{len(shard_files)} shards, largest {largest / 2**20:.0f} MB "
            f"({sum(f.stat().st_size for f in shard_files) / 2**20:.0f} MB in all)",
            rows,
            ("output dtype", "peak RSS MB", "peak / largest shard", "seconds"),
        )


if __name__ == "__main__":
    main()
