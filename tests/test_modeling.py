"""Behaviour of the HF model beyond single-sample parity: batching, padding, saving, Auto classes, errors."""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
)

import modeling_groundinggpt
from conftest import case_model_inputs, load_case
from modeling_groundinggpt import GroundingGPTConfig, GroundingGPTForConditionalGeneration, GroundingGPTModel
from modeling_groundinggpt.remote_code import add_remote_code

ATOL = 1e-4


def _left_pad(rows: list[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(row.shape[-1] for row in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - row.shape[-1] :] = row
        attention_mask[i, length - row.shape[-1] :] = 1
    return input_ids, attention_mask


@pytest.fixture(scope="module")
def mixed_cases():
    return {name: case_model_inputs(load_case(name)[1]) for name in ("image", "video", "audio", "text")}


def test_mixed_batch_equals_separate_runs(tiny_model, mixed_cases):
    """Image, video, audio and text-only samples of different lengths, left-padded into one batch."""
    order = ["audio", "image", "text", "video"]
    input_ids, attention_mask = _left_pad([mixed_cases[name]["input_ids"][0] for name in order])
    with torch.no_grad():
        batched = tiny_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=mixed_cases["image"]["pixel_values"],
            pixel_values_videos=mixed_cases["video"]["pixel_values_videos"],
            input_features=mixed_cases["audio"]["input_features"],
        ).logits
        for row, name in enumerate(order):
            separate = tiny_model(**mixed_cases[name]).logits[0]
            torch.testing.assert_close(batched[row, -separate.shape[0] :], separate, atol=ATOL, rtol=0)


def test_mixed_batch_generation_equals_separate_generation(tiny_model, mixed_cases):
    order = ["video", "text", "image"]
    input_ids, attention_mask = _left_pad([mixed_cases[name]["input_ids"][0] for name in order])
    with torch.no_grad():
        batched = tiny_model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=mixed_cases["image"]["pixel_values"],
            pixel_values_videos=mixed_cases["video"]["pixel_values_videos"],
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=None,
        )[:, input_ids.shape[1] :]
        for row, name in enumerate(order):
            inputs = mixed_cases[name]
            separate = tiny_model.generate(**inputs, max_new_tokens=6, do_sample=False, eos_token_id=None)
            assert batched[row].tolist() == separate[0, inputs["input_ids"].shape[1] :].tolist()


def test_several_media_of_several_modalities_in_one_sample(tiny_model, mixed_cases):
    """One sample holding an image, a video, a second image and an audio: each lands on its own run."""
    image_ids = mixed_cases["image"]["input_ids"][0]
    config = tiny_model.config
    starts = {}
    pieces = [image_ids[:10]]
    for name, token_id, count in [
        ("image_a", config.image_token_id, 16),
        ("video", config.video_token_id, 6),
        ("image_b", config.image_token_id, 16),
        ("audio", config.audio_token_id, 4),
    ]:
        starts[name] = sum(piece.shape[0] for piece in pieces)
        pieces += [torch.full((count,), token_id), image_ids[10:13]]
    input_ids = torch.cat(pieces).unsqueeze(0)
    image = mixed_cases["image"]["pixel_values"]
    second_image = image.flip(-1)
    with torch.no_grad():
        embeds = tiny_model(
            input_ids=input_ids,
            pixel_values=torch.cat([image, second_image]),
            pixel_values_videos=mixed_cases["video"]["pixel_values_videos"],
            input_features=mixed_cases["audio"]["input_features"],
            output_hidden_states=True,
        ).hidden_states[0][0]
        expected = {
            "image_a": tiny_model.get_image_features(image)[0],
            "image_b": tiny_model.get_image_features(second_image)[0],
            "video": tiny_model.get_video_features(mixed_cases["video"]["pixel_values_videos"])[0],
            "audio": tiny_model.get_audio_features(mixed_cases["audio"]["input_features"])[0],
        }
    for name, features in expected.items():
        torch.testing.assert_close(embeds[starts[name] : starts[name] + features.shape[0]], features, atol=1e-6, rtol=0)
    assert not torch.allclose(expected["image_a"], expected["image_b"])


def test_padded_video_equals_unpadded_video(tiny_model, mixed_cases):
    video = mixed_cases["video"]["pixel_values_videos"]
    short = video[:, :5]
    padded = torch.cat([short, torch.randn_like(video[:, :3])], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        unpadded_features = tiny_model.get_video_features(short)
        padded_features = tiny_model.get_video_features(padded, mask)
        batch_features = tiny_model.get_video_features(torch.cat([padded, video]), torch.cat([mask, torch.ones_like(mask)]))
    torch.testing.assert_close(padded_features, unpadded_features, atol=1e-5, rtol=0)
    torch.testing.assert_close(batch_features[0], unpadded_features[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch_features[1], tiny_model.get_video_features(video)[0], atol=1e-5, rtol=0)


def test_bad_video_frame_mask_and_too_many_frames_are_rejected(tiny_model, mixed_cases):
    video = mixed_cases["video"]["pixel_values_videos"]
    with pytest.raises(ValueError, match="padding only at the end"):
        tiny_model.get_video_features(video, torch.tensor([[1, 0, 1, 1, 1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="video_frame_mask has shape"):
        tiny_model.get_video_features(video, torch.ones(1, 3))
    with pytest.raises(ValueError, match="at most 8"):
        tiny_model.get_video_features(torch.cat([video, video[:, :1]], dim=1))


@pytest.mark.parametrize(
    ("modality", "drop_token_attr", "input_key"),
    [("image", "image_token_id", "pixel_values"), ("video", "video_token_id", "pixel_values_videos"),
     ("audio", "audio_token_id", "input_features")],
)
def test_placeholder_count_mismatch_names_modality_and_counts(tiny_model, mixed_cases, modality, drop_token_attr, input_key):
    inputs = dict(mixed_cases[modality])
    token_id = getattr(tiny_model.config, drop_token_attr)
    input_ids = inputs["input_ids"][0]
    first = int((input_ids == token_id).nonzero()[0])
    inputs["input_ids"] = torch.cat([input_ids[:first], input_ids[first + 1 :]]).unsqueeze(0)
    n_features = {"image": 16, "video": 6, "audio": 4}[modality]
    with pytest.raises(ValueError, match=rf"{modality}: the input has {n_features - 1} placeholder.*{n_features} feature"):
        tiny_model(**inputs)
    # Media given twice for one placeholder run.
    inputs = dict(mixed_cases[modality])
    inputs[input_key] = torch.cat([inputs[input_key]] * 2)
    with pytest.raises(ValueError, match=rf"{modality}: the input has {n_features} placeholder.*{2 * n_features} feature"):
        tiny_model(**inputs)
    # The model is still usable afterwards.
    with torch.no_grad():
        tiny_model(**mixed_cases[modality])


def test_save_load_round_trip_and_auto_classes(tiny_model, converted_dir, tmp_path, mixed_cases):
    tiny_model.save_pretrained(tmp_path)
    assert list(tmp_path.glob("*.bin")) == []
    reloaded, info = GroundingGPTForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert {key: value for key, value in info.items() if value} == {}
    inputs = mixed_cases["video"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, tiny_model(**inputs).logits, atol=0, rtol=0)

    assert isinstance(AutoConfig.from_pretrained(converted_dir), GroundingGPTConfig)
    assert isinstance(AutoModel.from_pretrained(converted_dir), GroundingGPTModel)
    for auto_class in (AutoModelForImageTextToText, AutoModelForMultimodalLM):
        model, info = auto_class.from_pretrained(converted_dir, output_loading_info=True)
        assert isinstance(model, GroundingGPTForConditionalGeneration)
        assert info["missing_keys"] == set() or not info["missing_keys"]
        assert not info["unexpected_keys"]


def test_defaults_are_sdpa_and_qformers_have_no_text_branch(tiny_model):
    assert tiny_model.config._attn_implementation == "sdpa"
    names = [name for name, _ in tiny_model.named_parameters()]
    assert any(re.search(r"qformer\.encoder\.layer\.\d+\.intermediate_query\.", name) for name in names)
    assert not any(re.search(r"qformer\.encoder\.layer\.\d+\.(intermediate|output)\.", name) for name in names)
    assert not any("word_embeddings" in name or "position_embeddings" in name for name in names if "qformer" in name)


def test_every_parameter_receives_gradient_and_checkpointing_matches(converted_dir, mixed_cases):
    """All parameters take part in the forward (no dead weights), and gradient checkpointing gives the same grads."""
    grads = {}
    for checkpointing in (False, True):
        model = GroundingGPTForConditionalGeneration.from_pretrained(converted_dir)
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        torch.manual_seed(0)  # same dropout masks in both runs (checkpointing replays the RNG state)
        loss = 0
        for name in ("image", "video", "audio"):
            inputs = mixed_cases[name]
            loss = loss + model(**inputs, labels=inputs["input_ids"]).loss
        loss.backward()
        grads[checkpointing] = {name: p.grad for name, p in model.named_parameters()}
    # The CLIP tower's last layer and post-layernorm are computed by CLIPVisionModel but not used (features come
    # from the penultimate layer, as in the original).
    unused = {name for name, grad in grads[False].items() if grad is None or not grad.abs().sum()}
    assert all(name.startswith("model.vision_tower.") for name in unused), sorted(unused)[:5]
    for name, grad in grads[False].items():
        if grad is not None:
            torch.testing.assert_close(grads[True][name], grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inference(converted_dir, mixed_cases, dtype):
    model = GroundingGPTForConditionalGeneration.from_pretrained(converted_dir, dtype=dtype).eval()
    assert {p.dtype for p in model.parameters()} == {dtype}
    reference = load_case("audio")[1]["logits"]
    with torch.no_grad():
        for name in ("image", "video", "audio"):
            logits = model(**mixed_cases[name]).logits
            assert logits.dtype == dtype and torch.isfinite(logits).all()
        logits = model(**mixed_cases["audio"]).logits.float()
    assert (logits - reference).abs().max() < 0.25  # half-precision rounding of O(1) logits


def test_device_map_auto_splits_at_safe_boundaries(converted_dir, tiny_model, mixed_cases, tmp_path):
    """With too little memory, accelerate spreads the model over cpu and disk: whole towers and whole layers only,
    and the hooks still compute the same logits."""
    model = AutoModelForImageTextToText.from_pretrained(
        converted_dir, device_map="auto", max_memory={"cpu": "1MB"}, offload_folder=tmp_path
    )
    placements = model.hf_device_map
    assert {"cpu", "disk"} <= set(placements.values())
    for tower in ("model.video_tower", "model.audio_tower"):
        assert not any(name.startswith(tower + ".") for name in placements), placements
    with torch.no_grad():
        for name in ("image", "video", "audio"):
            torch.testing.assert_close(
                model(**mixed_cases[name]).logits, tiny_model(**mixed_cases[name]).logits, atol=1e-5, rtol=0
            )


def test_remote_code_folder_loads_without_the_package(converted_dir, tmp_path, fixtures_dir):
    """A folder made self-contained loads model and processor with trust_remote_code where the package can't be
    imported, and reproduces the original's input ids and logits from the raw image."""
    folder = tmp_path / "hub"
    shutil.copytree(converted_dir, folder)
    add_remote_code(folder)
    case = load_case("image")[0]
    question = case["conversation_messages"][0][1].split("\n", 1)[1]
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_groundinggpt"] = None  # the installed package must not be needed
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModelForImageTextToText, AutoProcessor
        model = AutoModelForImageTextToText.from_pretrained({str(folder)!r}, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        messages = [{{"role": "user", "content": [{{"type": "image", "path": {str(fixtures_dir / "media" / "image.png")!r}}},
                                                {{"type": "text", "text": {question!r}}}]}}]
        inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=True, return_tensors="pt")
        reference = load_file({str(fixtures_dir / "cases" / "image.safetensors")!r})
        with torch.no_grad():
            logits = model(**inputs).logits
        print(type(model).__module__.startswith("transformers_modules"),
              type(processor).__module__.startswith("transformers_modules"),
              inputs["input_ids"].tolist() == reference["input_ids"].tolist(),
              float((logits - reference["logits"]).abs().max()))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    model_remote, processor_remote, same_ids, max_diff = result.stdout.split()
    assert (model_remote, processor_remote, same_ids) == ("True", "True", "True")
    assert float(max_diff) < ATOL


def test_registration_is_import_side_effect():
    assert AutoConfig.for_model("groundinggpt").__class__ is GroundingGPTConfig
    assert modeling_groundinggpt.GroundingGPTConfig().text_config.vocab_size == 32009


def test_importing_the_package_registers_the_processor(converted_dir, tmp_path):
    """A fresh interpreter that only imports `modeling_groundinggpt` gets the full processor from AutoProcessor
    (not a bare tokenizer that would silently ignore the media)."""
    script = textwrap.dedent(
        f"""
        import modeling_groundinggpt
        from transformers import AutoProcessor
        print(type(AutoProcessor.from_pretrained({str(converted_dir)!r})).__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "GroundingGPTProcessor"


def test_beam_search_keeps_each_samples_media(tiny_model, mixed_cases, monkeypatch):
    """num_beams / num_return_sequences repeat rows: a sample with two images keeps both, in order, in every beam
    (transformers' default repeats each image in place: [a, a, b, b, c, c] instead of [a, a, b, c, b, c])."""
    image_case = mixed_cases["image"]
    ids = image_case["input_ids"][0]
    first, last = [int(i) for i in (ids == tiny_model.config.image_token_id).nonzero()[[0, -1], 0]]
    block = ids[first - 1 : last + 2]  # <im_start> patches <im_end>
    two_images = torch.cat([ids[: last + 2], block, ids[last + 2 :]])
    image_a = image_case["pixel_values"]
    image_b, image_c = torch.full_like(image_a, 1.0), torch.full_like(image_a, 2.0)
    seen = []
    original = tiny_model.model.get_image_features

    def spy(pixel_values):
        seen.append(pixel_values)
        return original(pixel_values)

    monkeypatch.setattr(tiny_model.model, "get_image_features", spy)
    input_ids, attention_mask = _left_pad([ids, two_images])
    with torch.no_grad():
        tiny_model.generate(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=torch.cat([image_a, image_b, image_c]),
            max_new_tokens=2, do_sample=False, num_beams=2, num_return_sequences=2, eos_token_id=None,
        )
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], torch.cat([image_a, image_a, image_b, image_c, image_b, image_c]), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("modality", "media_key", "token_attr"),
    [("image", "pixel_values", "image_token_id"), ("video", "pixel_values_videos", "video_token_id"),
     ("audio", "input_features", "audio_token_id")],
)
def test_placeholder_ids_without_their_media_are_refused(tiny_model, mixed_cases, modality, media_key, token_attr):
    inputs = {key: value for key, value in mixed_cases[modality].items() if key != media_key}
    count = int((inputs["input_ids"] == getattr(tiny_model.config, token_attr)).sum())
    with pytest.raises(ValueError, match=rf"input_ids hold {count} {modality} placeholder tokens \(id "
                                         rf"{getattr(tiny_model.config, token_attr)}\) but {media_key} is None"):
        tiny_model(**inputs)
    with pytest.raises(ValueError, match=rf"but {media_key} is None"):
        tiny_model.generate(**inputs, max_new_tokens=2)


def test_generated_placeholder_ids_are_fed_back_without_error(tiny_model, mixed_cases):
    """Only a prompt's placeholders need media: the model may write a placeholder id itself."""
    inputs = mixed_cases["text"]
    image_token = tiny_model.config.image_token_id
    with torch.no_grad():
        for cache_implementation in (None, "static"):
            output = tiny_model.generate(
                **inputs, max_new_tokens=3, do_sample=False, cache_implementation=cache_implementation,
                prefix_allowed_tokens_fn=lambda batch, ids: [image_token],
            )
            assert output[0, -3:].tolist() == [image_token] * 3


def test_static_cache_and_compiled_decode_give_the_default_ids(converted_dir, mixed_cases):
    """The decode step compiles as one graph (`fullgraph=True` raises on any graph break; the eager backend keeps
    the test fast: what is checked is the capture), and every variant writes the default path's ids."""
    from transformers import CompileConfig

    model = AutoModelForImageTextToText.from_pretrained(converted_dir).eval()
    assert type(model)._can_compile_fullgraph
    order = ["video", "text", "image", "audio"]
    input_ids, attention_mask = _left_pad([mixed_cases[name]["input_ids"][0] for name in order])
    inputs = {
        "input_ids": input_ids, "attention_mask": attention_mask,
        "pixel_values": mixed_cases["image"]["pixel_values"],
        "pixel_values_videos": mixed_cases["video"]["pixel_values_videos"],
        "input_features": mixed_cases["audio"]["input_features"],
    }
    compile_config = CompileConfig(fullgraph=True, backend="eager")
    compile_config._compile_all_devices = True
    variants = {
        "default": {},
        "static": {"cache_implementation": "static", "disable_compile": True},
        "static + compiled decode": {"cache_implementation": "static", "compile_config": compile_config},
    }
    torch._dynamo.reset()
    with torch.no_grad():
        ids = {
            name: model.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=None, **kwargs)
            for name, kwargs in variants.items()
        }
    assert hasattr(model, "_compiled_call")  # generate did use the compiled decode step
    assert ids["static"].tolist() == ids["default"].tolist()
    assert ids["static + compiled decode"].tolist() == ids["default"].tolist()
