"""The shipped demo model: loads offline through the Auto classes and really grounds fresh synthetic samples."""

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from transformers import AutoModelForImageTextToText, AutoProcessor

import modeling_groundinggpt
from groundinggpt_cli import main as cli_main
from modeling_groundinggpt.evaluation import TASKS as EVAL_TASKS
from modeling_groundinggpt.evaluation import evaluate, write_samples
from modeling_groundinggpt.inference import GroundingGPT
from modeling_groundinggpt.processing import GroundingGPTProcessor
from modeling_groundinggpt.synthetic import (
    CHECKPOINT_EVAL_PROMPTS,
    EVAL_PROMPTS,
    EVAL_TASK_NAMES,
    TASKS,
    generate_dataset,
    to_eval_samples,
)

DEMO = Path(modeling_groundinggpt.DEMO_MODEL)
# The thresholds on 200 samples, minus a margin for the noise of 30 samples (about 2 standard errors).
THRESHOLDS = {"image": ("Acc@0.5", 85.0), "video": ("R@1,IoU=0.5", 70.0), "sound": ("Acc@0.5", 80.0)}
MARGIN = 15.0
SEED = 7  # never used by the training (0), evaluation (1) or demo media (2) data


def test_demo_model_is_small_complete_and_loads_offline():
    size = sum(path.stat().st_size for path in DEMO.iterdir())
    assert size <= 25e6, size
    assert not list(DEMO.glob("*.bin"))
    model = AutoModelForImageTextToText.from_pretrained(DEMO)
    processor = AutoProcessor.from_pretrained(DEMO)
    assert type(processor).__name__ == "GroundingGPTProcessor"
    assert model.config.model_type == "groundinggpt"
    card = ModelCard.load(DEMO / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-text-to-text"
    assert "is **not** GroundingGPT-7B" in card.text
    assert card.data.eval_results  # the measured numbers are in the card's model-index
    # ... measured on the synthetic world, and named so: never as RefCOCO, Charades-STA or VGG-SS results
    assert {result.dataset_type for result in card.data.eval_results} == {"synthetic"}
    assert all("synthetic world" in result.dataset_name for result in card.data.eval_results)


@pytest.fixture(scope="module")
def fresh_samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-synthetic")
    records = [record for task in TASKS for record in generate_dataset(task, 30, seed=SEED, root=root)]
    return root, to_eval_samples(records)


@pytest.mark.parametrize("task", TASKS)
def test_demo_model_grounds_fresh_samples(task, fresh_samples, tmp_path):
    root, samples = fresh_samples
    grounder = GroundingGPT.from_pretrained(DEMO, device="cpu", dtype="float32")
    summary = evaluate(
        EVAL_TASKS[EVAL_TASK_NAMES[task]], samples[task], grounder, tmp_path, media_root=root,
        prompt=EVAL_PROMPTS[task], batch_size=30, progress=False,
    )
    metric, threshold = THRESHOLDS[task]
    score = summary["results"][0]["metrics"][metric]
    assert score >= threshold - MARGIN, f"{task}: {metric} {score:.1f} < {threshold - MARGIN}"


def test_the_demo_checkpoint_carries_its_evaluation_prompts(tmp_path):
    processor = AutoProcessor.from_pretrained(DEMO)
    assert processor.evaluation_prompts == CHECKPOINT_EVAL_PROMPTS
    assert processor.evaluation_prompts["refcoco"] == EVAL_PROMPTS["image"] == "Where is the {expression} box?"
    processor.evaluation_prompts = {"refcoco": "Find {expression}."}
    processor.save_pretrained(tmp_path)
    assert AutoProcessor.from_pretrained(tmp_path).evaluation_prompts == {"refcoco": "Find {expression}."}
    with pytest.raises(ValueError, match="evaluation_prompts"):
        GroundingGPTProcessor(processor.image_processor, processor.video_processor, processor.feature_extractor,
                              processor.tokenizer, evaluation_prompts={"refcoco": 3})


@pytest.mark.parametrize("task", TASKS)
def test_eval_command_asks_the_demo_model_its_own_questions(task, fresh_samples, tmp_path, capsys):
    """Synthetic samples in the benchmark formats, `groundinggpt eval` with the default (demo) model and no
    --prompt: the checkpoint's prompts are used, and the model scores."""
    root, samples = fresh_samples
    annotations = write_samples(samples[task], tmp_path / f"{task}.jsonl")
    output = tmp_path / "out"
    argv = ["eval", EVAL_TASK_NAMES[task], "--annotations", annotations, "--media-root", root,
            "--output-dir", output, "--limit", "4", "--batch-size", "4", "--no-progress"]
    assert cli_main([str(arg) for arg in argv]) == 0
    assert f"Prompt (checkpoint): {EVAL_PROMPTS[task]}" in capsys.readouterr().err
    summary = json.loads((output / f"{EVAL_TASK_NAMES[task]}_summary.json").read_text())
    assert summary["prompt_source"] == "checkpoint" and summary["num_samples"] == 4
    (row,) = summary["results"]
    assert row["source"] == "synthetic"
    assert next(iter(row["metrics"].values())) > 0


def test_demo_command_answers_the_bundled_examples(tmp_path, capsys):
    assert cli_main(["demo", "--output-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    manifest = json.loads((DEMO.parent / "demo_media" / "manifest.json").read_text())["examples"]
    assert [result["name"] for result in results] == [example["name"] for example in manifest]
    for result, example in zip(results, manifest):
        assert Path(result["drawing"]).is_file()
        assert result["boxes"] or result["spans"], result
        assert result["expected"] == example["expected"] and 0.0 <= result["iou"] <= 1.0
    assert capsys.readouterr().out.count(": IoU ") == len(manifest)


@pytest.mark.parametrize("name", ["image", "video", "sound"])
def test_ground_and_video_commands_default_to_the_demo_model(name, capsys):
    """`groundinggpt ground|video ... --json` without --model runs the embedded demo model on the bundled media."""
    media = DEMO.parent / "demo_media"
    example = next(e for e in json.loads((media / "manifest.json").read_text())["examples"] if e["name"] == name)
    if "video" in example:
        argv = ["video", str(media / example["video"]), example["question"], "--json"]
    else:
        argv = ["ground", str(media / example["image"]), example["question"], "--json"]
        if "audio" in example:
            argv += ["--audio", str(media / example["audio"])]
    assert cli_main(argv) == 0
    output = json.loads(capsys.readouterr().out)
    assert set(output) == {"answer", "boxes", "spans"}
    grounded = output["spans"] if "video" in example else output["boxes"]
    assert grounded, output  # the demo model answers in the grounding format
    for item in grounded:
        values = item["span"] if "video" in example else item["box"]
        assert all(isinstance(value, float) for value in values)
