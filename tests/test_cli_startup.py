"""`groundinggpt` answers `--help`, command-line errors and missing files without importing the model stack.

Not timed (timings live in `benchmarks/bench_startup.py`): a fresh interpreter runs each case through the real
`main` and reports which heavy modules it imported.
"""

import json
import subprocess
import sys

import groundinggpt_cli
from conftest import FIXTURES
from modeling_groundinggpt.evaluation import TASKS


HEAVY_MODULES = ("torch", "transformers", "modeling_groundinggpt", "numpy", "PIL")
PROBE = """
import contextlib, io, json, sys
from groundinggpt_cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    heavy = [name for name in json.loads(sys.argv[2]) if name in sys.modules]
    results.append({"argv": argv, "code": code, "stderr": err.getvalue(), "heavy": heavy})
print(json.dumps(results))
"""


def test_help_argument_errors_and_missing_files_import_no_model_code(tmp_path):
    missing = str(tmp_path / "missing.png")
    cases = [
        ["--help"],
        ["ground", "--help"],
        ["ground"],
        ["ground", missing, "Where?"],
        ["ground", str(FIXTURES / "media" / "image.png"), "Where?", "--model", "./no-such-model"],
        ["video", str(tmp_path / "missing.mp4"), "When?", "--frames", "0"],
        ["eval", "refcoco", "--annotations", str(tmp_path / "a.jsonl"), "--output-dir", str(tmp_path), "--limit", "0"],
        ["eval", "charades", "--annotations", str(tmp_path / "a.jsonl"), "--output-dir", str(tmp_path)],
        ["chat", "--temperature", "-1"],
        ["chat", "--device", "cuda 1"],
        ["export", str(tmp_path / "no-model"), "--repo-id", "me/x"],
        ["convert-annotations", "charades", "--sta", missing, "--csv", missing, "--output", missing],
        ["web", "--port", "70000"],
    ]
    probe = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases), json.dumps(HEAVY_MODULES)],
                           capture_output=True, text=True, timeout=60, check=True)
    results = json.loads(probe.stdout)
    assert [result["heavy"] for result in results] == [[]] * len(cases)
    codes = [result["code"] for result in results]
    assert codes == [0, 0, 2, 1, 1, 2, 2, 1, 2, 2, 1, 1, 2]
    for result in results[2:]:
        assert result["stderr"].count("\n") == 1 and result["stderr"].startswith("groundinggpt: error: "), result
    assert "Image file not found" in results[3]["stderr"]
    assert "Model folder not found: './no-such-model'" in results[4]["stderr"]
    assert "argument --frames: must be at least 1, got 0" in results[5]["stderr"]
    assert "argument --limit: must be at least 1, got 0" in results[6]["stderr"]
    assert "Annotation file not found" in results[7]["stderr"]
    assert "argument --temperature: must be 0 (greedy) or a positive number, got -1" in results[8]["stderr"]
    assert "argument --device: 'cuda 1' is not a device" in results[9]["stderr"]
    assert f"Model folder not found: '{tmp_path / 'no-model'}'" in results[10]["stderr"]
    assert "Charades-STA file not found" in results[11]["stderr"]
    assert "argument --port: must be at most 65535, got 70000" in results[12]["stderr"]


def test_the_command_line_knows_every_evaluation_task():
    assert groundinggpt_cli.EVAL_TASKS == tuple(TASKS)
