"""Benchmark evaluation of GroundingGPT: RefCOCO/RefCOCO+/RefCOCOg REC, Charades-STA and VGG-SS sound localization.

```python
from modeling_groundinggpt.evaluation import TASKS, evaluate, format_table, load_samples
from modeling_groundinggpt.inference import GroundingGPT

grounder = GroundingGPT.from_pretrained("groundinggpt-7b")
samples = load_samples("refcoco", "refcoco_val.jsonl")
summary = evaluate(TASKS["refcoco"], samples, grounder, output_dir="results", media_root="coco/train2014")
print(format_table(summary))
```
"""

from .converters import convert_charades, convert_refer, convert_vggss
from .formats import AnnotationFormatError, RefSample, SoundSample, TemporalSample, load_samples, write_samples
from .harness import EvaluationError, evaluate, format_table, read_predictions, resolve_prompt
from .metrics import box_iou, hit_rate, mean_iou, temporal_iou
from .tasks import TASKS, EvalTask


__all__ = [
    "TASKS",
    "AnnotationFormatError",
    "EvalTask",
    "EvaluationError",
    "RefSample",
    "SoundSample",
    "TemporalSample",
    "box_iou",
    "convert_charades",
    "convert_refer",
    "convert_vggss",
    "evaluate",
    "format_table",
    "hit_rate",
    "load_samples",
    "mean_iou",
    "read_predictions",
    "resolve_prompt",
    "temporal_iou",
    "write_samples",
]
