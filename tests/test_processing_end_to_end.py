"""Raw media file -> converted folder's processor -> model: logits and greedy ids against the original run."""

import pytest
import torch
from transformers import AutoProcessor

from conftest import FIXTURES, load_case


CASES = {
    "image": {"type": "image", "path": str(FIXTURES / "media" / "image.png")},
    "video": {"type": "video", "path": str(FIXTURES / "media" / "video.mp4")},
    "audio": {"type": "audio", "path": str(FIXTURES / "media" / "audio.wav")},
}
# Max |logit diff| measured on CPU: image 3.5e-6, audio 1.5e-5 (features within 6.2e-4), video 0.074: OpenCV
# decoding + bilinear resize differ from decord's decode-time scaling by 1.74/255 per pixel on average, and the
# tiny random-weight model is sensitive to the frames (zeroing them moves the logits by 2.6).
LOGIT_TOLERANCE = {"image": 1e-4, "audio": 1e-4, "video": 0.1}


@pytest.fixture(scope="module")
def processor(converted_dir):
    import modeling_groundinggpt.processing  # noqa: F401  (registers GroundingGPTProcessor with AutoProcessor)

    return AutoProcessor.from_pretrained(converted_dir)


@pytest.mark.parametrize("case", sorted(CASES))
def test_raw_media_to_logits(processor, tiny_model, case):
    description, tensors = load_case(case)
    question = description["conversation_messages"][0][1].split("\n", 1)[1]
    messages = [{"role": "user", "content": [CASES[case], {"type": "text", "text": question}]}]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["input_ids"].tolist() == [description["input_ids"]]
    with torch.no_grad():
        logits = tiny_model(**inputs).logits
    assert (logits - tensors["logits"]).abs().max().item() <= LOGIT_TOLERANCE[case]

    generated = tiny_model.generate(**inputs, do_sample=False, max_new_tokens=8)
    assert generated[0, inputs["input_ids"].shape[1] :].tolist() == description["generated_ids"]
