"""Model card metadata round trip through `ModelCard.load`, and the Hub upload up to the `HfApi` call boundary."""

import json

import pytest
from huggingface_hub import ModelCard

from modeling_groundinggpt.model_card import build_model_card, eval_results_from_summaries, export_model


SUMMARIES = [
    {"task": "refcoco", "prompt": "p {expression}", "prompt_source": "package default", "model": "m", "num_samples": 3,
     "results": [
        {"split": "refcoco_val", "source": "refcoco", "num_samples": 2, "metrics": {"Acc@0.5": 50.0}},
        {"split": "refcoco+_testA", "source": "refcoco+", "num_samples": 1, "metrics": {"Acc@0.5": 100.0}},
    ]},
    {"task": "charades", "prompt": "p", "model": "m", "num_samples": 4, "results": [
        {"split": "test", "source": "charades-sta", "num_samples": 4, "metrics": {"R@1,IoU=0.5": 25.0, "mIoU": 31.234}},
    ]},
]
BENCHMARK_IDS = {"refcoco", "refcoco+", "refcocog", "charades-sta", "vggss"}


class FakeHfApi:
    """Records the huggingface_hub calls instead of making them."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


def test_card_metadata_survives_model_card_load(tmp_path):
    card = build_model_card("me/groundinggpt-test", SUMMARIES, base_model="zwli/GroundingGPT",
                            datasets=["zwli/GroundingGPT"], tags=["demo"])
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "image-text-to-text"
    assert data.license == "apache-2.0"
    assert data.base_model == "zwli/GroundingGPT"
    assert data.datasets == ["zwli/GroundingGPT"]
    assert {"groundinggpt", "visual-grounding", "demo"} <= set(data.tags)
    results = {(r.dataset_type, r.dataset_split, r.metric_name): r.metric_value for r in data.eval_results}
    assert results == {
        ("refcoco", "val", "Acc@0.5"): 50.0,
        ("refcoco+", "testA", "Acc@0.5"): 100.0,
        ("charades-sta", "test", "R@1,IoU=0.5"): 25.0,
        ("charades-sta", "test", "mIoU"): 31.23,
    }
    assert "GroundingGPT.from_pretrained(\"me/groundinggpt-test\"" in loaded.text
    assert "| Referring expression comprehension | RefCOCO+ | testA | Acc@0.5 | 100.00 |" in loaded.text
    assert "`p {expression}` (the package's default)" in loaded.text


def test_synthetic_and_unsourced_results_never_claim_a_benchmark(tmp_path):
    summaries = [
        {"task": "refcoco", "prompt": "Where is the {expression} box?", "prompt_source": "checkpoint", "results": [
            {"split": "image", "source": "synthetic", "num_samples": 200, "metrics": {"Acc@0.5": 89.5}}]},
        # a hand-written annotation file (no source), even with the refer converter's split names
        {"task": "refcoco", "prompt": "p", "results": [
            {"split": "refcoco_val", "num_samples": 5, "metrics": {"Acc@0.5": 60.0}}]},
        {"task": "sound", "prompt": "p", "results": [
            {"split": "test", "source": None, "num_samples": 5, "metrics": {"Acc@0.5": 40.0}}]},
    ]
    build_model_card("me/x", summaries).save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    datasets = [(r.dataset_type, r.dataset_name, r.dataset_split) for r in loaded.data.eval_results]
    assert datasets == [
        ("synthetic", "GroundingGPT synthetic world (modeling_groundinggpt.synthetic)", "image"),
        ("custom", "custom data (no benchmark source recorded)", "refcoco_val"),
        ("custom", "custom data (no benchmark source recorded)", "test"),
    ]
    assert not {r.dataset_type for r in loaded.data.eval_results} & BENCHMARK_IDS
    assert "RefCOCO" not in loaded.text.split("## Evaluation")[1].split("Reproduce")[0]


def test_export_refuses_to_overwrite_a_readme(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "groundinggpt"}))
    (folder / "README.md").write_text("my own card")
    with pytest.raises(FileExistsError, match="README.md already exists.*overwrite"):
        export_model(folder, "me/x", SUMMARIES, remote_code=True)
    assert (folder / "README.md").read_text() == "my own card"
    assert sorted(path.name for path in folder.iterdir()) == ["README.md", "config.json"]  # nothing else written
    export_model(folder, "me/x", SUMMARIES, overwrite=True)
    assert ModelCard.load(folder / "README.md").data.eval_results


def test_card_without_results_is_valid(tmp_path):
    card = build_model_card("me/plain")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.eval_results is None and loaded.data.pipeline_tag == "image-text-to-text"


def test_bad_summary_is_refused():
    with pytest.raises(ValueError, match="summary"):
        eval_results_from_summaries([{"task": "unknown", "results": []}])


def test_export_pushes_through_hf_api(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    api = FakeHfApi()
    readme = export_model(folder, "me/groundinggpt-test", SUMMARIES, push=True, private=True, api=api)
    assert readme == folder / "README.md" and ModelCard.load(readme).data.eval_results
    assert [call[:2] for call in api.calls] == [("create_repo", "me/groundinggpt-test"),
                                                ("upload_folder", "me/groundinggpt-test")]
    assert api.calls[0][2]["private"] is True and api.calls[0][2]["exist_ok"] is True
    assert api.calls[1][2]["folder_path"] == folder


def test_export_with_remote_code_and_bad_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "groundinggpt"}))
    export_model(folder, "me/x", remote_code=True)
    assert (folder / "modeling_groundinggpt.py").is_file()
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="config.json"):
        export_model(tmp_path / "missing", "me/x")
    with pytest.raises(ValueError, match="ORG/NAME"):
        export_model(folder, "no-slash")
