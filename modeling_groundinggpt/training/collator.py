"""Batches of GroundingGPT conversations for supervised fine-tuning: media loaded lazily, loss on assistant turns."""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..processing import GroundingGPTProcessor


IGNORE_INDEX = -100
# Example column -> (processor argument, key of the processor's `*_placeholder` / `*_token` attributes).
MEDIA_COLUMNS = {"images": ("images", "image"), "videos": ("videos", "video"), "audios": ("audio", "audio")}
# Processor output -> the media column whose items index its first dimension.
MEDIA_TENSORS = {
    "pixel_values": "images",
    "pixel_values_videos": "videos",
    "video_frame_mask": "videos",
    "input_features": "audios",
}


@dataclass
class GroundingGPTDataCollator:
    """
    Collate GroundingGPT conversations into model inputs, for `SFTTrainer(data_collator=...)`.

    Each example is a dict with
    - `messages`: a conversation in the transformers chat format (`role` in `system`/`user`/`assistant`; `content` a
      string, which may hold `<image>`/`<video>`/`<sound>` markers, or a list of `{"type": "text", "text": ...}` and
      `{"type": "image" | "video" | "audio"}` items);
    - `images`, `videos`, `audios` (each optional): that sample's media, in the order of its markers; local paths
      (relative ones are resolved against `media_root`) or in-memory media the processor accepts. Only the media
      present in the batch are loaded and encoded: a sample without video adds no video.

    The conversation is rendered with the processor's chat template and tokenized once, with right padding. Labels
    are computed on that tokenization, from character offsets: a token carries loss when it starts inside an
    assistant turn, which runs from the end of the generation prompt (`"...###Assistant:"`) to the end of the turn
    including the `###` separator that closes it, so the model learns to end its answers with the separator that
    stops generation (as in the original `conv_lego` training). Everything else is `-100`: system and user text,
    role prefixes, media start/patch/end tokens, BOS and padding.

    Truncation to `max_length` drops the tail of a sample, but never cuts through a media run: a run that would be
    cut is dropped whole, together with its media item. A sample with no assistant token left is an error.

    Args:
        processor: the model's `GroundingGPTProcessor`.
        media_root: folder that relative media paths are resolved against, or one folder per column
            (`{"images": ..., "videos": ..., "audios": ...}`, like the original `--image_folder`/`--video_folder`/
            `--sound_folder`).
        max_length: maximum number of tokens per sample; `None` keeps whole samples.

    Returns (from `__call__`):
        `input_ids`, `attention_mask`, `labels`: `[batch, seq]`; and, for the modalities present in the batch,
        `pixel_values` `[n_images, 3, H, W]`, `pixel_values_videos` `[n_videos, T, 3, H, W]` with
        `video_frame_mask` `[n_videos, T]`, `input_features` `[n_audios, clips, 1, mel, frames]`, in batch order.
    """

    processor: GroundingGPTProcessor
    media_root: str | os.PathLike | Mapping[str, str | os.PathLike] | None = None
    max_length: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        texts, spans = zip(*(self._render(example) for example in examples))
        media = {column: [self._media(example, column) for example in examples] for column in MEDIA_COLUMNS}
        try:
            encoding = self.processor(
                text=list(texts),
                **{argument: media[column] if any(media[column]) else None for column, (argument, _) in MEDIA_COLUMNS.items()},
                padding=True,
                padding_side="right",
                return_offsets_mapping=True,
                return_tensors="pt",
            )
        except (ValueError, FileNotFoundError) as error:
            raise type(error)(f"In the batch with ids {[example.get('id') for example in examples]}: {error}") from error

        input_ids, attention_mask = encoding["input_ids"], encoding["attention_mask"]
        labels = self._labels(input_ids, attention_mask, encoding["offset_mapping"], spans)
        kept = {column: [len(items) for items in media[column]] for column in MEDIA_COLUMNS}
        for row, example in enumerate(examples):
            length = int(attention_mask[row].sum())
            if self.max_length is not None and length > self.max_length:
                cut = self._truncate(input_ids[row], length, kept, row)
                input_ids[row, cut:] = self.processor.tokenizer.pad_token_id
                attention_mask[row, cut:] = 0
                labels[row, cut:] = IGNORE_INDEX
            if not (labels[row] != IGNORE_INDEX).any():
                raise ValueError(
                    f"Sample {example.get('id', row)!r} has no assistant token to learn from"
                    + (f" within max_length={self.max_length}." if self.max_length is not None else ".")
                )

        seq_len = int(attention_mask.sum(dim=1).max())
        batch = {
            "input_ids": input_ids[:, :seq_len],
            "attention_mask": attention_mask[:, :seq_len],
            "labels": labels[:, :seq_len],
        }
        for key, column in MEDIA_TENSORS.items():
            if key not in encoding:
                continue
            keep = torch.tensor(
                [index < count for items, count in zip(media[column], kept[column]) for index in range(len(items))]
            )
            if keep.any():
                batch[key] = encoding[key][keep]
        self._check_placeholders(batch["input_ids"], kept)
        return batch

    def check_media_files(self, dataset: Any) -> None:
        """Check, before training, that every media path of `dataset` (a `datasets.Dataset` or a list of examples)
        names a file, resolved as the collator resolves it.

        Raises:
            FileNotFoundError: naming the first missing file (sample id and column) and how many are missing.
        """
        columns = [column for column in MEDIA_COLUMNS if column in getattr(dataset, "column_names", MEDIA_COLUMNS)]
        if hasattr(dataset, "select_columns"):
            dataset = dataset.select_columns([*columns, *(["id"] if "id" in dataset.column_names else [])])
        missing = []
        for row, example in enumerate(dataset):
            for column in columns:
                for index, path in enumerate(self._media(example, column)):
                    if isinstance(path, (str, os.PathLike)) and not os.path.isfile(path):
                        missing.append((row, example.get("id"), column, index, os.fspath(path)))
        if missing:
            row, sample_id, column, index, path = missing[0]
            name = f"sample {sample_id!r}" if sample_id is not None else f"sample {row}"
            raise FileNotFoundError(
                f"Training media file not found: {path!r} ({name}, `{column}[{index}]`); {len(missing)} of the "
                "dataset's media files are missing."
            )

    def _render(self, example: Mapping[str, Any]) -> tuple[str, list[tuple[int, int]]]:
        """The chat-template text of `example` and its assistant spans `(start, end)`, as character offsets into that
        text once the processor has expanded its media markers.

        Each span starts after the generation prompt that precedes the turn and ends after the turn's separator;
        both ends are found by rendering the conversation up to that turn, which requires a template whose
        renderings of successive turns extend each other (true of the GroundingGPT template).
        """
        messages = list(example["messages"])
        render = self.processor.apply_chat_template
        text = render(messages, tokenize=False)
        spans = []
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = render(messages[:index], tokenize=False, add_generation_prompt=True) if index else ""
            through_turn = render(messages[: index + 1], tokenize=False)
            if not (text.startswith(through_turn) and through_turn.startswith(prompt)):
                raise ValueError("The chat template does not render conversations turn by turn; cannot find the assistant turns.")
            spans.append((self._expanded_index(text, len(prompt)), self._expanded_index(text, len(through_turn))))
        return text, spans

    def _media(self, example: Mapping[str, Any], column: str) -> list[Any]:
        items = example.get(column) or []
        root = self.media_root.get(column) if isinstance(self.media_root, Mapping) else self.media_root
        if root is None:
            return list(items)
        return [
            str(Path(root) / item) if isinstance(item, (str, os.PathLike)) and not os.path.isabs(item) else item
            for item in items
        ]

    def _expanded_index(self, text: str, index: int) -> int:
        """Character `index` of the rendered `text` -> its index once the processor has expanded the media markers."""
        shift = 0
        for _, name in MEDIA_COLUMNS.values():
            marker = getattr(self.processor, f"{name}_placeholder")
            expansion = (
                len(getattr(self.processor, f"{name}_start_token"))
                + len(getattr(self.processor, f"{name}_token")) * getattr(self.processor, f"num_{name}_tokens")
                + len(getattr(self.processor, f"{name}_end_token"))
            )
            shift += text.count(marker, 0, index) * (expansion - len(marker))
        return index + shift

    def _labels(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        offsets: torch.Tensor,
        spans: Sequence[list[tuple[int, int]]],
    ) -> torch.Tensor:
        """`input_ids` `[batch, seq]` where a token starts inside an assistant span, `-100` elsewhere.

        `offsets` `[batch, seq, 2]` are the tokens' character offsets in the marker-expanded texts.
        """
        starts, ends = offsets[..., 0], offsets[..., 1]
        in_assistant = torch.zeros_like(input_ids, dtype=torch.bool)
        for row, row_spans in enumerate(spans):
            for start, end in row_spans:
                in_assistant[row] |= (starts[row] >= start) & (starts[row] < end)
        media_tokens = torch.isin(input_ids, torch.tensor(self._media_token_ids()))
        keep = in_assistant & (ends > starts) & attention_mask.bool() & ~media_tokens
        return torch.where(keep, input_ids, IGNORE_INDEX)

    def _media_token_ids(self) -> list[int]:
        return [
            getattr(self.processor, f"{name}{suffix}_token_id")
            for _, name in MEDIA_COLUMNS.values()
            for suffix in ("_start", "", "_end")
        ]

    def _truncate(self, ids: torch.Tensor, length: int, kept: dict[str, list[int]], row: int) -> int:
        """The cut position of a row of `length` tokens that exceeds `max_length`, moved back to the start of a media
        run it would cut through; lowers `kept[column][row]` to the number of that row's media left whole."""
        cut = self.max_length
        for _, name in MEDIA_COLUMNS.values():
            run_starts = (ids[:length] == getattr(self.processor, f"{name}_start_token_id")).nonzero().flatten()
            run_ends = (ids[:length] == getattr(self.processor, f"{name}_end_token_id")).nonzero().flatten()
            for start, end in zip(run_starts.tolist(), run_ends.tolist()):
                if start < cut <= end:
                    cut = start
        for column, (_, name) in MEDIA_COLUMNS.items():
            kept[column][row] = int((ids[:cut] == getattr(self.processor, f"{name}_start_token_id")).sum())
        return cut

    def _check_placeholders(self, input_ids: torch.Tensor, kept: dict[str, list[int]]) -> None:
        """Each modality's patch tokens must be exactly `num_*_tokens` per media item kept in the batch."""
        for column, (_, name) in MEDIA_COLUMNS.items():
            found = int((input_ids == getattr(self.processor, f"{name}_token_id")).sum())
            expected = sum(kept[column]) * getattr(self.processor, f"num_{name}_tokens")
            if found != expected:
                raise ValueError(
                    f"The batch has {found} {getattr(self.processor, f'{name}_token')} tokens but {sum(kept[column])} "
                    f"{column} x {getattr(self.processor, f'num_{name}_tokens')} = {expected} were expected; does the "
                    "text contain multimodal tokens written out literally?"
                )


__all__ = ["IGNORE_INDEX", "GroundingGPTDataCollator"]
