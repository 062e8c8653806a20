import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)

# The demo model's recipe (`examples/demo_model/`, not part of the installed package) is imported as `demo_model`.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))

# The reference fixtures live in `shared/` next to the repository (as in CI's clean clone).
FIXTURES = Path(
    os.environ.get(
        "GROUNDINGGPT_FIXTURES",
        Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "original-tiny",
    )
)
CASE_NAMES = ("image", "video", "audio", "text", "image_two_turn")

# The vLLM tests (tests/vllm/, run where vLLM is installed): engine settings, shared with `vllm serve` there.
VLLM_MAX_MODEL_LEN = 256
VLLM_ENGINE_ARGS = {
    "dtype": "float32",
    "enforce_eager": True,
    "max_model_len": VLLM_MAX_MODEL_LEN,
    "max_num_seqs": 8,
    "seed": 0,
    "limit_mm_per_prompt": {"image": 2, "video": 2, "audio": 1},
}


def pytest_sessionstart(session):
    if not (FIXTURES / "cases").is_dir():
        pytest.exit(
            f"The reference fixtures are not at {FIXTURES}: put shared/ next to the repository or set "
            "GROUNDINGGPT_FIXTURES.",
            returncode=4,
        )


def load_case(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The JSON description and the tensors the original code produced for one reference case."""
    return json.loads((FIXTURES / "cases" / f"{name}.json").read_text()), load_file(
        FIXTURES / "cases" / f"{name}.safetensors"
    )


def case_model_inputs(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The case's exact inputs in this model's layout (videos frames-first: [n, T, 3, H, W])."""
    inputs = {"input_ids": tensors["input_ids"]}
    if "pixel_values" in tensors:
        inputs["pixel_values"] = tensors["pixel_values"]
    if "video_pixels" in tensors:
        inputs["pixel_values_videos"] = tensors["video_pixels"].permute(0, 2, 1, 3, 4)
    if "audio_features" in tensors:
        inputs["input_features"] = tensors["audio_features"]
    return inputs


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def encoder_dims() -> dict:
    return json.loads((FIXTURES / "encoder_dims.json").read_text())


@pytest.fixture(scope="session")
def converted_dir(tmp_path_factory, encoder_dims) -> Path:
    """The fixture's original checkpoint converted once for the whole session (float32)."""
    from modeling_groundinggpt.convert.convert_groundinggpt_to_hf import convert_checkpoint

    output = tmp_path_factory.mktemp("converted") / "groundinggpt-tiny"
    return convert_checkpoint(
        FIXTURES / "original_checkpoint", FIXTURES / "clip_vision", output, encoder_dims=encoder_dims
    )


@pytest.fixture(scope="session")
def tiny_model(converted_dir):
    from transformers import AutoModelForImageTextToText

    import modeling_groundinggpt  # noqa: F401  (registers the Auto classes)

    return AutoModelForImageTextToText.from_pretrained(converted_dir).eval()


# Fixtures of the vLLM tests: a tiny GroundingGPT vLLM's CPU backend can run, one engine, decoded media.


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
def tiny64_processor(tiny64_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny64_dir)


@pytest.fixture(scope="session")
def llm(tiny64_dir):
    """One offline vLLM engine on the tiny model for the whole session (a start costs tens of seconds). It runs in a
    fresh (spawned) process: vLLM's CPU platform scans every imported module at start-up and trips over llvmlite's,
    which `librosa.load` imports (other tests load audio first); `apply_model` sends functions to that process."""
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM

    engine = LLM(model=str(tiny64_dir), **VLLM_ENGINE_ARGS)
    yield engine
    engine.llm_engine.engine_core.shutdown()


@pytest.fixture(scope="session")
def decoded_media(fixtures_dir):
    """The reference media, decoded as a vLLM user passes them: a PIL image, video frames `(T, H, W, 3)` from this
    package's decoder (all 20 frames, and a 5-frame cut: a shorter video), `(waveform, rate)` audio."""
    import librosa

    from PIL import Image

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
