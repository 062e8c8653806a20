"""The evaluation loop: batched generation, per-sample JSONL results that make runs resumable, and the summary.

Files written in `output_dir` for a task `T`:

- `T_run.json`: the run settings (task, prompt, model, generation); a rerun with other settings is refused, so
  that one results file never mixes two configurations.
- `T_predictions.jsonl`: one line per sample, appended after every batch:
  `{"id", "split", "question", "answer", "prediction", "target", "iou"}` (`prediction` is None when the answer
  holds no box/span). A rerun skips the ids already there; a line cut by an interruption is dropped.
- `T_summary.json`: `{"task", "prompt", "prompt_source", "model", "num_samples", "results": [{"split", "source",
  "num_samples", "metrics": {name: percent}}]}`, computed from the predictions file alone, so an interrupted and
  resumed run gives the same summary as an uninterrupted one. `prompt_source` says where the prompt came from
  (`argument`, `checkpoint` or `package default`, see `resolve_prompt`); a split's `source` is the dataset its
  samples came from (their common `source` annotation, e.g. `refcoco` from the refer converter, `synthetic`), or
  None when they carry none (custom data) or several.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from ..inference import GenerationOptions, GroundingAnswer, GroundingRequest
from .formats import Sample
from .tasks import EvalTask


class EvaluationError(RuntimeError):
    """The output folder cannot be used for this run (other settings, corrupt results)."""


class Grounder(Protocol):
    """What the harness needs from a model: `GroundingGPT` implements it. It may also have `evaluation_prompts`
    (task name -> prompt, the checkpoint's own; see `resolve_prompt`)."""

    def ground_batch(
        self, requests: Sequence[GroundingRequest], options: GenerationOptions | None = None
    ) -> list[GroundingAnswer]: ...


def resolve_prompt(task: EvalTask, grounder: Grounder, prompt: str | None = None) -> tuple[str, str]:
    """The prompt of a run and where it comes from: `prompt` if given (`"argument"`), else the checkpoint's own for
    the task (`grounder.evaluation_prompts`, `"checkpoint"`), else the task's default (`"package default"`).

    Raises:
        ValueError: the prompt lacks the task's sample placeholder.
    """
    if prompt is not None:
        source = "argument"
    elif (getattr(grounder, "evaluation_prompts", None) or {}).get(task.name):
        prompt, source = grounder.evaluation_prompts[task.name], "checkpoint"
    else:
        prompt, source = task.default_prompt, "package default"
    task.check_prompt(prompt)
    return prompt, source


def output_paths(output_dir: Path, task: str) -> dict[str, Path]:
    """The run, predictions and summary files of `task` in `output_dir`."""
    return {name: output_dir / f"{task}_{name}.{suffix}" for name, suffix in
            (("run", "json"), ("predictions", "jsonl"), ("summary", "json"))}


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """The records of a predictions file by id. A cut last line (interrupted write) is removed from the file.

    Raises:
        EvaluationError: a line other than the last is not a JSON record.
    """
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records: dict[str, dict[str, Any]] = {}
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[record["id"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            if index == len(lines) - 1:  # no newline after it: the write was interrupted
                path.write_text("\n".join(lines[:index]) + ("\n" if index else ""), encoding="utf-8")
                break
            raise EvaluationError(f"{path}:{index + 1} is not a prediction record; remove the file to start over.")
    return records


def _check_run(path: Path, settings: dict[str, Any]) -> None:
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in set(previous) | set(settings) if previous.get(key) != settings.get(key))
        if changed:
            raise EvaluationError(
                f"{path.parent} holds results of a run with other settings ({', '.join(changed)}); "
                "use another --output-dir or delete it."
            )
    else:
        path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def check_media(task: EvalTask, samples: Sequence[Sample], media_root: str | Path) -> None:
    """Check that every media file of `samples` exists, e.g. before loading the model that `evaluate` will run.

    Raises:
        FileNotFoundError: naming the first sample with a missing file, and how many samples have one.
    """
    missing = []
    for sample in samples:
        request = task.request(sample, task.default_prompt, Path(media_root))
        paths = [(kind, getattr(request, kind)) for kind in ("image", "video", "audio")]
        missing += [(sample.id, kind, path) for kind, path in paths if path is not None and not Path(path).is_file()]
    if missing:
        sample_id, kind, path = missing[0]
        raise FileNotFoundError(
            f"The {kind} of sample {sample_id!r} is not found: {str(path)!r}; {len(missing)} media file(s) of "
            f"{len(samples)} samples are missing (is --media-root right?)."
        )


def summarize(
    task: EvalTask,
    samples: Sequence[Sample],
    records: dict[str, dict[str, Any]],
    settings: dict,
    prompt_source: str | None = None,
) -> dict:
    """The summary of the samples' records (see the module docstring)."""
    done = [sample for sample in samples if sample.id in records]
    sources: dict[str, set[str | None]] = {}
    for sample in done:
        sources.setdefault(sample.split, set()).add(sample.source)
    results = task.summarize([records[sample.id] for sample in done])
    for row in results:
        split_sources = sources[row["split"]]
        row["source"] = next(iter(split_sources)) if len(split_sources) == 1 else None
    return {
        "task": task.name,
        "prompt": settings["prompt"],
        "prompt_source": prompt_source,
        "model": settings.get("model"),
        "num_samples": len(done),
        "results": results,
    }


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table: one row per split, one column per metric (percent)."""
    metric_names = list(dict.fromkeys(name for row in summary["results"] for name in row["metrics"]))
    header = ["split", "samples", *metric_names]
    rows = [
        [row["split"], str(row["num_samples"]), *(f"{row['metrics'][name]:.2f}" for name in metric_names)]
        for row in summary["results"]
    ]
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def evaluate(
    task: EvalTask,
    samples: Sequence[Sample],
    grounder: Grounder,
    output_dir: str | Path,
    media_root: str | Path,
    prompt: str | None = None,
    batch_size: int = 8,
    options: GenerationOptions | None = None,
    model_name: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `task` on `samples` (skipping those already in the predictions file) and write the summary.

    Args:
        task: one of `tasks.TASKS`.
        samples: from `formats.load_samples`.
        grounder: e.g. a `GroundingGPT`.
        output_dir: where the run, predictions and summary files go (created).
        media_root: the folder the samples' media paths are relative to.
        prompt: the instruction template; by default the grounder's checkpoint prompt for the task, else
            `task.default_prompt` (see `resolve_prompt`).
        batch_size: samples per `generate` call.
        options: decoding settings (greedy by default).
        model_name: recorded in the run settings and summary.
        progress: show a tqdm progress bar.

    Returns:
        The summary dict (also written to `{task}_summary.json`).

    Raises:
        EvaluationError: `output_dir` holds a run with other settings, or a corrupt predictions file.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    prompt, prompt_source = resolve_prompt(task, grounder, prompt)
    options = options or GenerationOptions()
    output_dir, media_root = Path(output_dir), Path(media_root)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(output_dir, task.name)
    settings = {"task": task.name, "prompt": prompt, "model": model_name, "generation": asdict(options)}
    _check_run(paths["run"], settings)

    records = read_predictions(paths["predictions"])
    pending = [sample for sample in samples if sample.id not in records]
    with tqdm(total=len(samples), initial=len(samples) - len(pending), desc=f"eval {task.name}", unit="sample",
              disable=not progress) as bar, paths["predictions"].open("a", encoding="utf-8") as handle:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            answers = grounder.ground_batch([task.request(sample, prompt, media_root) for sample in batch], options)
            for sample, answer in zip(batch, answers):
                record = {
                    "id": sample.id,
                    "split": sample.split,
                    "question": task.question(sample, prompt),
                    "answer": answer.answer,
                    **task.score(sample, answer),
                }
                records[sample.id] = record
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            bar.update(len(batch))

    summary = summarize(task, samples, records, settings, prompt_source)
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


__all__ = [
    "EvaluationError",
    "Grounder",
    "check_media",
    "evaluate",
    "format_table",
    "output_paths",
    "read_predictions",
    "resolve_prompt",
    "summarize",
]
