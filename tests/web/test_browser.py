"""The web demo in a real browser (headless Debian Chromium driven by Playwright): upload, ask, read the streamed
answer, the drawn picture and its numbers back from the page; bad uploads; two browsers on one model."""

import io
import threading

import numpy as np
from PIL import Image

from modeling_groundinggpt.visualization import draw_boxes, draw_timeline

from .conftest import EXAMPLES, TIMEOUT_MS


IMAGE, VIDEO, SOUND = EXAMPLES["image"], EXAMPLES["video"], EXAMPLES["sound"]
# Records every text the last answer bubble shows, to see the answer arrive in pieces.
WATCH_ANSWER = """() => {
    window.shownAnswers = [];
    new MutationObserver(() => {
        const answers = document.querySelectorAll('#chat [data-testid=bot]');
        if (answers.length) window.shownAnswers.push(answers[answers.length - 1].innerText.trim());
    }).observe(document.querySelector('#chat'), {childList: true, subtree: true, characterData: true});
}"""


def upload(page, component: str, path) -> None:
    page.set_input_files(f"#{component} input[type=file]", str(path))


def ask(page, question: str) -> str:
    """Type the question, press Ask, wait until it is answered (or refused); returns the status line."""
    page.fill("#question textarea", question)
    page.click("#ask")
    return wait_for_answer(page, question)


def wait_for_answer(page, question: str) -> str:
    page.wait_for_function(
        """(question) => {
            const asked = [...document.querySelectorAll('#chat [data-testid=user]')].map(e => e.innerText.trim());
            const status = document.querySelector('#status').innerText;
            return (asked.includes(question) || status.includes('Error')) && /Answered|Error/.test(status);
        }""",
        arg=question, timeout=TIMEOUT_MS,
    )
    return page.inner_text("#status")


def answers(page) -> list[str]:
    return [text.strip() for text in page.locator("#chat [data-testid=bot]").all_inner_texts()]


def drawn_picture(page) -> np.ndarray:
    """The answer's picture as the page shows it, fetched from its own URL."""
    source = page.get_attribute("#drawing img", "src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(source).body())).convert("RGB"))


def table_rows(page) -> list[list[str]]:
    return [[cell.strip() for cell in row.split("\t")] for row in
            page.locator("#numbers tbody tr").all_inner_texts()]


def assert_box_drawn(picture: np.ndarray, image_path, box: list[float]) -> None:
    """The outline is drawn along the box's edges, and the inside of the box is left as it was (the picture may be
    the image scaled up)."""
    original = Image.open(image_path).convert("RGB")
    scale = picture.shape[1] / original.width
    original = np.asarray(original.resize((picture.shape[1], picture.shape[0]), Image.Resampling.NEAREST))
    x1, y1, x2, y2 = (round(value * scale) for value in box)
    changed = np.any(picture != original, axis=-1)
    reach = max(1, round(scale))
    for x, y in ((x1, (y1 + y2) // 2), (x2, (y1 + y2) // 2), ((x1 + x2) // 2, y2)):
        assert changed[y - reach:y + reach + 1, x - reach:x + reach + 1].any(), f"no outline near ({x}, {y})"
    assert not changed[(y1 + y2) // 2, (x1 + x2) // 2], "the middle of the box was painted over"


def test_image_question_streamed_drawn_and_continued(open_page, demo_grounder, screenshot):
    session = demo_grounder.chat(image=IMAGE.image)
    expected, expected_follow_up = session.ask(IMAGE.question), session.ask("And where is it now?")
    page = open_page()
    upload(page, "image", IMAGE.image)
    page.wait_for_selector("#image img")
    page.evaluate(WATCH_ANSWER)

    assert ask(page, IMAGE.question).startswith("Answered")
    assert answers(page) == [expected.answer]
    shown = [text for text in page.evaluate("window.shownAnswers") if text]
    assert len(set(shown)) >= 2, f"the answer was not streamed: {shown}"
    assert all(expected.answer.startswith(text) for text in shown)
    # The numbers beside the picture are the boxes in pixels of the original image.
    assert f"{expected.image_size[0]} × {expected.image_size[1]} image" in page.inner_text("#numbers")
    assert table_rows(page) == [[box["phrase"]] + [f"{value:.1f}" for value in box["box"]] for box in expected.boxes]
    picture = drawn_picture(page)
    assert np.array_equal(picture, np.asarray(draw_boxes(IMAGE.image, expected.boxes)))
    assert_box_drawn(picture, IMAGE.image, expected.boxes[0]["box"])
    screenshot(page, "web-demo-image")

    # Multi-turn: the same image, a second question; then Clear empties the page.
    ask(page, "And where is it now?")
    assert answers(page) == [expected.answer, expected_follow_up.answer]
    page.click("#clear")
    page.wait_for_function("() => !document.querySelector('#chat [data-testid=user]')")
    assert page.locator("#image img").count() == 0 and page.input_value("#question textarea") == ""


def test_video_question_drawn_on_a_timeline(open_page, demo_grounder, screenshot):
    expected = demo_grounder.chat(video=VIDEO.video).ask(VIDEO.question)
    page = open_page()
    upload(page, "video", VIDEO.video)
    page.wait_for_selector("#frames img")  # the frames the model sees, decoded in a worker thread

    assert ask(page, VIDEO.question).startswith("Answered")
    assert answers(page) == [expected.answer]
    assert f"seconds of the {expected.video_duration:.2f} s video" in page.inner_text("#numbers")
    assert table_rows(page) == [[span["phrase"]] + [f"{value:.2f}" for value in span["span"]]
                                for span in expected.spans]
    timeline = draw_timeline(VIDEO.video, expected.spans, duration=expected.video_duration)
    assert np.array_equal(drawn_picture(page), np.asarray(timeline))
    screenshot(page, "web-demo-video")


def test_image_and_sound_question(open_page, demo_grounder, screenshot):
    expected = demo_grounder.chat(image=SOUND.image, audio=SOUND.audio).ask(SOUND.question)
    page = open_page()
    upload(page, "image", SOUND.image)
    upload(page, "audio", SOUND.audio)
    page.wait_for_selector("#image img")
    page.wait_for_selector("#audio audio, #audio [data-testid=waveform-controls]", state="attached")

    assert ask(page, SOUND.question).startswith("Answered")
    assert answers(page) == [expected.answer]
    assert table_rows(page) == [[box["phrase"]] + [f"{value:.1f}" for value in box["box"]] for box in expected.boxes]
    picture = drawn_picture(page)
    assert np.array_equal(picture, np.asarray(draw_boxes(SOUND.image, expected.boxes)))
    assert_box_drawn(picture, SOUND.image, expected.boxes[0]["box"])
    screenshot(page, "web-demo-sound")


def test_bundled_example_is_one_click_away(open_page, demo_grounder):
    expected = demo_grounder.chat(image=IMAGE.image).ask(IMAGE.question)
    page = open_page()
    page.get_by_text(f"{IMAGE.name}: {IMAGE.question}").click()
    assert wait_for_answer(page, IMAGE.question).startswith("Answered")
    assert answers(page) == [expected.answer]
    page.wait_for_selector("#image img")


def test_unreadable_uploads_are_reported_and_the_next_question_works(open_page, demo_grounder, tmp_path):
    broken_image, broken_video = tmp_path / "broken.png", tmp_path / "broken.mp4"
    broken_image.write_bytes(b"\x89PNG not really")
    broken_video.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really")
    page = open_page()

    upload(page, "image", broken_image)
    status = ask(page, IMAGE.question)
    assert status.startswith("Error:") and "broken.png" in status and "/tmp/gradio" not in status
    assert answers(page) == [] and page.input_value("#question textarea") == IMAGE.question

    upload(page, "video", broken_video)  # its frames cannot be decoded: said at once, and again on asking
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('broken.mp4')")
    assert "Error:" in ask(page, VIDEO.question)

    expected = demo_grounder.chat(image=IMAGE.image).ask(IMAGE.question)
    upload(page, "image", IMAGE.image)
    page.wait_for_function("() => !document.querySelector('#status').innerText.trim()")
    assert ask(page, IMAGE.question).startswith("Answered")
    assert answers(page) == [expected.answer]


def test_two_browsers_share_one_queue_and_the_page_stays_responsive(open_page, demo_grounder, monkeypatch):
    """While one browser's video is being decoded (held here until released), another browser loads the page,
    uploads and asks; its question waits in the queue and is answered after the first."""
    expected_video = demo_grounder.chat(video=VIDEO.video).ask(VIDEO.question)
    expected_image = demo_grounder.chat(image=IMAGE.image).ask(IMAGE.question)
    decoding, release = threading.Event(), threading.Event()
    prepare = demo_grounder.prepare

    def slow_prepare(*args, **kwargs):
        decoding.set()
        release.wait(timeout=TIMEOUT_MS / 1000)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(demo_grounder, "prepare", slow_prepare)
    first = open_page()
    upload(first, "video", VIDEO.video)
    first.wait_for_selector("#frames img")
    first.fill("#question textarea", VIDEO.question)
    first.click("#ask")
    assert decoding.wait(timeout=TIMEOUT_MS / 1000)

    second = open_page()  # served while the first answer is held
    upload(second, "image", IMAGE.image)
    second.wait_for_selector("#image img")
    second.fill("#question textarea", IMAGE.question)
    second.click("#ask")
    second.wait_for_timeout(500)
    assert answers(first) == [""] and answers(second) in ([], [""])
    assert first.inner_text("#status").startswith("Decoding the video")

    release.set()
    assert wait_for_answer(first, VIDEO.question).startswith("Answered")
    assert wait_for_answer(second, IMAGE.question).startswith("Answered")
    assert answers(first) == [expected_video.answer] and answers(second) == [expected_image.answer]
