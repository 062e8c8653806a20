"""The `groundinggpt` command on the tiny converted checkpoint and the fixture media.

The tiny model has random weights, so where boxes/spans are checked its generation is scripted: the patched
`generate` still receives the real processed inputs (media decoded, prompt tokenized) and returns the tokens of a
known answer, which then goes through the real decoding, parsing and pixel/second conversion.
"""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import modeling_groundinggpt
from conftest import FIXTURES
from modeling_groundinggpt import GroundingGPTForConditionalGeneration
from groundinggpt_cli import main


MEDIA = FIXTURES / "media"
IMAGE, VIDEO, AUDIO = (str(MEDIA / name) for name in ("image.png", "video.mp4", "audio.wav"))
# The fixture image is 80 x 48: padded to an 80 x 80 square with 16 rows above, so y_pixel = y * 80 - 16.
BOX_ANSWER = "The red box[0.125, 0.300, 0.500, 0.700]."
BOX_PIXELS = [10.0, 8.0, 40.0, 40.0]
# The fixture video lasts 2.0 s.
SPAN_ANSWER = "It happens at {0.25, 0.75}."
FAST = ["--max-new-tokens", "4"]


def script_generation(monkeypatch, answer):
    """Make `generate` answer `answer` (a string, or a function of the decoded prompt); returns the prompts seen."""
    prompts = []

    def generate(self, input_ids=None, tokenizer=None, streamer=None, **kwargs):
        rows = []
        for row in input_ids:
            prompt = tokenizer.decode(row, skip_special_tokens=True)
            prompts.append(prompt)
            text = answer(prompt) if callable(answer) else answer
            rows.append(tokenizer(text + "###", add_special_tokens=False, return_tensors="pt").input_ids[0])
        new = torch.full((len(rows), max(len(row) for row in rows)), tokenizer.pad_token_id)
        for index, row in enumerate(rows):
            new[index, : len(row)] = row
        if streamer is not None:
            streamer.put(input_ids)
            for token in new[0]:
                streamer.put(token[None])
            streamer.end()
        return torch.cat([input_ids, new], dim=1)

    monkeypatch.setattr(GroundingGPTForConditionalGeneration, "generate", generate)
    return prompts


def run(argv, capsys):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, fragment):
    assert code == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("groundinggpt: error: ") and fragment in errors[0]
    assert err.rstrip("\n").splitlines()[-1] == errors[0]


def test_ground_json_gives_pixel_boxes_and_draws_them(converted_dir, monkeypatch, capsys, tmp_path):
    prompts = script_generation(monkeypatch, BOX_ANSWER)
    drawing = tmp_path / "out" / "boxes.png"
    code, out, _ = run(["ground", IMAGE, "Where is the red box?", "--model", converted_dir, "--json", "--draw", drawing],
                       capsys)
    assert code == 0
    assert json.loads(out) == {"answer": BOX_ANSWER, "boxes": [{"phrase": "The red box", "box": BOX_PIXELS}], "spans": []}
    assert "Where is the red box?" in prompts[0]
    original = np.asarray(Image.open(IMAGE).convert("RGB"))
    drawn = np.asarray(Image.open(drawing).convert("RGB"))
    assert drawn.shape == original.shape
    assert np.any(drawn[8:41, 40] != original[8:41, 40], axis=-1).all()  # right edge of the box
    assert not np.any(drawn[43:] != original[43:])  # below the box (and its label): untouched


def test_ground_with_audio_prints_text_and_boxes(converted_dir, monkeypatch, capsys):
    script_generation(monkeypatch, "The dog[0.000, 0.200, 1.000, 0.800] barks.")
    code, out, _ = run(["ground", IMAGE, "Which object makes the sound?", "--audio", AUDIO, "--model", converted_dir],
                       capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "The dog[0.000, 0.200, 1.000, 0.800] barks."
    assert lines[1].split() == ["box", "The", "dog:", "[0.0,", "0.0,", "80.0,", "48.0]"]


def test_video_json_gives_seconds_and_draws_the_timeline(converted_dir, monkeypatch, capsys, tmp_path):
    script_generation(monkeypatch, SPAN_ANSWER)
    drawing = tmp_path / "timeline.png"
    code, out, _ = run(["video", VIDEO, "When does it move?", "--model", converted_dir, "--json", "--draw", drawing,
                        "--frames", "4"], capsys)
    assert code == 0
    assert json.loads(out) == {"answer": SPAN_ANSWER, "boxes": [], "spans": [{"phrase": "It happens at", "span": [0.5, 1.5]}]}
    picture = np.asarray(Image.open(drawing).convert("RGB"))
    assert (picture == (230, 25, 75)).all(axis=-1).sum() > 100  # the span bar in the first palette colour


def test_chat_streams_answers_and_switches_media_from_stdin(converted_dir, monkeypatch, capsys, tmp_path):
    prompts = script_generation(monkeypatch, lambda prompt: BOX_ANSWER if "red box" in prompt else "Hello there.")
    stdin = "\n".join(["hi", f"/image {IMAGE}", "where is the red box?", "and now?", "/audio missing.wav",
                       "/bogus", "/clear", "bye", "/quit", "never read"]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = run(["chat", "--model", converted_dir], capsys)
    assert code == 0
    assert "Assistant: Hello there.\n" in out
    assert f"Assistant: {BOX_ANSWER}\n" in out
    assert f"box  The red box: {BOX_PIXELS}" in out
    assert "###" not in out
    assert "never read" not in "".join(prompts)
    # The second image turn carries the first one as history; the image is sent once, in the first turn.
    assert "where is the red box?" in prompts[2] and BOX_ANSWER in prompts[2] and "and now?" in prompts[2]
    # After /clear the history is gone.
    assert "red box" not in prompts[3] and "bye" in prompts[3]
    errors = [line for line in err.splitlines() if line.startswith("groundinggpt: error:")]
    assert len(errors) == 2 and "missing.wav" in errors[0] and "/bogus" in errors[1]


def test_chat_reports_unreadable_media_and_goes_on(converted_dir, monkeypatch, capsys, tmp_path):
    script_generation(monkeypatch, "Fine.")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"/image {broken}\nwhat is it?\n/clear\nhello\n"))
    code, out, err = run(["chat", "--model", converted_dir], capsys)
    assert code == 0
    assert "Could not decode the image file" in err and out.count("Assistant: Fine.") == 1


def write_manifest(folder):
    for name in ("image.png", "video.mp4", "audio.wav"):
        shutil.copy(MEDIA / name, folder / name)
    manifest = {"examples": [
        {"name": "image", "image": "image.png", "question": "Where is the red box?"},
        {"name": "video", "video": "video.mp4", "question": "When does it move?"},
        {"name": "sound", "image": "image.png", "audio": "audio.wav", "question": "What makes the sound?"},
    ]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


def test_demo_runs_the_default_model_on_the_manifest(converted_dir, monkeypatch, capsys, tmp_path):
    script_generation(monkeypatch, lambda prompt: SPAN_ANSWER if "move" in prompt else BOX_ANSWER)
    monkeypatch.setattr(modeling_groundinggpt, "DEMO_MODEL", converted_dir, raising=False)
    (tmp_path / "media").mkdir()
    manifest = write_manifest(tmp_path / "media")
    code, out, _ = run(["demo", "--manifest", manifest, "--output-dir", tmp_path / "demo"], capsys)
    assert code == 0
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert [result["name"] for result in results] == ["image", "video", "sound"]
    assert results[0]["boxes"] == [{"phrase": "The red box", "box": BOX_PIXELS}]
    assert results[1]["spans"] == [{"phrase": "It happens at", "span": [0.5, 1.5]}]
    for name in ("image", "video", "sound"):
        assert Image.open(tmp_path / "demo" / f"{name}.png").size[0] > 0
        assert f"-> {tmp_path / 'demo' / name}.png" in out


def _decimals(value: float) -> int:
    return len(repr(value).partition(".")[2])


def test_demo_shows_the_expected_answers_and_scores_them(converted_dir, monkeypatch, capsys, tmp_path):
    """A hit and two misses, with the expected box/span drawn and the IoU printed; results.json is rounded."""
    answers = {"image": "The red box[0.333, 0.300, 0.500, 0.700].", "video": "It happens at {0.33, 0.77}.",
               "sound": "The box[0.600, 0.300, 0.900, 0.700]."}
    script_generation(monkeypatch, lambda prompt: answers[next(name for name in answers if name in prompt)])
    (tmp_path / "media").mkdir()
    manifest = json.loads(write_manifest(tmp_path / "media").read_text())
    questions = {"image": "Where is the red box (image)?", "video": "When does it move (video)?",
                 "sound": "What makes the sound?"}
    expected = {"image": [26.64, 8.0, 40.0, 40.0], "video": [1.8, 2.0], "sound": [2.0, 4.0, 30.0, 44.0]}
    for example in manifest["examples"]:
        example.update(question=questions[example["name"]], expected=expected[example["name"]])
    (tmp_path / "media" / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = run(["demo", "--manifest", tmp_path / "media" / "manifest.json", "--output-dir", tmp_path / "demo",
                        "--model", converted_dir, *FAST], capsys)
    assert code == 0
    assert "expected [26.64, 8.0, 40.0, 40.0] px: IoU 1.00, a hit" in out
    assert "expected [1.8, 2.0] s: IoU 0.00, a miss" in out
    assert "expected [2.0, 4.0, 30.0, 44.0] px: IoU 0.00, a miss" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert [result["iou"] for result in results] == [1.0, 0.0, 0.0]
    assert results[0]["boxes"][0]["box"] == [26.64, 8.0, 40.0, 40.0]
    numbers = [v for r in results for item in r["boxes"] + r["spans"] for v in item.get("box", item.get("span"))]
    assert numbers and all(_decimals(value) <= 3 for value in numbers)
    # The expected sound box (2, 4)-(30, 44), drawn enlarged 7x (80 x 48 -> 560 x 336), in light and dark dashes.
    picture = np.asarray(Image.open(tmp_path / "demo" / "sound.png"))
    assert picture.shape[:2] == (336, 560)
    edge = picture[4 * 7, 2 * 7 : 30 * 7]
    assert (edge == 0).all(axis=-1).sum() > 50 and (edge == 255).all(axis=-1).sum() > 50


def test_demo_manifest_with_a_malformed_expected_answer(capsys, tmp_path):
    (tmp_path / "media").mkdir()
    manifest = json.loads(write_manifest(tmp_path / "media").read_text())
    manifest["examples"][1]["expected"] = [1.0, 2.0, 3.0, 4.0]  # a box for a video
    (tmp_path / "media" / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run(["demo", "--manifest", tmp_path / "media" / "manifest.json"], capsys)
    assert_one_line_error(code, err, "`expected` of example 'video' must be a span [start, end] in seconds")


def test_without_model_and_demo_model_the_message_asks_for_model(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(modeling_groundinggpt, "DEMO_MODEL", str(tmp_path / "not-installed"))
    code, _, err = run(["ground", IMAGE, "Where?"], capsys)
    assert_one_line_error(code, err, "--model")


def test_eval_refcoco_batched_resumable(converted_dir, monkeypatch, capsys, tmp_path):
    boxes = {"left thing": [0.0, 0.0, 40.0, 48.0], "right thing": [40.0, 0.0, 80.0, 48.0], "odd": [0.0, 0.0, 8.0, 8.0]}
    lines = [{"id": f"s{i}", "image": "image.png", "expression": expression, "box": box,
              "split": "refcoco_val" if i < 2 else "refcoco_testA"} for i, (expression, box) in enumerate(boxes.items())]
    (tmp_path / "data").mkdir()
    shutil.copy(MEDIA / "image.png", tmp_path / "data" / "image.png")
    annotations = tmp_path / "data" / "ref.jsonl"
    annotations.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # Left half correct, right half wrong (answers the left half), odd: no box.
    script_generation(monkeypatch, lambda prompt: "odd" if "odd" in prompt else "It[0.000, 0.200, 0.500, 0.800].")
    argv = ["eval", "refcoco", "--annotations", annotations, "--output-dir", tmp_path / "out", "--batch-size", "2",
            "--model", converted_dir, "--prompt", "Locate {expression}.", "--no-progress", *FAST]
    code, out, _ = run(argv, capsys)
    assert code == 0
    summary = json.loads((tmp_path / "out" / "refcoco_summary.json").read_text())
    assert summary["results"] == [
        {"split": "refcoco_val", "num_samples": 2, "metrics": {"Acc@0.5": 50.0}, "source": None},
        {"split": "refcoco_testA", "num_samples": 1, "metrics": {"Acc@0.5": 0.0}, "source": None},
    ]
    assert summary["prompt_source"] == "argument"
    assert "refcoco_val" in out and "50.00" in out
    records = [json.loads(line) for line in (tmp_path / "out" / "refcoco_predictions.jsonl").read_text().splitlines()]
    assert records[0]["question"] == "Locate left thing." and records[0]["prediction"] == [0.0, 0.0, 40.0, 48.0]

    # A rerun skips every finished id: generate must not be called again.
    monkeypatch.setattr(GroundingGPTForConditionalGeneration, "generate", lambda *a, **k: pytest.fail("regenerated"))
    assert run(argv, capsys)[0] == 0
    assert json.loads((tmp_path / "out" / "refcoco_summary.json").read_text()) == summary


def test_eval_charades_and_sound_on_the_model(converted_dir, monkeypatch, capsys, tmp_path):
    shutil.copy(MEDIA / "video.mp4", tmp_path / "video.mp4")
    shutil.copy(MEDIA / "image.png", tmp_path / "image.png")
    shutil.copy(MEDIA / "audio.wav", tmp_path / "audio.wav")
    (tmp_path / "charades.jsonl").write_text(
        json.dumps({"id": "v0", "video": "video.mp4", "query": "it moves", "span": [0.5, 1.5]}) + "\n"
        + json.dumps({"id": "v1", "video": "video.mp4", "query": "it stops", "span": [1.5, 2.0], "duration": 4.0}) + "\n")
    (tmp_path / "sound.jsonl").write_text(
        json.dumps({"id": "a0", "image": "image.png", "audio": "audio.wav", "boxes": [[0, 0, 5, 5], [10, 8, 40, 40]]}) + "\n")
    script_generation(monkeypatch, lambda prompt: SPAN_ANSWER if "{start, end}" in prompt else BOX_ANSWER)
    base = ["--model", converted_dir, "--output-dir", tmp_path / "out", "--no-progress", *FAST]
    assert run(["eval", "charades", "--annotations", tmp_path / "charades.jsonl", *base], capsys)[0] == 0
    records = [json.loads(line) for line in (tmp_path / "out" / "charades_predictions.jsonl").read_text().splitlines()]
    # v0 uses the video's own 2 s; v1 the annotated 4 s duration.
    assert [record["prediction"] for record in records] == [[0.5, 1.5], [1.0, 3.0]]
    metrics = json.loads((tmp_path / "out" / "charades_summary.json").read_text())["results"][0]["metrics"]
    assert metrics["R@1,IoU=0.7"] == 50.0 and metrics["mIoU"] == pytest.approx(100 * (1 + 0.5 / 2.0) / 2)  # v1: [1, 3] vs [1.5, 2]
    assert run(["eval", "sound", "--annotations", tmp_path / "sound.jsonl", *base], capsys)[0] == 0
    summary = json.loads((tmp_path / "out" / "sound_summary.json").read_text())
    assert summary["results"][0]["metrics"] == {"Acc@0.5": 100.0}


def test_convert_annotations_then_export_with_push(converted_dir, monkeypatch, capsys, tmp_path):
    (tmp_path / "sta.txt").write_text("AB12 0 5.5##a person sits.\n")
    (tmp_path / "test.csv").write_text("id,length\nAB12,12.0\n")
    code, out, _ = run(["convert-annotations", "charades", "--sta", tmp_path / "sta.txt", "--csv", tmp_path / "test.csv",
                        "--output", tmp_path / "charades.jsonl"], capsys)
    assert code == 0 and "Wrote 1 charades samples" in out
    assert json.loads((tmp_path / "charades.jsonl").read_text()) == {
        "id": "AB12_1", "video": "AB12.mp4", "query": "a person sits", "span": [0.0, 5.5], "duration": 12.0,
        "split": "test", "source": "charades-sta"}

    calls = []

    class FakeHfApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    monkeypatch.setattr("modeling_groundinggpt.model_card.HfApi", FakeHfApi)
    folder = tmp_path / "model"
    shutil.copytree(converted_dir, folder)
    summary = tmp_path / "refcoco_summary.json"
    summary.write_text(json.dumps({"task": "refcoco", "results": [
        {"split": "refcoco_val", "num_samples": 1, "metrics": {"Acc@0.5": 100.0}}]}))
    code, out, _ = run(["export", folder, "--repo-id", "me/tiny", "--push", "--private", "--eval-results", summary,
                        "--dataset", "zwli/GroundingGPT", "--base-model", "zwli/GroundingGPT"], capsys)
    assert code == 0
    assert [call[:2] for call in calls] == [("create_repo", "me/tiny"), ("upload_folder", "me/tiny")]
    assert calls[0][2]["private"] is True
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    assert card.data.eval_results[0].metric_value == 100.0 and card.data.datasets == ["zwli/GroundingGPT"]
    assert card.data.eval_results[0].dataset_type == "custom"  # a hand-written summary names no benchmark

    # The card is there now: a second export refuses to replace it, unless asked to.
    calls.clear()
    code, _, err = run(["export", folder, "--repo-id", "me/tiny", "--push", "--eval-results", summary], capsys)
    assert_one_line_error(code, err, "README.md already exists")
    assert calls == [] and ModelCard.load(folder / "README.md").data.eval_results[0].dataset_type == "custom"
    assert run(["export", folder, "--repo-id", "me/tiny", "--overwrite"], capsys)[0] == 0
    assert ModelCard.load(folder / "README.md").data.eval_results is None


def _bad_inputs(tmp_path):
    broken_image = tmp_path / "broken.png"
    broken_image.write_bytes(b"\x89PNG garbage")
    broken_audio = tmp_path / "broken.wav"
    broken_audio.write_bytes(b"RIFF garbage")
    broken_video = tmp_path / "broken.mp4"
    broken_video.write_bytes(b"garbage")
    wrong_format = tmp_path / "wrong.jsonl"
    wrong_format.write_text(json.dumps({"id": "x", "video": "v.mp4", "query": "q", "span": [0, 1]}) + "\n")
    model_folder = tmp_path / "model"
    model_folder.mkdir()
    (model_folder / "config.json").write_text("{}")
    return {
        "missing image": (["ground", tmp_path / "nope.png", "q"], "Image file not found"),
        "unreadable image": (["ground", broken_image, "q"], "Could not decode the image file"),
        "unreadable audio": (["ground", IMAGE, "q", "--audio", broken_audio], "Could not decode the audio file"),
        "unreadable video": (["video", broken_video, "q"], "Could not open the video file"),
        "wrong annotation format": (["eval", "refcoco", "--annotations", wrong_format, "--output-dir", tmp_path / "o"],
                                    "not a `refcoco` sample"),
        "missing annotations": (["eval", "sound", "--annotations", tmp_path / "none.jsonl", "--output-dir", tmp_path],
                                "Annotation file not found"),
        "missing manifest": (["demo", "--manifest", tmp_path / "none.json"], "Demo manifest file not found"),
        "bad summary": (["export", model_folder, "--repo-id", "me/x", "--eval-results", broken_image],
                        "not a JSON evaluation summary"),
        "not a model folder": (["export", tmp_path, "--repo-id", "me/x"], "no config.json"),
    }


@pytest.mark.parametrize("case", ["missing image", "unreadable image", "unreadable audio", "unreadable video",
                                  "wrong annotation format", "missing annotations", "missing manifest", "bad summary",
                                  "not a model folder"])
def test_bad_input_gives_one_error_line_and_exit_1(converted_dir, capsys, tmp_path, case):
    argv, fragment = _bad_inputs(tmp_path)[case]
    if argv[0] != "export":
        argv = [*argv, "--model", converted_dir, *FAST]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, fragment)


def test_missing_model_folder(capsys, tmp_path):
    code, _, err = run(["ground", IMAGE, "q", "--model", tmp_path / "no-model"], capsys)
    assert_one_line_error(code, err, f"Model folder not found: '{tmp_path / 'no-model'}'")
    code, _, err = run(["ground", IMAGE, "q", "--model", tmp_path], capsys)
    assert_one_line_error(code, err, "is not a GroundingGPT model folder (no config.json)")


def test_console_script_subprocess(converted_dir, tmp_path):
    """The installed `groundinggpt` script with the real (random) model: machine-readable JSON, then a bad input."""
    script = shutil.which("groundinggpt")
    assert script is not None, "the package's console script is not installed (pip install -e .)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([script, "ground", IMAGE, "Where?", "--model", str(converted_dir), "--json", *FAST],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"answer", "boxes", "spans"} and isinstance(answer["answer"], str)
    result = subprocess.run([script, "video", str(tmp_path / "missing.mp4"), "When?", "--model", str(converted_dir)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"groundinggpt: error: Video file not found: '{tmp_path / 'missing.mp4'}'"]
