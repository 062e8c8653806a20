"""Synthetic records through the package's benchmark harness: the harness asks the training questions with the
records' media, and scores the ground-truth answers as hits and wrong answers as misses."""

from pathlib import Path

import pytest

from modeling_groundinggpt.evaluation import TASKS, evaluate
from modeling_groundinggpt.inference import GroundingAnswer, GroundingGPT, GroundingRequest
from modeling_groundinggpt.synthetic import (
    EVAL_PROMPTS,
    EVAL_TASK_NAMES,
    generate_dataset,
    to_eval_sample,
    to_eval_samples,
)


class RecordGrounder:
    """A stand-in for `GroundingGPT` that answers each request with its record's answer (or a fixed wrong one)."""

    def __init__(self, records: list[dict], root: Path, wrong_ids: set[str]):
        self.by_request = {}
        for record in records:
            media = tuple(str(root / record[key]) for key in ("image", "video", "sound") if key in record)
            question = record["conversations"][0]["value"].split("\n")[-1]
            self.by_request[(question, media)] = record
        self.wrong_ids = wrong_ids

    def ground_batch(self, requests: list[GroundingRequest], options) -> list[GroundingAnswer]:
        answers = []
        for request in requests:
            media = tuple(str(path) for path in (request.image, request.video, request.audio) if path is not None)
            record = self.by_request[(request.question, media)]
            truth = record["ground_truth"]
            text = "I do not know." if record["id"] in self.wrong_ids else record["conversations"][1]["value"]
            duration = request.video_duration if truth["task"] == "video" else None
            answers.append(GroundingGPT._answer(text, truth.get("image_size"), duration))
        return answers


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("synthetic-eval")
    return root, [record for task in EVAL_TASK_NAMES for record in generate_dataset(task, 4, seed=13, root=root)]


def test_samples_carry_the_ground_truth(dataset):
    root, records = dataset
    samples = to_eval_samples(records)
    assert list(samples) == ["image", "video", "sound"] and all(len(group) == 4 for group in samples.values())
    for record in records:
        sample, truth = to_eval_sample(record), record["ground_truth"]
        task = TASKS[EVAL_TASK_NAMES[truth["task"]]]
        assert sample.id == record["id"] and sample.split == truth["task"]
        assert task.question(sample, EVAL_PROMPTS[truth["task"]]) == record["conversations"][0]["value"].split("\n")[-1]
        request = task.request(sample, EVAL_PROMPTS[truth["task"]], root)
        assert all(Path(path).is_file() for path in (request.image, request.video, request.audio) if path is not None)
    with pytest.raises(ValueError, match="unknown task"):
        to_eval_sample({"id": "x", "ground_truth": {"task": "depth"}})


def test_harness_scores_ground_truth_answers_as_hits(dataset, tmp_path):
    root, records = dataset
    wrong = {records[0]["id"], records[4]["id"]}  # one image and one video sample answer without a box/span
    grounder = RecordGrounder(records, root, wrong)
    expected = {"image": ("Acc@0.5", 75.0), "video": ("R@1,IoU=0.5", 75.0), "sound": ("Acc@0.5", 100.0)}
    for task, samples in to_eval_samples(records).items():
        summary = evaluate(
            TASKS[EVAL_TASK_NAMES[task]],
            samples,
            grounder,
            output_dir=tmp_path / task,
            media_root=root,
            prompt=EVAL_PROMPTS[task],
            progress=False,
        )
        (result,) = summary["results"]
        metric, value = expected[task]
        assert result["split"] == task and result["num_samples"] == 4
        assert result["metrics"][metric] == value
