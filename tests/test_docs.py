"""README.md and docs/*.md work as written: every relative link resolves (file and heading), every JSON example parses,
every shell command is accepted by the command line or script it calls, every Python snippet compiles and imports
only names that exist, and the snippets that need nothing but a model run for real (on the fixtures' tiny converted
model or the embedded demo model, with their media in place of the example file names)."""

import ast
import contextlib
import importlib
import importlib.util
import io
import json
import re
import shlex
from pathlib import Path

import pytest

import modeling_groundinggpt
from groundinggpt_cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DEMO_MEDIA = Path(modeling_groundinggpt.DEMO_MODEL).parent / "demo_media"
# commands the documents use that belong to other tools (installers, the Hub client, the shell; vLLM's commands
# in docs/serving.md run in tests/vllm/test_serve.py, where vLLM is installed)
OTHER_TOOLS = {"pip", "hf", "cat", "apt-get", "export", "vllm"}
# modules of optional extras, checked where the extra is installed: module -> the package it needs
OPTIONAL_MODULES = {
    "modeling_groundinggpt.web.app": "gradio",
    "openai": "openai",
    "vllm.entrypoints.openai.api_server": "vllm.entrypoints",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def _blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


def _prose(path: Path) -> str:
    """The document without its code blocks and inline code."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", path.read_text(encoding="utf-8")))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_documents_exist():
    names = {path.name for path in DOCUMENTS}
    assert {"README.md", "cli.md", "conversion.md", "fine-tuning.md", "evaluation.md", "demo-model.md"} <= names


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_relative_links_resolve(document):
    links = LINK.findall(_prose(document))
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (document.parent / target).resolve() if target else document
        assert path.exists(), f"{_name(document)}: {link} points to nothing"
        if anchor:
            assert path.suffix == ".md" and anchor in _anchors(path), f"{_name(document)}: no heading for {link}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_json_examples_parse(document):
    for block in _blocks(document, "json"):
        try:
            json.loads(block)
        except json.JSONDecodeError:  # JSON Lines
            for line in block.splitlines():
                json.loads(line)


def _commands(block: str) -> list[list[str]]:
    """The simple commands of a shell block: continuation lines joined, split at `;`, `&&` and `|`, redirections
    and comments dropped, a loop's `do` removed."""
    lexer = shlex.shlex(block.replace("\\\n", " "), posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    tokens = list(lexer)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in {";", "&&", "|", "||"}:
            commands.append(current)
            current = []
        elif token in {">", ">>", "<"}:
            index += 1  # and the file name
        else:
            current.append(token)
        index += 1
    commands.append(current)
    commands = [command[1:] if command[:1] == ["do"] else command for command in commands]
    return [command for command in commands if command]


def _split_lines(block: str) -> list[str]:
    """Shell lines, continuation lines joined (a newline ends a command as `;` does)."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(f"_documented_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_script(script: str, argv: list[str], monkeypatch) -> None:
    path = REPO / script
    assert path.is_file(), f"no script {script}"
    module = _load_script(path)
    if hasattr(module, "parse_args"):
        module.parse_args(argv)
    else:  # the converter parses in `main` and then converts: stop at the conversion
        called = []
        monkeypatch.setattr(module, "convert_checkpoint", lambda *args, **kwargs: called.append((args, kwargs)))
        module.main(argv)
        assert called, script


def _check_command(command: list[str], monkeypatch) -> None:
    program, *argv = command
    if program == "groundinggpt":
        build_parser().parse_args(argv)
    elif program == "python" and argv[0] == "-m":
        needs = OPTIONAL_MODULES.get(argv[1])
        if needs is None or _installed(needs):
            assert importlib.util.find_spec(argv[1]), f"no module {argv[1]}"
    elif program == "python":
        _check_script(argv[0], argv[1:], monkeypatch)
    elif program == "accelerate":
        from accelerate.commands.launch import launch_command_parser

        assert argv[0] == "launch", command
        launch = launch_command_parser().parse_args(argv[1:])
        if launch.config_file:
            assert (REPO / launch.config_file).is_file(), launch.config_file
        _check_script(launch.training_script, launch.training_script_args, monkeypatch)
    else:
        assert program in OTHER_TOOLS, f"unknown command {program!r}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_shell_commands_are_accepted(document, monkeypatch):
    for block in _blocks(document, "bash"):
        loop = None  # (variable, values) of the `for` loop the commands are in
        for line in _split_lines(block):
            for command in _commands(line):
                if command[0] == "for":
                    assert command[2] == "in", command
                    loop = (command[1], command[3:])
                    continue
                if command == ["done"]:
                    loop = None
                    continue
                variable, values = loop or ("", [""])
                for value in values:
                    expanded = [token.replace(f"${variable}", value) for token in command] if variable else command
                    try:
                        _check_command(expanded, monkeypatch)
                    except SystemExit as error:  # argparse refused the arguments
                        pytest.fail(f"{_name(document)}: `{shlex.join(expanded)}` is refused (exit {error.code})")


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_python_snippets_import_names_that_exist(document):
    for block in _blocks(document, "python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom):
                needs = OPTIONAL_MODULES.get(node.module)
                if needs and not _installed(needs):
                    continue  # an optional extra that is not installed here
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{_name(document)}: {node.module} has no {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)


def _snippet(document: str, needle: str) -> str:
    blocks = [block for block in _blocks(REPO / document, "python") if needle in block]
    assert len(blocks) == 1, f"{document}: {len(blocks)} Python blocks contain {needle!r}"
    return blocks[0]


def _run(code: str, files: dict[str, str | Path], replace: dict[str, str] | None = None) -> tuple[dict, str]:
    """Run `code` with each quoted example file name replaced by a real path (and the `replace` edits); returns its
    globals and output."""
    edits = {f'"{name}"': repr(str(path)) for name, path in files.items()} | (replace or {})
    for old, new in edits.items():
        assert old in code, old
        code = code.replace(old, new)
    namespace, output = {"__name__": "__snippet__"}, io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "<snippet>", "exec"), namespace)
    return namespace, output.getvalue()


def test_readme_usage_snippet_runs(converted_dir, fixtures_dir):
    media = fixtures_dir / "media"
    code = _snippet("README.md", 'path = "groundinggpt-7b-hf"')
    namespace, output = _run(code, {
        "groundinggpt-7b-hf": converted_dir, "street.jpg": media / "image.png", "cooking.mp4": media / "video.mp4",
        "dog_bark.wav": media / "audio.wav", "yard.jpg": media / "image.png",
    })
    printed = output.splitlines()
    assert len(printed) == 2 and all(line.startswith("[{'text': ") for line in printed), output
    assert "'spans': [" in printed[1]
    assert [part["type"] for part in namespace["messages"][0]["content"]] == ["audio", "image", "text"]


@pytest.mark.parametrize("document", ["README.md", "docs/demo-model.md"])
def test_demo_model_loading_snippet_runs(document):
    namespace, _ = _run(_snippet(document, "from_pretrained(modeling_groundinggpt.DEMO_MODEL)"), {})
    assert namespace["model"].config.model_type == "groundinggpt"
    assert type(namespace["processor"]).__name__ == "GroundingGPTProcessor"


def test_python_api_snippet_runs_on_the_demo_model(tmp_path, monkeypatch):
    manifest = json.loads((DEMO_MEDIA / "manifest.json").read_text())
    examples = {example["name"]: example for example in manifest["examples"]}
    image, video = DEMO_MEDIA / examples["image"]["image"], DEMO_MEDIA / examples["video"]["video"]
    monkeypatch.chdir(tmp_path)
    namespace, output = _run(_snippet("docs/python-api.md", "grounder = GroundingGPT.from_pretrained("), {
        "groundinggpt-7b-hf": modeling_groundinggpt.DEMO_MODEL, "street.jpg": image, "kitchen.jpg": image,
        "scene.jpg": DEMO_MEDIA / examples["sound"]["image"], "bark.wav": DEMO_MEDIA / examples["sound"]["audio"],
        "clip.mp4": video, "dog.mp4": video,
    }, replace={"max_new_tokens=256": "max_new_tokens=24"})  # the demo model rambles on questions it does not know
    assert (tmp_path / "car.png").is_file() and (tmp_path / "timeline.png").is_file()
    assert len(namespace["answers"]) == 2 and output  # the streamed chat answer
    assert namespace["answer"].video_duration > 0
