"""The Python API behind the CLI (`inference.GroundingGPT`) with the real tiny model: batched mixed-media
generation, streaming, metadata and the generation-length cap."""

import pytest

from conftest import FIXTURES
from modeling_groundinggpt.inference import (
    ChatSession,
    GenerationOptions,
    GroundingGPT,
    GroundingRequest,
    _StopStringFilter,
    resolve_dtype,
)


MEDIA = FIXTURES / "media"


@pytest.fixture(scope="module")
def grounder(converted_dir):
    return GroundingGPT.from_pretrained(converted_dir, device="cpu", dtype="float32",
                                        generation=GenerationOptions(max_new_tokens=6))


def test_batched_mixed_media_requests(grounder):
    requests = [
        GroundingRequest("Where is the box?", image=MEDIA / "image.png"),
        GroundingRequest("When does it move?", video=MEDIA / "video.mp4"),
        GroundingRequest("What makes the sound?", image=MEDIA / "image.png", audio=MEDIA / "audio.wav"),
        GroundingRequest("When?", video=MEDIA / "video.mp4", video_duration=10.0),
    ]
    answers = grounder.ground_batch(requests)
    assert [type(answer.answer) for answer in answers] == [str] * 4
    assert [answer.image_size for answer in answers] == [(80, 48), None, (80, 48), None]
    assert [answer.video_duration for answer in answers] == [None, 2.0, None, 10.0]


def test_streamed_chat_gives_the_final_answer(grounder):
    session = grounder.chat(image=MEDIA / "image.png")
    assert isinstance(session, ChatSession)
    chunks: list[str] = []
    answer = session.ask("Describe the image.", on_text=chunks.append)
    assert "".join(chunks).strip() == answer.answer
    assert [message["role"] for message in session.messages] == ["user", "assistant"]
    session.ask("And then?")
    assert len(session.messages) == 4
    # The image stays in the first turn only.
    kinds = [item["type"] for message in session.messages for item in message["content"]]
    assert kinds.count("image") == 1


def test_stop_string_filter_holds_back_a_partial_separator():
    received: list[str] = []
    stop_filter = _StopStringFilter(received.append)
    for chunk in ["The box", "[0.1, 0.2, 0.3, 0.4] #", "#", "# Human: more", " text"]:
        stop_filter.feed(chunk)
    assert "".join(received) == "The box[0.1, 0.2, 0.3, 0.4] "


def test_generation_length_is_capped_by_the_position_table(grounder):
    limit = grounder.model.config.text_config.max_position_embeddings
    kwargs = grounder.generation_kwargs(limit - 5, GenerationOptions(max_new_tokens=512))
    assert kwargs["max_new_tokens"] == 5 and kwargs["do_sample"] is False and kwargs["stop_strings"] == ["###"]
    sampled = grounder.generation_kwargs(10, GenerationOptions(temperature=0.7))
    assert sampled["do_sample"] is True and sampled["temperature"] == 0.7
    with pytest.raises(ValueError, match="shorten the conversation"):
        grounder.generation_kwargs(limit, GenerationOptions())


def test_dtype_names():
    import torch

    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="Unknown dtype"):
        resolve_dtype("int8", torch.device("cpu"))


def test_chat_session_survives_a_failing_stream_callback(converted_dir, fixtures_dir):
    """A display callback that raises ends that answer, not the session: generation is drained and joined, and the
    next question runs on the free model."""
    from modeling_groundinggpt.inference import GenerationOptions, GroundingGPT

    grounder = GroundingGPT.from_pretrained(
        converted_dir, device="cpu", dtype="float32", generation=GenerationOptions(max_new_tokens=4)
    )
    session = grounder.chat(image=fixtures_dir / "media" / "image.png")

    def failing_display(text: str) -> None:
        raise RuntimeError("display failed")

    with pytest.raises(RuntimeError, match="display failed"):
        session.ask("Where is the red box?", on_text=failing_display)
    answer = session.ask("Where is the red box?")
    assert isinstance(answer.answer, str)


def test_batches_use_the_static_cache_and_compiling_is_the_default_on_cuda_only(grounder):
    import types

    import torch

    single = grounder.generation_kwargs(10, GenerationOptions())
    assert "cache_implementation" not in single and single["disable_compile"] is True
    batch = grounder.generation_kwargs(10, GenerationOptions(), batch_size=4)
    assert batch["cache_implementation"] == "static" and batch["disable_compile"] is True
    compiled = grounder.generation_kwargs(10, GenerationOptions(compile=True))
    assert compiled["cache_implementation"] == "static" and "disable_compile" not in compiled
    config = compiled["compile_config"]
    assert config.fullgraph is True and config._compile_all_devices  # generate compiles on CPU only when told so
    on_cuda = GroundingGPT(types.SimpleNamespace(config=grounder.model.config, device=torch.device("cuda")),
                           grounder.processor)
    cuda_kwargs = on_cuda.generation_kwargs(10, GenerationOptions())
    assert cuda_kwargs["compile_config"].mode == "reduce-overhead" and cuda_kwargs["cache_implementation"] == "static"
    assert "compile_config" not in on_cuda.generation_kwargs(10, GenerationOptions(compile=False))


def test_compiled_decoding_answers_like_the_default(grounder, monkeypatch):
    """`compile=True` through the whole API (static cache, compiled decode step, batch of mixed media) gives the
    default answers. The eager backend keeps the test fast; the full-graph capture is what is checked."""
    from transformers import CompileConfig

    import modeling_groundinggpt.inference as inference

    def eager_full_graph(device):
        config = CompileConfig(fullgraph=True, backend="eager")
        config._compile_all_devices = True
        return config

    requests = [
        GroundingRequest("Where is the box?", image=MEDIA / "image.png"),
        GroundingRequest("When does it move?", video=MEDIA / "video.mp4"),
        GroundingRequest("What makes the sound?", image=MEDIA / "image.png", audio=MEDIA / "audio.wav"),
    ]
    default = grounder.ground_batch(requests, GenerationOptions(max_new_tokens=6))
    monkeypatch.setattr(inference, "decode_compile_config", eager_full_graph)
    compiled = grounder.ground_batch(requests, GenerationOptions(max_new_tokens=6, compile=True))
    assert hasattr(grounder.model, "_compiled_call")
    assert [answer.answer for answer in compiled] == [answer.answer for answer in default]


def test_cli_compile_switch():
    from groundinggpt_cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["ground", "a.png", "q"]).compile is None
    assert parser.parse_args(["ground", "a.png", "q", "--compile"]).compile is True
    assert parser.parse_args(["video", "a.mp4", "q", "--no-compile"]).compile is False
