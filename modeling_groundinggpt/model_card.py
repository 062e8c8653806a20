"""Model card and Hub upload of a GroundingGPT folder, through huggingface_hub's `ModelCard` and `HfApi`.

```python
from modeling_groundinggpt.model_card import build_model_card, export_model

card = build_model_card("me/groundinggpt-7b", summaries=[json.load(open("results/refcoco_summary.json"))])
export_model("groundinggpt-7b", "me/groundinggpt-7b", summaries=[...], push=True, private=True)
```
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from .remote_code import add_remote_code


# Evaluation task -> (task_type, task_name) of the model-index.
_TASK_METADATA: dict[str, tuple[str, str]] = {
    "refcoco": ("image-text-to-text", "Referring expression comprehension"),
    "charades": ("video-text-to-text", "Temporal video grounding"),
    "sound": ("image-text-to-text", "Sound source localization"),
}
# A summary row's `source` (recorded by the annotation converters) -> (dataset type, dataset name). Rows without
# a known source are custom data: no public benchmark is named for them.
_SOURCES: dict[str | None, tuple[str, str]] = {
    "refcoco": ("refcoco", "RefCOCO"),
    "refcoco+": ("refcoco+", "RefCOCO+"),
    "refcocog": ("refcocog", "RefCOCOg"),
    "charades-sta": ("charades-sta", "Charades-STA"),
    "vggss": ("vggss", "VGG-SS"),
    "synthetic": ("synthetic", "GroundingGPT synthetic world (modeling_groundinggpt.synthetic)"),
}
_CUSTOM = ("custom", "custom data (no benchmark source recorded)")
_METRIC_TYPES = {"Acc@0.5": "accuracy", "mIoU": "mean_iou"}

CITATION = """@inproceedings{li2024groundinggpt,
  title={GroundingGPT: Language Enhanced Multi-modal Grounding Model},
  author={Li, Zhaowei and Xu, Qi and Zhang, Dong and Song, Hang and Cai, Yiqing and Qi, Qi and Zhou, Ran and Pan, Junting and Li, Zefeng and Tu, Vu and others},
  booktitle={Proceedings of the 62nd Annual Meeting of the Association for Computational Linguistics (Volume 1: Long Papers)},
  pages={6657--6678},
  year={2024}
}"""


def _dataset_and_split(source: str | None, split: str) -> tuple[str, str, str]:
    """(dataset type, dataset name, split) of a summary row; the refer converter's `refcoco+_testA` is split `testA`."""
    dataset_type, dataset_name = _SOURCES.get(source, _CUSTOM)
    if source in _SOURCES and split.startswith(f"{source}_"):
        split = split[len(source) + 1 :]
    return dataset_type, dataset_name, split


def eval_results_from_summaries(summaries: Sequence[dict[str, Any]]) -> list[EvalResult]:
    """One `EvalResult` per (split, metric) of `groundinggpt eval` summaries (`{task}_summary.json`).

    Each result names the dataset its split's samples came from (the summary row's `source`): a public benchmark
    only for samples of that benchmark's converter, the synthetic world as such, anything else as custom data.

    Raises:
        ValueError: a summary is not an evaluation summary of a known task.
    """
    results = []
    for summary in summaries:
        try:
            task = summary["task"]
            task_type, task_name = _TASK_METADATA[task]
            rows = [(row["split"], row.get("source"), row["metrics"]) for row in summary["results"]]
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"Not a `groundinggpt eval` summary (missing or unknown {error}).") from None
        for split, source, metrics in rows:
            dataset_type, dataset_name, dataset_split = _dataset_and_split(source, split)
            for metric_name, value in metrics.items():
                results.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        dataset_type=dataset_type,
                        dataset_name=dataset_name,
                        dataset_split=dataset_split,
                        metric_type=_METRIC_TYPES.get(metric_name, "recall"),
                        metric_name=metric_name,
                        metric_value=round(float(value), 2),
                    )
                )
    return results


def _results_table(results: Sequence[EvalResult]) -> str:
    if not results:
        return "No evaluation results were attached to this card; see the `groundinggpt eval` commands below."
    lines = ["| task | dataset | split | metric | value |", "|---|---|---|---|---:|"]
    lines += [
        f"| {result.task_name} | {result.dataset_name} | {result.dataset_split} | {result.metric_name} | "
        f"{result.metric_value:.2f} |"
        for result in results
    ]
    return "\n".join(lines)


_PROMPT_SOURCES = {
    "argument": "chosen for the run",
    "checkpoint": "the checkpoint's own",
    "package default": "the package's default",
}


def _prompts(summaries: Sequence[dict[str, Any]]) -> str:
    """The prompt of each summary, with where it came from."""
    lines = [
        f"- {_TASK_METADATA[summary['task']][1]}: `{summary['prompt']}`"
        + (f" ({_PROMPT_SOURCES.get(summary['prompt_source'], summary['prompt_source'])})"
           if summary.get("prompt_source") else "")
        for summary in summaries
        if summary.get("prompt")
    ]
    return "Prompts (`{expression}` / `{query}` is the sample's text):\n\n" + "\n".join(lines) if lines else ""


def build_model_card(
    repo_id: str,
    summaries: Sequence[dict[str, Any]] = (),
    license: str = "apache-2.0",
    base_model: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    description: str = "",
) -> ModelCard:
    """A model card for a GroundingGPT checkpoint.

    Metadata: `library_name: transformers`, `pipeline_tag: image-text-to-text`, tags (GroundingGPT, grounding,
    modalities, plus `tags`), `license`, `base_model`, `datasets`, and a `model-index` built from the evaluation
    summaries. The text has Python, CLI and plain-transformers usage snippets and the results table.

    Args:
        repo_id: `org/name` on the Hub (used as model name and in the snippets).
        summaries: `groundinggpt eval` summaries (`{task}_summary.json` contents).
        license: an SPDX-like Hub license id.
        base_model: the checkpoint this one derives from, if any.
        datasets: Hub dataset ids the model was trained on.
        tags: extra tags.
        description: Markdown inserted after the introduction (e.g. what this particular checkpoint is).
    """
    results = eval_results_from_summaries(summaries)
    model_name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        license=license,
        base_model=base_model,
        datasets=list(datasets) or None,
        tags=list(dict.fromkeys(["groundinggpt", "visual-grounding", "video-grounding", "sound-localization",
                                 "multimodal", *tags])),
        eval_results=results or None,
    )
    body = f"""
# {model_name}

GroundingGPT ([Li et al., ACL 2024](https://arxiv.org/abs/2401.06071)) in the Hugging Face transformers format:
a LLaMA language model with CLIP image, video Q-Former and ImageBind audio encoders, answering questions about
images, videos and sounds with **boxes** `[x1, y1, x2, y2]` (relative to the image padded to a square) and **time
spans** `{{start, end}}` (relative to the video duration).
{description}
## Usage

Install the `modeling-groundinggpt` package (it registers the model with the Auto classes), then:

```python
from modeling_groundinggpt.inference import GroundingGPT

grounder = GroundingGPT.from_pretrained("{repo_id}", device="auto", dtype="auto")
answer = grounder.ground("image.jpg", "Where is the dog? Include the object positions in [x0, y0, x1, y1] format.")
print(answer.answer, answer.boxes)  # boxes in pixels of image.jpg
answer = grounder.ground_video("video.mp4", "When does the person open the door?")
print(answer.spans)  # spans in seconds
```

From the command line:

```bash
groundinggpt ground image.jpg "Where is the dog?" --model {repo_id} --draw boxes.png
groundinggpt video video.mp4 "When does the person open the door?" --model {repo_id} --json
groundinggpt chat --model {repo_id} --image image.jpg
```

With transformers alone:

```python
import modeling_groundinggpt  # registers the model and processor
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{repo_id}")
processor = AutoProcessor.from_pretrained("{repo_id}")
messages = [{{"role": "user", "content": [{{"type": "image", "path": "image.jpg"}}, {{"type": "text", "text": "Where is the dog?"}}]}}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
output = model.generate(**inputs, max_new_tokens=128)  # stops after the answer's `###` separator
print(processor.post_process_image_text_to_text(output[:, inputs["input_ids"].shape[1]:]))

from transformers import pipeline

pipe = pipeline("image-text-to-text", model="{repo_id}")
print(pipe(text=messages, max_new_tokens=128, return_full_text=False)[0]["generated_text"])
```

## Evaluation

{_results_table(results)}

Each result names the data it was measured on.

{_prompts(summaries)}

Reproduce with `groundinggpt eval refcoco|charades|sound --model {repo_id} ...` (see the package documentation).

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def load_summaries(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read `groundinggpt eval` summary files.

    Raises:
        FileNotFoundError: a file is missing. ValueError: a file is not a JSON summary.
    """
    summaries = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"Evaluation summary not found: {str(path)!r}")
        try:
            summaries.append(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a JSON evaluation summary ({error}).") from None
    return summaries


def export_model(
    folder: str | Path,
    repo_id: str,
    summaries: Sequence[dict[str, Any]] = (),
    push: bool = False,
    private: bool = False,
    remote_code: bool = False,
    card_kwargs: dict[str, Any] | None = None,
    api: HfApi | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `README.md` (the model card) into a saved model folder and optionally upload the folder.

    Args:
        folder: a folder with `config.json` (written by the converter or `save_pretrained`).
        repo_id: `org/name` on the Hub.
        summaries: evaluation summaries for the card's results.
        push: create the repo (if needed) and upload the folder.
        private: create the repo as private.
        remote_code: also copy the model code into the folder (`remote_code.add_remote_code`), for loading with
            `trust_remote_code=True` without this package.
        card_kwargs: extra `build_model_card` arguments (license, base_model, datasets, tags).
        api: the `HfApi` client to use (a default one, with the stored token, otherwise).
        overwrite: replace an existing README.md.

    Returns:
        The path of the written README.md.

    Raises:
        FileExistsError: the folder already has a README.md and `overwrite` is False (nothing is written).
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a saved model folder (no config.json).")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"The repo id must look like ORG/NAME, got {repo_id!r}.")
    readme = folder / "README.md"
    if readme.exists() and not overwrite:
        raise FileExistsError(
            f"{readme} already exists; pass overwrite=True (`groundinggpt export --overwrite`) to replace it."
        )
    card = build_model_card(repo_id, summaries, **(card_kwargs or {}))
    if remote_code:
        add_remote_code(folder)
    card.save(readme)
    if push:
        api = api or HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model",
                          commit_message="Upload GroundingGPT checkpoint and model card")
    return readme


__all__ = ["build_model_card", "eval_results_from_summaries", "export_model", "load_summaries"]
