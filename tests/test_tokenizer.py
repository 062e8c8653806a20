"""The converted tokenizer reproduces the original inference tokenization (transformers 4.34 fast LLaMA)."""

import pytest
import sentencepiece
from transformers import AutoTokenizer

from modeling_groundinggpt.convert.convert_tokenizer import MULTIMODAL_TOKENS, convert_tokenizer

from conftest import CASE_NAMES, FIXTURES, load_case


@pytest.fixture(scope="module")
def tokenizer():
    return convert_tokenizer(FIXTURES / "original_checkpoint")


@pytest.fixture(scope="module")
def reloaded_tokenizer(tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_prompt_ids_match_the_original_inference_ids(tokenizer, reloaded_tokenizer, case):
    description, _ = load_case(case)
    assert tokenizer(description["prompt"]).input_ids == description["input_ids"]
    assert reloaded_tokenizer(description["prompt"]).input_ids == description["input_ids"]


def test_special_tokens_keep_their_original_ids(reloaded_tokenizer):
    ids = reloaded_tokenizer.convert_tokens_to_ids(list(MULTIMODAL_TOKENS))
    assert ids == list(range(800, 809))
    assert len(reloaded_tokenizer) == 809
    assert (reloaded_tokenizer.unk_token_id, reloaded_tokenizer.bos_token_id, reloaded_tokenizer.eos_token_id) == (0, 1, 2)
    assert reloaded_tokenizer.pad_token_id == 0
    assert reloaded_tokenizer.padding_side == "left"


def test_text_around_special_tokens_gets_the_extra_metaspace_piece(tokenizer):
    # The 4.34 fast tokenizer keeps the space before <im_start> and starts the text after <im_end> with "▁".
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("Human: <im_start><im_patch><im_end>\nWhere").input_ids)
    assert pieces[pieces.index("<im_start>") - 1] == "▁"
    assert pieces[pieces.index("<im_end>") + 1 : pieces.index("<im_end>") + 3] == ["▁", "<0x0A>"]


def test_plain_text_matches_sentencepiece(tokenizer):
    processor = sentencepiece.SentencePieceProcessor(model_file=str(FIXTURES / "original_checkpoint" / "tokenizer.model"))
    texts = [
        "The red box is at [0.125, 0.350, 0.500, 0.725].",
        "  two  leading spaces, tabs\tand\nnewlines",
        "Unicode: héllo wörld 日本語 🙂",
        "Numbers 1234567.890 and punctuation ###",
    ]
    for text in texts:
        assert tokenizer(text, add_special_tokens=False).input_ids == processor.encode(text)


def test_decode_gives_clean_text(tokenizer):
    text = "The red box is at [0.125, 0.350, 0.500, 0.725]."
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.decode(ids[1:]).strip() == text


def test_added_token_ids_can_come_from_tokenizer_config_alone(tmp_path, tokenizer):
    for name in ("tokenizer.model", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((FIXTURES / "original_checkpoint" / name).read_bytes())
    rebuilt = convert_tokenizer(tmp_path)
    assert rebuilt.get_vocab() == tokenizer.get_vocab()


def test_wrong_added_token_ids_are_refused(tmp_path):
    for name in ("tokenizer.model", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((FIXTURES / "original_checkpoint" / name).read_bytes())
    (tmp_path / "added_tokens.json").write_text('{"<im_patch>": 801, "<im_start>": 800}')
    with pytest.raises(ValueError, match="<im_patch> the id 801, expected 800"):
        convert_tokenizer(tmp_path)
