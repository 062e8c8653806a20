"""Make a saved GroundingGPT folder self-contained for the Hub: model and processor loadable with
`trust_remote_code=True` where this package is not installed."""

import json
import os
import shutil
from pathlib import Path

from . import processing

_PACKAGE_DIR = Path(__file__).resolve().parent
_MODEL_SOURCES = (
    "compat.py",
    "configuration_groundinggpt.py",
    "generation_groundinggpt.py",
    "modeling_groundinggpt.py",
    "modeling_imagebind_audio.py",
)
# `processing/` is installed as `modeling_groundinggpt.processing`; its modules only import each other relatively,
# and `compat` (a re-export there) is the package's `compat.py` itself here.
_PROCESSOR_SOURCES = (
    "chat_template.py",
    "feature_extraction_groundinggpt.py",
    "grounding.py",
    "image_processing_groundinggpt.py",
    "processing_groundinggpt.py",
    "video_decoding.py",
    "video_processing_groundinggpt.py",
)

MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_groundinggpt.GroundingGPTConfig",
    "AutoModel": "modeling_groundinggpt.GroundingGPTModel",
    "AutoModelForImageTextToText": "modeling_groundinggpt.GroundingGPTForConditionalGeneration",
    "AutoModelForMultimodalLM": "modeling_groundinggpt.GroundingGPTForConditionalGeneration",
    "AutoModelForPreTraining": "modeling_groundinggpt.GroundingGPTForConditionalGeneration",
}
PROCESSOR_AUTO_MAP = {"AutoProcessor": "processing_groundinggpt.GroundingGPTProcessor"}


def _add_auto_map(json_file: Path, auto_map: dict[str, str]) -> None:
    content = json.loads(json_file.read_text())
    content["auto_map"] = {**content.get("auto_map", {}), **auto_map}
    staging = json_file.with_suffix(".json.tmp")
    staging.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.replace(staging, json_file)


def add_remote_code(folder: str | Path) -> None:
    """
    Copies the model's (and, if the folder holds a processor, the processor's) source files into `folder` and
    adds `auto_map` entries to `config.json` / `processor_config.json`, so that
    `AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)` and
    `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` work without this package.
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: save the model there first.")
    for name in _MODEL_SOURCES:
        shutil.copyfile(_PACKAGE_DIR / name, folder / name)
    processor_file = folder / "processor_config.json"
    if processor_file.is_file():
        processing_dir = Path(processing.__file__).resolve().parent
        for name in _PROCESSOR_SOURCES:
            shutil.copyfile(processing_dir / name, folder / name)
        _add_auto_map(processor_file, PROCESSOR_AUTO_MAP)
        _add_auto_map(config_file, {**MODEL_AUTO_MAP, **PROCESSOR_AUTO_MAP})
    else:
        _add_auto_map(config_file, MODEL_AUTO_MAP)
