"""High-level inference API of GroundingGPT: ground a question in an image, a video or an image + sound.

```python
from modeling_groundinggpt.inference import GroundingGPT

grounder = GroundingGPT.from_pretrained("path/to/groundinggpt-7b", device="auto", dtype="auto")
answer = grounder.ground("dog.jpg", "Where is the dog? Answer with its coordinates.")
answer.boxes    # [{"phrase": "The dog", "box": [x1, y1, x2, y2]}] in pixels of dog.jpg
answer = grounder.ground_video("clip.mp4", "When does the person open the door?")
answer.spans    # [{"phrase": "...", "span": [start_s, end_s]}] in seconds
answers = grounder.ground_batch([GroundingRequest("Where is the cup?", image="a.jpg"), ...])  # batched generation
session = grounder.chat(image="dog.jpg")
session.ask("What is in the image?", on_text=print)  # streamed
```

The model writes boxes relative to the square-padded image and spans relative to the video duration (see
`processing/grounding.py`); every answer here carries them converted back to pixels of the original image and to
seconds.
"""

import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, CompileConfig, TextIteratorStreamer

import modeling_groundinggpt.processing  # noqa: F401  (registers the processor with AutoProcessor)

from .loading import check_local_folder, from_pretrained_checked
from .processing.chat_template import SEPARATOR
from .processing.grounding import GroundedBox, GroundedSpan, parse_grounding


# The original conversation separator: the model ends each answer with it.
STOP_STRING = SEPARATOR
ImageInput = str | os.PathLike | PIL.Image.Image | np.ndarray
VideoInput = str | os.PathLike | np.ndarray | list
AudioInput = str | os.PathLike | np.ndarray


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding settings: greedy when `temperature` is 0 (the default), else sampling at that temperature.

    `max_new_tokens` is also capped by the model's position table minus the prompt length. `compile` compiles the
    decode step (static cache, `torch.compile` with the full graph; the first call of each shape pays the
    compilation); None (the default) compiles on CUDA only, where it pays off at once.
    """

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    compile: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a whole number of at least 1, got {self.max_new_tokens!r}.")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be 0 (greedy) or a positive number, got {self.temperature!r}.")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}.")


@dataclass(frozen=True)
class GroundingRequest:
    """One question with its media: an image (optionally with an audio, for sound localization), or a video."""

    question: str
    image: ImageInput | None = None
    video: VideoInput | None = None
    audio: AudioInput | None = None
    # Overrides the decoded video's duration (seconds) when converting spans, e.g. a dataset's official length.
    video_duration: float | None = None

    def __post_init__(self) -> None:
        check_text(self.question, "question")
        duration = self.video_duration
        if duration is not None and not (
            isinstance(duration, (int, float)) and not isinstance(duration, bool) and math.isfinite(duration) and duration > 0
        ):
            raise ValueError(f"video_duration must be a positive, finite number of seconds, got {duration!r}.")


@dataclass
class GroundingAnswer:
    """A decoded answer with its boxes (pixels of the original image) and spans (seconds)."""

    answer: str
    boxes: list[GroundedBox] = field(default_factory=list)
    spans: list[GroundedSpan] = field(default_factory=list)
    image_size: tuple[int, int] | None = None
    video_duration: float | None = None

    def to_dict(self, rounded: bool = False) -> dict[str, Any]:
        """`{"answer", "boxes", "spans"}`; `rounded` rounds pixels to 0.01 and seconds to 0.001, as in the JSON
        printed by `groundinggpt ground/video --json` and the demo's `results.json`."""
        def values(numbers: list[float], decimals: int) -> list[float]:
            return [round(value, decimals) for value in numbers] if rounded else list(numbers)

        boxes = [{"phrase": item["phrase"], "box": values(item["box"], 2)} for item in self.boxes]
        spans = [{"phrase": item["phrase"], "span": values(item["span"], 3)} for item in self.spans]
        return {"answer": self.answer, "boxes": boxes, "spans": spans}


def check_text(text: Any, name: str) -> str:
    """`text` if it is a non-empty string.

    Raises:
        TypeError: not a string (e.g. `bytes` or None). ValueError: empty or only whitespace.
    """
    if not isinstance(text, str):
        hint = "; decode it first" if isinstance(text, (bytes, bytearray)) else ""
        raise TypeError(f"The {name} must be a string, got {type(text).__name__}{hint}.")
    if not text.strip():
        raise ValueError(f"The {name} is empty.")
    return text


def _media_item(kind: str, media: Any) -> dict[str, Any]:
    if isinstance(media, (str, os.PathLike)):
        return {"type": kind, "path": os.fspath(media)}
    return {"type": kind, kind: media}


def user_message(
    text: str, image: ImageInput | None = None, video: VideoInput | None = None, audio: AudioInput | None = None
) -> dict[str, Any]:
    """A user chat message with its media items (the processor's chat template places them before the text)."""
    content = [
        _media_item(kind, media) for kind, media in (("image", image), ("video", video), ("audio", audio)) if media is not None
    ]
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def _device_count(device_type: str) -> int:
    """How many devices of a type this machine has (0 when torch has no such backend or it is unavailable)."""
    if device_type == "cpu":
        return 1
    if device_type == "mps":
        return int(torch.backends.mps.is_available())
    backend = getattr(torch, device_type, None)
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        return 0
    return backend.device_count() if hasattr(backend, "device_count") else 1


def resolve_device(device: str | torch.device) -> torch.device:
    """`"auto"` -> CUDA if available, else Apple MPS if available, else CPU; anything else as given, if this
    machine has it.

    Raises:
        ValueError: not a device name, or a device this machine does not have.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N, mps, ...") from None
    count = _device_count(resolved.type)
    if count == 0 or (resolved.index is not None and resolved.index >= count):
        have = f"{count} {resolved.type} device(s)" if count else f"no {resolved.type} device"
        raise ValueError(f"Device {str(device)!r} is not available: this machine has {have}.")
    return resolved


def decode_compile_config(device: torch.device) -> CompileConfig:
    """How `generate` compiles the decode step: the whole forward as one graph (the model has no graph break in
    decode), CUDA graphs on CUDA. `generate` compiles by itself on CUDA only; elsewhere it needs its
    `_compile_all_devices` flag (private in transformers 5.19-5.24, the only switch there is)."""
    config = CompileConfig(fullgraph=True, mode="reduce-overhead" if device.type == "cuda" else "default")
    if device.type not in ("cuda", "xpu"):
        config._compile_all_devices = True
    return config


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """`"auto"` -> bfloat16 on GPUs that support it, float16 on other GPUs, float32 on CPU; or a dtype name."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in names:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of auto, {', '.join(names)}.")
    return names[dtype]


class GroundingGPT:
    """A GroundingGPT model with its processor, answering grounded questions.

    Args:
        model: a `GroundingGPTForConditionalGeneration` (in eval mode).
        processor: its `GroundingGPTProcessor`.
        generation: default decoding settings, overridable per call.
    """

    def __init__(self, model: Any, processor: Any, generation: GenerationOptions | None = None) -> None:
        self.model = model
        self.processor = processor
        self.generation = generation or GenerationOptions()

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str = "auto",
        dtype: str | torch.dtype = "auto",
        generation: GenerationOptions | None = None,
    ) -> "GroundingGPT":
        """Load a converted GroundingGPT folder (or Hub repo id) and its processor.

        Args:
            path: a folder written by the converter / `save_pretrained`, or a Hub repo id (downloaded unless
                `HF_HUB_OFFLINE=1`).
            device: `"auto"`, `"cpu"`, `"cuda"`, `"cuda:1"`, `"mps"`, ...
            dtype: `"auto"`, `"float32"`, `"float16"`, `"bfloat16"` or a `torch.dtype`.

        Raises:
            FileNotFoundError: a local-looking `path` (absolute, `./`, `../`, `~`) is not a model folder.
            OSError: the folder/repo has no loadable model. ValueError: unknown dtype, a device this machine does
            not have, or weights that do not cover the config (see `loading.from_pretrained_checked`).
        """
        path = check_local_folder(path)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        # "auto" on a machine with several GPUs spreads the model over them (accelerate's device map); otherwise the
        # weights are loaded straight onto the one device.
        multi_gpu = device == "auto" and torch_device.type == "cuda" and torch.cuda.device_count() > 1
        device_map = "auto" if multi_gpu else {"": torch_device}
        model = from_pretrained_checked(AutoModelForImageTextToText, path, dtype=torch_dtype, device_map=device_map).eval()
        processor = AutoProcessor.from_pretrained(path)
        return cls(model, processor, generation)

    @property
    def evaluation_prompts(self) -> dict[str, str]:
        """The checkpoint's own `groundinggpt eval` prompts by task name (its processor's `evaluation_prompts`)."""
        return dict(getattr(self.processor, "evaluation_prompts", None) or {})

    def generation_kwargs(self, prompt_length: int, options: GenerationOptions, batch_size: int = 1) -> dict[str, Any]:
        """The `generate` keyword arguments for `batch_size` prompts of `prompt_length` tokens: stop at `###`, greedy
        or sampling, new tokens capped so that prompt + answer fit the position table; a static cache for batches
        and for compiled decoding (see `GenerationOptions.compile`).

        Raises:
            ValueError: the prompt alone fills the position table.
        """
        room = self.model.config.text_config.max_position_embeddings - prompt_length
        if room <= 0:
            raise ValueError(
                f"The prompt has {prompt_length} tokens, the model handles at most "
                f"{self.model.config.text_config.max_position_embeddings}: shorten the conversation."
            )
        kwargs: dict[str, Any] = {
            "max_new_tokens": min(options.max_new_tokens, room),
            "stop_strings": [STOP_STRING],
            "tokenizer": self.processor.tokenizer,
            "pad_token_id": self.processor.tokenizer.pad_token_id,
        }
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        compile_decode = options.compile if options.compile is not None else self.model.device.type == "cuda"
        if compile_decode or batch_size > 1:
            # Preallocated keys/values: no concatenation per token, which batches feel most.
            kwargs["cache_implementation"] = "static"
        if compile_decode:
            kwargs["compile_config"] = decode_compile_config(self.model.device)
        else:
            kwargs["disable_compile"] = True
        return kwargs

    def prepare(self, conversations: Sequence[list[dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, list]]:
        """Tokenize conversations (with the generation prompt) and load their media.

        Returns:
            The model inputs on the model's device (float inputs in its dtype), and the metadata:
            `{"image_sizes": [(w, h) or None per conversation], "video_durations": [s or None per conversation]}`
            (each conversation's first image / video).
        """
        inputs = self.processor.apply_chat_template(
            list(conversations),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"return_metadata": True},
        )
        flat_sizes = list(inputs.pop("image_sizes", []))
        flat_videos = list(inputs.pop("video_metadata", []))
        image_sizes: list[tuple[int, int] | None] = []
        video_durations: list[float | None] = []
        for conversation in conversations:
            kinds = [item.get("type") for message in conversation if isinstance(message.get("content"), list)
                     for item in message["content"]]
            sizes = [flat_sizes.pop(0) for _ in range(kinds.count("image"))]
            videos = [flat_videos.pop(0) for _ in range(kinds.count("video"))]
            image_sizes.append(tuple(sizes[0]) if sizes else None)
            video_durations.append(videos[0].duration if videos else None)
        model_inputs = {
            key: value.to(self.model.device, self.model.dtype if value.is_floating_point() else None)
            for key, value in inputs.items()
        }
        return model_inputs, {"image_sizes": image_sizes, "video_durations": video_durations}

    def generate(
        self,
        conversations: Sequence[list[dict[str, Any]]],
        options: GenerationOptions | None = None,
        streamer: Any = None,
    ) -> tuple[list[str], dict[str, list]]:
        """Batched generation: one answer text per conversation (cut at the `###` separator), and the metadata of
        `prepare`. A `streamer` (e.g. `TextStreamer`) receives the tokens of a single conversation as they come."""
        model_inputs, metadata = self.prepare(conversations)
        batch_size, prompt_length = model_inputs["input_ids"].shape
        kwargs = self.generation_kwargs(prompt_length, options or self.generation, batch_size)
        with torch.inference_mode():
            output = self.model.generate(**model_inputs, **kwargs, streamer=streamer)
        texts = self.processor.post_process_image_text_to_text(output[:, prompt_length:])
        return texts, metadata

    @staticmethod
    def _answer(text: str, image_size: tuple[int, int] | None, duration: float | None) -> GroundingAnswer:
        parsed = parse_grounding(text, image_size=image_size, video_duration=duration)
        return GroundingAnswer(text, parsed["boxes"], parsed["spans"], image_size, duration)

    def ground_batch(
        self, requests: Sequence[GroundingRequest], options: GenerationOptions | None = None
    ) -> list[GroundingAnswer]:
        """Answer several single-turn requests in one batched `generate` call."""
        if not requests:
            return []
        conversations = [[user_message(r.question, r.image, r.video, r.audio)] for r in requests]
        texts, metadata = self.generate(conversations, options)
        return [
            self._answer(
                text,
                size,
                request.video_duration if request.video_duration is not None else duration,
            )
            for text, size, duration, request in zip(
                texts, metadata["image_sizes"], metadata["video_durations"], requests
            )
        ]

    def ground(
        self,
        image: ImageInput,
        question: str,
        audio: AudioInput | None = None,
        options: GenerationOptions | None = None,
    ) -> GroundingAnswer:
        """Answer a question about an image (with an optional sound to localize); boxes in image pixels."""
        return self.ground_batch([GroundingRequest(question, image=image, audio=audio)], options)[0]

    def ground_video(self, video: VideoInput, question: str, options: GenerationOptions | None = None) -> GroundingAnswer:
        """Answer a question about a video; spans in seconds."""
        return self.ground_batch([GroundingRequest(question, video=video)], options)[0]

    def chat(
        self, image: ImageInput | None = None, video: VideoInput | None = None, audio: AudioInput | None = None
    ) -> "ChatSession":
        """A multi-turn chat about the given media (see `ChatSession`)."""
        session = ChatSession(self)
        session.set_media(image=image, video=video, audio=audio)
        return session


class _StopStringFilter:
    """Forwards streamed text up to the `###` separator, holding back a trailing partial separator."""

    def __init__(self, on_text: Callable[[str], None]) -> None:
        self.on_text = on_text
        self.received = ""
        self.sent = 0
        self.stopped = False

    def feed(self, chunk: str) -> None:
        if self.stopped:
            return
        self.received += chunk
        visible = self.received
        if STOP_STRING in visible:
            visible, self.stopped = visible.split(STOP_STRING, 1)[0], True
        else:
            visible = visible.rstrip("#")
        if len(visible) > self.sent:
            self.on_text(visible[self.sent :])
            self.sent = len(visible)


class ChatSession:
    """A multi-turn conversation with GroundingGPT about (optionally) one image, video and/or audio.

    The media belong to the first user turn, as in the original training data, so changing them starts a new
    conversation (like the original CLI's `change image`).
    """

    def __init__(self, grounder: GroundingGPT) -> None:
        self.grounder = grounder
        self.messages: list[dict[str, Any]] = []
        self.image: ImageInput | None = None
        self.video: VideoInput | None = None
        self.audio: AudioInput | None = None

    def set_media(
        self, image: ImageInput | None = None, video: VideoInput | None = None, audio: AudioInput | None = None
    ) -> None:
        """Replace all media (None removes one) and start a new conversation."""
        self.image, self.video, self.audio = image, video, audio
        self.clear()

    def clear(self) -> None:
        """Forget the conversation history, keep the media."""
        self.messages = []

    def ask(
        self,
        text: str,
        on_text: Callable[[str], None] | None = None,
        options: GenerationOptions | None = None,
    ) -> GroundingAnswer:
        """Send a user message and return the answer; `on_text` receives the answer text as it is generated.

        On an error (e.g. unreadable media) the history is left unchanged.

        Raises:
            TypeError / ValueError: `text` is not a non-empty string. ValueError / OSError: unreadable media.
        """
        check_text(text, "message")
        message = (
            user_message(text, self.image, self.video, self.audio) if not self.messages else user_message(text)
        )
        conversation = [*self.messages, message]
        if on_text is None:
            texts, metadata = self.grounder.generate([conversation], options)
        else:
            texts, metadata = self._streamed(conversation, on_text, options)
        answer = GroundingGPT._answer(texts[0], metadata["image_sizes"][0], metadata["video_durations"][0])
        self.messages = [*conversation, {"role": "assistant", "content": [{"type": "text", "text": answer.answer}]}]
        return answer

    def _streamed(
        self, conversation: list[dict[str, Any]], on_text: Callable[[str], None], options: GenerationOptions | None
    ) -> tuple[list[str], dict[str, list]]:
        # Media are loaded here, in the caller's thread, so that their errors reach the caller.
        model_inputs, metadata = self.grounder.prepare([conversation])
        streamer = TextIteratorStreamer(self.grounder.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self.grounder.generation_kwargs(model_inputs["input_ids"].shape[1], options or self.grounder.generation)
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["output"] = self.grounder.model.generate(**model_inputs, **kwargs, streamer=streamer)
            except BaseException as error:  # re-raised in the caller's thread below
                result["error"] = error
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        stop_filter = _StopStringFilter(on_text)
        streamed_to_end = False
        try:
            for chunk in streamer:
                stop_filter.feed(chunk)
            streamed_to_end = True
        finally:
            if not streamed_to_end:  # `on_text` raised: let generation finish before the model is used again
                for _ in streamer:
                    pass
            thread.join()
        if "error" in result:
            raise result["error"]
        new_tokens = result["output"][:, model_inputs["input_ids"].shape[1] :]
        return self.grounder.processor.post_process_image_text_to_text(new_tokens), metadata


__all__ = [
    "ChatSession",
    "GenerationOptions",
    "GroundingAnswer",
    "GroundingGPT",
    "GroundingRequest",
    "check_text",
    "decode_compile_config",
    "resolve_device",
    "resolve_dtype",
    "user_message",
]
