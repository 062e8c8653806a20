"""Evaluation harness on small synthetic sets in each documented format, with a scripted grounder (no model).

The summary must equal the accuracy recomputed independently from the per-sample predictions file, and an
interrupted then resumed run must give the same summary as an uninterrupted one.
"""

import json
import pickle

import pytest
from PIL import Image

from modeling_groundinggpt.evaluation import (
    TASKS,
    AnnotationFormatError,
    EvaluationError,
    convert_charades,
    convert_refer,
    convert_vggss,
    evaluate,
    format_table,
    load_samples,
    resolve_prompt,
    write_samples,
)
from modeling_groundinggpt.evaluation.formats import RefSample, SoundSample, TemporalSample
from modeling_groundinggpt.inference import GroundingAnswer


class ScriptedGrounder:
    """Answers each request from a table keyed by question (boxes/spans given in pixels/seconds)."""

    def __init__(self, answers: dict[str, GroundingAnswer], fail_on_call: int | None = None):
        self.answers = answers
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.batch_sizes: list[int] = []

    def ground_batch(self, requests, options=None):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        self.batch_sizes.append(len(requests))
        return [self.answers[request.question] for request in requests]


def _box_iou(a, b):
    """Independent IoU (corners already ordered), to check the harness."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def _span_iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


REF_SAMPLES = [
    RefSample(id=f"r{i}", image="img.png", expression=f"thing {i}", box=[10.0, 10.0, 50.0, 40.0],
              split="refcoco_val" if i < 3 else "refcoco_testA")
    for i in range(5)
]
REF_ANSWERS = {  # expression -> answer; first-box IoUs 1, 0.75, 0, (no box), 0.2
    "thing 0": GroundingAnswer("a", boxes=[{"phrase": "a", "box": [10.0, 10.0, 50.0, 40.0]}]),
    "thing 1": GroundingAnswer("b", boxes=[{"phrase": "b", "box": [10.0, 10.0, 40.0, 40.0]}]),
    "thing 2": GroundingAnswer("c", boxes=[{"phrase": "c", "box": [60.0, 0.0, 70.0, 5.0]}]),
    "thing 3": GroundingAnswer("no box"),
    "thing 4": GroundingAnswer("e", boxes=[{"phrase": "e", "box": [10.0, 10.0, 18.0, 40.0]},
                                           {"phrase": "f", "box": [10.0, 10.0, 50.0, 40.0]}]),
}
REF_PROMPT = "Find {expression}"


def _ref_answers():
    return {REF_PROMPT.replace("{expression}", f"thing {i}"): answer for i, answer in enumerate(REF_ANSWERS.values())}


def test_refcoco_summary_matches_independent_recomputation(tmp_path):
    annotations = write_samples(REF_SAMPLES, tmp_path / "ref.jsonl")
    samples = load_samples("refcoco", annotations)
    assert samples == REF_SAMPLES
    grounder = ScriptedGrounder(_ref_answers())
    summary = evaluate(TASKS["refcoco"], samples, grounder, tmp_path / "out", tmp_path, prompt=REF_PROMPT,
                       batch_size=2, progress=False)
    assert grounder.batch_sizes == [2, 2, 1]

    records = [json.loads(line) for line in (tmp_path / "out" / "refcoco_predictions.jsonl").read_text().splitlines()]
    assert [record["id"] for record in records] == [sample.id for sample in REF_SAMPLES]
    by_split = {}
    for record in records:
        iou = _box_iou(record["prediction"], record["target"]) if record["prediction"] else 0.0
        assert record["iou"] == pytest.approx(iou)
        by_split.setdefault(record["split"], []).append(iou >= 0.5)
    expected = {split: 100 * sum(hits) / len(hits) for split, hits in by_split.items()}
    assert expected == pytest.approx({"refcoco_val": 200 / 3, "refcoco_testA": 0.0})  # first box of "thing 4" counts
    assert {row["split"]: row["metrics"]["Acc@0.5"] for row in summary["results"]} == pytest.approx(expected)
    assert summary == json.loads((tmp_path / "out" / "refcoco_summary.json").read_text())
    table = format_table(summary)
    assert "refcoco_val" in table and "66.67" in table and "Acc@0.5" in table


def test_interrupted_and_resumed_run_gives_the_same_summary(tmp_path):
    write_samples(REF_SAMPLES, tmp_path / "ref.jsonl")
    samples = load_samples("refcoco", tmp_path / "ref.jsonl")
    task = TASKS["refcoco"]
    reference = evaluate(task, samples, ScriptedGrounder(_ref_answers()), tmp_path / "full", tmp_path,
                         prompt=REF_PROMPT, batch_size=2, progress=False)

    with pytest.raises(KeyboardInterrupt):
        evaluate(task, samples, ScriptedGrounder(_ref_answers(), fail_on_call=2), tmp_path / "resumed", tmp_path,
                 prompt=REF_PROMPT, batch_size=2, progress=False)
    predictions = tmp_path / "resumed" / "refcoco_predictions.jsonl"
    assert len(predictions.read_text().splitlines()) == 2
    # An interrupted write leaves a cut line behind: it is dropped on resume.
    with predictions.open("a") as handle:
        handle.write('{"id": "r2", "spl')
    resumed_grounder = ScriptedGrounder(_ref_answers())
    resumed = evaluate(task, samples, resumed_grounder, tmp_path / "resumed", tmp_path, prompt=REF_PROMPT,
                       batch_size=2, progress=False)
    assert resumed_grounder.batch_sizes == [2, 1]  # only the 3 missing samples
    assert resumed == reference
    assert len(predictions.read_text().splitlines()) == 5

    # A rerun of a finished run generates nothing.
    idle = ScriptedGrounder({})
    assert evaluate(task, samples, idle, tmp_path / "resumed", tmp_path, prompt=REF_PROMPT, progress=False) == reference
    assert idle.calls == 0


def test_rerun_with_other_settings_is_refused(tmp_path):
    write_samples(REF_SAMPLES, tmp_path / "ref.jsonl")
    samples = load_samples("refcoco", tmp_path / "ref.jsonl")
    evaluate(TASKS["refcoco"], samples, ScriptedGrounder(_ref_answers()), tmp_path / "out", tmp_path,
             prompt=REF_PROMPT, progress=False)
    with pytest.raises(EvaluationError, match="prompt"):
        evaluate(TASKS["refcoco"], samples, ScriptedGrounder({}), tmp_path / "out", tmp_path,
                 prompt="Other {expression}", progress=False)
    with pytest.raises(ValueError, match=r"\{expression\}"):
        evaluate(TASKS["refcoco"], samples, ScriptedGrounder({}), tmp_path / "out2", tmp_path, prompt="no slot",
                 progress=False)


def test_summary_names_each_splits_data_source_and_where_the_prompt_came_from(tmp_path):
    box = [10.0, 10.0, 50.0, 40.0]
    samples = [
        RefSample("a", "img.png", "thing 0", box, split="refcoco_val", source="refcoco"),
        RefSample("b", "img.png", "thing 1", box, split="mine"),
        RefSample("c", "img.png", "thing 2", box, split="mixed", source="refcoco"),
        RefSample("d", "img.png", "thing 3", box, split="mixed", source="synthetic"),
    ]
    samples = load_samples("refcoco", write_samples(samples, tmp_path / "ref.jsonl"))

    class CheckpointGrounder(ScriptedGrounder):
        evaluation_prompts = {"refcoco": "Point at {expression}"}

    answers = {f"Point at thing {i}": answer for i, answer in enumerate(REF_ANSWERS.values())}
    summary = evaluate(TASKS["refcoco"], samples, CheckpointGrounder(answers), tmp_path / "out", tmp_path,
                       progress=False)
    assert (summary["prompt"], summary["prompt_source"]) == ("Point at {expression}", "checkpoint")
    assert {row["split"]: row["source"] for row in summary["results"]} == {"refcoco_val": "refcoco", "mine": None,
                                                                          "mixed": None}
    assert resolve_prompt(TASKS["refcoco"], CheckpointGrounder({}), "Find {expression}") == ("Find {expression}",
                                                                                            "argument")
    assert resolve_prompt(TASKS["refcoco"], ScriptedGrounder({})) == (TASKS["refcoco"].default_prompt,
                                                                      "package default")
    CheckpointGrounder.evaluation_prompts = {"refcoco": "no placeholder"}
    with pytest.raises(ValueError, match=r"\{expression\}"):
        resolve_prompt(TASKS["refcoco"], CheckpointGrounder({}))


def test_rec_default_is_the_prompt_the_author_tested_refcoco_with():
    # lzw-lzw/GroundingGPT issue #11, with the expression in place of <obj>
    sample = RefSample("a", "img.png", "the man on the left", [0.0, 0.0, 1.0, 1.0])
    assert TASKS["refcoco"].question(sample, TASKS["refcoco"].default_prompt) == (
        "Can you describe the region that corresponds to the man on the left in this image?"
    )


def test_charades_metrics_match_independent_recomputation(tmp_path):
    spans = {"q0": [1.0, 5.0], "q1": [2.0, 6.0], "q2": [0.0, 3.0], "q3": [10.0, 20.0]}
    predictions = {"q0": [1.0, 5.0], "q1": [3.0, 7.0], "q2": [2.0, 8.0], "q3": None}  # IoU 1, 0.6, 1/8, 0
    samples = [TemporalSample(id=f"v{i}", video="v.mp4", query=query, span=span, duration=30.0)
               for i, (query, span) in enumerate(spans.items())]
    write_samples(samples, tmp_path / "charades.jsonl")
    assert load_samples("charades", tmp_path / "charades.jsonl") == samples
    answers = {
        f"When {query}?": GroundingAnswer("x", spans=[{"phrase": "x", "span": span}] if span else [],
                                          video_duration=30.0)
        for query, span in predictions.items()
    }
    summary = evaluate(TASKS["charades"], samples, ScriptedGrounder(answers), tmp_path / "out", tmp_path,
                       prompt="When {query}?", progress=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "charades_predictions.jsonl").read_text().splitlines()]
    ious = [_span_iou(r["prediction"], r["target"]) if r["prediction"] else 0.0 for r in records]
    assert ious == pytest.approx([1.0, 0.6, 1 / 8, 0.0])
    metrics = summary["results"][0]["metrics"]
    assert metrics == pytest.approx({
        "R@1,IoU=0.3": 100 * sum(i >= 0.3 for i in ious) / 4,
        "R@1,IoU=0.5": 50.0,
        "R@1,IoU=0.7": 25.0,
        "mIoU": 100 * sum(ious) / 4,
    })


def test_sound_counts_the_best_of_several_target_boxes(tmp_path):
    samples = [
        SoundSample(id="s0", image="f.png", audio="a.wav", boxes=[[0, 0, 10, 10], [20, 20, 40, 40]]),
        SoundSample(id="s1", image="f.png", audio="a.wav", boxes=[[0, 0, 10, 10]]),
    ]
    write_samples(samples, tmp_path / "sound.jsonl")
    loaded = load_samples("sound", tmp_path / "sound.jsonl")
    answers = [GroundingAnswer("a", boxes=[{"phrase": "a", "box": [20.0, 20.0, 40.0, 40.0]}]), GroundingAnswer("none")]

    class ByOrder(ScriptedGrounder):
        def ground_batch(self, requests, options=None):
            assert all(request.audio.endswith("a.wav") and request.image.endswith("f.png") for request in requests)
            return answers[: len(requests)]

    summary = evaluate(TASKS["sound"], loaded, ByOrder({}), tmp_path / "out", tmp_path, progress=False)
    assert summary["results"] == [{"split": "test", "num_samples": 2, "metrics": {"Acc@0.5": 50.0}, "source": None}]


@pytest.mark.parametrize(
    ("task", "content", "message"),
    [
        ("refcoco", "not json\n", "not a JSON object"),
        ("refcoco", '{"id": "a", "image": "x.png", "expression": "e"}\n', "`box`"),
        ("refcoco", '{"id": "a", "image": "x.png", "expression": "e", "box": [1, 2, 3]}\n', "4 numbers"),
        ("refcoco", '[1, 2]\n', "expected a JSON object"),
        ("charades", '{"id": "a", "video": "v.mp4", "query": "q", "span": [1, 2], "duration": -1}\n', "positive"),
        ("sound", '{"id": "a", "image": "x.png", "audio": "a.wav", "boxes": []}\n', "`boxes`"),
        ("refcoco", "", "no samples"),
        ("refcoco", '{"id": "a", "image": "x", "expression": "e", "box": [0, 0, 1, 1]}\n' * 2, "appears twice"),
    ],
)
def test_wrong_annotation_format_is_reported_with_its_line(tmp_path, task, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(AnnotationFormatError, match=message):
        load_samples(task, path)


def test_convert_refer_release(tmp_path):
    refs = [
        {"ref_id": 0, "ann_id": 7, "image_id": 73, "split": "val",
         "sentences": [{"sent_id": 11, "sent": "man on the left"}, {"sent_id": 12, "sent": "left guy"}]},
        {"ref_id": 1, "ann_id": 8, "image_id": 73, "split": "train", "sentences": [{"sent_id": 13, "sent": "dog"}]},
        {"ref_id": 2, "ann_id": 8, "image_id": 73, "split": "testA", "sentences": [{"sent_id": 14, "sent": "cat"}]},
    ]
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    instances = {
        "images": [{"id": 73, "file_name": "COCO_train2014_000000000073.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 7, "image_id": 73, "bbox": [10, 20, 30, 40]}, {"id": 8, "image_id": 73, "bbox": [0, 0, 5, 5]}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    samples = convert_refer(tmp_path / "refs(unc).p", tmp_path / "instances.json", "refcoco+")
    image = "COCO_train2014_000000000073.jpg"
    assert samples == [
        RefSample("refcoco+_val_11", image, "man on the left", [10, 20, 40, 60], "refcoco+_val", "refcoco+"),
        RefSample("refcoco+_val_12", image, "left guy", [10, 20, 40, 60], "refcoco+_val", "refcoco+"),
        RefSample("refcoco+_testA_14", image, "cat", [0, 0, 5, 5], "refcoco+_testA", "refcoco+"),
    ]
    assert load_samples("refcoco", write_samples(samples, tmp_path / "rec.jsonl")) == samples  # the file keeps it
    assert [s.id for s in convert_refer(tmp_path / "refs(unc).p", tmp_path / "instances.json", "refcoco", ("testA",))] \
        == ["refcoco_testA_14"]


def test_convert_refer_refuses_code_in_the_pickle(tmp_path):
    (tmp_path / "refs.p").write_bytes(pickle.dumps([{"split": Image.Image}]))  # a class reference
    (tmp_path / "instances.json").write_text('{"images": [], "annotations": []}')
    with pytest.raises(AnnotationFormatError, match="plain data"):
        convert_refer(tmp_path / "refs.p", tmp_path / "instances.json", "refcoco")


def test_convert_charades_release(tmp_path):
    (tmp_path / "charades_sta_test.txt").write_text("3MSZA 24.3 30.4##person turn a light on.\nAB12 0 5.5##a person sits\n")
    (tmp_path / "Charades_v1_test.csv").write_text("id,subject,scene,length\n3MSZA,s,Kitchen,30.96\nAB12,t,Hall,12.0\n")
    samples = convert_charades(tmp_path / "charades_sta_test.txt", tmp_path / "Charades_v1_test.csv")
    assert samples == [
        TemporalSample("3MSZA_1", "3MSZA.mp4", "person turn a light on", [24.3, 30.4], 30.96, source="charades-sta"),
        TemporalSample("AB12_2", "AB12.mp4", "a person sits", [0.0, 5.5], 12.0, source="charades-sta"),
    ]
    (tmp_path / "bad.txt").write_text("3MSZA 24.3 30.4 person\n")
    with pytest.raises(AnnotationFormatError, match=r"bad.txt:1"):
        convert_charades(tmp_path / "bad.txt", tmp_path / "Charades_v1_test.csv")


def test_convert_vggss_release(tmp_path):
    (tmp_path / "frames").mkdir()
    Image.new("RGB", (200, 100)).save(tmp_path / "frames" / "abc_000030.jpg")
    (tmp_path / "vggss.json").write_text(json.dumps([{"file": "abc_000030", "class": "dog", "bbox": [[0.1, 0.2, 0.5, 1.2]]}]))
    samples = convert_vggss(tmp_path / "vggss.json", tmp_path)
    assert samples == [SoundSample("abc_000030", "frames/abc_000030.jpg", "audio/abc_000030.wav",
                                   [[20.0, 20.0, 100.0, 100.0]], source="vggss")]
