"""The `vllm.general_plugins` entry point registers GroundingGPT with vLLM, and the model passes vLLM's checks."""

import functools
import subprocess
import sys

import pytest

from vllm_prompts import VLLM_MISSING, VLLM_MODULE

from modeling_groundinggpt.vllm import ARCHITECTURE

pytest.importorskip(VLLM_MODULE, reason=VLLM_MISSING)


def test_entry_point_registers_the_architecture_in_a_fresh_process():
    """What vLLM does in each of its processes: load the general plugins, then resolve and inspect the model (the
    registry imports lazily registered models in yet another subprocess)."""
    script = f"""
from vllm.plugins import load_general_plugins
from vllm import ModelRegistry
assert {ARCHITECTURE!r} not in ModelRegistry.get_supported_archs()
load_general_plugins()
load_general_plugins()  # vLLM may load plugins more than once in a process
info = ModelRegistry._try_inspect_model_cls({ARCHITECTURE!r})
print(info.supports_multimodal, info.supports_pp, info.is_text_generation_model)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["True", "True", "True"]


def test_model_class_passes_the_interface_checks():
    from vllm.model_executor.models.interfaces import supports_multimodal, supports_pp
    from vllm.model_executor.models.interfaces_base import is_text_generation_model, is_vllm_model

    from modeling_groundinggpt.vllm import register
    from modeling_groundinggpt.vllm.model import GroundingGPTForConditionalGeneration

    register()
    assert is_vllm_model(GroundingGPTForConditionalGeneration)
    assert is_text_generation_model(GroundingGPTForConditionalGeneration)
    assert supports_multimodal(GroundingGPTForConditionalGeneration)
    assert supports_pp(GroundingGPTForConditionalGeneration)
    assert {GroundingGPTForConditionalGeneration.get_placeholder_str(m, 0) for m in ("image", "video", "audio")} == {
        "<image>",
        "<video>",
        "<sound>",
    }


def _load_media_weights(weights: dict, model) -> tuple:
    """Runs in the engine process (`LLM.apply_model`; sets come back as lists): the model's top-level modules, its
    tower and projector parameters, what `load_weights` loads of `weights`, its error on a key that maps to
    nothing."""
    modules = {name for name, _ in model.named_children()}
    media_parameters = {name for name, _ in model.named_parameters() if not name.startswith("language_model.")}
    loaded = model.load_weights(iter(weights.items()))
    try:
        model.load_weights(iter([("model.video_tower.stray_scale", next(iter(weights.values())))]))
    except ValueError as error:
        refusal = str(error)
    else:
        refusal = ""
    return modules, media_parameters, loaded, refusal


def test_every_checkpoint_key_is_loaded_and_unknown_keys_are_refused_by_name(llm, tiny64_dir):
    """vLLM's loader refuses to start when a parameter is not in the checkpoint (the `llm` fixture started). Here:
    every tower and projector parameter comes from its key of the converted safetensors, every key lands in a
    module of the model, and a key that maps to nothing raises an error naming it."""
    from safetensors.torch import load_file

    from modeling_groundinggpt.vllm.model import GroundingGPTForConditionalGeneration

    weights = load_file(tiny64_dir / "model.safetensors")
    mapped = dict(GroundingGPTForConditionalGeneration.hf_to_vllm_mapper.apply(weights.items()))
    # The towers are plain torch modules; vLLM's Llama repacks its weights for the CPU once loaded.
    language_model = ("model.language_model.", "lm_head.")
    media_weights = {name: tensor for name, tensor in weights.items() if not name.startswith(language_model)}
    ((modules, media_parameters, loaded, refusal),) = llm.apply_model(
        functools.partial(_load_media_weights, media_weights)
    )
    assert {name.split(".")[0] for name in mapped} <= set(modules)
    expected = {name for name in mapped if not name.startswith("language_model.")}
    assert set(loaded) == set(media_parameters) == expected
    assert "video_tower.stray_scale" in refusal
