"""Training data for GroundingGPT: the original (LLaVA-style) JSON format, or Hugging Face datasets with `messages`."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from ..evaluation.formats import read_jsonl


MEDIA_COLUMNS = ("images", "videos", "audios")
# Original JSON key -> (media column, text marker, content item type), in the order the original puts the markers
# first in a message (sounds, then videos, then images), which the chat template reproduces.
ORIGINAL_MEDIA = {
    "sound": ("audios", "<sound>", "audio"),
    "video": ("videos", "<video>", "video"),
    "image": ("images", "<image>", "image"),
}
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def _media_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not all(isinstance(path, str) and path for path in paths):
        raise ValueError(f"`{field}` must be a file path or a list of file paths, got {value!r}")
    return list(paths)


def _sample_name(sample: Mapping[str, Any]) -> str:
    return f"Sample {sample.get('id')!r}"


def conversation_to_messages(sample: Mapping[str, Any]) -> dict[str, Any]:
    """
    One sample of the original format -> `{"id", "messages", "images", "videos", "audios"}`.

    The original sample is `{"id", "image" | "video" | "sound": path (or list of paths), "conversations":
    [{"from": "human" | "gpt", "value": "<image>\\n..."}, ...]}`. Each media marker of a message becomes a typed
    content item, so the chat template places it first in the message followed by a newline, as the original
    `preprocess_multimodal` does. Boxes and time spans stay plain text.

    Raises:
        ValueError: a missing or mistyped field, an unknown speaker, or a marker count that differs from the number
            of media files (the message names the sample id and the field).
    """
    sample_id = str(sample.get("id"))
    conversations = sample.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise ValueError(f"Sample {sample_id!r}: `conversations` must be a non-empty list of turns, got {conversations!r}.")
    messages = []
    counts = dict.fromkeys(ORIGINAL_MEDIA, 0)
    for index, turn in enumerate(conversations):
        field = f"conversations[{index}]"
        if not isinstance(turn, Mapping):
            raise ValueError(f"Sample {sample_id!r}: `{field}` must be an object with `from` and `value`, got {turn!r}.")
        if turn.get("from") not in ROLES:
            raise ValueError(
                f"Sample {sample_id!r}: `{field}.from` must be one of {sorted(ROLES)}, got {turn.get('from')!r}."
            )
        text = turn.get("value")
        if not isinstance(text, str):
            raise ValueError(f"Sample {sample_id!r}: `{field}.value` must be a string, got {type(text).__name__}.")
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
        try:
            record[column] = _media_list(sample.get(key), key)
        except ValueError as error:
            raise ValueError(f"Sample {sample_id!r}: {error}.") from None
        if counts[key] != len(record[column]):
            raise ValueError(
                f"Sample {sample_id!r} has {counts[key]} {marker} markers but {len(record[column])} {key} file(s) "
                f"in `{key}`."
            )
    return record


def check_messages_sample(sample: Mapping[str, Any]) -> None:
    """Check a sample already in the `messages` format: roles, contents, and one media file per marker or item.

    Raises:
        ValueError: a missing or mistyped field, or a count mismatch (the message names the sample id and field).
    """
    name = _sample_name(sample)
    messages = sample.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{name}: `messages` must be a non-empty list of messages, got {messages!r}.")
    counts = dict.fromkeys(MEDIA_COLUMNS, 0)
    columns = {item_type: column for column, _, item_type in ORIGINAL_MEDIA.values()}
    markers = {marker: column for column, marker, _ in ORIGINAL_MEDIA.values()}
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"{name}: `{field}` must have a `role` of system, user or assistant, got {message!r}.")
        content = message.get("content")
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(items, list):
            raise ValueError(f"{name}: `{field}.content` must be a string or a list of items, got {content!r}.")
        for position, item in enumerate(items):
            kind = item.get("type") if isinstance(item, Mapping) else None
            if kind == "text":
                if not isinstance(item.get("text"), str):
                    raise ValueError(f"{name}: `{field}.content[{position}].text` must be a string, got {item!r}.")
                for marker, column in markers.items():
                    counts[column] += item["text"].count(marker)
            elif kind in columns:
                counts[columns[kind]] += 1
            else:
                raise ValueError(
                    f"{name}: `{field}.content[{position}]` must have a `type` of text, image, video or audio, got "
                    f"{item!r}."
                )
    for column, count in counts.items():
        media = sample.get(column) or []
        if not isinstance(media, list):
            raise ValueError(f"{name}: `{column}` must be a list, got {media!r}.")
        if count != len(media):
            raise ValueError(f"{name} has {count} {column[:-1]} markers or items but {len(media)} entries in `{column}`.")


def _with_media_columns(dataset: Dataset) -> Dataset:
    for column in MEDIA_COLUMNS:
        if column not in dataset.column_names:
            dataset = dataset.add_column(column, [[] for _ in range(len(dataset))])
    return dataset


def _read_json_records(files: list[str]) -> list[dict[str, Any]]:
    """The samples of JSON / JSONL files, each converted to or checked in the `messages` format.

    Raises:
        FileNotFoundError: a missing file. ValueError: unreadable JSON, or a bad sample (named by file, line or
            position, sample id and field).
    """
    records = []
    for file in files:
        if not Path(file).is_file():
            raise FileNotFoundError(f"Training data file not found: {file!r}")
        if file.endswith(".jsonl"):
            located = [(f"{file}:{line}", sample) for line, sample in read_jsonl(file)]
        else:
            try:
                samples = json.loads(Path(file).read_bytes())
            except json.JSONDecodeError as error:
                raise ValueError(f"{file}:{error.lineno}: not valid JSON ({error.msg}).") from None
            except UnicodeDecodeError as error:
                raise ValueError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
            if not isinstance(samples, list):
                raise ValueError(f"{file}: expected a JSON list of samples, got {type(samples).__name__}.")
            located = [(f"{file}, sample {index}", sample) for index, sample in enumerate(samples)]
        for location, sample in located:
            try:
                if not isinstance(sample, dict):
                    raise ValueError(f"expected a JSON object, got {type(sample).__name__}.")
                if "conversations" in sample:
                    records.append(conversation_to_messages(sample))
                elif "messages" in sample:
                    check_messages_sample(sample)
                    records.append(sample)
                else:
                    raise ValueError(f"{_sample_name(sample)} has neither `conversations` nor `messages`.")
            except ValueError as error:
                raise ValueError(f"{location}: {error}") from None
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
        if not records:
            raise ValueError(f"{data_path} holds no samples.")
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


__all__ = ["MEDIA_COLUMNS", "check_messages_sample", "conversation_to_messages", "load_sft_dataset"]
