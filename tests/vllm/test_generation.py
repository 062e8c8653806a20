"""vLLM's `LLM.generate` gives the greedy tokens of this package's `generate`, prompt by prompt and in a mixed batch."""

import pytest

from vllm_prompts import CASES, MIXED_BATCH, VLLM_MISSING, VLLM_MODULE, build_prompt, package_greedy

pytest.importorskip(VLLM_MODULE, reason=VLLM_MISSING)


NEW_TOKENS = 8


@pytest.fixture(scope="module")
def greedy():
    from vllm import SamplingParams

    return SamplingParams(temperature=0, max_tokens=NEW_TOKENS, ignore_eos=True)


@pytest.fixture(scope="module")
def package_answers(tiny64_model, tiny64_processor, decoded_media):
    """This package's prompt ids and greedy tokens for every case, one prompt at a time."""
    answers = {}
    for name in CASES:
        inputs = build_prompt(name, tiny64_processor, decoded_media).package_inputs
        answers[name] = (inputs["input_ids"][0].tolist(), package_greedy(tiny64_model, inputs, NEW_TOKENS))
    return answers


@pytest.mark.parametrize("name", ["image", "video", "image+audio", "text"])
def test_greedy_tokens_equal_package_generate(llm, greedy, tiny64_processor, decoded_media, package_answers, name):
    (output,) = llm.generate([build_prompt(name, tiny64_processor, decoded_media).vllm], greedy, use_tqdm=False)
    prompt_ids, tokens = package_answers[name]
    assert list(output.prompt_token_ids) == prompt_ids
    assert list(output.outputs[0].token_ids) == tokens


def test_mixed_batch_gives_each_prompt_its_own_answer(llm, greedy, tiny64_processor, decoded_media, package_answers):
    """Images, videos of different lengths (frame mask), audio, text, several media per prompt, one batch."""
    prompts = [build_prompt(name, tiny64_processor, decoded_media).vllm for name in MIXED_BATCH]
    outputs = llm.generate(prompts, greedy, use_tqdm=False)
    for name, output in zip(MIXED_BATCH, outputs):
        prompt_ids, tokens = package_answers[name]
        assert list(output.prompt_token_ids) == prompt_ids, name
        assert list(output.outputs[0].token_ids) == tokens, name
