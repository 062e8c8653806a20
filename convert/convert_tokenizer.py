"""Convert the original GroundingGPT (LEGO) tokenizer files to a `tokenizers`-backed transformers tokenizer.

The original checkpoint ships the slow sentencepiece files of Vicuna (`tokenizer.model`, `tokenizer_config.json`,
`added_tokens.json`, `special_tokens_map.json`) with nine multimodal tokens appended to the vocabulary. Its inference
code (`lego/model/builder.py` + `lego/serve/cli.py`) loaded them with `AutoTokenizer.from_pretrained(path)`, which in
transformers 4.34 converted them on the fly to a *fast* LLaMA tokenizer whose pipeline is:

- normalizer: prepend "▁" to every text chunk, then replace " " by "▁" ("legacy" sentencepiece emulation);
- no pre-tokenizer; BPE with byte fallback over the sentencepiece pieces, merges ranked by piece score;
- added tokens split off the raw text before normalisation, keeping the surrounding spaces and newlines;
- post-processor "<s> $A".

Because every chunk between two added tokens is normalised on its own, the text following `<im_end>` starts with an
extra "▁" piece and the space before `<im_start>` is kept as its own piece. The model was run with these ids, so we
rebuild exactly this pipeline instead of relying on the transformers 5.x LLaMA tokenizer (which tokenizes like the
slow one). The result is a `PreTrainedTokenizerFast` that saves as `tokenizer.json` and reloads with `AutoTokenizer`.
"""

import json
import os

from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from modeling_groundinggpt.configuration_groundinggpt import PLACEHOLDER_TOKENS


MULTIMODAL_TOKENS = tuple(PLACEHOLDER_TOKENS.values())

_NORMAL_PIECE = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL


def _load_sentencepiece_proto(model_file: str) -> sentencepiece_model_pb2.ModelProto:
    proto = sentencepiece_model_pb2.ModelProto()
    with open(model_file, "rb") as handle:
        proto.ParseFromString(handle.read())
    if proto.trainer_spec.model_type != sentencepiece_model_pb2.TrainerSpec.BPE:
        raise ValueError(f"{model_file} is not a sentencepiece BPE model (LLaMA tokenizers are BPE).")
    return proto


def _bpe_merges(proto: sentencepiece_model_pb2.ModelProto, vocab: dict[str, int]) -> list[tuple[str, str]]:
    """Every split of a normal piece into two vocabulary pieces, best-scored merged piece first (as sentencepiece)."""
    ranked = []
    for piece_id, piece in enumerate(proto.pieces):
        if piece.type != _NORMAL_PIECE:
            continue
        token = piece.piece
        for split in range(1, len(token)):
            left, right = token[:split], token[split:]
            if left in vocab and right in vocab:
                ranked.append((-piece.score, piece_id, vocab[left], vocab[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def _build_backend(proto: sentencepiece_model_pb2.ModelProto) -> Tokenizer:
    vocab = {piece.piece: piece_id for piece_id, piece in enumerate(proto.pieces)}
    unk_piece = proto.trainer_spec.unk_piece
    bos_piece = proto.trainer_spec.bos_piece
    backend = Tokenizer(
        BPE(
            vocab=vocab,
            merges=_bpe_merges(proto, vocab),
            unk_token=unk_piece,
            fuse_unk=True,
            byte_fallback=proto.trainer_spec.byte_fallback,
            dropout=None,
        )
    )
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1)]
    )
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos_piece}:0 $A:0",
        pair=f"{bos_piece}:0 $A:0 {bos_piece}:1 $B:1",
        special_tokens=[(bos_piece, vocab[bos_piece])],
    )
    return backend


def saved_added_token_ids(original_dir: str | os.PathLike) -> dict[str, int]:
    """Token -> id of the added tokens, from `added_tokens.json` or else `tokenizer_config.json`."""
    added_tokens_file = os.path.join(original_dir, "added_tokens.json")
    if os.path.isfile(added_tokens_file):
        with open(added_tokens_file, encoding="utf-8") as handle:
            return json.load(handle)
    with open(os.path.join(original_dir, "tokenizer_config.json"), encoding="utf-8") as handle:
        decoder = json.load(handle).get("added_tokens_decoder", {})
    return {entry["content"]: int(token_id) for token_id, entry in decoder.items()}


def special_token(content: str) -> AddedToken:
    """A special token split off the raw text without eating neighbouring whitespace (as the 4.34 fast tokenizer
    did)."""
    return AddedToken(content, lstrip=False, rstrip=False, normalized=False, special=True, single_word=False)


def wrap_tokenizer(
    backend: Tokenizer, unk_token: str, bos_token: str, eos_token: str, model_max_length: int
) -> PreTrainedTokenizerFast:
    """A GroundingGPT tokenizer around a `tokenizers` backend: BOS added, pad = unk, the nine multimodal tokens as
    extra special tokens, left padding (for generation)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=unk_token,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=unk_token,
        extra_special_tokens=list(MULTIMODAL_TOKENS),
        add_bos_token=True,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
        padding_side="left",
    )


def convert_tokenizer(original_dir: str | os.PathLike) -> PreTrainedTokenizerFast:
    """Build the inference tokenizer of the original checkpoint.

    Args:
        original_dir: folder holding the original `tokenizer.model`, `tokenizer_config.json` and (usually)
            `added_tokens.json`.

    Returns:
        A `PreTrainedTokenizerFast` with bos `<s>` prepended, `pad_token` = `unk_token` (id 0), the nine multimodal
        tokens at their original ids and the original fast tokenization (see the module docstring).
    """
    original_dir = os.fspath(original_dir)
    proto = _load_sentencepiece_proto(os.path.join(original_dir, "tokenizer.model"))
    backend = _build_backend(proto)
    base_vocab_size = len(proto.pieces)

    added_tokens = saved_added_token_ids(original_dir)
    expected_ids = {token: base_vocab_size + index for index, token in enumerate(MULTIMODAL_TOKENS)}
    for token, token_id in expected_ids.items():
        if added_tokens.get(token) != token_id:
            raise ValueError(
                f"The tokenizer files in {original_dir} give {token} the id {added_tokens.get(token)}, "
                f"expected {token_id} (base vocabulary {base_vocab_size} + position in the original order)."
            )

    unk, bos, eos = proto.trainer_spec.unk_piece, proto.trainer_spec.bos_piece, proto.trainer_spec.eos_piece
    backend.add_special_tokens([special_token(unk), special_token(bos), special_token(eos)])
    backend.add_special_tokens([special_token(token) for token in MULTIMODAL_TOKENS])
    for token, token_id in expected_ids.items():
        if backend.token_to_id(token) != token_id:
            raise ValueError(f"{token} got id {backend.token_to_id(token)} instead of {token_id}.")

    with open(os.path.join(original_dir, "tokenizer_config.json"), encoding="utf-8") as handle:
        model_max_length = json.load(handle).get("model_max_length", 4096)

    return wrap_tokenizer(backend, unk, bos, eos, model_max_length)
