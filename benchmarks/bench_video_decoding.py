"""Video preprocessing speed and memory: `GroundingGPTVideoProcessor` against decoding every frame (OpenCV `read()`)
and against the original GroundingGPT's decord sampling, side by side on generated long clips.

    python -m benchmarks.bench_video_decoding [--seconds 60] [--keyframe-intervals 12 300] [--repeats 5]

Each clip is written first (MPEG-4 part 2, 640x480, 30 fps, about 2.3 Mbit/s, one keyframe every N frames, in a
temporary folder removed at the end). All three variants sample the processor's 64 frames, resize them to 224 x 224
and normalise them with the CLIP mean/std:
- processor: `GroundingGPTVideoProcessor()(path)`, this package;
- every frame: OpenCV `read()` (decode and convert) of every frame, the sampled ones resized and normalised;
- decord (original): the original's `VideoReader(path, height=224, width=224).get_batch(indices)`, then its
  `ToTensorVideo` / `NormalizeVideo` arithmetic in torch (skipped when decord is not installed:
  `pip install decord`, or `eva-decord` where decord has no wheel).
It prints the median and minimum time of each, their ratios, the largest difference between the processor's and the
original's pixels, and the processor's peak memory (RSS high-water mark above the resident size before the call,
measured in a fresh process) against the size of its output tensor.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from modeling_groundinggpt.processing import GroundingGPTVideoProcessor
from modeling_groundinggpt.processing.video_processing_groundinggpt import uniform_frame_indices

from benchmarks.timing import interleaved, print_table, ratio, summary


WIDTH, HEIGHT, FPS = 640, 480, 30


def make_clip(path: Path, seconds: int, keyframe_interval: int, seed: int = 0) -> None:
    """A panning smooth texture with three moving discs and the frame number, encoded with PyAV's MPEG-4 encoder."""
    import av

    num_frames = seconds * FPS
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (HEIGHT + 100, WIDTH + 2 * num_frames, 3), dtype=np.uint8)
    texture = cv2.normalize(cv2.GaussianBlur(texture, (0, 0), 6), None, 0, 255, cv2.NORM_MINMAX)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = WIDTH * HEIGHT * FPS // 4
        stream.codec_context.gop_size = keyframe_interval
        for index in range(num_frames):
            top = 50 + int(50 * np.sin(index / 40))
            frame = np.ascontiguousarray(texture[top : top + HEIGHT, 2 * index : 2 * index + WIDTH])
            for disc in range(3):
                centre = (
                    int(WIDTH / 2 + (disc + 1) * 80 * np.sin(index / (15 + 7 * disc))),
                    int(HEIGHT / 2 + 100 * np.cos(index / (23 + 5 * disc))),
                )
                cv2.circle(frame, centre, 30 + 10 * disc, tuple(255 * (channel == disc) for channel in range(3)), -1)
            cv2.putText(frame, str(index), (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def normalise(frames_rgb: np.ndarray, processor: GroundingGPTVideoProcessor) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32, the processor's arithmetic."""
    mean = np.asarray(processor.image_mean, dtype=np.float32)[:, None, None]
    std = np.asarray(processor.image_std, dtype=np.float32)[:, None, None]
    return (frames_rgb.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0) - mean) / std


def every_frame(path: str, processor: GroundingGPTVideoProcessor) -> np.ndarray:
    """Decode and convert every frame with OpenCV `read()`, keep the sampled ones."""
    capture = cv2.VideoCapture(path)
    wanted = set(uniform_frame_indices(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), processor.num_frames).tolist())
    size, sampled, index = processor.size, [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted:
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
            sampled.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        index += 1
    capture.release()
    return normalise(np.stack(sampled), processor)


def original_decord(path: str, processor: GroundingGPTVideoProcessor) -> torch.Tensor:
    """The original's `load_video` + `ToTensorVideo` + `NormalizeVideo`, frames-first like the processor's output."""
    import decord

    reader = decord.VideoReader(path, height=processor.size, width=processor.size)
    indices = uniform_frame_indices(len(reader), processor.num_frames)
    frames = torch.from_numpy(reader.get_batch(indices).asnumpy()).permute(3, 0, 1, 2).float() / 255.0
    mean = torch.tensor(processor.image_mean).view(3, 1, 1, 1)
    std = torch.tensor(processor.image_std).view(3, 1, 1, 1)
    return ((frames - mean) / std).permute(1, 0, 2, 3)


def peak_memory(path: str) -> dict[str, float]:
    """Run in a fresh process: the processor's RSS high-water mark above the RSS before the call, in MB (the
    largest of three calls)."""
    processor = GroundingGPTVideoProcessor()
    processor(path)  # libraries loaded and caches warm, as in a running service

    def status(field: str) -> float:
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
        return int(line.split()[1]) / 1024

    peaks = []
    for _ in range(3):  # the largest of three calls
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = status("VmRSS:")
        output = processor(path)["pixel_values_videos"]
        peaks.append(status("VmHWM:") - before)
        del output
    output = processor(path)["pixel_values_videos"]
    return {"peak_mb": max(peaks), "output_mb": output.numel() * output.element_size() / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--keyframe-intervals", type=int, nargs="+", default=[12, 300])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-memory", metavar="VIDEO", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.peak_memory:
        print(json.dumps(peak_memory(args.peak_memory)))
        return
    try:
        import decord  # noqa: F401

        has_decord = True
    except ImportError:
        has_decord = False
        print("decord is not installed: the original's sampling is skipped (pip install decord).")

    processor = GroundingGPTVideoProcessor()
    with tempfile.TemporaryDirectory(prefix="bench-video-") as folder:
        for interval in args.keyframe_intervals:
            path = str(Path(folder) / f"clip-k{interval}.mp4")
            make_clip(Path(path), args.seconds, interval)
            variants = {
                "processor": lambda: processor(path),
                "every frame": lambda: every_frame(path, processor),
            }
            if has_decord:
                variants["decord (original)"] = lambda: original_decord(path, processor)
            seconds = interleaved(variants, args.repeats)
            rows = [(name, *(f"{value:.3f}" for value in summary(times))) for name, times in seconds.items()]
            print_table(
                f"{args.seconds} s, {FPS} fps, {WIDTH}x{HEIGHT} MPEG-4, keyframe every {interval} frames "
                f"({Path(path).stat().st_size / 2**20:.1f} MB), {processor.num_frames} frames at {processor.size} px",
                rows,
                ("variant", "median s", "min s"),
            )
            for name in variants:
                if name != "processor":
                    median, best = ratio(seconds[name], seconds["processor"])
                    print(f"processor speed-up over {name}: {median:.2f}x median, {best:.2f}x min")
            if has_decord:
                difference = processor(path)["pixel_values_videos"][0] - original_decord(path, processor)
                print(f"max |processor - original| pixel difference: {difference.abs().max():.2e}")
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_video_decoding", "--peak-memory", path],
                capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1]
            )
            memory = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"processor peak memory: +{memory['peak_mb']:.1f} MB for a {memory['output_mb']:.1f} MB output "
                f"({memory['peak_mb'] / memory['output_mb']:.2f}x)"
            )


if __name__ == "__main__":
    main()
