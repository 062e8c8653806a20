"""Bad input everywhere: each case raises (or, from a command, prints one `... error:` line) naming the file,
field, sample or argument at fault, leaves nothing half-written and leaves the process usable.

Grounding-text cases are in `test_grounding_text.py`, command-line argument ranges in `test_cli_startup.py`.
"""

import io
import json
import math
import shutil
import struct
import sys
import zlib

import numpy as np
import PIL.Image
import pytest
import soundfile
import torch
from datasets import Dataset
from safetensors.torch import load_file, save_file
from trl import SFTConfig

from conftest import FIXTURES
from groundinggpt_cli import main
from modeling_groundinggpt.convert.convert_groundinggpt_to_hf import main as convert_main
from modeling_groundinggpt.evaluation import convert_charades, convert_vggss
from modeling_groundinggpt.inference import GenerationOptions, GroundingGPT, GroundingRequest, resolve_device
from modeling_groundinggpt.processing import GroundingGPTProcessor
from modeling_groundinggpt.processing.image_processing_groundinggpt import load_image
from modeling_groundinggpt.training import build_sft_trainer, load_model_and_processor, load_sft_dataset
from test_cli import assert_one_line_error


MEDIA = FIXTURES / "media"
IMAGE, VIDEO, AUDIO = (str(MEDIA / name) for name in ("image.png", "video.mp4", "audio.wav"))
FAST = ["--max-new-tokens", "2"]


def run(argv, capsys):
    """`groundinggpt argv` in this process: (exit code, stdout, stderr); command-line errors exit with 2."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def grounder(converted_dir):
    return GroundingGPT.from_pretrained(converted_dir, device="cpu", generation=GenerationOptions(max_new_tokens=2))


@pytest.fixture(scope="module")
def processor(converted_dir):
    return GroundingGPTProcessor.from_pretrained(converted_dir)


# Audio --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_audio_with_nan_or_infinite_samples(processor, tmp_path, value, grounder):
    waveform = np.zeros(32000, dtype=np.float32)
    waveform[100:110] = value
    with pytest.raises(ValueError, match=r"^Audio 0 \(waveform\): the waveform has 10 NaN or infinite samples"):
        processor.feature_extractor(waveform, sampling_rate=16000)
    path = tmp_path / "bad.wav"
    soundfile.write(path, waveform, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="the audio file '.*bad.wav' has 10 NaN or infinite samples"):
        grounder.ground(IMAGE, "Which object makes the sound?", audio=path)
    assert isinstance(grounder.ground(IMAGE, "Which object makes the sound?", audio=AUDIO).answer, str)


def test_audio_that_decodes_to_nothing(processor, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"The audio file '.*empty.wav' is empty \(0 bytes\)"):
        processor.feature_extractor(str(empty))
    silent = tmp_path / "no-samples.wav"
    soundfile.write(silent, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="the audio file '.*no-samples.wav' decodes to no samples"):
        processor.feature_extractor(str(silent))
    with pytest.raises(ValueError, match="the waveform decodes to no samples"):
        processor.feature_extractor(np.zeros(0), sampling_rate=16000)
    with pytest.raises(ValueError, match="^No audio was given"):
        processor.feature_extractor([])


@pytest.mark.parametrize("rate", [0, -16000, 1.5, math.inf, "16k"])
def test_audio_sampling_rate_must_be_positive_hertz(processor, rate):
    with pytest.raises(ValueError, match="`sampling_rate` must be a positive whole number of Hz"):
        processor.feature_extractor(np.zeros(32000), sampling_rate=rate)


# Images -------------------------------------------------------------------------------------------------------------


def png_header(path, width, height):
    """A PNG that declares `width` x `height` pixels (and holds none): PIL checks the size when opening it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [10_000, 20_000])  # over PIL's limit (where it warns) and twice over (it refuses)
def test_images_over_the_decompression_bomb_limit(tmp_path, side):
    bomb = png_header(tmp_path / "bomb.png", side, side)
    with pytest.raises(ValueError, match=rf"The image file '.*bomb.png' is too large to decode safely: Image size "
                                         rf"\({side * side} pixels\) exceeds limit"):
        load_image(bomb)


def test_an_image_over_the_limit_is_one_error_line_and_chat_goes_on(converted_dir, tmp_path, capsys, monkeypatch):
    bomb = png_header(tmp_path / "bomb.png", 20_000, 20_000)
    code, _, err = run(["ground", bomb, "Where?", "--model", converted_dir, *FAST], capsys)
    assert_one_line_error(code, err, "bomb.png' is too large to decode safely")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"/image {bomb}\nwhere?\n/image {IMAGE}\nwhere now?\n"))
    code, out, err = run(["chat", "--model", converted_dir, *FAST], capsys)
    assert code == 0 and err.count("groundinggpt: error:") == 1 and "too large to decode safely" in err
    assert out.count("Assistant: ") == 2 and f"(image set to {IMAGE}; new conversation)" in out


# Processor: media tokens and texts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token, name, marker, argument", [
    ("<im_patch>", "image", "<image>", "images"),
    ("<im_start>", "image", "<image>", "images"),
    ("<vi_end>", "video", "<video>", "videos"),
    ("<so_patch>", "audio", "<sound>", "audio"),
])
def test_media_tokens_written_in_the_text_without_media(processor, token, name, marker, argument):
    message = rf"Text 1 contains the {name} token {token} written out; mark each {name} with {marker} and pass it in `{argument}`"
    with pytest.raises(ValueError, match=message):
        processor(text=["Hello.", f"Where is {token} it?"])
    # With the media given too: the written-out token would still stand for media that is not there.
    with pytest.raises(ValueError, match=message):
        processor(text=["Hello.", f"<image>\nWhere is {token} it?"], images=[IMAGE])
    assert processor(text="Where is it?")["input_ids"]


@pytest.mark.parametrize("question", [None, b"Where is the box?", 3, ["Where?"]], ids=repr)
def test_a_question_that_is_not_a_string(processor, grounder, question):
    with pytest.raises(TypeError, match="^The question must be a string, got "):
        grounder.ground(IMAGE, question)
    with pytest.raises(TypeError, match="^The question must be a string"):
        grounder.ground_batch([GroundingRequest(question, video=VIDEO)])
    with pytest.raises(TypeError, match="^The message must be a string"):
        grounder.chat(image=IMAGE).ask(question)
    messages = [{"role": "user", "content": [{"type": "image", "path": IMAGE}, {"type": "text", "text": question}]}]
    with pytest.raises(ValueError, match="^Chat message 0, item 1: a text item needs a string `text`"):
        processor.apply_chat_template(messages, tokenize=True, return_dict=True)
    bad_content = r"an item must be a dict with a `type`" if isinstance(question, list) else r"`content` must be a string"
    with pytest.raises(ValueError, match=f"^Chat conversation 1, message 0(, item 0)?: {bad_content}"):
        processor.apply_chat_template([[{"role": "user", "content": "Hi"}], [{"role": "user", "content": question}]])
    if not isinstance(question, list):
        with pytest.raises(ValueError, match="`text` must be a string or a list of strings"):
            processor(text=[question])


def test_an_empty_question_conversation_or_batch(grounder, processor):
    with pytest.raises(ValueError, match="^The question is empty"):
        grounder.ground(IMAGE, "  ")
    with pytest.raises(ValueError, match="^The conversation is empty"):
        processor.apply_chat_template([])
    assert grounder.ground_batch([]) == []


def test_an_image_without_pixels(processor):
    with pytest.raises(ValueError, match=r"An image needs at least one pixel, got one of size \(0, 0\)"):
        processor.image_processor(PIL.Image.new("RGB", (0, 0)))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_new_tokens": 0}, "max_new_tokens must be a whole number of at least 1, got 0"),
    ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
    ({"temperature": -0.5}, r"temperature must be 0 \(greedy\) or a positive number, got -0.5"),
    ({"temperature": math.nan}, "temperature must be 0"),
    ({"top_p": 0}, r"top_p must be in \(0, 1\], got 0"),
])
def test_generation_options_out_of_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationOptions(**kwargs)


@pytest.mark.parametrize("duration", [0, -3.0, math.inf, math.nan, "30 s"], ids=repr)
def test_a_request_video_duration_must_be_positive_seconds(duration):
    with pytest.raises(ValueError, match="video_duration must be a positive, finite number of seconds"):
        GroundingRequest("When?", video=VIDEO, video_duration=duration)


# Devices and checkpoints ------------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device, message", [
    ("cuda", "Device 'cuda' is not available: this machine has no cuda device"),
    ("cuda:3", "Device 'cuda:3' is not available: this machine has no cuda device"),
    ("quantum", r"Unknown device 'quantum'; use auto, cpu, cuda, cuda:N, mps"),
])
def test_a_device_that_is_not_there(device, message, converted_dir, capsys):
    with pytest.raises(ValueError, match=message):
        resolve_device(device)
    code, _, err = run(["ground", IMAGE, "Where?", "--model", converted_dir, "--device", device], capsys)
    assert_one_line_error(code, err, message.replace("\\", ""))


@pytest.mark.parametrize("path", ["./no-such-model", "../no-such-model", "/no/such/model", "~/no-such-model"])
def test_a_local_looking_model_path_that_does_not_exist(path):
    with pytest.raises(FileNotFoundError, match=f"^Model folder not found: '{path}'"):
        GroundingGPT.from_pretrained(path)
    with pytest.raises(FileNotFoundError, match=f"^Model folder not found: '{path}'"):
        load_model_and_processor(path)


def checkpoint_with(converted_dir, folder, edit):
    """A copy of the converted checkpoint whose weights were changed by `edit(state_dict)`."""
    state = {}
    for shard in sorted(converted_dir.glob("*.safetensors")):
        state.update(load_file(shard))
    edit(state)
    folder.mkdir()
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    for path in converted_dir.iterdir():
        if path.suffix != ".safetensors" and path.name != "model.safetensors.index.json":
            shutil.copy(path, folder / path.name)
    return folder


def test_a_checkpoint_whose_weights_do_not_cover_the_config(converted_dir, tmp_path, capsys):
    missing = checkpoint_with(converted_dir, tmp_path / "missing", lambda state: state.pop("model.audio_projector.weight"))
    extra = checkpoint_with(converted_dir, tmp_path / "extra", lambda state: state.update(extra_head=torch.zeros(2)))
    missing_message = r"does not match its config: 1 weights missing from the checkpoint \(model.audio_projector.weight\)"
    extra_message = r"does not match its config: 1 weights in the checkpoint but not in the model \(extra_head\)"
    with pytest.raises(ValueError, match=missing_message):
        GroundingGPT.from_pretrained(missing, device="cpu")
    with pytest.raises(ValueError, match=extra_message):
        GroundingGPT.from_pretrained(extra, device="cpu")
    with pytest.raises(ValueError, match=missing_message):
        load_model_and_processor(missing)
    code, _, err = run(["ground", IMAGE, "Where?", "--model", missing, *FAST], capsys)
    assert_one_line_error(code, err, "weights missing from the checkpoint (model.audio_projector.weight)")


# Training data ----------------------------------------------------------------------------------------------------


def original_sample(**changes):
    sample = {"id": "s1", "image": "image.png", "conversations": [
        {"from": "human", "value": "<image>\nWhere is the box?"},
        {"from": "gpt", "value": "The box[0.1, 0.2, 0.3, 0.4]."},
    ]}
    return {**sample, **changes}


@pytest.mark.parametrize("sample, message", [
    (original_sample(conversations=[]), r"Sample 's1': `conversations` must be a non-empty list"),
    (original_sample(conversations=[{"from": "human"}]), r"Sample 's1': `conversations\[0\].value` must be a string, got NoneType"),
    (original_sample(conversations=[{"from": "bot", "value": "x"}]), r"Sample 's1': `conversations\[0\].from` must be one of"),
    (original_sample(image=7), r"Sample 's1': `image` must be a file path or a list of file paths, got 7"),
    (original_sample(image=[]), r"Sample 's1' has 1 <image> markers but 0 image file\(s\) in `image`"),
    ({"id": "m", "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]},
     r"Sample 'm' has 1 image markers or items but 0 entries in `images`"),
    ({"id": "m", "messages": [{"role": "robot", "content": "Hi"}]}, r"Sample 'm': `messages\[0\]` must have a `role`"),
    ({"id": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
     r"Sample 'm': `messages\[0\].content\[0\].text` must be a string"),
    ({"id": "x", "text": "hi"}, "Sample 'x' has neither `conversations` nor `messages`"),
    (["not", "an", "object"], "expected a JSON object, got list"),
])
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_training_samples_with_missing_or_mistyped_fields(tmp_path, sample, message, suffix):
    path = tmp_path / f"data{suffix}"
    good = original_sample(id="s0")
    if suffix == ".json":
        path.write_text(json.dumps([good, sample]))
        where = rf"{path}, sample 1: "
    else:
        path.write_text(json.dumps(good) + "\n\n" + json.dumps(sample) + "\n")
        where = rf"{path}:3: "
    with pytest.raises(ValueError, match=f"^{where}{message}"):
        load_sft_dataset(str(path))


def test_unreadable_training_json_names_the_file_and_line(tmp_path):
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(json.dumps(original_sample()) + "\n{\"id\": \"s2\", \n")
    with pytest.raises(ValueError, match=rf"^{jsonl}:2: not a JSON object"):
        load_sft_dataset(str(jsonl))
    jsonl.write_bytes(json.dumps(original_sample()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(ValueError, match=rf"^{jsonl}:2: not UTF-8 text"):
        load_sft_dataset(str(jsonl))
    array = tmp_path / "data.json"
    array.write_text("[\n" + json.dumps(original_sample()) + ",\n{oops}\n]")
    with pytest.raises(ValueError, match=rf"^{array}:3: not valid JSON"):
        load_sft_dataset(str(array))
    array.write_text(json.dumps({"samples": []}))
    with pytest.raises(ValueError, match=rf"^{array}: expected a JSON list of samples, got dict"):
        load_sft_dataset(str(array))
    with pytest.raises(FileNotFoundError, match="^Training data file not found: '.*missing.json'"):
        load_sft_dataset(str(tmp_path / "missing.json"))


def test_missing_training_media_is_reported_before_training(converted_dir, tmp_path):
    model, processor = load_model_and_processor(converted_dir)
    dataset = Dataset.from_list([
        {"id": "ok", "messages": [{"role": "user", "content": "<image>\nWhere?"}, {"role": "assistant", "content": "Here."}],
         "images": ["image.png"], "audios": []},
        {"id": "lost", "messages": [{"role": "user", "content": "<sound>\nWhat?"}, {"role": "assistant", "content": "A."}],
         "audios": ["nowhere.wav"], "images": []},
    ])
    args = SFTConfig(output_dir=str(tmp_path / "out"), max_steps=1, report_to="none", bf16=False)
    with pytest.raises(FileNotFoundError, match=r"Training media file not found: '.*nowhere.wav' \(sample 'lost', "
                                                r"`audios\[0\]`\); 1 of the dataset's media files are missing"):
        build_sft_trainer(model, processor, args, dataset, stage=3, media_root=MEDIA)
    assert not (tmp_path / "out").exists()


# Evaluation annotations -------------------------------------------------------------------------------------------


def test_benchmark_converters_name_undecodable_files_and_bad_templates(tmp_path):
    sta, csv = tmp_path / "sta.txt", tmp_path / "test.csv"
    sta.write_bytes(b"AB12 0 5.5##a person \xff sits.\n")
    csv.write_text("id,length\nAB12,12.0\n")
    with pytest.raises(ValueError, match=rf"^{sta}: not UTF-8 text"):
        convert_charades(sta, csv)
    sta.write_text("AB12 0 5.5##a person sits.\n")
    csv.write_text("id,length\nAB12,-1\n")
    with pytest.raises(ValueError, match=rf"^{csv}:2: `length` must be a positive number of seconds"):
        convert_charades(sta, csv)
    csv.write_text("id,length\nAB12,12.0\n")
    with pytest.raises(ValueError, match=r"--video-template must contain \{video_id\}, got 'clip.mp4'"):
        convert_charades(sta, csv, video_template="clip.mp4")
    with pytest.raises(ValueError, match=r"--frame-template 'f/\{name\}.jpg' may only use \{file\}"):
        convert_vggss(tmp_path / "vggss.json", tmp_path, frame_template="f/{name}.jpg")


def test_evaluation_checks_media_before_the_model_loads_and_writes_nothing(tmp_path, capsys, monkeypatch):
    annotations = tmp_path / "ref.jsonl"
    annotations.write_text(json.dumps({"id": "r0", "image": "gone.png", "expression": "x", "box": [0, 0, 1, 1]}) + "\n")
    monkeypatch.setattr(GroundingGPT, "from_pretrained", lambda *a, **k: pytest.fail("the model was loaded"))
    code, _, err = run(["eval", "refcoco", "--annotations", annotations, "--output-dir", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "The image of sample 'r0' is not found")
    assert not (tmp_path / "out").exists()


# Command line -----------------------------------------------------------------------------------------------------


def test_invalid_utf8_in_arguments_and_on_chat_input(converted_dir, capsys, monkeypatch):
    question = b"caf\xe9?".decode("utf-8", "surrogateescape")  # how Python passes undecodable argv bytes
    code, _, err = run(["ground", IMAGE, question, "--model", converted_dir], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("groundinggpt: error: argument question: is not valid UTF-8 text")
    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 ?\nhello\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, err = run(["chat", "--model", converted_dir, *FAST], capsys)
    assert code == 0 and out.count("Assistant: ") == 1
    assert "groundinggpt: error: that line is not valid UTF-8 text; it was not sent." in err


def test_output_paths_of_the_wrong_kind(converted_dir, tmp_path, capsys):
    code, _, err = run(["ground", IMAGE, "Where?", "--draw", tmp_path / "boxes.txt"], capsys)
    assert code == 2 and "argument --draw: " in err and "needs a picture extension" in err
    taken = tmp_path / "taken.png"
    taken.mkdir()
    code, _, err = run(["ground", IMAGE, "Where?", "--draw", taken, "--model", converted_dir], capsys)
    assert_one_line_error(code, err, f"--draw {taken} is a folder; give a file path.")
    code, _, err = run(["demo", "--output-dir", IMAGE, "--model", converted_dir], capsys)
    assert_one_line_error(code, err, f"--output-dir {IMAGE} is a file; give a folder path.")


def test_an_unexpected_exception_is_one_line_and_debug_shows_the_traceback(converted_dir, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(GroundingGPT, "ground", broken)
    code, _, err = run(["ground", IMAGE, "Where?", "--model", converted_dir, *FAST], capsys)
    assert_one_line_error(code, err, "KeyError: 'internal' (--debug shows the traceback)")
    with pytest.raises(KeyError, match="internal"):
        main(["ground", IMAGE, "Where?", "--model", str(converted_dir), "--debug", *FAST])


# Checkpoint converter ---------------------------------------------------------------------------------------------


def test_converter_errors_are_one_line_and_leave_no_folder(tmp_path, encoder_dims, capsys):
    original, clip = str(FIXTURES / "original_checkpoint"), str(FIXTURES / "clip_vision")
    output = tmp_path / "new" / "deeper" / "converted"
    dims = tmp_path / "dims.json"
    dims.write_text(json.dumps({**encoder_dims, "imagebind.audio_embed_dim": 2 * encoder_dims["imagebind.audio_embed_dim"]}))
    cases = [
        (["--original", "./no-such-original", "--clip", clip], "Original checkpoint folder not found: './no-such-original'"),
        (["--original", original, "--clip", str(tmp_path / "no-clip")], f"CLIP folder not found: '{tmp_path / 'no-clip'}'"),
        (["--original", original, "--clip", clip, "--encoder-dims", str(tmp_path / "none.json")],
         "Encoder dims file not found"),
        (["--original", original, "--clip", clip, "--encoder-dims", str(dims)], "Shape mismatch for original key"),
    ]
    for argv, message in cases:
        code = convert_main([*argv, "--output", str(output)])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error" in line.lower()]
        assert code == 1 and "Traceback" not in err, err
        assert errors == [err.strip().splitlines()[-1]] and message in errors[0], err
        assert errors[0].startswith("convert_groundinggpt_to_hf.py: error: ")
        assert not (tmp_path / "new").exists()
    with pytest.raises(FileNotFoundError, match="Original checkpoint folder not found"):
        convert_main([*cases[0][0], "--output", str(output), "--debug"])
