"""Start-up time of the `groundinggpt` command and of `import modeling_groundinggpt`, as ratios to the imports they
are measured against, side by side.

    python benchmarks/bench_startup.py [--rounds 7]

Every measurement is a fresh Python process; the rounds interleave the commands (one of each per round, in a new
random order each round), so that a busy machine slows all of them alike. Printed: the median and the minimum wall
time of each, and their ratios to

- `import torch`, for `groundinggpt --help`, an argument error and a missing-file error (goal: at most 1.0);
- `import torch` plus transformers' Auto classes, for `import modeling_groundinggpt` (goal: at most 1.3).

The console script is the `groundinggpt` next to the running interpreter (else the one on PATH), so run this with
the Python of the installation to measure.
"""

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def console_script() -> str:
    beside = Path(sys.executable).parent / "groundinggpt"
    found = str(beside) if beside.is_file() else shutil.which("groundinggpt")
    if found is None:
        sys.exit("No `groundinggpt` console script next to this Python or on PATH: pip install the package first.")
    return found


def commands(script: str, missing_file: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "import torch": [python, "-c", "import torch"],
        "import torch + transformers Auto": [
            python, "-c", "import torch; from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor"
        ],
        "import modeling_groundinggpt": [python, "-c", "import modeling_groundinggpt"],
        "groundinggpt --help": [script, "--help"],
        "groundinggpt argument error": [script, "ground"],
        "groundinggpt missing file": [script, "ground", missing_file, "Where is it?"],
    }


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="runs of each command (default: 7)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round order (default: 0)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        to_run = commands(console_script(), str(Path(folder) / "missing.png"))
        names = list(to_run)
        order = random.Random(args.seed)
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm the file cache once, unmeasured
            wall_time(to_run[name])
        for _ in range(args.rounds):
            order.shuffle(names)
            for name in names:
                times[name].append(wall_time(to_run[name]))

    median = {name: statistics.median(values) for name, values in times.items()}
    fastest = {name: min(values) for name, values in times.items()}
    baselines = {
        "groundinggpt --help": "import torch",
        "groundinggpt argument error": "import torch",
        "groundinggpt missing file": "import torch",
        "import modeling_groundinggpt": "import torch + transformers Auto",
    }
    print(f"{args.rounds} interleaved rounds, {sys.executable}")
    print(f"{'command':34} {'median s':>9} {'min s':>7}   ratio (median / min) to")
    for name in to_run:
        line = f"{name:34} {median[name]:9.2f} {fastest[name]:7.2f}"
        if name in baselines:
            base = baselines[name]
            line += f"   {median[name] / median[base]:.2f} / {fastest[name] / fastest[base]:.2f}  {base}"
        print(line)


if __name__ == "__main__":
    main()
