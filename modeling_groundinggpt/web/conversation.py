"""The web demo's conversations, without the page: one shared model, one conversation per browser.

`SharedGrounder` holds the model and lets one generation run at a time; each browser gets a `Conversation` (a
`ChatSession` plus the turns shown), whose `ask` streams the answer and then draws it. Nothing here imports Gradio.
"""

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..inference import ChatSession, GenerationOptions, GroundingAnswer, GroundingGPT
from ..visualization import draw_boxes, draw_timeline


@dataclass(frozen=True)
class Media:
    """File paths of a conversation's media: an image (optionally with an audio clip), or a video."""

    image: str | None = None
    video: str | None = None
    audio: str | None = None

    def check(self) -> None:
        """Raises ValueError for a combination the model was not trained on."""
        if self.video is not None and (self.image is not None or self.audio is not None):
            raise ValueError("Use an image (optionally with an audio clip) or a video, not both.")


@dataclass
class Turn:
    """What the page shows of one answer while it is generated (`answer` is None) and once it is done."""

    question: str
    text: str
    answer: GroundingAnswer | None = None
    drawing: Image.Image | None = None


class SharedGrounder:
    """One model for every browser: generations run one at a time, whoever asks.

    The page's queue already runs one request at a time; the lock also covers a generation that goes on after its
    browser went away (its request is then over for the queue, not for the model).
    """

    def __init__(self, grounder: GroundingGPT, options: GenerationOptions | None = None) -> None:
        self.grounder = grounder
        self.options = options
        self.lock = threading.Lock()

    def stream(self, session: ChatSession, question: str) -> Iterator[str | GroundingAnswer]:
        """Ask `session` in a worker thread: yields the answer text as it grows, then the `GroundingAnswer`.

        Raises the error of `ChatSession.ask` (e.g. unreadable media), after which the session is unchanged.
        """
        events: queue.Queue = queue.Queue()

        def run() -> None:
            try:
                with self.lock:
                    events.put(session.ask(question, on_text=events.put, options=self.options))
            except Exception as error:  # re-raised in the caller's thread below
                events.put(error)

        threading.Thread(target=run, daemon=True).start()
        text = ""
        while True:
            event = events.get()
            if isinstance(event, str):
                text += event
                yield text
            elif isinstance(event, Exception):
                raise event
            else:
                yield event
                return


def draw_answer(media: Media, answer: GroundingAnswer) -> Image.Image | None:
    """The answer drawn: boxes on the image, or the spans on a timeline of the video's frames (None without
    either)."""
    if media.video is not None:
        return draw_timeline(media.video, answer.spans, duration=answer.video_duration)
    if media.image is not None:
        return draw_boxes(media.image, answer.boxes)
    return None


def _cell(text: str) -> str:
    return (text or "-").replace("|", "\\|")


def numbers_markdown(answer: GroundingAnswer) -> str:
    """A Markdown table of the answer's boxes in pixels of the original image and spans in seconds (relative
    values when the answer has no image or video to convert them with)."""
    sections = []
    if answer.boxes:
        unit = ("pixels of the {} × {} image".format(*answer.image_size) if answer.image_size
                else "relative to the square-padded image")
        number = "{:.1f}" if answer.image_size else "{:.3f}"
        rows = [f"| {_cell(item['phrase'])} | " + " | ".join(number.format(value) for value in item["box"]) + " |"
                for item in answer.boxes]
        sections.append("\n".join([f"**Boxes** ({unit})", "", "| phrase | x1 | y1 | x2 | y2 |",
                                   "|---|---:|---:|---:|---:|", *rows]))
    if answer.spans:
        unit = (f"seconds of the {answer.video_duration:.2f} s video" if answer.video_duration
                else "fractions of the video")
        rows = [f"| {_cell(item['phrase'])} | {item['span'][0]:.2f} | {item['span'][1]:.2f} |" for item in answer.spans]
        sections.append("\n".join([f"**Spans** ({unit})", "", "| phrase | start | end |", "|---|---:|---:|", *rows]))
    return "\n\n".join(sections) or "No box or time span in this answer."


@dataclass
class Conversation:
    """One browser's conversation about one set of media; new media start a new conversation."""

    shared: SharedGrounder
    media: Media = field(default_factory=Media)
    turns: list[Turn] = field(default_factory=list)
    session: ChatSession | None = None

    def clear(self) -> None:
        self.media, self.turns, self.session = Media(), [], None

    def ask(self, media: Media, question: str) -> Iterator[Turn]:
        """Answer `question` about `media`: yields the new turn at once (no text yet), as its text grows, and once
        more with the parsed answer and its drawing, when it has joined `turns`.

        Raises:
            ValueError: empty question, media the model cannot take together, undecodable media.
            OSError: unreadable file.
        """
        question = question.strip()
        if not question:
            raise ValueError("Type a question first.")
        media.check()
        if self.session is None or media != self.media:
            self.session = ChatSession(self.shared.grounder)
            self.session.set_media(image=media.image, video=media.video, audio=media.audio)
            self.media, self.turns = media, []
        turn = Turn(question, "")
        yield turn
        for event in self.shared.stream(self.session, question):
            if isinstance(event, str):
                turn.text = event
                yield turn
            else:
                turn.text, turn.answer = event.answer, event
        turn.drawing = draw_answer(media, turn.answer)
        self.turns.append(turn)
        yield turn

    def messages(self, pending: Turn | None = None) -> list[dict[str, Any]]:
        """The answered turns, then the `pending` one being answered, as chat messages `{"role", "content"}`."""
        messages = []
        for turn in [*self.turns, pending] if pending is not None else self.turns:
            messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.text}]
        return messages


__all__ = ["Conversation", "Media", "SharedGrounder", "Turn", "draw_answer", "numbers_markdown"]
