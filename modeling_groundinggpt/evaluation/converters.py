"""Converters from the official benchmark releases to the JSONL formats of `formats.py`.

- RefCOCO / RefCOCO+ / RefCOCOg: the `refer` release (github.com/lichengunc/refer): `refs(unc).p` (`refs(umd).p`
  for RefCOCOg) and `instances.json` of each dataset folder. One sample per referring sentence; boxes come from
  the COCO annotation of the ref (`[x, y, w, h]` -> `[x1, y1, x2, y2]`), images are COCO train2014 file names.
- Charades-STA: `charades_sta_test.txt` (lines `VID start end##sentence`, github.com/jiyanggao/TALL) and the
  durations in the `length` column of Charades' `Charades_v1_test.csv`.
- VGG-SS: `vggss.json` (github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way): a list of
  `{"file", "class", "bbox": [[x1, y1, x2, y2], ...]}` with coordinates relative to the frame (0-1); they are
  turned into pixels with the size of each extracted frame, which must therefore exist.
"""

import csv
import io
import json
import math
import pickle
from pathlib import Path

from PIL import Image

from .formats import AnnotationFormatError, RefSample, SoundSample, TemporalSample


# The `source` the Charades-STA and VGG-SS converters record in their samples (the refer converter records the
# refer dataset's name: `refcoco`, `refcoco+`, `refcocog`).
CHARADES_STA = "charades-sta"
VGGSS = "vggss"


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain containers and scalars only: any class or function reference is refused (no code runs)."""

    def find_class(self, module: str, name: str):
        raise AnnotationFormatError(f"The refs pickle references {module}.{name}; only plain data is accepted.")


def _load_refs(path: Path) -> list[dict]:
    try:
        with path.open("rb") as handle:
            refs = _PlainDataUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise AnnotationFormatError(f"{path}: not a refer `refs(...).p` pickle ({error}).") from None
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        raise AnnotationFormatError(f"{path}: expected a list of ref dicts.")
    return refs


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"File not found: {str(path)!r}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise AnnotationFormatError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None


def _check_template(template: str, placeholder: str, option: str) -> None:
    """A path template must hold its one placeholder (else every sample would share one file) and no other."""
    try:
        uses_placeholder = template.format(**{placeholder: "a"}) != template.format(**{placeholder: "b"})
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"{option} {template!r} may only use {{{placeholder}}} ({error!r}).") from None
    if not uses_placeholder:
        raise ValueError(f"{option} must contain {{{placeholder}}}, got {template!r}.")


def _load_json(path: Path) -> object:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotationFormatError(f"{path}: not a JSON file ({error}).") from None


def convert_refer(
    refs_path: str | Path,
    instances_path: str | Path,
    dataset: str,
    splits: tuple[str, ...] | None = None,
) -> list[RefSample]:
    """RefCOCO-family samples from the refer release.

    Args:
        refs_path: `refs(unc).p` (RefCOCO, RefCOCO+) or `refs(umd).p` (RefCOCOg).
        instances_path: the `instances.json` next to it.
        dataset: the name prefixed to the split, e.g. `refcoco` gives splits `refcoco_val`, `refcoco_testA`.
        splits: the refer splits to keep (e.g. `("val", "testA", "testB")`); all but `train` by default.

    Returns:
        One `RefSample` per sentence, id `{dataset}_{split}_{sent_id}`, image the COCO file name, source `dataset`.
    """
    refs_path, instances_path = Path(refs_path), Path(instances_path)
    if not refs_path.is_file():
        raise FileNotFoundError(f"File not found: {str(refs_path)!r}")
    refs = _load_refs(refs_path)
    instances = _load_json(instances_path)
    try:
        images = {image["id"]: image["file_name"] for image in instances["images"]}
        boxes = {annotation["id"]: annotation["bbox"] for annotation in instances["annotations"]}
    except (TypeError, KeyError) as error:
        raise AnnotationFormatError(f"{instances_path}: not a COCO instances file (missing {error}).") from None
    samples = []
    for ref in refs:
        try:
            split = ref["split"]
            if (splits is None and split == "train") or (splits is not None and split not in splits):
                continue
            x, y, width, height = boxes[ref["ann_id"]]
            image = images[ref["image_id"]]
            sentences = [(sentence["sent_id"], sentence["sent"]) for sentence in ref["sentences"]]
        except (TypeError, KeyError, ValueError) as error:
            raise AnnotationFormatError(f"{refs_path}: ref {ref.get('ref_id')!r} is incomplete ({error!r}).") from None
        for sent_id, sentence in sentences:
            samples.append(
                RefSample(
                    id=f"{dataset}_{split}_{sent_id}",
                    image=image,
                    expression=sentence,
                    box=[float(x), float(y), float(x + width), float(y + height)],
                    split=f"{dataset}_{split}",
                    source=dataset,
                )
            )
    if not samples:
        raise AnnotationFormatError(f"{refs_path}: no refs in the splits {splits or 'val/test'}.")
    return samples


def _charades_durations(csv_path: Path) -> dict[str, float]:
    reader = csv.DictReader(io.StringIO(_read_text(csv_path), newline=""))
    if reader.fieldnames is None or not {"id", "length"} <= set(reader.fieldnames):
        raise AnnotationFormatError(f"{csv_path}: expected Charades' CSV with `id` and `length` columns.")
    durations = {}
    for row in reader:
        try:
            length = float(row["length"])
        except (TypeError, ValueError):
            length = math.nan
        if not (math.isfinite(length) and length > 0):
            raise AnnotationFormatError(f"{csv_path}:{reader.line_num}: `length` must be a positive number of seconds, "
                                        f"got {row['length']!r}.")
        durations[row["id"]] = length
    return durations


def convert_charades(
    sta_path: str | Path, csv_path: str | Path, video_template: str = "{video_id}.mp4"
) -> list[TemporalSample]:
    """Charades-STA samples from `charades_sta_test.txt` and `Charades_v1_test.csv`.

    Args:
        sta_path: lines `VID start end##sentence`.
        csv_path: Charades' CSV (columns `id`, ..., `length` in seconds).
        video_template: the video path relative to the media root, `{video_id}` replaced.

    Returns:
        One `TemporalSample` per line, id `{video_id}_{line_number}`, split `test`, source `charades-sta`.
    """
    _check_template(video_template, "video_id", "--video-template")
    sta_path = Path(sta_path)
    lines = _read_text(sta_path).splitlines()
    durations = _charades_durations(Path(csv_path))
    samples = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            head, sentence = line.split("##", 1)
            video_id, start, end = head.split()
            span = [float(start), float(end)]
            if not all(math.isfinite(value) for value in span):
                raise ValueError
        except ValueError:
            raise AnnotationFormatError(f"{sta_path}:{line_number}: expected `VID start end##sentence`.") from None
        if video_id not in durations:
            raise AnnotationFormatError(f"{sta_path}:{line_number}: video {video_id} is not in {csv_path}.")
        samples.append(
            TemporalSample(
                id=f"{video_id}_{line_number}",
                video=video_template.format(video_id=video_id),
                query=sentence.strip().rstrip("."),
                span=span,
                duration=durations[video_id],
                source=CHARADES_STA,
            )
        )
    if not samples:
        raise AnnotationFormatError(f"{sta_path}: no samples.")
    return samples


def convert_vggss(
    vggss_path: str | Path,
    media_root: str | Path,
    frame_template: str = "frames/{file}.jpg",
    audio_template: str = "audio/{file}.wav",
) -> list[SoundSample]:
    """VGG-SS samples from `vggss.json`, with pixel boxes from the sizes of the extracted frames.

    Args:
        vggss_path: the list of `{"file", "bbox": [[x1, y1, x2, y2], ...]}` (relative coordinates).
        media_root: the folder the templates are relative to.
        frame_template, audio_template: the frame and audio paths, `{file}` replaced.

    Returns:
        One `SoundSample` per entry, id the `file` value, split `test`, source `vggss`.
    """
    _check_template(frame_template, "file", "--frame-template")
    _check_template(audio_template, "file", "--audio-template")
    vggss_path, media_root = Path(vggss_path), Path(media_root)
    entries = _load_json(vggss_path)
    if not isinstance(entries, list):
        raise AnnotationFormatError(f"{vggss_path}: expected a JSON list of VGG-SS entries.")
    samples = []
    for index, entry in enumerate(entries):
        try:
            name = entry["file"]
            relative_boxes = [[float(value) for value in box] for box in entry["bbox"]]
            if not relative_boxes or any(len(box) != 4 for box in relative_boxes):
                raise ValueError("`bbox` must be a non-empty list of 4-number boxes")
        except (TypeError, KeyError, ValueError) as error:
            raise AnnotationFormatError(f"{vggss_path}: entry {index} is not a VGG-SS entry ({error!r}).") from None
        frame = frame_template.format(file=name)
        frame_path = media_root / frame
        if not frame_path.is_file():
            raise FileNotFoundError(f"Frame of {name} not found: {str(frame_path)!r}")
        with Image.open(frame_path) as image:
            width, height = image.size
        boxes = [
            [min(max(value, 0.0), 1.0) * scale for value, scale in zip(box, (width, height, width, height))]
            for box in relative_boxes
        ]
        samples.append(
            SoundSample(id=name, image=frame, audio=audio_template.format(file=name), boxes=boxes, source=VGGSS)
        )
    if not samples:
        raise AnnotationFormatError(f"{vggss_path}: no samples.")
    return samples


__all__ = ["CHARADES_STA", "VGGSS", "convert_charades", "convert_refer", "convert_vggss"]
