"""`transformers.pipeline("image-text-to-text")` and plain `generate` answer and stop after the `###` separator
without extra arguments: the checkpoint's generation config carries the stop (eos ids where the separator is one
token, as in the demo and Vicuna vocabularies; a token sequence where it is several, as in the tiny fixture's)."""

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerFast,
    pipeline,
)

import modeling_groundinggpt
from conftest import FIXTURES
from modeling_groundinggpt.generation_groundinggpt import stop_at_separator
from modeling_groundinggpt.inference import GroundingGPT
from modeling_groundinggpt.processing.chat_template import SEPARATOR

DEMO = Path(modeling_groundinggpt.DEMO_MODEL)
MEDIA = DEMO.parent / "demo_media"
EXAMPLES = {example["name"]: example for example in json.loads((MEDIA / "manifest.json").read_text())["examples"]}


def chat(name: str, question: str | None = None) -> list[dict]:
    """The chat messages of a bundled demo example (media as file paths)."""
    example = EXAMPLES[name]
    kinds = [kind for kind in ("audio", "video", "image") if kind in example]
    content = [{"type": kind, "path": str(MEDIA / example[kind])} for kind in kinds]
    return [{"role": "user", "content": [*content, {"type": "text", "text": question or example["question"]}]}]


@pytest.fixture(scope="module")
def demo_pipe():
    return pipeline("image-text-to-text", model=str(DEMO), device="cpu")


@pytest.fixture(scope="module")
def demo_answers():
    """The answers of the package's own inference path (which passes `stop_strings` and the tokenizer itself)."""
    grounder = GroundingGPT.from_pretrained(DEMO, device="cpu", dtype="float32")
    return {name: grounder.generate([chat(name)])[0][0] for name in EXAMPLES}


@pytest.mark.parametrize("name", ["image", "video", "sound"])
def test_pipeline_answers_chat_input(demo_pipe, demo_answers, name):
    output = demo_pipe(text=chat(name), max_new_tokens=64)
    assistant = output[0]["generated_text"][-1]
    assert assistant == {"role": "assistant", "content": demo_answers[name]}
    assert ("[" in assistant["content"]) if name != "video" else ("{" in assistant["content"])
    new_text = demo_pipe(text=chat(name), max_new_tokens=64, return_full_text=False)[0]["generated_text"]
    assert new_text == demo_answers[name]


def _image_question_on_the_sound_image() -> list[dict]:
    messages = chat("sound", "Where is the red box?")
    del messages[0]["content"][0]  # no audio
    return messages


@pytest.mark.parametrize("kind", ["image", "video", "sound"])
def test_pipeline_batches_chats(demo_pipe, demo_answers, kind):
    """Two chats of one kind of media in one batch (left-padded): each gets the answer it gets alone."""
    second = {
        "image": _image_question_on_the_sound_image(),
        "video": chat("video", "When is the blue square visible?"),
        "sound": chat("sound"),
    }[kind]
    outputs = demo_pipe(text=[chat(kind), second], max_new_tokens=64, batch_size=2, return_full_text=False)
    alone = demo_pipe(text=second, max_new_tokens=64, return_full_text=False)[0]["generated_text"]
    assert [output[0]["generated_text"] for output in outputs] == [demo_answers[kind], alone]
    assert alone.startswith("The ")


def test_pipeline_continues_a_prefilled_answer(demo_pipe, demo_answers):
    prefix = "The blue box"
    messages = [*chat("image"), {"role": "assistant", "content": [{"type": "text", "text": prefix}]}]
    output = demo_pipe(text=messages, max_new_tokens=64)[0]["generated_text"]
    assert output[-1]["content"][0]["text"] == demo_answers["image"]


def test_plain_generate_stops_at_the_separator_token():
    model = AutoModelForImageTextToText.from_pretrained(DEMO)
    processor = AutoProcessor.from_pretrained(DEMO)
    separator_id = processor.tokenizer.convert_tokens_to_ids(SEPARATOR)
    assert model.generation_config.eos_token_id == [processor.tokenizer.eos_token_id, separator_id]
    inputs = processor.apply_chat_template(
        [chat("image"), chat("sound")], add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    output = model.generate(**inputs, max_new_tokens=100)
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    assert new_tokens.shape[1] < 100
    for row in new_tokens.tolist():
        answer_length = row.index(separator_id) + 1  # then only padding
        assert set(row[answer_length:]) <= {processor.tokenizer.pad_token_id}
    answers = processor.post_process_image_text_to_text(new_tokens)
    assert answers[0].startswith("The blue box[") and answers[0].endswith("].")


class ScriptedTokens(LogitsProcessor):
    """Forces the i-th new token to be `tokens[i]`."""

    def __init__(self, prompt_length: int, tokens: list[int]):
        self.prompt_length, self.tokens = prompt_length, tokens

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_length
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.tokens[min(step, len(self.tokens) - 1)]] = 0.0
        return forced


def test_several_token_separator_stops_generation(converted_dir, tiny_model):
    """The tiny fixture tokenizer writes `###` as three byte tokens: the converter records the sequence and the
    model stops right after it."""
    processor = AutoProcessor.from_pretrained(converted_dir)
    hash_id = processor.tokenizer.convert_tokens_to_ids("<0x23>")
    saved = json.loads((converted_dir / "generation_config.json").read_text())
    assert saved["separator_token_ids"] == [[hash_id] * 3] and saved["eos_token_id"] == [2]
    assert tiny_model.generation_config.separator_token_ids == [[hash_id] * 3]

    inputs = processor.apply_chat_template(
        [[{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]],
        add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
    )
    prompt_length = inputs["input_ids"].shape[1]
    script = [300, hash_id, 301, hash_id, hash_id, hash_id, 302, 303]
    scripted = LogitsProcessorList([ScriptedTokens(prompt_length, script)])
    output = tiny_model.generate(**inputs, max_new_tokens=8, logits_processor=scripted)
    assert output[0, prompt_length:].tolist() == script[:6]


def test_pipeline_on_a_converted_folder(converted_dir, tiny_model):
    """Random weights: the pipeline's answer is what a direct `generate` of the same prompt decodes to."""
    pipe = pipeline("image-text-to-text", model=str(converted_dir), device="cpu")
    messages = [{"role": "user", "content": [{"type": "image", "path": str(FIXTURES / "media" / "image.png")},
                                             {"type": "text", "text": "Where is the red box?"}]}]
    answer = pipe(text=messages, max_new_tokens=6, return_full_text=False)[0]["generated_text"]
    processor = AutoProcessor.from_pretrained(converted_dir)
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    output = tiny_model.generate(**inputs, max_new_tokens=6)
    assert answer == processor.post_process_image_text_to_text(output[:, inputs["input_ids"].shape[1] :])[0]


def test_post_processing_of_new_tokens_whole_outputs_and_prompts():
    processor = AutoProcessor.from_pretrained(DEMO)
    tokenizer = processor.tokenizer
    prompt = processor.apply_chat_template(chat("image"), add_generation_prompt=True, tokenize=False)
    answer = "The blue box[0.639, 0.519, 0.788, 0.662]."
    new_ids = tokenizer(f" {answer}###Human: again###", add_special_tokens=False).input_ids
    prompt_ids = tokenizer(prompt.replace("<image>\n", "")).input_ids
    padded_prompt = [tokenizer.pad_token_id] * 3 + prompt_ids
    rows = [new_ids, prompt_ids + new_ids, padded_prompt + new_ids, padded_prompt]
    width = max(len(row) for row in rows)
    batch = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])
    assert processor.post_process_image_text_to_text(batch) == [answer, answer, answer, ""]


def test_single_token_separators_become_eos_ids():
    """As in Vicuna's vocabulary, where `###` and `▁###` are pieces of their own."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "###": 3, "\u2581###": 4, "#": 5, "a": 6}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    config = stop_at_separator(GenerationConfig(separator_token_ids=[[5, 5, 5]]), tokenizer, SEPARATOR)
    assert config.eos_token_id == [2, 3, 4]
    assert not hasattr(config, "separator_token_ids")
