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
`write_dataset` writes `data.json`, `evaluate_answers` scores generated answers (Acc@0.5, R@1@IoU=0.5).
"""

from .dataset import TASKS, Task, generate_dataset, load_dataset, record_messages, sample_rng, write_dataset
from .evaluation import TaskScore, evaluate_answers, predicted_region, sample_iou
from .metrics import box_accuracy, box_iou, hit_rate, span_iou, span_recall_at_1
from .templates import IMAGE_QUESTION, SOUND_QUESTION, VIDEO_QUESTION, box_answer, span_answer
from .world import COLORS, PALETTE, TONE_FREQUENCIES_HZ


__all__ = [
    "COLORS",
    "IMAGE_QUESTION",
    "PALETTE",
    "SOUND_QUESTION",
    "TASKS",
    "TONE_FREQUENCIES_HZ",
    "Task",
    "TaskScore",
    "VIDEO_QUESTION",
    "box_accuracy",
    "box_answer",
    "box_iou",
    "evaluate_answers",
    "generate_dataset",
    "hit_rate",
    "load_dataset",
    "predicted_region",
    "record_messages",
    "sample_iou",
    "sample_rng",
    "span_answer",
    "span_iou",
    "span_recall_at_1",
    "write_dataset",
]
