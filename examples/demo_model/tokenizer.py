"""The demo model's tokenizer: a small byte-level BPE trained here on the synthetic world's texts.

Pipeline (`tokenizers`): digits are split one by one (so numbers are written digit by digit), then GPT-2 byte-level
pre-tokenization, so any text is covered by the 256 byte symbols and nothing maps to `<unk>`. The BPE merges are
learned from the chat template's system prompt and role prefixes plus questions and answers of the three synthetic
tasks. Ids 0-2 are `<unk>` (also the padding token, as in GroundingGPT), `<s>` and `</s>`; the nine multimodal
tokens come after the learned vocabulary, in GroundingGPT's order, followed by the turn separator `###` as an added
token, so it is always one token (generation can stop on it). `<s>` is prepended to every encoded text.
"""

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from modeling_groundinggpt.convert.convert_tokenizer import MULTIMODAL_TOKENS, special_token, wrap_tokenizer
from modeling_groundinggpt.processing.chat_template import DEFAULT_SYSTEM_PROMPT
from modeling_groundinggpt.synthetic.templates import (
    IMAGE_QUESTION,
    SOUND_QUESTION,
    VIDEO_QUESTION,
    box_answer,
    span_answer,
)
from modeling_groundinggpt.synthetic.world import COLORS


UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<unk>", "<s>", "</s>"
SEPARATOR_TOKEN = "###"
DEMO_BPE_VOCAB_SIZE = 512
"""Upper bound of the learned vocabulary (3 special tokens + 256 bytes + merges). The corpus runs out of pairs to
merge first: the learned vocabulary has 408 entries and the tokenizer 417 with the multimodal tokens."""

DEMO_MODEL_MAX_LENGTH = 512
_CORPUS_SEED = 0
_CORPUS_ANSWERS_PER_TEMPLATE = 200


def demo_tokenizer_corpus() -> list[str]:
    """The deterministic training texts: conversations as the chat template writes them, without media markers."""
    rng = np.random.default_rng(_CORPUS_SEED)
    texts = []
    for _ in range(_CORPUS_ANSWERS_PER_TEMPLATE):
        color = COLORS[int(rng.integers(len(COLORS)))]
        width, height = (int(side) for side in rng.integers(96, 257, size=2))
        x1, x2 = sorted(int(value) for value in rng.integers(0, width + 1, size=2))
        y1, y2 = sorted(int(value) for value in rng.integers(0, height + 1, size=2))
        duration = float(rng.uniform(3.0, 8.0))
        start, end = sorted(float(value) for value in rng.uniform(0.0, duration, size=2))
        exchanges = [
            (IMAGE_QUESTION.format(color=color), box_answer(color, (x1, y1, x2, y2), (width, height))),
            (VIDEO_QUESTION.format(color=color), span_answer(color, start, end, duration)),
            (SOUND_QUESTION, box_answer(color, (x1, y1, x2, y2), (width, height))),
        ]
        for question, answer in exchanges:
            texts.append(f"{DEFAULT_SYSTEM_PROMPT}###Human: \n{question}###Assistant: {answer}###")
    return texts


def train_demo_tokenizer(vocab_size: int = DEMO_BPE_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train the demo tokenizer (deterministic: the corpus and the BPE trainer are).

    Args:
        vocab_size: target size of the learned vocabulary, before the multimodal tokens and `###` are added.

    Returns:
        A `PreTrainedTokenizerFast` with `<unk>`/`<s>`/`</s>` (pad = unk = id 0), the nine multimodal tokens as
        extra special tokens, `###` as an added token, and `<s>` prepended; saves as `tokenizer.json`.
    """
    backend = Tokenizer(BPE(unk_token=UNK_TOKEN, fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNK_TOKEN, BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(demo_tokenizer_corpus(), trainer=trainer)
    backend.add_special_tokens([special_token(token) for token in MULTIMODAL_TOKENS])
    backend.add_tokens([AddedToken(SEPARATOR_TOKEN, normalized=False, special=False)])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN}:0 $A:0",
        pair=f"{BOS_TOKEN}:0 $A:0 {BOS_TOKEN}:1 $B:1",
        special_tokens=[(BOS_TOKEN, backend.token_to_id(BOS_TOKEN))],
    )
    return wrap_tokenizer(backend, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, DEMO_MODEL_MAX_LENGTH)


__all__ = ["DEMO_BPE_VOCAB_SIZE", "SEPARATOR_TOKEN", "demo_tokenizer_corpus", "train_demo_tokenizer"]
