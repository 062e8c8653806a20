"""Question and answer templates of the synthetic tasks, in the model's grounding text format.

Answers write boxes with `format_box` (relative to the square-padded image, 3 decimals) and spans with
`format_span` (relative to the duration, 2 decimals), so they parse back with `post_process_grounding`.
"""

from collections.abc import Sequence

from modeling_groundinggpt.processing.grounding import format_box, format_span


IMAGE_QUESTION = "Where is the {color} box?"
VIDEO_QUESTION = "When is the {color} square visible?"
SOUND_QUESTION = "Which object makes this sound?"

IMAGE_MARKER = "<image>"
VIDEO_MARKER = "<video>"
SOUND_MARKER = "<sound>"


def box_answer(color: str, box: Sequence[int], image_size: Sequence[int]) -> str:
    """`"The red box[0.123, 0.456, 0.789, 0.901]."` for a pixel box of an image of size (width, height)."""
    return f"The {color} box{format_box(box, image_size)}."


def span_answer(color: str, start_s: float, end_s: float, duration_s: float) -> str:
    """`"The red square is visible in {0.25, 0.50}."` for a span in seconds of a video of `duration_s` seconds."""
    return f"The {color} square is visible in {format_span(start_s, end_s, duration_s)}."


def human_turn(question: str, markers: Sequence[str]) -> str:
    """The human message of the data format: each media marker on its own line, then the question.

    Markers must be given in the order the chat template writes them (sounds, videos, images), so that a record
    and the same sample sent through `apply_chat_template` give the same text.
    """
    return "".join(f"{marker}\n" for marker in markers) + question


def conversation(question: str, markers: Sequence[str], answer: str) -> list[dict[str, str]]:
    """One LLaVA/GroundingGPT conversation: a human turn with the markers and question, a gpt turn with the answer."""
    return [{"from": "human", "value": human_turn(question, markers)}, {"from": "gpt", "value": answer}]


__all__ = [
    "IMAGE_MARKER",
    "IMAGE_QUESTION",
    "SOUND_MARKER",
    "SOUND_QUESTION",
    "VIDEO_MARKER",
    "VIDEO_QUESTION",
    "box_answer",
    "conversation",
    "human_turn",
    "span_answer",
]
