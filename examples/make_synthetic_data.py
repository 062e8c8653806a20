"""Write a synthetic GroundingGPT dataset (images, videos, sounds and `data.json`) for training or evaluation.

Example:
    python examples/make_synthetic_data.py --root data/synthetic-train --seed 0 --image 3000 --video 2000 --sound 2000
    python examples/make_synthetic_data.py --root data/synthetic-eval --seed 1000 --image 200 --video 200 --sound 200

Samples depend on (task, seed, index) only: use a seed for evaluation that no training set used.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from modeling_groundinggpt.synthetic import TASKS, generate_dataset, write_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="output folder (media and the JSON file)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    for task in TASKS:
        parser.add_argument(f"--{task}", type=int, default=0, metavar="N", help=f"number of {task} samples")
    parser.add_argument("--filename", default="data.json", help="name of the JSON file written under --root")
    parser.add_argument(
        "--no-shuffle", action="store_true", help="keep the tasks in order instead of shuffling them (seeded)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    counts = {task: getattr(args, task) for task in TASKS}
    if any(count < 0 for count in counts.values()) or not any(counts.values()):
        raise SystemExit("Give a non-negative number of samples per task and at least one sample in total.")
    records = []
    for task, count in counts.items():
        if count:
            started = time.perf_counter()
            records.extend(generate_dataset(task, count, seed=args.seed, root=args.root))
            print(f"{task}: {count} samples in {time.perf_counter() - started:.1f} s")
    if not args.no_shuffle:
        order = np.random.default_rng(args.seed).permutation(len(records))
        records = [records[index] for index in order]
    path = write_dataset(records, args.root, filename=args.filename)
    print(f"Wrote {len(records)} records to {path}")
    return path


if __name__ == "__main__":
    main()
