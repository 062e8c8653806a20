"""`examples/demo_model/train_demo_model.py` rebuilds the starting point of the shipped demo model bit for bit: the
parts that do not train (the hand-set, frozen image and frame encoders; the tokenizer, processor, chat template and
generation config) are those of `modeling_groundinggpt/demo_model/`."""

import re
from pathlib import Path

import pytest
from safetensors.torch import load_file

import modeling_groundinggpt
from demo_model.train_demo_model import SHIPPED_FILES, initial_checkpoint

SHIPPED = modeling_groundinggpt.DEMO_MODEL
FROZEN_MODULES = ("model.vision_tower.", "model.video_tower.frame_encoder.")  # the script's --frozen_modules


@pytest.fixture(scope="module")
def starting_checkpoint(tmp_path_factory):
    return initial_checkpoint(tmp_path_factory.mktemp("demo-work") / "init", seed=0)


def test_starting_checkpoint_has_the_shipped_frozen_encoders(starting_checkpoint):
    initial = load_file(starting_checkpoint / "model.safetensors")
    shipped = load_file(f"{SHIPPED}/model.safetensors")
    assert initial.keys() == shipped.keys()
    frozen = [key for key in initial if key.startswith(FROZEN_MODULES)]
    assert len(frozen) > 20
    for key in frozen:
        assert initial[key].dtype == shipped[key].dtype and initial[key].equal(shipped[key]), key
    # the rest did train
    assert not initial["model.language_model.layers.0.self_attn.q_proj.weight"].equal(
        shipped["model.language_model.layers.0.self_attn.q_proj.weight"]
    )


@pytest.mark.parametrize(
    "name", ["tokenizer.json", "processor_config.json", "chat_template.jinja", "generation_config.json"]
)
def test_starting_checkpoint_files_that_do_not_train_are_the_shipped_ones(starting_checkpoint, name):
    assert name in SHIPPED_FILES
    written, shipped = ((folder / name).read_bytes() for folder in (starting_checkpoint, Path(SHIPPED)))
    if name.endswith(".json"):
        # transformers stamps its own version into what it saves; the package supports several (5.19 to 5.24).
        written, shipped = (re.sub(rb'"transformers_version": "[^"]*"', b"", text) for text in (written, shipped))
    assert written == shipped
