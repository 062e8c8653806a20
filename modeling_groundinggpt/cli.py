"""The `groundinggpt` command: ground, video, chat, demo, web, eval, convert-annotations and export.

Each subcommand is a thin layer over the Python API (`inference`, `visualization`, `demo`, `evaluation`,
`model_card`). Exit codes: 0 success, 1 bad input or failure (one `groundinggpt: error: ...` line on stderr),
2 bad command line (argparse), 130 interrupted.
"""

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import modeling_groundinggpt

from .demo import DEFAULT_MANIFEST, run_demo, verdict
from .evaluation import TASKS, AnnotationFormatError, EvaluationError, evaluate, format_table, load_samples
from .evaluation.converters import convert_charades, convert_refer, convert_vggss
from .evaluation.formats import write_samples
from .evaluation.harness import output_paths, resolve_prompt
from .inference import ChatSession, GenerationOptions, GroundingAnswer, GroundingGPT
from .model_card import export_model, load_summaries
from .visualization import draw_boxes, draw_timeline


PROGRAM = "groundinggpt"
CHAT_HELP = (
    "Commands: /image PATH, /video PATH, /audio PATH (switch media and start over), /clear (no media, new "
    "conversation), /quit. An empty line or end of input also quits."
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def _require_file(path: str | Path | None, kind: str) -> None:
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"{kind.capitalize()} file not found: {str(path)!r}")


def resolve_model(model: str | None) -> str:
    """`--model`, or the demo model bundled as `modeling_groundinggpt.DEMO_MODEL` when the option is omitted."""
    if model:
        looks_local = model.startswith(("/", "./", "../", "~")) or Path(model).exists()
        if looks_local and not (Path(model).expanduser() / "config.json").is_file():
            raise CLIError(f"{model} is not a GroundingGPT model folder (no config.json).")
        return str(Path(model).expanduser()) if looks_local else model
    demo_model = Path(modeling_groundinggpt.DEMO_MODEL)
    if not (demo_model / "config.json").is_file():
        raise CLIError(
            f"the embedded demo model is missing from this installation ({demo_model}); pass --model "
            "PATH_OR_REPO_ID (a converted GroundingGPT folder or a Hub repo id)."
        )
    return str(demo_model)


def load_grounder(args: argparse.Namespace) -> GroundingGPT:
    """The model of `--model/--device/--dtype` with the decoding options of the command line."""
    options = GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    return GroundingGPT.from_pretrained(resolve_model(args.model), device=args.device, dtype=args.dtype, generation=options)


def _print_answer(answer: GroundingAnswer, as_json: bool, with_text: bool = True) -> None:
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
    answer = load_grounder(args).ground(args.image, args.question, audio=args.audio)
    _print_answer(answer, args.json)
    if args.draw:
        _save(draw_boxes(args.image, answer.boxes), args.draw)
    return 0


def command_video(args: argparse.Namespace) -> int:
    _require_file(args.video, "video")
    answer = load_grounder(args).ground_video(args.video, args.question)
    _print_answer(answer, args.json)
    if args.draw:
        _save(draw_timeline(args.video, answer.spans, num_frames=args.frames, duration=answer.video_duration), args.draw)
    return 0


def _chat_command(session: ChatSession, line: str) -> bool:
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


def command_chat(args: argparse.Namespace) -> int:
    for path, kind in ((args.image, "image"), (args.video, "video"), (args.audio, "audio")):
        _require_file(path, kind)
    session = load_grounder(args).chat(image=args.image, video=args.video, audio=args.audio)
    print(CHAT_HELP, file=sys.stderr)
    while True:
        try:
            line = input("Human: ").strip()
        except EOFError:
            print()
            return 0
        if not line:
            return 0
        if line.startswith("/"):
            try:
                if not _chat_command(session, line):
                    return 0
            except (CLIError, FileNotFoundError) as error:
                _print_error(error)
            continue
        print("Assistant: ", end="", flush=True)
        try:
            answer = session.ask(line, on_text=lambda text: print(text, end="", flush=True))
        except (OSError, ValueError, RuntimeError) as error:  # bad media, unreadable file, out of memory: chat goes on
            print(flush=True)
            _print_error(error)
            continue
        print()
        _print_answer(answer, as_json=False, with_text=False)


def command_demo(args: argparse.Namespace) -> int:
    results = run_demo(load_grounder(args), args.output_dir, manifest=args.manifest)
    for result in results:
        print(f"[{result['name']}] {result['question']}\n  {result['answer']}")
        if result["iou"] is not None:
            unit = " s" if len(result["expected"]) == 2 else " px"
            print(f"  expected {result['expected']}{unit}: {verdict(result['iou'])}")
        print(f"  -> {result['drawing']}")
    return 0


def command_web(args: argparse.Namespace) -> int:
    try:
        from .web.app import build_demo, launch
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        raise CLIError("the web demo needs Gradio: pip install \"modeling-groundinggpt[web]\"") from None
    launch(build_demo(load_grounder(args)), host=args.host, port=args.port, share=args.share)
    return 0


def command_eval(args: argparse.Namespace) -> int:
    task = TASKS[args.task]
    samples = load_samples(task.name, args.annotations)
    if args.limit is not None:
        samples = samples[: args.limit]
    if args.prompt is not None:
        task.check_prompt(args.prompt)
    media_root = Path(args.media_root) if args.media_root else Path(args.annotations).parent
    model = resolve_model(args.model)
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
        options=GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
        model_name=model,
        progress=not args.no_progress,
    )
    print(format_table(summary))
    print(f"Summary written to {output_paths(Path(args.output_dir), task.name)['summary']}", file=sys.stderr)
    return 0


def command_convert(args: argparse.Namespace) -> int:
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
    summaries = load_summaries(args.eval_results or [])
    card_kwargs = {"license": args.license, "base_model": args.base_model, "datasets": args.dataset or (),
                   "tags": args.tag or ()}
    readme = export_model(args.folder, args.repo_id, summaries, push=args.push, private=args.private,
                          remote_code=args.remote_code, card_kwargs=card_kwargs, overwrite=args.overwrite)
    print(f"Model card written to {readme}")
    if args.push:
        print(f"Uploaded {args.folder} to https://huggingface.co/{args.repo_id}")
    return 0


def _model_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("model")
    group.add_argument("--model", help="converted GroundingGPT folder or Hub repo id (default: the bundled demo model)")
    group.add_argument("--device", default="auto", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    group.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                       help="auto (default): bfloat16/float16 on GPUs, float32 on CPU")
    group.add_argument("--max-new-tokens", type=int, default=512, help="longest answer in tokens (default: 512)")
    group.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy decoding; > 0: sampling")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `groundinggpt` (every subcommand sets `handler`)."""
    parser = argparse.ArgumentParser(prog=PROGRAM, description="GroundingGPT: grounded answers about images, videos and sounds.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model = _model_options()

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str, **kwargs) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, **kwargs)
        sub.set_defaults(handler=handler)
        return sub

    ground = add("ground", command_ground, "Answer a question about an image (optionally with a sound); boxes in pixels.",
                 parents=[model])
    ground.add_argument("image")
    ground.add_argument("question")
    ground.add_argument("--audio", help="a sound to localize in the image")
    ground.add_argument("--json", action="store_true", help='print {"answer", "boxes", "spans"} as one JSON object')
    ground.add_argument("--draw", metavar="OUT.png", help="write the image with the labelled boxes")

    video = add("video", command_video, "Answer a question about a video; spans in seconds.", parents=[model])
    video.add_argument("video")
    video.add_argument("question")
    video.add_argument("--json", action="store_true", help='print {"answer", "boxes", "spans"} as one JSON object')
    video.add_argument("--draw", metavar="OUT.png", help="write a timeline of sampled frames with the spans marked")
    video.add_argument("--frames", type=int, default=8, help="frames in the timeline picture (default: 8)")

    chat = add("chat", command_chat, "Interactive multi-turn chat with streamed answers. " + CHAT_HELP, parents=[model])
    media = chat.add_mutually_exclusive_group()
    media.add_argument("--image")
    media.add_argument("--video")
    chat.add_argument("--audio")

    demo = add("demo", command_demo, "Run the model on the bundled example media and write the pictures.", parents=[model])
    demo.add_argument("--output-dir", default="groundinggpt-demo", help="default: ./groundinggpt-demo")
    demo.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="demo manifest JSON (default: the bundled one)")

    web = add("web", command_web, "Serve the web demo (Gradio): ask about an image, an image + sound or a video in "
              "a browser. Needs the `web` extra.", parents=[model])
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    web.add_argument("--port", type=int, default=7860, help="default: 7860")
    web.add_argument("--share", action="store_true",
                     help="also serve through a temporary public Gradio link (needs internet)")

    evaluation = add("eval", command_eval, "Evaluate on RefCOCO/+/g (refcoco), Charades-STA (charades) or VGG-SS (sound).",
                     parents=[model])
    evaluation.add_argument("task", choices=tuple(TASKS),
                            help="; ".join(f"{name}: {task.title}" for name, task in TASKS.items()))
    evaluation.add_argument("--annotations", required=True, help="the task's JSONL (see the README's evaluation section)")
    evaluation.add_argument("--media-root", help="folder the media paths are relative to (default: the JSONL's folder)")
    evaluation.add_argument("--output-dir", required=True, help="predictions, run settings and summary; reruns resume")
    evaluation.add_argument("--batch-size", type=int, default=8, help="samples per generate call (default: 8)")
    evaluation.add_argument("--prompt", help="instruction template with {expression} (refcoco) or {query} (charades); "
                            "default: the checkpoint's own prompt for the task, else the package's")
    evaluation.add_argument("--limit", type=int, help="evaluate the first N samples only")
    evaluation.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    convert = add("convert-annotations", command_convert, "Convert an official benchmark release to the eval JSONL.")
    releases = convert.add_subparsers(dest="task", required=True, metavar="TASK")
    refcoco = releases.add_parser("refcoco", help="refer release: refs(unc|umd).p + instances.json")
    refcoco.add_argument("--refs", required=True, help="refs(unc).p (RefCOCO, RefCOCO+) or refs(umd).p (RefCOCOg)")
    refcoco.add_argument("--instances", required=True, help="instances.json of the same folder")
    refcoco.add_argument("--dataset", required=True, choices=("refcoco", "refcoco+", "refcocog"))
    refcoco.add_argument("--splits", nargs="+", help="refer splits to keep (default: all but train)")
    charades = releases.add_parser("charades", help="charades_sta_test.txt + Charades_v1_test.csv")
    charades.add_argument("--sta", required=True, help="charades_sta_test.txt")
    charades.add_argument("--csv", required=True, help="Charades_v1_test.csv (durations)")
    charades.add_argument("--video-template", default="{video_id}.mp4", help="video path (default: {video_id}.mp4)")
    sound = releases.add_parser("sound", help="VGG-SS vggss.json + extracted frames")
    sound.add_argument("--vggss", required=True, help="vggss.json")
    sound.add_argument("--media-root", required=True, help="folder holding the frames and audio")
    sound.add_argument("--frame-template", default="frames/{file}.jpg", help="default: frames/{file}.jpg")
    sound.add_argument("--audio-template", default="audio/{file}.wav", help="default: audio/{file}.wav")
    for release in (refcoco, charades, sound):
        release.add_argument("--output", required=True, help="the JSONL to write")

    export = add("export", command_export, "Write a model card into a model folder and optionally push it to the Hub.")
    export.add_argument("folder")
    export.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
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
    message = " ".join(str(error).split()) or type(error).__name__
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
    except (CLIError, AnnotationFormatError, EvaluationError, OSError, ValueError) as error:
        _print_error(error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
