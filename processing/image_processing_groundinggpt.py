"""Image processor for GroundingGPT: pad to a square with the CLIP mean colour, then CLIP preprocessing."""

import os
import warnings
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_transforms import to_pil_image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.processing_utils import ImagesKwargs, Unpack


ImageLike = str | os.PathLike | PIL.Image.Image | np.ndarray | torch.Tensor

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _local_path(reference: str | os.PathLike, kind: str) -> str:
    """Resolve a local path or `file://` URL; remote URLs are refused because media is never downloaded."""
    path = os.fspath(reference)
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif path.startswith(("http://", "https://")):
        raise ValueError(f"Only local {kind} files are supported, got the URL {path!r}; download it first.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind.capitalize()} file not found: {path!r}")
    return path


def _to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        # `convert("RGB")` would clip 16-bit values at 255 instead of rescaling them.
        values = np.asarray(image, dtype=np.float64)
        eight_bit = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return PIL.Image.fromarray(eight_bit).convert("RGB")
    if image.mode == "F":
        return PIL.Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8)).convert("RGB")
    # Like the original `Image.open(path).convert("RGB")`: alpha is dropped, palettes and CMYK are mapped to RGB.
    return image.convert("RGB")


def load_image(image: ImageLike) -> PIL.Image.Image:
    """Load one image as an upright RGB `PIL.Image`.

    Args:
        image: a local path (or `file://` URL), a `PIL.Image`, or an array/tensor of shape (H, W), (H, W, C) or
            (C, H, W) with uint8 values in [0, 255] or float values in [0, 1].

    Returns:
        The RGB image with its EXIF orientation applied.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file cannot be decoded or has more than `PIL.Image.MAX_IMAGE_PIXELS` pixels, or the input
            type is not supported.
    """
    if isinstance(image, (str, os.PathLike)):
        path = _local_path(image, "image")
        try:
            with warnings.catch_warnings():
                # Over `PIL.Image.MAX_IMAGE_PIXELS` PIL only warns (and refuses at twice that): refuse at the limit.
                warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
                with PIL.Image.open(path) as opened:
                    opened.load()
                    image = PIL.ImageOps.exif_transpose(opened)
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as error:
            raise ValueError(
                f"The image file {path!r} is too large to decode safely: {error} If you trust it, raise "
                "`PIL.Image.MAX_IMAGE_PIXELS` (None disables the check)."
            ) from None
        except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"Could not decode the image file {path!r}: {error}") from error
    elif isinstance(image, PIL.Image.Image):
        image = PIL.ImageOps.exif_transpose(image)
    elif isinstance(image, (np.ndarray, torch.Tensor)):
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image
        if array.ndim not in (2, 3) or array.size == 0:
            raise ValueError(f"An image array must have shape (H, W), (H, W, C) or (C, H, W), got {array.shape}.")
        image = to_pil_image(array)
    else:
        raise ValueError(f"Unsupported image type {type(image).__name__}; expected a path, PIL image, array or tensor.")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"An image needs at least one pixel, got one of size {image.size}.")
    return _to_rgb(image)


def expand_to_square(image: PIL.Image.Image, background_color: tuple[int, int, int]) -> PIL.Image.Image:
    """Pad `image` to a square of side max(width, height), centring it along the shorter side.

    The offset is `(side - shorter) // 2`, as in the original `load_image_square`, so boxes normalised to the square
    can be mapped back with the same offset (see `grounding.py`).
    """
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = PIL.Image.new(image.mode, (side, side), background_color)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def flatten_images(images: Any) -> list[ImageLike]:
    """Flatten (nested) lists of images; a 4D array or tensor counts as a batch of images."""
    if isinstance(images, (list, tuple)):
        return [image for item in images for image in flatten_images(item)]
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        return list(images)
    return [images]


class GroundingGPTImageProcessorKwargs(ImagesKwargs, total=False):
    """
    do_pad_to_square (`bool`, *optional*, defaults to `True`):
        Whether to pad the image to a square filled with the `image_mean` colour (as 8-bit RGB) before resizing.
    """

    do_pad_to_square: bool


class GroundingGPTImageProcessor(CLIPImageProcessorPil):
    r"""
    CLIP image processor preceded by GroundingGPT's square padding (`image_aspect_ratio="pad"`).

    Every image is loaded as RGB (paths, PIL, numpy and torch inputs; EXIF orientation honoured), padded to a square
    with the colour `tuple(int(255 * m) for m in image_mean)` = (122, 116, 104), then resized (shortest edge,
    bicubic), center-cropped, rescaled and normalised exactly like `CLIPImageProcessor` (336 px for GroundingGPT-7B).
    Boxes written by the model are relative to this padded square.

    Returns a `BatchFeature` with `pixel_values` of shape `(num_images, 3, crop_height, crop_width)`.
    """

    valid_kwargs = GroundingGPTImageProcessorKwargs
    model_input_names = ["pixel_values"]
    do_pad_to_square = True
    size = {"shortest_edge": 336}
    crop_size = {"height": 336, "width": 336}

    @property
    def pad_color(self) -> tuple[int, int, int]:
        """The 8-bit RGB padding colour, derived from `image_mean` as the original does (truncation, not rounding)."""
        return tuple(int(channel_mean * 255) for channel_mean in self.image_mean)

    def _preprocess_image_like_inputs(
        self, images: Any, *args, do_pad_to_square: bool, **kwargs: Unpack[GroundingGPTImageProcessorKwargs]
    ) -> BatchFeature:
        loaded = [load_image(image) for image in flatten_images(images)]
        if do_pad_to_square:
            loaded = [expand_to_square(image, self.pad_color) for image in loaded]
        return super()._preprocess_image_like_inputs(loaded, *args, **kwargs)


__all__ = ["GroundingGPTImageProcessor", "expand_to_square", "load_image"]
