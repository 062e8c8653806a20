"""Where GroundingGPT's generation stops: after the `###` separator that ends every answer, with no argument to pass.

The checkpoint's generation config carries what `generate` needs (`stop_at_separator` writes it):

- where the tokenizer writes the separator as one token (Vicuna's `###` and `▁###`, the demo tokenizer's added
  `###`), its ids join `eos_token_id`, which transformers and serving engines such as vLLM read;
- where it takes several tokens (e.g. a byte-fallback vocabulary writing `#`, `#`, `#`), `separator_token_ids` holds
  that sequence and `GroundingGPTForConditionalGeneration` stops on it with `SeparatorStoppingCriteria`.
  (transformers' `stop_strings` would need the tokenizer passed to every `generate` call, which pipelines don't do.)
"""

from typing import Any

import torch
from transformers import GenerationConfig, StoppingCriteria


class SeparatorStoppingCriteria(StoppingCriteria):
    """Stops a row once its ids end with one of `sequences` (token-id sequences of the answer separator)."""

    def __init__(self, sequences: list[list[int]]):
        self.sequences = [torch.tensor(sequence, dtype=torch.long) for sequence in sequences if sequence]

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for sequence in self.sequences:
            if input_ids.shape[1] >= len(sequence):
                tail = input_ids[:, -len(sequence) :]
                done |= (tail == sequence.to(input_ids.device)).all(dim=1)
        return done


def separator_token_ids(tokenizer: Any, separator: str) -> tuple[list[int], list[int]]:
    """How `tokenizer` writes `separator` after an answer.

    Returns:
        `(single, sequence)`: the ids of the vocabulary entries that are the separator by themselves (with or without
        SentencePiece's word-start mark `▁`), and, when there is none, the ids the separator is tokenized into
        (leading whitespace-only tokens dropped, as the separator follows text); the other one is empty.
    """
    pieces = (separator, "\u2581" + separator)
    single = sorted({token_id for piece, token_id in tokenizer.get_vocab().items() if piece in pieces})
    if single:
        return single, []
    sequence = tokenizer(separator, add_special_tokens=False)["input_ids"]
    while sequence and not tokenizer.decode(sequence[:1]).strip():
        sequence = sequence[1:]
    return [], sequence


def stop_at_separator(generation_config: GenerationConfig, tokenizer: Any, separator: str) -> GenerationConfig:
    """Make `generate` stop at `tokenizer.eos_token` and after `separator` (see the module docstring).

    Sets `eos_token_id` (the tokenizer's end token, then the single-token separators) and `separator_token_ids`
    (`[sequence]` for a several-token separator, else removed) of `generation_config`, in place.

    Returns:
        `generation_config`.
    """
    single, sequence = separator_token_ids(tokenizer, separator)
    # A config derived from the model config drops unknown fields when loaded; this one is the checkpoint's own.
    generation_config._from_model_config = False
    generation_config.eos_token_id = [tokenizer.eos_token_id, *single]
    if sequence:
        generation_config.separator_token_ids = [sequence]
    elif hasattr(generation_config, "separator_token_ids"):
        del generation_config.separator_token_ids
    return generation_config


__all__ = ["SeparatorStoppingCriteria", "separator_token_ids", "stop_at_separator"]
