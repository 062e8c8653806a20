"""`examples/make_synthetic_data.py` writes a shuffled, seeded mixed dataset."""

import importlib.util
from pathlib import Path

import pytest

from modeling_groundinggpt.synthetic import generate_dataset, load_dataset


SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "make_synthetic_data.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_synthetic_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_a_shuffled_mixed_dataset(script, tmp_path):
    counts = ["--seed", "3", "--image", "2", "--video", "1", "--sound", "2"]
    path = script.main(["--root", str(tmp_path / "a"), *counts])
    records = load_dataset(path)
    assert path == tmp_path / "a" / "data.json"
    assert sorted(record["id"] for record in records) == sorted(
        [f"image-3-00000{i}" for i in range(2)] + ["video-3-000000"] + [f"sound-3-00000{i}" for i in range(2)]
    )
    # Same seed, same dataset; the records are those of `generate_dataset`.
    again = load_dataset(script.main(["--root", str(tmp_path / "b"), *counts]))
    assert again == records
    by_id = {record["id"]: record for record in records}
    assert generate_dataset("video", 1, seed=3, root=tmp_path / "c")[0] == by_id["video-3-000000"]

    ordered_args = ["--seed", "3", "--image", "2", "--sound", "1", "--no-shuffle", "--filename", "eval.json"]
    ordered = load_dataset(script.main(["--root", str(tmp_path / "d"), *ordered_args]))
    assert [record["id"] for record in ordered] == ["image-3-000000", "image-3-000001", "sound-3-000000"]
    with pytest.raises(SystemExit):
        script.main(["--root", str(tmp_path / "e")])
