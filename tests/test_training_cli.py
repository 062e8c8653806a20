"""examples/train_sft.py under `accelerate launch` with two CPU processes (gloo), on mixed-modality data."""

import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoModelForImageTextToText, AutoProcessor


SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_sft.py"
RECORDS = [
    {
        "id": "image",
        "image": "image.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhere is the red box?"},
            {"from": "gpt", "value": "The red box[0.10, 0.20, 0.30, 0.40]."},
        ],
    },
    {
        "id": "video",
        "video": "video.mp4",
        "conversations": [
            {"from": "human", "value": "<video>\nWhen is the square visible?"},
            {"from": "gpt", "value": "The square is visible in {0.20, 0.60}."},
        ],
    },
    {
        "id": "sound",
        "image": "image.png",
        "sound": "audio.wav",
        "conversations": [
            {"from": "human", "value": "<image>\n<sound>\nWhich object makes this sound?"},
            {"from": "gpt", "value": "The blue box[0.05, 0.70, 0.35, 0.95]."},
        ],
    },
    {"id": "text", "conversations": [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi."}]},
]


def test_accelerate_launch_two_cpu_processes(converted_dir, fixtures_dir, tmp_path):
    data_path = tmp_path / "data.json"
    data_path.write_text(json.dumps(RECORDS))
    output_dir = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(SCRIPT),
        "--model_name_or_path", str(converted_dir),
        "--data_path", str(data_path),
        "--media_root", str(fixtures_dir / "media"),
        "--stage", "2",
        "--output_dir", str(output_dir),
        "--max_steps", "2",
        "--per_device_train_batch_size", "2",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "'train_runtime'" in result.stdout

    model = AutoModelForImageTextToText.from_pretrained(output_dir)
    processor = AutoProcessor.from_pretrained(output_dir)
    assert type(model).__name__ == "GroundingGPTForConditionalGeneration"
    assert processor.chat_template is not None
