import json
import os
import sys
from pathlib import Path

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
