"""The demo tokenizer: deterministic, digits split, every character covered, answers round-trip, saves and reloads."""

import pytest
from transformers import AutoTokenizer

from demo_model.tokenizer import SEPARATOR_TOKEN, train_demo_tokenizer
from modeling_groundinggpt.convert.convert_tokenizer import MULTIMODAL_TOKENS
from modeling_groundinggpt.processing import DEFAULT_SYSTEM_PROMPT
from modeling_groundinggpt.synthetic import generate_dataset


@pytest.fixture(scope="module")
def tokenizer():
    return train_demo_tokenizer()


def test_deterministic(tokenizer):
    assert train_demo_tokenizer().backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()


def test_vocabulary_and_special_tokens(tokenizer):
    assert 300 <= len(tokenizer) <= 1000
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.pad_token_id == tokenizer.unk_token_id
    ids = tokenizer.convert_tokens_to_ids(list(MULTIMODAL_TOKENS))
    # GroundingGPT's layout: the multimodal tokens follow the base vocabulary, in their original order.
    assert ids == list(range(ids[0], ids[0] + 9)) and ids[-1] == len(tokenizer) - 1
    assert tokenizer.encode(SEPARATOR_TOKEN, add_special_tokens=False) == [tokenizer.convert_tokens_to_ids("###")]


def test_digits_are_split(tokenizer):
    tokens = tokenizer.tokenize("[0.123, 0.456, 0.789, 1.000] {0.25, 0.50} 9876543210")
    digit_tokens = [token for token in tokens if any(char.isdigit() for char in token)]
    assert digit_tokens and all(len(token) == 1 for token in digit_tokens)
    assert "".join(digit_tokens) == "0123045607891000025050" + "9876543210"


def test_answers_and_prompt_round_trip(tokenizer, tmp_path):
    records = [record for task in ("image", "video", "sound") for record in generate_dataset(task, 3, 5, tmp_path)]
    for record in records:
        for turn in record["conversations"]:
            ids = tokenizer.encode(turn["value"])
            assert ids[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in ids
            assert tokenizer.decode(ids, skip_special_tokens=True) == turn["value"]
    prompt = f"{DEFAULT_SYSTEM_PROMPT}###Human: <im_start><im_patch><im_patch><im_end>\nWhere is the red box?###"
    tokens = tokenizer.convert_ids_to_tokens(tokenizer.encode(prompt))
    assert tokens.count("<im_patch>") == 2 and tokens.count("###") == 2
    # The learned merges make the task words single tokens.
    for word in ("Where", "Ġred", "Ġyellow", "Ġsquare", "Ġvisible", "Ġsound"):
        assert word in tokenizer.get_vocab()


def test_any_text_is_covered(tokenizer):
    text = "Ünïcödé, 漢字 and emoji 🙂\ttabs\r\nand <unknown> markup"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_save_and_reload(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "The blue box[0.100, 0.200, 0.300, 0.400].###"
    assert reloaded.encode(text) == tokenizer.encode(text)
    assert reloaded.convert_tokens_to_ids(list(MULTIMODAL_TOKENS)) == tokenizer.convert_tokens_to_ids(
        list(MULTIMODAL_TOKENS)
    )
    assert reloaded.padding_side == "left" and reloaded.pad_token_id == 0
