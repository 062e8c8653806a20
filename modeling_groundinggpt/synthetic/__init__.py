"""The synthetic world of the demo model: seeded image, video and sound grounding datasets and their metrics.

Palette red (220, 40, 40), green (40, 190, 60), blue (40, 80, 230), yellow (235, 215, 40); tones 440, 660, 880
and 1320 Hz. Three tasks:

- "image": "Where is the {color} box?" -> "The {color} box[x1, y1, x2, y2]." over a 96-256 px noisy image with
  1-3 rectangles;
- "video": "When is the {color} square visible?" -> "The {color} square is visible in {s, e}." over a 3-8 s,
  8 fps video;
- "sound": "Which object makes this sound?" -> "The {color} box[x1, y1, x2, y2]." over an image with 2-3
  rectangles and a 2-5 s tone of one rectangle's colour.

`generate_dataset` writes media and returns records in the GroundingGPT JSON format (see `dataset`),
`write_dataset` writes `data.json`, `to_eval_samples` turns records into samples of the benchmark harness
(`modeling_groundinggpt.evaluation`: Acc@0.5 for boxes, R@1 at IoU 0.5 for spans), asked with `EVAL_PROMPTS`.
"""

from .dataset import TASKS, Task, generate_dataset, load_dataset, record_messages, sample_rng, write_dataset
from .evaluation import CHECKPOINT_EVAL_PROMPTS, EVAL_PROMPTS, EVAL_TASK_NAMES, to_eval_sample, to_eval_samples
from .templates import IMAGE_QUESTION, SOUND_QUESTION, VIDEO_QUESTION, box_answer, span_answer
from .world import COLORS, PALETTE, TONE_FREQUENCIES_HZ


__all__ = [
    "CHECKPOINT_EVAL_PROMPTS",
    "COLORS",
    "EVAL_PROMPTS",
    "EVAL_TASK_NAMES",
    "IMAGE_QUESTION",
    "PALETTE",
    "SOUND_QUESTION",
    "TASKS",
    "TONE_FREQUENCIES_HZ",
    "Task",
    "VIDEO_QUESTION",
    "box_answer",
    "generate_dataset",
    "load_dataset",
    "record_messages",
    "sample_rng",
    "span_answer",
    "to_eval_sample",
    "to_eval_samples",
    "write_dataset",
]
