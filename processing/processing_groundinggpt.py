"""Processor class for GroundingGPT: chat template, media placeholders, image/video/audio inputs, grounding text."""

from collections.abc import Sequence
from typing import Any

from transformers import AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessingKwargs, Unpack
from transformers.tokenization_utils_base import PreTokenizedInput, TextInput
from transformers.video_processing_utils import VideoProcessorMixin

from .chat_template import CHAT_TEMPLATE, GENERATION_PROMPT, SEPARATOR
from .compat import ProcessorMixin, processor_default_kwargs
from .feature_extraction_groundinggpt import GroundingGPTFeatureExtractor, flatten_audio
from .grounding import GroundingResult, format_box, format_span, post_process_grounding
from .image_processing_groundinggpt import GroundingGPTImageProcessor, flatten_images, load_image
from .video_processing_groundinggpt import GroundingGPTVideoProcessor, flatten_videos


class GroundingGPTProcessorKwargs(ProcessingKwargs, total=False):
    """The per-modality kwargs of [`GroundingGPTProcessor`]; its own `return_metadata` is an argument of
    `__call__` (a flat key here is not accepted by every supported transformers release)."""


@processor_default_kwargs
class GroundingGPTProcessor(ProcessorMixin):
    r"""
    Processor of GroundingGPT: a LLaMA tokenizer, an image processor (square padding + CLIP), a video processor
    (OpenCV frame sampling) and an audio feature extractor (ImageBind log-mel clips), with the original chat
    template and the grounding text helpers.

    Media are referenced in text by the markers `<image>`, `<video>` and `<sound>` (the original data format,
    e.g. `"<image>\nWhere is the dog?"`); each marker is expanded to `image_start_token` +
    `num_image_tokens` x `image_token` + `image_end_token` (likewise for videos and sounds), whose patch positions
    the model fills with the media embeddings.

    Args:
        image_processor ([`GroundingGPTImageProcessor`]): the image processor.
        video_processor ([`GroundingGPTVideoProcessor`]): the video processor.
        feature_extractor ([`GroundingGPTFeatureExtractor`]): the audio feature extractor.
        tokenizer ([`PreTrainedTokenizerFast`]): the tokenizer with the nine multimodal tokens.
        chat_template (`str`, *optional*): Jinja chat template; defaults to the original `conv_lego` one.
        num_image_tokens (`int`, defaults to 576): `<im_patch>` tokens per image (CLIP patches).
        num_video_tokens (`int`, defaults to 64): `<vi_patch>` tokens per video (video Q-Former queries).
        num_audio_tokens (`int`, defaults to 8): `<so_patch>` tokens per audio (audio Q-Former queries).
        evaluation_prompts (`dict[str, str]`, *optional*): the checkpoint's own question templates for the
            `groundinggpt eval` tasks, by task name (`refcoco`, `charades`, `sound`), e.g. the questions the model
            was trained on; saved in `processor_config.json`. Tasks without one use the package's defaults.

    Media metadata (original image sizes, video durations and frame timestamps) are not model inputs, so they are
    returned only with `return_metadata=True`; pop them before calling the model:

    ```python
    >>> messages = [{"role": "user", "content": [{"type": "image", "path": "dog.jpg"},
    ...                                          {"type": "text", "text": "Where is the dog? Answer with coordinates."}]}]
    >>> inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
    ...                                        return_tensors="pt", processor_kwargs={"return_metadata": True})
    >>> image_sizes = inputs.pop("image_sizes")
    >>> output = model.generate(**inputs, max_new_tokens=64)
    >>> texts = processor.post_process_image_text_to_text(output[:, inputs["input_ids"].shape[1]:])
    >>> processor.post_process_grounding(texts, image_sizes=image_sizes)
    [{'text': 'The dog[0.215, 0.340, 0.612, 0.905].', 'boxes': [{'phrase': 'The dog', 'box': [...]}], 'spans': []}]
    ```
    """

    valid_processor_kwargs = GroundingGPTProcessorKwargs
    # Left padding: generation appends to the right of every row.
    text_kwargs = {"padding": True, "padding_side": "left"}
    skip_tensor_conversion = ["video_metadata", "image_sizes"]

    image_placeholder = "<image>"
    video_placeholder = "<video>"
    audio_placeholder = "<sound>"
    image_token = "<im_patch>"
    image_start_token = "<im_start>"
    image_end_token = "<im_end>"
    video_token = "<vi_patch>"
    video_start_token = "<vi_start>"
    video_end_token = "<vi_end>"
    audio_token = "<so_patch>"
    audio_start_token = "<so_start>"
    audio_end_token = "<so_end>"

    def __init__(
        self,
        image_processor=None,
        video_processor=None,
        feature_extractor=None,
        tokenizer=None,
        chat_template: str | None = None,
        num_image_tokens: int = 576,
        num_video_tokens: int = 64,
        num_audio_tokens: int = 8,
        evaluation_prompts: dict[str, str] | None = None,
        **kwargs,
    ):
        self.num_image_tokens = num_image_tokens
        self.num_video_tokens = num_video_tokens
        self.num_audio_tokens = num_audio_tokens
        prompts = dict(evaluation_prompts or {})
        if not all(isinstance(task, str) and isinstance(prompt, str) and prompt for task, prompt in prompts.items()):
            raise ValueError(
                f"evaluation_prompts must map task names to non-empty strings, got {evaluation_prompts!r}."
            )
        self.evaluation_prompts = prompts
        super().__init__(
            image_processor,
            video_processor,
            feature_extractor,
            tokenizer,
            chat_template=CHAT_TEMPLATE if chat_template is None else chat_template,
            **kwargs,
        )
        for name in ("image", "video", "audio"):
            for suffix in ("", "_start", "_end"):
                token = getattr(self, f"{name}{suffix}_token")
                token_id = tokenizer.convert_tokens_to_ids(token)
                if token_id is None or token_id == tokenizer.unk_token_id:
                    raise ValueError(f"The tokenizer does not know the multimodal token {token}.")
                setattr(self, f"{name}{suffix}_token_id", token_id)

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
        # transformers looks `VideoProcessorMixin` up by name in its top-level namespace, where it is missing when
        # torchvision is not installed; check against the class itself.
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(
                    f"Received a {type(argument).__name__} for video_processor, expected a VideoProcessorMixin."
                )
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path, processor_dict: dict | None = None, **kwargs
    ) -> list[Any]:
        """Rebuild the sub-processors from `processor_config.json` and the tokenizer files.

        The base implementation loads the video processor through `AutoVideoProcessor`, which requires torchvision;
        GroundingGPT's OpenCV video processor does not, so the media processors are built from their saved configs.
        """
        processor_dict = processor_dict or {}
        names = ("image_processor", "video_processor", "feature_extractor")
        missing = [name for name in names if name not in processor_dict]
        if missing:
            raise ValueError(f"processor_config.json in {pretrained_model_name_or_path} has no entry for {missing}.")
        return [
            GroundingGPTImageProcessor.from_dict(processor_dict["image_processor"]),
            GroundingGPTVideoProcessor.from_dict(processor_dict["video_processor"]),
            GroundingGPTFeatureExtractor.from_dict(processor_dict["feature_extractor"]),
            AutoTokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs),
        ]

    @property
    def model_input_names(self) -> list[str]:
        return list(
            dict.fromkeys(
                self.tokenizer.model_input_names
                + self.image_processor.model_input_names
                + self.video_processor.model_input_names
                + self.feature_extractor.model_input_names
            )
        )

    def _expansion(self, name: str, count: int) -> str:
        start, token, end = (getattr(self, f"{name}{suffix}_token") for suffix in ("_start", "", "_end"))
        return start + token * count + end

    def expand_media_markers(self, text: str) -> str:
        """`text` with every `<image>` / `<video>` / `<sound>` marker replaced by the token run the model fills
        (`<im_start>` + `num_image_tokens` x `<im_patch>` + `<im_end>`, likewise for videos and sounds)."""
        for name, placeholder, count in (
            ("image", self.image_placeholder, self.num_image_tokens),
            ("video", self.video_placeholder, self.num_video_tokens),
            ("audio", self.audio_placeholder, self.num_audio_tokens),
        ):
            text = text.replace(placeholder, self._expansion(name, count))
        return text

    @staticmethod
    def _check_counts(modality: str, placeholder: str, texts: list[str], media: Any, flat_media: list) -> None:
        in_text = [text.count(placeholder) for text in texts]
        if sum(in_text) != len(flat_media):
            raise ValueError(
                f"The text contains {sum(in_text)} {placeholder} markers but {len(flat_media)} {modality} items were "
                "given; pass exactly one item per marker."
            )
        # Per-sample check when the media come nested per text (as from `apply_chat_template`).
        if isinstance(media, (list, tuple)) and len(media) == len(texts) and all(isinstance(m, list) for m in media):
            for index, (count, sample_media) in enumerate(zip(in_text, media)):
                if count != len(sample_media):
                    raise ValueError(
                        f"Text {index} contains {count} {placeholder} markers but {len(sample_media)} {modality} "
                        "items were given for it."
                    )

    def _check_written_tokens(self, texts: list[str]) -> None:
        """The media tokens are the processor's to write: in a text they would stand for media never given."""
        for index, text in enumerate(texts):
            for name, argument in (("image", "images"), ("video", "videos"), ("audio", "audio")):
                for suffix in ("_start", "", "_end"):
                    token = getattr(self, f"{name}{suffix}_token")
                    if token in text:
                        raise ValueError(
                            f"Text {index} contains the {name} token {token} written out; mark each {name} with "
                            f"{getattr(self, f'{name}_placeholder')} and pass it in `{argument}`, the processor "
                            "writes the tokens."
                        )

    def apply_chat_template(self, conversation: Any, *args, **kwargs) -> Any:
        """`ProcessorMixin.apply_chat_template` after checking that every text of the conversation(s) is a string
        (a `None` or `bytes` text would otherwise be dropped or rendered as its repr).

        Raises:
            ValueError: no message, a message is not a dict with a string or list `content`, or a text item's
                `text` is not a string (the message names the conversation, message and item).
        """
        if not conversation:
            raise ValueError("The conversation is empty: pass a list of messages (or a list of such lists).")
        batched = bool(conversation) and isinstance(conversation, (list, tuple)) and isinstance(conversation[0], list)
        for number, messages in enumerate(conversation if batched else [conversation]):
            where = f"conversation {number}, " if batched else ""
            for index, message in enumerate(messages):
                if not isinstance(message, dict):
                    continue  # message objects: transformers converts them to dicts
                content = message.get("content")
                if not isinstance(content, (str, list)):
                    raise ValueError(
                        f"Chat {where}message {index}: `content` must be a string or a list of items, got "
                        f"{type(content).__name__}."
                    )
                for position, item in enumerate(content if isinstance(content, list) else []):
                    if not isinstance(item, dict):
                        raise ValueError(
                            f"Chat {where}message {index}, item {position}: an item must be a dict with a `type`, got "
                            f"{type(item).__name__}."
                        )
                    if item.get("type") == "text" and not isinstance(item.get("text"), str):
                        raise ValueError(
                            f"Chat {where}message {index}, item {position}: a text item needs a string `text`, got "
                            f"{type(item.get('text')).__name__}."
                        )
        return super().apply_chat_template(conversation, *args, **kwargs)

    def __call__(
        self,
        images: Any = None,
        text: TextInput | PreTokenizedInput | list[TextInput] | None = None,
        videos: Any = None,
        audio: Any = None,
        return_metadata: bool = False,
        **kwargs: Unpack[GroundingGPTProcessorKwargs],
    ) -> BatchFeature:
        r"""
        Tokenize text with media markers and prepare the media.

        Args:
            images: images (paths, PIL images, arrays or tensors), flat or nested per text, in marker order.
            text: one string or a batch; each `<image>` / `<video>` / `<sound>` marker takes the next item of its
                modality. Usually produced by `apply_chat_template`.
            videos: videos (local paths, `(T, H, W, C)` arrays or lists of frames), flat or nested per text.
            audio: audios (local paths or waveforms at `sampling_rate`), flat or nested per text.
            return_metadata (`bool`, *optional*, defaults to `False`): also return the media metadata below. It is
                off by default so that `model.generate(**inputs)` receives model inputs only.

        Returns:
            [`BatchFeature`] with
            - `input_ids`, `attention_mask`: `(batch, seq_len)`, left-padded with `pad_token_id` (0) by default;
            - `pixel_values`: `(num_images, 3, S, S)`, S = 336 for GroundingGPT-7B;
            - `pixel_values_videos`: `(num_videos, T, 3, H, W)`, frames first; `video_frame_mask`: `(num_videos, T)`,
              1 for real frames, 0 for end padding when the videos have different frame counts;
            - `input_features`: `(num_audios, 3, 1, 128, 204)`;
            - with `return_metadata=True`: `image_sizes`, one `(width, height)` per image (original size, before
              padding), and `video_metadata`, one `transformers.video_utils.VideoMetadata` per video
              (`.duration` in s, `.timestamps` of the sampled frames in s, `.frames_indices`, `.fps`).
            Media keys are present only when that modality was given.
        """
        output_kwargs = self._merge_kwargs(
            GroundingGPTProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
        )
        texts = None
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not all(isinstance(sample, str) for sample in texts):
                raise ValueError("`text` must be a string or a list of strings.")

        flat_images = flatten_images(images) if images is not None else []
        flat_videos = flatten_videos(videos) if videos is not None else []
        flat_audio = flatten_audio(audio) if audio is not None else []
        if texts is not None:
            self._check_written_tokens(texts)
            self._check_counts("image", self.image_placeholder, texts, images, flat_images)
            self._check_counts("video", self.video_placeholder, texts, videos, flat_videos)
            self._check_counts("audio", self.audio_placeholder, texts, audio, flat_audio)

        data: dict[str, Any] = {}
        if flat_images:
            loaded = []
            for index, image in enumerate(flat_images):
                try:
                    loaded.append(load_image(image))
                except (ValueError, FileNotFoundError) as error:
                    raise type(error)(f"Image {index}: {error}") from error
            data.update(self.image_processor(loaded, **output_kwargs["images_kwargs"]))
            if return_metadata:
                data["image_sizes"] = [image.size for image in loaded]
        if flat_videos:
            video_inputs = self.video_processor(
                flat_videos, **{**output_kwargs["videos_kwargs"], "return_metadata": return_metadata}
            )
            data.update(video_inputs)
        if flat_audio:
            data.update(self.feature_extractor(flat_audio, **output_kwargs["audio_kwargs"]))

        if texts is not None:
            texts = [self.expand_media_markers(sample) for sample in texts]
            data.update(self.tokenizer(texts, **output_kwargs["text_kwargs"]))

        return_tensors = output_kwargs["text_kwargs"].get("return_tensors")
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=self.skip_tensor_conversion)

    def _multimodal_inputs_from_conversations(
        self, conversations: list[list[dict[str, Any]]], audio_loading_params: dict, load_audio_from_video: bool = False
    ) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]], dict]:
        """Collect the media references of each conversation without loading them.

        Overrides the base implementation, which decodes audio (and would decode video) with transformers'
        loaders; GroundingGPT's own loaders must be used to reproduce the original preprocessing.
        Keys follow transformers: `image`/`url`/`path` for images, `video`/`url`/`path` for videos,
        `audio`/`url`/`path` for audio. Only local files (paths or `file://` URLs) and in-memory media are supported.
        """
        if load_audio_from_video:
            raise ValueError("GroundingGPT does not extract audio from videos; add an `audio` item instead.")
        keys = {kind: (kind, "url", "path") for kind in ("image", "video", "audio")}
        batch = {"image": [], "video": [], "audio": []}
        for conversation in conversations:
            found = {"image": [], "video": [], "audio": []}
            for message in conversation:
                content = message.get("content")
                if isinstance(content, str) or not content:
                    continue
                for item in content:
                    kind = item.get("type")
                    if kind in found:
                        references = [item[key] for key in keys[kind] if key in item]
                        if len(references) != 1:
                            raise ValueError(
                                f"A {kind} item needs exactly one of the keys {keys[kind]}, got {sorted(item)}."
                            )
                        found[kind].append(references[0])
            for kind in batch:
                batch[kind].append(found[kind])
        return batch["image"], batch["video"], batch["audio"], {}

    def post_process_image_text_to_text(
        self, generated_outputs: Any, skip_special_tokens: bool = True, **kwargs
    ) -> list[str]:
        """Decode generated ids to the answers: the text up to the `###` separator that ends an answer, stripped.

        A row of new tokens only (`output[:, inputs["input_ids"].shape[1]:]`) gives its text up to the first
        separator, as the original cli. A row that starts with the prompt (with `<s>`, after any left padding), as
        the `image-text-to-text` pipeline passes whole `generate` outputs and their prompts, gives what follows its
        last `###Assistant:` up to the next separator: the answer, and for the prompt itself the empty text (or the
        prefilled start of the answer), which is what the pipeline removes from the answer's front.

        Args:
            generated_outputs: `(batch, tokens)` ids, e.g. `output[:, inputs["input_ids"].shape[1]:]` or `output`.

        Returns:
            One string per row.
        """
        tolist = getattr(generated_outputs, "tolist", None)
        rows = tolist() if tolist is not None else [list(row) for row in generated_outputs]
        texts = self.tokenizer.batch_decode(rows, skip_special_tokens=skip_special_tokens, **kwargs)
        answers = []
        for row, text in zip(rows, texts):
            if self._starts_with_prompt(row):
                text = text.rpartition(SEPARATOR + GENERATION_PROMPT)[2]
            answers.append(text.split(SEPARATOR)[0].strip())
        return answers

    def _starts_with_prompt(self, ids: Sequence[int]) -> bool:
        """Whether a row of ids, left padding aside, starts with `<s>` (the tokenizer puts it before every prompt)."""
        pad_token_id = self.tokenizer.pad_token_id
        first = next((token_id for token_id in ids if token_id != pad_token_id), None)
        return first is not None and first == self.tokenizer.bos_token_id

    def format_box(self, box_xyxy_pixels: Sequence[float], image_size: Sequence[int]) -> str:
        """Pixel box `(x1, y1, x2, y2)` of an image of size `(width, height)` -> `"[0.125, 0.350, 0.500, 0.725]"`,
        relative to the padded square the model sees (see `grounding.format_box`)."""
        return format_box(box_xyxy_pixels, image_size)

    def format_span(self, start_s: float, end_s: float, duration_s: float) -> str:
        """Time span in seconds -> `"{0.16, 0.36}"`, relative to the duration (see `grounding.format_span`)."""
        return format_span(start_s, end_s, duration_s)

    def post_process_grounding(
        self,
        texts: str | Sequence[str],
        image_sizes: Sequence[Sequence[int] | None] | None = None,
        video_durations: Sequence[float | None] | None = None,
    ) -> list[GroundingResult]:
        """Extract boxes and time spans from decoded outputs; never raises on malformed model output.

        Args:
            texts: one decoded output or a list (one per conversation).
            image_sizes: one `(width, height)` (or None) per text, e.g. `inputs["image_sizes"]` from
                `return_metadata=True` when each conversation has one image. Boxes are then in that image's pixels;
                without a size they stay relative to the padded square.
            video_durations: one duration in seconds (or None) per text, e.g.
                `[m.duration for m in inputs["video_metadata"]]`. Spans are then in seconds, else relative.

        Returns:
            One dict per text: `{"text": str, "boxes": [{"phrase": str, "box": [x1, y1, x2, y2]}],
            "spans": [{"phrase": str, "span": [start, end]}]}`. The phrase of a box/span is the text written just
            before it, back to the previous box/span or sentence end (see `grounding.parse_grounding`).
        """
        return post_process_grounding(texts, image_sizes=image_sizes, video_durations=video_durations)


__all__ = ["GroundingGPTProcessor"]
