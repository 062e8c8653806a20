"""GroundingGPT processing: tokenizer-side chat template, image/video/audio preprocessing and grounding text.

Importing this package registers the processor and its parts with the transformers Auto classes, so that
`AutoProcessor.from_pretrained(folder)` rebuilds a saved `GroundingGPTProcessor`.
"""

from transformers import AutoFeatureExtractor, AutoProcessor

from modeling_groundinggpt.configuration_groundinggpt import GroundingGPTConfig

from .chat_template import CHAT_TEMPLATE, DEFAULT_SYSTEM_PROMPT
from .feature_extraction_groundinggpt import GroundingGPTFeatureExtractor
from .grounding import format_box, format_span, parse_grounding, post_process_grounding
from .image_processing_groundinggpt import GroundingGPTImageProcessor
from .processing_groundinggpt import GroundingGPTProcessor
from .video_processing_groundinggpt import GroundingGPTVideoProcessor


# The image and video processors are not registered with their Auto classes: `AutoVideoProcessor` requires
# torchvision, and in transformers 5.24 a registered image processor (stored as a dict of backends) breaks
# `ProcessorMixin.get_possibly_dynamic_module` for every processor. `GroundingGPTProcessor.from_pretrained` rebuilds
# both from `processor_config.json` itself.
AutoFeatureExtractor.register(GroundingGPTConfig, GroundingGPTFeatureExtractor, exist_ok=True)
AutoProcessor.register(GroundingGPTConfig, GroundingGPTProcessor, exist_ok=True)

__all__ = [
    "CHAT_TEMPLATE",
    "DEFAULT_SYSTEM_PROMPT",
    "GroundingGPTFeatureExtractor",
    "GroundingGPTImageProcessor",
    "GroundingGPTProcessor",
    "GroundingGPTVideoProcessor",
    "format_box",
    "format_span",
    "parse_grounding",
    "post_process_grounding",
]
