"""Evaluating a model on a synthetic dataset with the package's benchmark harness (`modeling_groundinggpt.evaluation`).

Each task maps to the harness task with the same metric: image -> `refcoco` (Acc@0.5), video -> `charades`
(R@1 at IoU 0.3/0.5/0.7, mIoU), sound -> `sound` (Acc@0.5). The prompts below make the harness ask exactly the
training questions:

    samples = to_eval_samples(load_dataset(root / "data.json"))
    for task, task_samples in samples.items():
        evaluate(TASKS[EVAL_TASK_NAMES[task]], task_samples, grounder, output_dir, media_root=root,
                 prompt=EVAL_PROMPTS[task])
"""

from collections.abc import Sequence

from ..evaluation.formats import RefSample, Sample, SoundSample, TemporalSample
from .templates import SOUND_QUESTION


SYNTHETIC_SOURCE = "synthetic"
"""The `source` of synthetic samples: their results are the synthetic world's, never a benchmark's."""

EVAL_TASK_NAMES: dict[str, str] = {"image": "refcoco", "video": "charades", "sound": "sound"}
"""Synthetic task -> name of the harness task in `modeling_groundinggpt.evaluation.TASKS`."""

EVAL_PROMPTS: dict[str, str] = {
    "image": "Where is the {expression} box?",
    "video": "When is the {query} square visible?",
    "sound": SOUND_QUESTION,
}
"""Synthetic task -> harness prompt; the placeholder is filled with the asked colour."""

CHECKPOINT_EVAL_PROMPTS: dict[str, str] = {EVAL_TASK_NAMES[task]: prompt for task, prompt in EVAL_PROMPTS.items()}
"""The same prompts by harness task name: what a checkpoint trained on the synthetic world carries
(`GroundingGPTProcessor(evaluation_prompts=...)`), so that `groundinggpt eval` asks it its training questions."""


def to_eval_sample(record: dict) -> Sample:
    """One synthetic record as a harness sample (split = its task, source `synthetic`), media paths relative to the
    dataset root."""
    truth = record["ground_truth"]
    task = truth["task"]
    if task == "image":
        return RefSample(
            id=record["id"],
            image=record["image"],
            expression=truth["color"],
            box=truth["box"],
            split=task,
            source=SYNTHETIC_SOURCE,
        )
    if task == "video":
        return TemporalSample(
            id=record["id"],
            video=record["video"],
            query=truth["color"],
            span=truth["span"],
            duration=truth["duration"],
            split=task,
            source=SYNTHETIC_SOURCE,
        )
    if task == "sound":
        return SoundSample(
            id=record["id"],
            image=record["image"],
            audio=record["sound"],
            boxes=[truth["box"]],
            split=task,
            source=SYNTHETIC_SOURCE,
        )
    raise ValueError(f"Record {record.get('id')!r} has the unknown task {task!r}.")


def to_eval_samples(records: Sequence[dict]) -> dict[str, list[Sample]]:
    """The records as harness samples, grouped by synthetic task (in first-appearance order)."""
    samples: dict[str, list[Sample]] = {}
    for record in records:
        samples.setdefault(record["ground_truth"]["task"], []).append(to_eval_sample(record))
    return samples


__all__ = [
    "CHECKPOINT_EVAL_PROMPTS",
    "EVAL_PROMPTS",
    "EVAL_TASK_NAMES",
    "SYNTHETIC_SOURCE",
    "to_eval_sample",
    "to_eval_samples",
]
