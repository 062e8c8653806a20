"""Training data for GroundingGPT: the original (LLaVA-style) JSON format, or Hugging Face datasets with `messages`."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk


MEDIA_COLUMNS = ("images", "videos", "audios")
# Original JSON key -> (media column, text marker, content item type), in the order the original puts the markers
# first in a message (sounds, then videos, then images), which the chat template reproduces.
ORIGINAL_MEDIA = {
    "sound": ("audios", "<sound>", "audio"),
    "video": ("videos", "<video>", "video"),
    "image": ("images", "<image>", "image"),
}
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def _media_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def conversation_to_messages(sample: Mapping[str, Any]) -> dict[str, Any]:
    """
    One sample of the original format -> `{"id", "messages", "images", "videos", "audios"}`.

    The original sample is `{"id", "image" | "video" | "sound": path (or list of paths), "conversations":
    [{"from": "human" | "gpt", "value": "<image>\\n..."}, ...]}`. Each media marker of a message becomes a typed
    content item, so the chat template places it first in the message followed by a newline, as the original
    `preprocess_multimodal` does. Boxes and time spans stay plain text.

    Raises:
        ValueError: unknown speaker, or a marker count that differs from the number of media files.
    """
    sample_id = str(sample.get("id"))
    messages = []
    counts = dict.fromkeys(ORIGINAL_MEDIA, 0)
    for turn in sample["conversations"]:
        if turn["from"] not in ROLES:
            raise ValueError(f"Sample {sample_id!r}: unknown speaker {turn['from']!r}; expected one of {sorted(ROLES)}.")
        text = turn["value"]
        content = []
        for key, (_, marker, item_type) in ORIGINAL_MEDIA.items():
            found = text.count(marker)
            counts[key] += found
            content += [{"type": item_type, "text": None}] * found
            text = text.replace(marker, "")
        content.append({"type": "text", "text": text.strip() if content else text})
        messages.append({"role": ROLES[turn["from"]], "content": content})

    record = {"id": sample_id, "messages": messages}
    for key, (column, marker, _) in ORIGINAL_MEDIA.items():
        record[column] = _media_list(sample.get(key))
        if counts[key] != len(record[column]):
            raise ValueError(
                f"Sample {sample_id!r} has {counts[key]} {marker} markers but {len(record[column])} {key} file(s)."
            )
    return record


def _with_media_columns(dataset: Dataset) -> Dataset:
    for column in MEDIA_COLUMNS:
        if column not in dataset.column_names:
            dataset = dataset.add_column(column, [[] for _ in range(len(dataset))])
    return dataset


def _read_json_records(files: list[str]) -> list[dict[str, Any]]:
    records = []
    for file in files:
        text = Path(file).read_text()
        if file.endswith(".jsonl"):
            records += [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records += json.loads(text)
    return records


def load_sft_dataset(data_path: str, split: str = "train") -> Dataset:
    """
    Load training data as a `Dataset` with the columns `messages`, `images`, `videos` and `audios` that
    [`GroundingGPTDataCollator`] reads. Media stay references (paths); the collator loads them lazily.

    Args:
        data_path: one of
            - GroundingGPT / LLaVA JSON or JSONL file(s), comma-separated as in the original `--data_path`, with
              `conversations` (converted with [`conversation_to_messages`]; other keys are dropped) or already
              with `messages`;
            - a folder written by `Dataset.save_to_disk`;
            - a Hugging Face dataset name or folder for `datasets.load_dataset`.
            Hugging Face datasets need a `messages` column; `images`, `videos`, `audios` are added empty if absent.
        split: the split to load from a `DatasetDict` or with `datasets.load_dataset`.
    """
    files = data_path.split(",")
    if all(file.endswith((".json", ".jsonl")) for file in files):
        records = _read_json_records(files)
        if records and "conversations" in records[0]:
            records = [conversation_to_messages(record) for record in records]
        dataset = Dataset.from_list(records)
    elif (Path(data_path) / "dataset_info.json").exists() or (Path(data_path) / "dataset_dict.json").exists():
        dataset = load_from_disk(data_path)
        if isinstance(dataset, DatasetDict):
            dataset = dataset[split]
    else:
        dataset = load_dataset(data_path, split=split)
    if "messages" not in dataset.column_names:
        raise ValueError(f"{data_path} has no `messages` (or original `conversations`) column: {dataset.column_names}.")
    return _with_media_columns(dataset)


__all__ = ["MEDIA_COLUMNS", "conversation_to_messages", "load_sft_dataset"]
