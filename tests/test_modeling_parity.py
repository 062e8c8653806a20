"""The converted model computes what the original GroundingGPT code computed (fixtures from the original code)."""

import pytest
import torch

from conftest import CASE_NAMES, case_model_inputs, load_case

ATOL = 1e-4


@pytest.mark.parametrize("case", CASE_NAMES)
def test_media_embeddings_match_original(tiny_model, case):
    _, tensors = load_case(case)
    inputs = case_model_inputs(tensors)
    with torch.no_grad():
        if "image_embeds" in tensors:
            torch.testing.assert_close(
                tiny_model.get_image_features(inputs["pixel_values"]), tensors["image_embeds"], atol=ATOL, rtol=0
            )
        if "video_embeds" in tensors:
            torch.testing.assert_close(
                tiny_model.get_video_features(inputs["pixel_values_videos"]),
                tensors["video_embeds"],
                atol=ATOL,
                rtol=0,
            )
        if "audio_embeds" in tensors:
            torch.testing.assert_close(
                tiny_model.get_audio_features(inputs["input_features"]), tensors["audio_embeds"], atol=ATOL, rtol=0
            )


def test_intermediate_encoder_outputs_match_original(tiny_model):
    """The stages inside the towers, so a mapping bug is located, not only detected."""
    _, video = load_case("video")
    _, audio = load_case("audio")
    tower = tiny_model.model.video_tower
    with torch.no_grad():
        frames = video["video_pixels"][0].permute(1, 0, 2, 3)
        eva = tower.frame_encoder(pixel_values=frames).last_hidden_state
        torch.testing.assert_close(eva, video["video_eva_features"], atol=ATOL, rtol=0)
        frame_queries = tower.frame_qformer(
            query_embeds=tower.frame_query_tokens.expand(frames.shape[0], -1, -1), encoder_hidden_states=eva
        ).last_hidden_state
        torch.testing.assert_close(frame_queries, video["video_frame_qformer_out"], atol=ATOL, rtol=0)
        video_queries = tower(
            video["video_pixels"].permute(0, 2, 1, 3, 4), torch.ones(1, frames.shape[0], dtype=torch.bool)
        )
        torch.testing.assert_close(video_queries, video["video_qformer_out"], atol=ATOL, rtol=0)

        audio_tower = tiny_model.model.audio_tower
        clip_embeds = audio_tower.encoder(audio["audio_features"].flatten(0, 1)).unsqueeze(0)
        torch.testing.assert_close(clip_embeds, audio["audio_imagebind_out"], atol=ATOL, rtol=0)
        torch.testing.assert_close(audio_tower(audio["audio_features"]), audio["audio_qformer_out"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_logits_match_original(tiny_model, case):
    _, tensors = load_case(case)
    with torch.no_grad():
        logits = tiny_model(**case_model_inputs(tensors)).logits
    torch.testing.assert_close(logits, tensors["logits"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", CASE_NAMES)
@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_matches_original(tiny_model, case, use_cache):
    _, tensors = load_case(case)
    inputs = case_model_inputs(tensors)
    with torch.no_grad():
        output = tiny_model.generate(
            **inputs,
            max_new_tokens=8,
            do_sample=False,
            use_cache=use_cache,
            eos_token_id=None,
            return_dict_in_generate=True,
            output_scores=True,
        )
    new_tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
    assert new_tokens.tolist() == tensors["generated_ids"].tolist()
    scores_key = "generate_scores" if use_cache or "generate_scores_no_cache" not in tensors else "generate_scores_no_cache"
    torch.testing.assert_close(torch.cat(output.scores), tensors[scores_key], atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", ["image", "video", "audio"])
def test_media_encoded_once_per_generate(tiny_model, case, monkeypatch):
    _, tensors = load_case(case)
    calls = {"image": 0, "video": 0, "audio": 0}
    for modality in calls:
        original = getattr(tiny_model.model, f"get_{modality}_features")

        def counting(*args, _original=original, _modality=modality, **kwargs):
            calls[_modality] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(tiny_model.model, f"get_{modality}_features", counting)
    with torch.no_grad():
        tiny_model.generate(**case_model_inputs(tensors), max_new_tokens=6, do_sample=False, eos_token_id=None)
    assert calls == {m: int(m == case) for m in calls}
