"""The Gradio page of `groundinggpt web`: upload an image (optionally with an audio clip) or a video, ask, see the
answer streamed, then drawn.

```python
from modeling_groundinggpt.web.app import build_demo, launch

launch(build_demo("path/to/groundinggpt-7b-hf"), host="127.0.0.1", port=7860)  # blocks; Ctrl-C stops it
```

The page works offline: Gradio's analytics and version check are off and its default theme uses bundled fonts.
Requests wait in one queue (one model, any number of browsers); answers are generated in worker threads, so the
page stays responsive while a video is decoded or an answer generated.
"""

import os

# Before Gradio is imported: helper Blocks that Gradio creates itself read this variable.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

import modeling_groundinggpt  # noqa: E402

from ..demo import DEFAULT_MANIFEST, load_manifest  # noqa: E402
from ..inference import GenerationOptions, GroundingGPT  # noqa: E402
from ..visualization import draw_timeline  # noqa: E402
from .conversation import Conversation, Media, SharedGrounder, numbers_markdown  # noqa: E402


TITLE = "GroundingGPT"
INTRO = (
    "Upload an **image** (optionally with an **audio clip**, to ask which object makes the sound) or a **video**, "
    "then ask where or when. The answer is streamed, then drawn: boxes on the image, time spans on a timeline of "
    "the video's frames, with their numbers in pixels / seconds. New media start a new conversation."
)
# For checkpoints trained on real data: the original demo's sound example, and a grounded description.
GENERAL_QUESTIONS = (
    "Where is the sound's point of emission in this image? Include the object positions in [x0, y0, x1, y1] format.",
    "Describe the image and include the object positions in [x0, y0, x1, y1] format.",
)
# Errors of bad media or bad questions: shown on the page, the server goes on.
USER_ERRORS = (OSError, ValueError, RuntimeError)
# Small pictures (the demo media are about 200 px) are scaled up to the width of their box.
CSS = "#drawing img, #frames img { width: 100%; height: 100%; object-fit: contain; }"


def _path(payload: dict[str, Any] | None) -> str | None:
    return payload.get("path") if payload else None


def _describe(error: BaseException, payloads: list[dict[str, Any] | None]) -> str:
    """The error in one line, naming uploaded files by their own names rather than Gradio's cache paths."""
    message = " ".join(str(error).split()) or type(error).__name__
    for payload in payloads:
        if payload and payload.get("path") and payload.get("orig_name"):
            message = message.replace(payload["path"], payload["orig_name"])
    return message


def build_demo(
    model: str | os.PathLike | GroundingGPT | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    generation: GenerationOptions | None = None,
    manifest: str | os.PathLike = DEFAULT_MANIFEST,
) -> gr.Blocks:
    """The page, with its queue set up, around one model.

    Args:
        model: a loaded `GroundingGPT`, a converted folder or Hub repo id, or None for the embedded demo model.
        device, dtype: as in `GroundingGPT.from_pretrained` (when `model` is not loaded yet).
        generation: decoding settings (default: greedy, 512 new tokens at most).
        manifest: the examples offered on the page (`groundinggpt demo`'s manifest format).
    """
    if not isinstance(model, GroundingGPT):
        model = GroundingGPT.from_pretrained(model or modeling_groundinggpt.DEMO_MODEL, device=device, dtype=dtype)
    shared = SharedGrounder(model, generation)
    examples = load_manifest(manifest)

    def ask(conversation: Conversation | None, image: dict | None, audio: dict | None, video: dict | None,
            question: str) -> Iterator[tuple]:
        conversation = conversation or Conversation(shared)
        media = Media(image=_path(image), video=_path(video), audio=_path(audio))
        started = time.perf_counter()
        try:
            for turn in conversation.ask(media, question):
                if turn.answer is None:
                    working = "Decoding the video and answering…" if media.video else "Answering…"
                    yield conversation, conversation.messages(turn), gr.skip(), gr.skip(), working, ""
            seconds = time.perf_counter() - started
            yield (conversation, conversation.messages(), turn.drawing, numbers_markdown(turn.answer),
                   f"Answered in {seconds:.1f} s.", "")
        except USER_ERRORS as error:
            # The failed question goes back into the box; the conversation is as it was before it.
            yield (conversation, conversation.messages(), None, "",
                   f"**Error:** {_describe(error, [image, audio, video])}", question)

    def preview(video: dict | None) -> tuple:
        """The frames the model will see, decoded in a worker thread while the page goes on."""
        if not video:
            return gr.update(value=None, visible=False), gr.skip()
        try:
            return gr.update(value=draw_timeline(video["path"], []), visible=True), ""
        except USER_ERRORS as error:
            return gr.update(value=None, visible=False), f"**Error:** {_describe(error, [video])}"

    def clear() -> tuple:
        return None, None, None, None, gr.update(value=None, visible=False), "", [], None, "", ""

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        conversation = gr.State(None)
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                image = gr.Image(type="filepath", label="Image", sources=["upload", "clipboard"], height=240,
                                 elem_id="image")
                audio = gr.Audio(type="filepath", label="Audio clip (optional, with the image)", sources=["upload"],
                                 elem_id="audio")
                # A file rather than a player: browsers play few codecs, OpenCV decodes many.
                video = gr.File(label="Video", file_types=["video"], height=120, elem_id="video")
                frames = gr.Image(label="Frames the model sees", type="pil", format="png", interactive=False,
                                  show_label=False, buttons=[], height=120, visible=False, elem_id="frames")
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label="Conversation", height=320, elem_id="chat", buttons=["copy"])
                question = gr.Textbox(label="Question", placeholder="e.g. Where is the blue box?", elem_id="question")
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear_button = gr.Button("Clear", elem_id="clear")
                status = gr.Markdown(elem_id="status")
                gr.Examples(
                    [[q] for q in dict.fromkeys([e.question for e in examples] + list(GENERAL_QUESTIONS))],
                    inputs=[question], label="Example questions",
                )
        with gr.Row():
            # No label or buttons floating over the picture, where they could hide a box.
            drawing = gr.Image(label="The answer drawn", type="pil", format="png", interactive=False, scale=2,
                               show_label=False, buttons=[], height=360, elem_id="drawing")
            numbers = gr.Markdown(elem_id="numbers")
        bundled = gr.Examples(
            [[str(path) if path else None for path in (e.image, e.audio, e.video)] + [e.question] for e in examples],
            inputs=[image, audio, video, question],
            example_labels=[f"{e.name}: {e.question}" for e in examples],
            label="Bundled examples (click one to ask it)",
        )

        ask_kwargs = dict(
            fn=ask,
            inputs=[conversation, image, audio, video, question],
            outputs=[conversation, chatbot, drawing, numbers, status, question],
            # Our own loading reports unreadable uploads on the page (Gradio still checks the paths are uploads).
            preprocess=False,
            concurrency_limit=1,
            concurrency_id="model",
            show_progress="minimal",  # the place in the queue, then the time taken
            show_progress_on=[chatbot],
        )
        gr.on([question.submit, send.click], **ask_kwargs)
        bundled.load_input_event.then(**ask_kwargs)

        # An image (with or without audio) and a video exclude each other; new media clear what was shown.
        shown = [chatbot, drawing, numbers, status]
        image.upload(lambda: (None, [], None, "", ""), outputs=[video, *shown], queue=False)
        audio.upload(lambda: (None, [], None, "", ""), outputs=[video, *shown], queue=False)
        video.upload(lambda: (None, None, [], None, "", ""), outputs=[image, audio, *shown], queue=False)
        video.change(preview, inputs=[video], outputs=[frames, status], preprocess=False, concurrency_id="preview",
                     concurrency_limit=2, show_progress="minimal", show_progress_on=[video])
        # The chat's own bin icon: the next question starts a new conversation.
        chatbot.clear(lambda: None, outputs=[conversation], queue=False)
        clear_button.click(clear, outputs=[conversation, image, audio, video, frames, question, *shown], queue=False)
    demo.queue(default_concurrency_limit=1)
    return demo


def launch(
    demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False, block: bool = True
) -> gr.Blocks:
    """Serve the page. `host`/`port` None: Gradio's defaults (`GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT`, else
    127.0.0.1:7860), as a Hugging Face Space sets them. `block=False` returns at once; stop with `demo.close()`.
    With `block=True`, Ctrl-C stops the server and returns, also when it comes while Gradio is still starting."""
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=share,
            prevent_thread_lock=not block,
            ssr_mode=False,
            css=CSS,
            footer_links=["gradio"],  # no API page: the events take raw uploads and each browser's conversation
        )
    except KeyboardInterrupt:
        # Gradio serves requests before `launch` reaches its own Ctrl-C handling; an interrupt in between would
        # otherwise leave the server running.
        demo.close()
    return demo


__all__ = ["build_demo", "launch"]
