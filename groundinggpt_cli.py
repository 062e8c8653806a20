"""The `groundinggpt` command: ground, video, chat, demo, web, eval, convert-annotations and export.

Each subcommand is a thin layer over the Python API of `modeling_groundinggpt` (`inference`, `visualization`,
`demo`, `evaluation`, `model_card`). Exit codes: 0 success, 1 bad input or failure (one `groundinggpt: error: ...`
line on stderr; `--debug` shows the traceback instead), 2 bad command line (one `groundinggpt: error: ...` line),
130 interrupted.

Start-up: importing `modeling_groundinggpt` registers the model with transformers, which imports torch and
transformers (seconds). This module therefore lives outside the package and imports the standard library only:
arguments are parsed and checked, and input files looked up, before a subcommand's handler imports what it needs
from `modeling_groundinggpt`. A new subcommand keeps to this: check the inputs first, then import inside the handler.
"""

import argparse
import importlib.util
import json
import math
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


PROGRAM = "groundinggpt"
CHAT_HELP = (
    "Commands: /image PATH, /video PATH, /audio PATH (switch media and start over), /clear (no media, new "
    "conversation), /quit. An empty line or end of input also quits."
)
# The names of `modeling_groundinggpt.evaluation.TASKS` (spelled out so that parsing needs no import).
EVAL_TASKS = ("refcoco", "charades", "sound")
# What `--model` looks like when it is a folder rather than a Hub repo id.
_LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
_DEVICE = re.compile(r"auto|[a-z_]+(:\d+)?")
# What `--draw` can write (PIL picks the format from the extension).
_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse whose command-line errors are one `groundinggpt: error: ...` line (exit code 2)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{PROGRAM}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _port(value: str) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {number}")
    return number


def _temperature(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 (greedy) or a positive number, got {value}")
    return number


def _is_utf8(text: str) -> bool:
    """Undecodable bytes (in arguments, or on standard input) reach Python as lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if not _is_utf8(value):
        raise argparse.ArgumentTypeError(f"is not valid UTF-8 text: {value!r}")
    return value


def _device(value: str) -> str:
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a device; use auto, cpu, cuda, cuda:N, mps, ...")
    return value


def _picture(value: str) -> str:
    if Path(value).suffix.lower() not in _PICTURE_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{value!r} needs a picture extension: {', '.join(_PICTURE_SUFFIXES)}")
    return value


def _require_writable(path: str | None, option: str, folder: bool) -> None:
    """An output path must not be taken by the other kind of entry (a file where a folder goes, or the reverse)."""
    if path is not None and Path(path).exists() and Path(path).is_dir() != folder:
        wanted, found = ("folder", "a file") if folder else ("file", "a folder")
        raise CLIError(f"{option} {path} is {found}; give a {wanted} path.")


def _require_file(path: str | Path | None, kind: str) -> None:
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"{kind[0].upper()}{kind[1:]} file not found: {str(path)!r}")


def _require_folder(path: str | Path | None, kind: str) -> None:
    if path is not None and not Path(path).is_dir():
        raise FileNotFoundError(f"{kind[0].upper()}{kind[1:]} folder not found: {str(path)!r}")


def _model_folder(path: str) -> str:
    """A local model folder, checked: it exists and holds a config.json (what `modeling_groundinggpt.loading.
    check_local_folder` checks, done here without importing the package)."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise CLIError(f"Model folder not found: {path!r}")
    if not (folder / "config.json").is_file():
        raise CLIError(f"{path} is not a GroundingGPT model folder (no config.json).")
    return str(folder)


def resolve_model(model: str | None) -> str:
    """`--model` (a folder, checked at once when it looks like a path, or a Hub repo id), or the demo model bundled
    as `modeling_groundinggpt.DEMO_MODEL` when the option is omitted."""
    if model:
        looks_local = model in (".", "..") or model.startswith(_LOCAL_PREFIXES) or Path(model).exists()
        return _model_folder(model) if looks_local else model
    import modeling_groundinggpt

    demo_model = Path(modeling_groundinggpt.DEMO_MODEL)
    if not (demo_model / "config.json").is_file():
        raise CLIError(
            f"the embedded demo model is missing from this installation ({demo_model}); pass --model "
            "PATH_OR_REPO_ID (a converted GroundingGPT folder or a Hub repo id)."
        )
    return str(demo_model)


def load_grounder(args: argparse.Namespace) -> Any:
    """The `GroundingGPT` of `--model/--device/--dtype` with the decoding options of the command line."""
    model = resolve_model(args.model)
    from modeling_groundinggpt.inference import GenerationOptions, GroundingGPT

    options = GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature, compile=args.compile)
    return GroundingGPT.from_pretrained(model, device=args.device, dtype=args.dtype, generation=options)


def _print_answer(answer: Any, as_json: bool, with_text: bool = True) -> None:
    result = answer.to_dict(rounded=True)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    if with_text:
        print(result["answer"])
    for box in result["boxes"]:
        print(f"  box  {box['phrase'] or '-'}: {box['box']}")
    unit = " s" if answer.video_duration else " (fraction of the video)"
    for span in result["spans"]:
        print(f"  span {span['phrase'] or '-'}: {span['span']}{unit}")


def _save(picture: Any, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    print(f"Drawing written to {path}", file=sys.stderr)


def command_ground(args: argparse.Namespace) -> int:
    _require_file(args.image, "image")
    _require_file(args.audio, "audio")
    _require_writable(args.draw, "--draw", folder=False)
    grounder = load_grounder(args)
    from modeling_groundinggpt.visualization import draw_boxes

    answer = grounder.ground(args.image, args.question, audio=args.audio)
    _print_answer(answer, args.json)
    if args.draw:
        _save(draw_boxes(args.image, answer.boxes), args.draw)
    return 0


def command_video(args: argparse.Namespace) -> int:
    _require_file(args.video, "video")
    _require_writable(args.draw, "--draw", folder=False)
    grounder = load_grounder(args)
    from modeling_groundinggpt.visualization import draw_timeline

    answer = grounder.ground_video(args.video, args.question)
    _print_answer(answer, args.json)
    if args.draw:
        _save(draw_timeline(args.video, answer.spans, num_frames=args.frames, duration=answer.video_duration), args.draw)
    return 0


def _chat_command(session: Any, line: str) -> bool:
    """Apply a `/command`; returns False on `/quit`."""
    command, _, argument = line.partition(" ")
    argument = argument.strip()
    if command == "/quit":
        return False
    if command == "/clear":
        session.set_media()
        print("(conversation and media cleared)")
    elif command in ("/image", "/video", "/audio"):
        kind = command[1:]
        if not argument:
            raise CLIError(f"{command} needs a file path.")
        _require_file(argument, kind)
        if kind == "image":
            session.set_media(image=argument, audio=session.audio)
        elif kind == "video":
            session.set_media(video=argument)
        else:
            session.set_media(image=session.image, video=session.video, audio=argument)
        print(f"({kind} set to {argument}; new conversation)")
    else:
        raise CLIError(f"unknown command {command}. {CHAT_HELP}")
    return True


def _chat_turn(session: Any, line: str) -> None:
    """Answer one line of the user, streamed; a bad line or bad media is reported and the chat goes on."""
    if not _is_utf8(line):
        raise CLIError("that line is not valid UTF-8 text; it was not sent.")
    print("Assistant: ", end="", flush=True)
    try:
        answer = session.ask(line, on_text=lambda text: print(text, end="", flush=True))
    finally:
        print(flush=True)
    _print_answer(answer, as_json=False, with_text=False)


def command_chat(args: argparse.Namespace) -> int:
    for path, kind in ((args.image, "image"), (args.video, "video"), (args.audio, "audio")):
        _require_file(path, kind)
    session = load_grounder(args).chat(image=args.image, video=args.video, audio=args.audio)
    print(CHAT_HELP, file=sys.stderr)
    if hasattr(sys.stdin, "reconfigure"):
        # An undecodable line must not end the chat: its bytes arrive as lone surrogates and are refused per line.
        sys.stdin.reconfigure(errors="surrogateescape")
    while True:
        try:
            line = input("Human: ").strip()
        except EOFError:
            print()
            return 0
        if not line:
            return 0
        try:
            if line.startswith("/"):
                if not _chat_command(session, line):
                    return 0
            else:
                _chat_turn(session, line)
        except (CLIError, OSError, ValueError, RuntimeError) as error:  # bad media, unreadable file, out of memory
            _print_error(error)


def command_demo(args: argparse.Namespace) -> int:
    _require_file(args.manifest, "demo manifest")
    _require_writable(args.output_dir, "--output-dir", folder=True)
    grounder = load_grounder(args)
    from modeling_groundinggpt.demo import DEFAULT_MANIFEST, run_demo, verdict

    results = run_demo(grounder, args.output_dir, manifest=args.manifest or DEFAULT_MANIFEST)
    for result in results:
        print(f"[{result['name']}] {result['question']}\n  {result['answer']}")
        if result["iou"] is not None:
            unit = " s" if len(result["expected"]) == 2 else " px"
            print(f"  expected {result['expected']}{unit}: {verdict(result['iou'])}")
        print(f"  -> {result['drawing']}")
    return 0


def command_web(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise CLIError("the web demo needs Gradio: pip install \"modeling-groundinggpt[web]\"")
    grounder = load_grounder(args)
    from modeling_groundinggpt.web.app import build_demo, launch

    launch(build_demo(grounder), host=args.host, port=args.port, share=args.share)
    return 0


def command_eval(args: argparse.Namespace) -> int:
    _require_file(args.annotations, "annotation")
    _require_folder(args.media_root, "media root")
    _require_writable(args.output_dir, "--output-dir", folder=True)
    model = resolve_model(args.model)
    from modeling_groundinggpt.evaluation import TASKS, evaluate, format_table, load_samples
    from modeling_groundinggpt.evaluation.harness import check_media, output_paths, resolve_prompt

    task = TASKS[args.task]
    if args.prompt is not None:
        task.check_prompt(args.prompt)
    samples = load_samples(task.name, args.annotations)
    if args.limit is not None:
        samples = samples[: args.limit]
    media_root = Path(args.media_root) if args.media_root else Path(args.annotations).parent
    check_media(task, samples, media_root)
    grounder = load_grounder(args)
    prompt, prompt_source = resolve_prompt(task, grounder, args.prompt)
    print(f"Prompt ({prompt_source}): {prompt}", file=sys.stderr)
    summary = evaluate(
        task,
        samples,
        grounder,
        output_dir=args.output_dir,
        media_root=media_root,
        prompt=args.prompt,
        batch_size=args.batch_size,
        options=grounder.generation,  # the command line's decoding options (`load_grounder`)
        model_name=model,
        progress=not args.no_progress,
    )
    print(format_table(summary))
    print(f"Summary written to {output_paths(Path(args.output_dir), task.name)['summary']}", file=sys.stderr)
    return 0


def command_convert(args: argparse.Namespace) -> int:
    if args.task == "refcoco":
        _require_file(args.refs, "refs")
        _require_file(args.instances, "instances")
    elif args.task == "charades":
        _require_file(args.sta, "Charades-STA")
        _require_file(args.csv, "Charades CSV")
    else:
        _require_file(args.vggss, "VGG-SS")
        _require_folder(args.media_root, "media root")
    _require_writable(args.output, "--output", folder=False)
    from modeling_groundinggpt.evaluation.converters import convert_charades, convert_refer, convert_vggss
    from modeling_groundinggpt.evaluation.formats import write_samples

    if args.task == "refcoco":
        samples = convert_refer(args.refs, args.instances, args.dataset, tuple(args.splits) if args.splits else None)
    elif args.task == "charades":
        samples = convert_charades(args.sta, args.csv, video_template=args.video_template)
    else:
        samples = convert_vggss(args.vggss, args.media_root, args.frame_template, args.audio_template)
    write_samples(samples, args.output)
    print(f"Wrote {len(samples)} {args.task} samples to {args.output}")
    return 0


def command_export(args: argparse.Namespace) -> int:
    _model_folder(args.folder)
    for path in args.eval_results or []:
        _require_file(path, "evaluation summary")
    from modeling_groundinggpt.model_card import export_model, load_summaries

    summaries = load_summaries(args.eval_results or [])
    card_kwargs = {"license": args.license, "base_model": args.base_model, "datasets": args.dataset or (),
                   "tags": args.tag or ()}
    readme = export_model(args.folder, args.repo_id, summaries, push=args.push, private=args.private,
                          remote_code=args.remote_code, card_kwargs=card_kwargs, overwrite=args.overwrite)
    print(f"Model card written to {readme}")
    if args.push:
        print(f"Uploaded {args.folder} to https://huggingface.co/{args.repo_id}")
    return 0


def _common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given at any level of the command, it is not reset by the levels below.
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error instead of one line")
    return parent


def _model_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("model")
    group.add_argument("--model", help="converted GroundingGPT folder or Hub repo id (default: the bundled demo model)")
    group.add_argument("--device", default="auto", type=_device,
                       help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    group.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                       help="auto (default): bfloat16/float16 on GPUs, float32 on CPU")
    group.add_argument("--max-new-tokens", type=_positive_int, default=512, help="longest answer in tokens (default: 512)")
    group.add_argument("--temperature", type=_temperature, default=0.0, help="0 (default): greedy decoding; > 0: sampling")
    group.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help="compile the decode step (static cache, torch.compile; the first answer pays the "
                            "compilation); default: on CUDA only")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `groundinggpt` (every subcommand sets `handler`)."""
    common = _common_options()
    parser = _ArgumentParser(prog=PROGRAM, description="GroundingGPT: grounded answers about images, videos and sounds.",
                             parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model = _model_options()

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str, parents=(), **kwargs):
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common, *parents], **kwargs)
        sub.set_defaults(handler=handler)
        return sub

    ground = add("ground", command_ground, "Answer a question about an image (optionally with a sound); boxes in pixels.",
                 parents=[model])
    ground.add_argument("image")
    ground.add_argument("question", type=_text)
    ground.add_argument("--audio", help="a sound to localize in the image")
    ground.add_argument("--json", action="store_true", help='print {"answer", "boxes", "spans"} as one JSON object')
    ground.add_argument("--draw", metavar="OUT.png", type=_picture, help="write the image with the labelled boxes")

    video = add("video", command_video, "Answer a question about a video; spans in seconds.", parents=[model])
    video.add_argument("video")
    video.add_argument("question", type=_text)
    video.add_argument("--json", action="store_true", help='print {"answer", "boxes", "spans"} as one JSON object')
    video.add_argument("--draw", metavar="OUT.png", type=_picture,
                       help="write a timeline of sampled frames with the spans marked")
    video.add_argument("--frames", type=_positive_int, default=8, help="frames in the timeline picture (default: 8)")

    chat = add("chat", command_chat, "Interactive multi-turn chat with streamed answers. " + CHAT_HELP, parents=[model])
    media = chat.add_mutually_exclusive_group()
    media.add_argument("--image")
    media.add_argument("--video")
    chat.add_argument("--audio")

    demo = add("demo", command_demo, "Run the model on the bundled example media and write the pictures.", parents=[model])
    demo.add_argument("--output-dir", default="groundinggpt-demo", help="default: ./groundinggpt-demo")
    demo.add_argument("--manifest", help="demo manifest JSON (default: the bundled one)")

    web = add("web", command_web, "Serve the web demo (Gradio): ask about an image, an image + sound or a video in "
              "a browser. Needs the `web` extra.", parents=[model])
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    web.add_argument("--port", type=_port, default=7860, help="default: 7860")
    web.add_argument("--share", action="store_true",
                     help="also serve through a temporary public Gradio link (needs internet)")

    evaluation = add("eval", command_eval, "Evaluate on RefCOCO/+/g (refcoco), Charades-STA (charades) or VGG-SS (sound).",
                     parents=[model])
    evaluation.add_argument("task", choices=EVAL_TASKS, help="refcoco, charades or sound")
    evaluation.add_argument("--annotations", required=True, help="the task's JSONL (see the README's evaluation section)")
    evaluation.add_argument("--media-root", help="folder the media paths are relative to (default: the JSONL's folder)")
    evaluation.add_argument("--output-dir", required=True, help="predictions, run settings and summary; reruns resume")
    evaluation.add_argument("--batch-size", type=_positive_int, default=8, help="samples per generate call (default: 8)")
    evaluation.add_argument("--prompt", type=_text,
                            help="instruction template with {expression} (refcoco) or {query} (charades); "
                            "default: the checkpoint's own prompt for the task, else the package's")
    evaluation.add_argument("--limit", type=_positive_int, help="evaluate the first N samples only")
    evaluation.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    convert = add("convert-annotations", command_convert, "Convert an official benchmark release to the eval JSONL.")
    releases = convert.add_subparsers(dest="task", required=True, metavar="TASK")
    refcoco = releases.add_parser("refcoco", help="refer release: refs(unc|umd).p + instances.json", parents=[common])
    refcoco.add_argument("--refs", required=True, help="refs(unc).p (RefCOCO, RefCOCO+) or refs(umd).p (RefCOCOg)")
    refcoco.add_argument("--instances", required=True, help="instances.json of the same folder")
    refcoco.add_argument("--dataset", required=True, choices=("refcoco", "refcoco+", "refcocog"))
    refcoco.add_argument("--splits", nargs="+", help="refer splits to keep (default: all but train)")
    charades = releases.add_parser("charades", help="charades_sta_test.txt + Charades_v1_test.csv", parents=[common])
    charades.add_argument("--sta", required=True, help="charades_sta_test.txt")
    charades.add_argument("--csv", required=True, help="Charades_v1_test.csv (durations)")
    charades.add_argument("--video-template", default="{video_id}.mp4", help="video path (default: {video_id}.mp4)")
    sound = releases.add_parser("sound", help="VGG-SS vggss.json + extracted frames", parents=[common])
    sound.add_argument("--vggss", required=True, help="vggss.json")
    sound.add_argument("--media-root", required=True, help="folder holding the frames and audio")
    sound.add_argument("--frame-template", default="frames/{file}.jpg", help="default: frames/{file}.jpg")
    sound.add_argument("--audio-template", default="audio/{file}.wav", help="default: audio/{file}.wav")
    for release in (refcoco, charades, sound):
        release.add_argument("--output", required=True, help="the JSONL to write")

    export = add("export", command_export, "Write a model card into a model folder and optionally push it to the Hub.")
    export.add_argument("folder")
    export.add_argument("--repo-id", required=True, type=_text, help="ORG/NAME on the Hub")
    export.add_argument("--push", action="store_true", help="create the repo and upload the folder")
    export.add_argument("--private", action="store_true", help="create the repo as private")
    export.add_argument("--eval-results", nargs="+", metavar="FILE", help="`groundinggpt eval` summary JSON files")
    export.add_argument("--remote-code", action="store_true", help="copy the model code for trust_remote_code loading")
    export.add_argument("--overwrite", action="store_true", help="replace the folder's existing README.md")
    export.add_argument("--license", default="apache-2.0", help="default: apache-2.0")
    export.add_argument("--base-model", help="the checkpoint this one derives from")
    export.add_argument("--dataset", action="append", help="a training dataset (Hub id); repeatable")
    export.add_argument("--tag", action="append", help="an extra tag; repeatable")
    return parser


def _print_error(error: BaseException) -> None:
    message = " ".join(str(error).split())
    if not isinstance(error, (CLIError, OSError, ValueError, RuntimeError)) or not message:
        # Not a known kind of bad input: name the exception, the traceback is one `--debug` away.
        message = f"{type(error).__name__}: {message} (--debug shows the traceback)"
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `groundinggpt` with `argv` (default: `sys.argv[1:]`); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # librosa's fallback notices on an undecodable audio file: the error line says it all.
            warnings.filterwarnings("ignore", message="PySoundFile failed", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning, module="librosa")
            return args.handler(args)
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if getattr(args, "debug", False):
            raise
        _print_error(error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
