"""The web demo's conversations without a page or Gradio: streaming, drawing, numbers, new media, errors and one
generation at a time, with the embedded demo model."""

import threading

import numpy as np
import pytest

from modeling_groundinggpt.inference import GroundingAnswer
from modeling_groundinggpt.visualization import draw_boxes, draw_timeline
from modeling_groundinggpt.web.conversation import Conversation, Media, SharedGrounder, numbers_markdown

from .conftest import EXAMPLES


IMAGE = EXAMPLES["image"]
VIDEO = EXAMPLES["video"]


def collect(conversation, media, question):
    """The texts yielded while answering, and the final turn."""
    texts = []
    for turn in conversation.ask(media, question):
        texts.append(turn.text)
    return texts, turn


def test_ask_streams_the_answer_then_draws_it(demo_grounder):
    expected = demo_grounder.chat(image=IMAGE.image).ask(IMAGE.question)
    conversation = Conversation(SharedGrounder(demo_grounder))
    texts, turn = collect(conversation, Media(image=str(IMAGE.image)), IMAGE.question)

    assert texts[0] == ""  # the question is shown at once
    streamed = texts[1:-1]
    assert len(set(streamed)) >= 2 and all(expected.answer.startswith(text.strip()) for text in streamed)
    assert turn.answer.answer == expected.answer and turn.answer.boxes == expected.boxes
    assert np.array_equal(np.asarray(turn.drawing), np.asarray(draw_boxes(IMAGE.image, expected.boxes)))
    assert conversation.messages() == [{"role": "user", "content": IMAGE.question},
                                       {"role": "assistant", "content": expected.answer}]


def test_a_video_answer_is_drawn_on_a_timeline(demo_grounder):
    expected = demo_grounder.chat(video=VIDEO.video).ask(VIDEO.question)
    _, turn = collect(Conversation(SharedGrounder(demo_grounder)), Media(video=str(VIDEO.video)), VIDEO.question)
    assert turn.answer.spans == expected.spans and expected.spans
    drawn = draw_timeline(VIDEO.video, expected.spans, duration=expected.video_duration)
    assert np.array_equal(np.asarray(turn.drawing), np.asarray(drawn))


def test_same_media_continue_the_conversation_new_media_start_over(demo_grounder):
    conversation = Conversation(SharedGrounder(demo_grounder))
    image = Media(image=str(IMAGE.image))
    collect(conversation, image, IMAGE.question)
    collect(conversation, image, "And where is it now?")
    assert len(conversation.turns) == 2 and len(conversation.session.messages) == 4

    collect(conversation, Media(video=str(VIDEO.video)), VIDEO.question)
    assert [turn.question for turn in conversation.turns] == [VIDEO.question]
    conversation.clear()
    assert conversation.turns == [] and conversation.session is None


def test_bad_input_raises_and_the_conversation_goes_on(demo_grounder, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    conversation = Conversation(SharedGrounder(demo_grounder))
    with pytest.raises(ValueError, match="broken.png"):
        collect(conversation, Media(image=str(broken)), IMAGE.question)
    with pytest.raises(ValueError, match="not both"):
        collect(conversation, Media(image=str(IMAGE.image), video=str(VIDEO.video)), IMAGE.question)
    with pytest.raises(ValueError, match="question"):
        collect(conversation, Media(image=str(IMAGE.image)), "   ")
    assert conversation.turns == []
    _, turn = collect(conversation, Media(image=str(IMAGE.image)), IMAGE.question)
    assert turn.answer.boxes and conversation.turns == [turn]


def test_numbers_are_pixels_and_seconds():
    boxes = [{"phrase": "a | b", "box": [1.0, 2.25, 30.0, 40.5]}]
    spans = [{"phrase": "", "span": [0.5, 2.125]}]
    table = numbers_markdown(GroundingAnswer("...", boxes, spans, image_size=(64, 48), video_duration=4.0))
    assert "pixels of the 64 × 48 image" in table and "| a \\| b | 1.0 | 2.2 | 30.0 | 40.5 |" in table
    assert "seconds of the 4.00 s video" in table and "| - | 0.50 | 2.12 |" in table
    relative = numbers_markdown(GroundingAnswer("...", [{"phrase": "x", "box": [0.1, 0.2, 0.3, 0.4]}]))
    assert "relative to the square-padded image" in relative and "| x | 0.100 | 0.200 | 0.300 | 0.400 |" in relative
    assert numbers_markdown(GroundingAnswer("no numbers")) == "No box or time span in this answer."


def test_one_generation_at_a_time_for_every_browser(demo_grounder, monkeypatch):
    running, most = [0], [0]
    generate = demo_grounder.model.generate

    def counting_generate(*args, **kwargs):
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            return generate(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr(demo_grounder.model, "generate", counting_generate)
    shared = SharedGrounder(demo_grounder)
    answers = []

    def browser(media, question):
        answers.append(collect(Conversation(shared), media, question)[1].answer.answer)

    threads = [threading.Thread(target=browser, args=(Media(image=str(IMAGE.image)), IMAGE.question))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 3 and len(set(answers)) == 1
    assert most[0] == 1
