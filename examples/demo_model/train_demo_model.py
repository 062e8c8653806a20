"""Train the embedded demo model on the synthetic world, through `examples/train_sft.py`.

    python examples/demo_model/train_demo_model.py --work_dir demo-work --output modeling_groundinggpt/demo_model

Steps (each prints its progress):
1. generate the training data (seed 0) and fresh evaluation data (seed 1, never used in training);
2. train the demo tokenizer (`tokenizer.py`), build the tiny config (`configuration.py`) and the starting model
   (`initialisation.py`), and save it with its processor as the starting checkpoint;
3. train every parameter (`--stage 0`) but the hand-set image and frame encoders (`--frozen_modules`, see
   `palette_encoder.py`) with `examples/train_sft.py`'s own `main`, i.e. `SFTTrainer` with
   the GroundingGPT collator, on CPU in float32 (39 minutes on 2 cores with the defaults, measured);
4. evaluate on the fresh data through the public path (chat messages with file paths -> `apply_chat_template` ->
   greedy `generate` -> `post_process_grounding`), print the table, and write the checkpoint, its model card
   (with the measured numbers) and the bundled demo media to `--output`.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from modeling_groundinggpt.evaluation import TASKS as EVAL_TASKS
from modeling_groundinggpt.evaluation import evaluate, format_table
from modeling_groundinggpt.generation_groundinggpt import stop_at_separator
from modeling_groundinggpt.inference import GroundingGPT
from modeling_groundinggpt.model_card import build_model_card
from modeling_groundinggpt.processing.chat_template import SEPARATOR
from modeling_groundinggpt.synthetic import (
    EVAL_PROMPTS,
    EVAL_TASK_NAMES,
    TASKS,
    generate_dataset,
    to_eval_samples,
    write_dataset,
)

# examples/ holds this recipe (the `demo_model` package) and the fine-tuning command line `train_sft.py`
EXAMPLES_DIR = str(Path(__file__).resolve().parents[1])
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)
import train_sft  # noqa: E402  (the fine-tuning command line, whose code path the demo model is trained with)
from demo_model.configuration import build_demo_processor, demo_config  # noqa: E402
from demo_model.initialisation import init_demo_model  # noqa: E402
from demo_model.tokenizer import train_demo_tokenizer  # noqa: E402


TRAIN_SEED, EVAL_SEED, DEMO_MEDIA_SEED = 0, 1, 2
SHIPPED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "chat_template.jinja",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, default=Path("demo-work"), help="data, checkpoints and eval files")
    parser.add_argument("--output", type=Path, default=Path("modeling_groundinggpt/demo_model"),
                        help="where the shipped checkpoint goes (replaced)")
    parser.add_argument("--train_samples", type=int, nargs=3, default=(9000, 6000, 9000), metavar=("IMAGE", "VIDEO", "SOUND"))
    parser.add_argument("--eval_samples", type=int, default=200, help="fresh samples per task for the evaluation")
    parser.add_argument("--max_steps", type=int, default=5500)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and data order")
    return parser.parse_args(argv)


def make_data(work_dir: Path, train_counts: tuple[int, int, int], eval_count: int) -> tuple[Path, Path]:
    """Training data (all tasks in one shuffled file) and evaluation data, each under its own media root."""
    roots = {"train": work_dir / "train", "eval": work_dir / "eval"}
    for split, seed, counts in (("train", TRAIN_SEED, train_counts), ("eval", EVAL_SEED, (eval_count,) * 3)):
        if (roots[split] / "data.json").is_file():
            print(f"{split} data already in {roots[split]}")
            continue
        records = []
        for task, count in zip(TASKS, counts):
            started = time.perf_counter()
            records += generate_dataset(task, count, seed=seed, root=roots[split])
            print(f"{split}: {count} {task} samples in {time.perf_counter() - started:.0f} s")
        order = np.random.default_rng(seed).permutation(len(records))
        write_dataset([records[i] for i in order], roots[split])
    return roots["train"], roots["eval"]


def initial_checkpoint(folder: Path, seed: int) -> Path:
    """The randomly initialised demo model and its processor, saved where `train_sft.py` loads them from."""
    tokenizer = train_demo_tokenizer()
    config = demo_config(tokenizer)
    model = init_demo_model(config, tokenizer, seed=seed)
    print(f"demo model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    stop_at_separator(model.generation_config, tokenizer, SEPARATOR)
    model.save_pretrained(folder)
    build_demo_processor(tokenizer, config).save_pretrained(folder)
    return folder


def evaluate_model(model_dir: Path, eval_root: Path, output_dir: Path, limit: int | None = None) -> list[dict]:
    """The three synthetic tasks through the public inference path; returns the harness summaries."""
    grounder = GroundingGPT.from_pretrained(model_dir, device="cpu", dtype="float32")
    samples = to_eval_samples(json.loads((eval_root / "data.json").read_text()))
    summaries = []
    for task in TASKS:
        task_samples = samples[task][:limit]
        summary = evaluate(
            EVAL_TASKS[EVAL_TASK_NAMES[task]], task_samples, grounder, output_dir, media_root=eval_root,
            prompt=EVAL_PROMPTS[task], batch_size=25, model_name="groundinggpt-demo",
        )
        print(format_table(summary))
        summaries.append(summary)
    return summaries


def write_demo_media(folder: Path) -> None:
    """One fresh example per task (seed never used for training or evaluation) and the demo manifest."""
    if folder.exists():
        shutil.rmtree(folder)
    examples = []
    for task in TASKS:
        record = generate_dataset(task, 1, seed=DEMO_MEDIA_SEED, root=folder)[0]
        truth = record["ground_truth"]
        question = record["conversations"][0]["value"].split("\n")[-1]
        example = {"name": task, "question": question}
        for key, kind in (("image", "image"), ("video", "video"), ("sound", "audio")):
            if key in record:
                example[kind] = record[key]
        examples.append({**example, "expected": truth.get("box") or truth.get("span")})
    (folder / "manifest.json").write_text(json.dumps({"examples": examples}, indent=1) + "\n")


MODEL_CARD_DESCRIPTION = """
## What this checkpoint is, and is not

This is **not** GroundingGPT-7B. It is a 3.2M-parameter GroundingGPT with every branch of the real architecture
(LLaMA language model, CLIP image tower, EVA + Q-Former video tower, ImageBind audio tower and Q-Formers), trained
in under an hour on a 2-core CPU with this package's own `SFTTrainer` pipeline (`examples/demo_model/train_demo_model.py`,
which runs `examples/train_sft.py`). Everything is trained from a random start except the CLIP image encoder and
the EVA frame encoder: as GroundingGPT-7B keeps its pretrained encoders frozen, this model keeps them frozen, but
their weights are set by hand (`examples/demo_model/palette_encoder.py`) to report, for each part of each
patch, how strongly it shows each of the four palette colours, and where the patch is. One attention head of the
language model's first layer also starts set by hand, as a look-up of the asked colour among the image tokens
(`examples/demo_model/colour_lookup.py`), and is then trained with the rest. It ships inside the
`modeling-groundinggpt` package (`modeling_groundinggpt.DEMO_MODEL`) so that the package can be tried, tested and
demonstrated offline.

It only knows the package's synthetic world (`modeling_groundinggpt.synthetic`): images of 1-3 coloured
rectangles (red, green, blue, yellow) on a noisy background, short videos in which a coloured square is visible
for a while, and pure tones (440/660/880/1320 Hz) naming a rectangle's colour. It answers exactly these questions:
`Where is the {color} box?`, `When is the {color} square visible?`, `Which object makes this sound?`. On anything
else (real photos, other questions) its answers are meaningless.

Its accuracy on fresh synthetic samples is in the table below (200 per task, a seed never used in training,
through the public path: chat messages with file paths -> `apply_chat_template` -> greedy `generate` ->
`post_process_grounding`). The package's targets for this model are image Acc@0.5 >= 85, video R@1 at IoU 0.5
>= 70 and sound localisation Acc@0.5 >= 80; where the table is below them, the model does not yet ground that
task reliably.
"""


def write_shipped_checkpoint(trained: Path, initial: Path, output: Path, summaries: list[dict]) -> None:
    staging = output.with_name(output.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in SHIPPED_FILES:
        # the tokenizer does not train; the trainer's copy also keeps the padding the collator switched on
        source = initial if name == "tokenizer.json" else trained
        shutil.copyfile(source / name, staging / name)
    card = build_model_card(
        "modeling-groundinggpt/groundinggpt-demo",
        summaries,
        tags=["synthetic", "demo"],
        description=MODEL_CARD_DESCRIPTION,
    )
    card.save(staging / "README.md")
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_root, eval_root = make_data(args.work_dir, tuple(args.train_samples), args.eval_samples)
    init_dir = initial_checkpoint(args.work_dir / "init", args.seed)
    run_dir = args.work_dir / "run"
    train_sft.main([
        "--model_name_or_path", str(init_dir),
        "--data_path", str(train_root / "data.json"),
        "--media_root", str(train_root),
        "--stage", "0",
        # the image and frame encoders are set by hand to palette-colour encoders (`palette_encoder.py`)
        "--frozen_modules", "model.vision_tower", "model.video_tower.frame_encoder",
        "--output_dir", str(run_dir),
        "--max_steps", str(args.max_steps),
        "--per_device_train_batch_size", str(args.batch_size),
        "--learning_rate", str(args.learning_rate),
        "--lr_scheduler_type", "cosine",
        "--warmup_steps", "100",
        "--weight_decay", "0.0",
        "--max_grad_norm", "1.0",
        "--logging_steps", "50",
        "--save_strategy", "steps",
        "--save_steps", "1000",
        "--save_total_limit", "1",
        "--report_to", "none",
        "--seed", str(args.seed),
        # collating in the training process: on 2 cores a loader worker competes with the 2 compute threads (150
        # steps took 68 s this way, 80-83 s with one worker); the batches and their order are the same either way
        "--dataloader_num_workers", "0",
        "--use_cpu", "true",
        "--gradient_checkpointing", "false",
    ])
    print(f"training done after {(time.perf_counter() - started) / 60:.1f} min")
    summaries = evaluate_model(run_dir, eval_root, args.work_dir / "eval-results")
    write_shipped_checkpoint(run_dir, init_dir, args.output, summaries)
    write_demo_media(args.output.parent / "demo_media")
    (args.work_dir / "eval-results" / "summaries.json").write_text(json.dumps(summaries, indent=2) + "\n")
    print(f"wrote {args.output} ({sum(f.stat().st_size for f in args.output.iterdir()) / 1e6:.1f} MB) "
          f"after {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
