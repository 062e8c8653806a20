"""Make a saved GroundingGPT folder self-contained for the Hub: loadable with `trust_remote_code=True` where this
package is not installed."""

import json
import os
import shutil
from pathlib import Path

_MODEL_SOURCES = ("configuration_groundinggpt.py", "modeling_groundinggpt.py", "modeling_imagebind_audio.py")

MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_groundinggpt.GroundingGPTConfig",
    "AutoModel": "modeling_groundinggpt.GroundingGPTModel",
    "AutoModelForImageTextToText": "modeling_groundinggpt.GroundingGPTForConditionalGeneration",
    "AutoModelForMultimodalLM": "modeling_groundinggpt.GroundingGPTForConditionalGeneration",
    "AutoModelForPreTraining": "modeling_groundinggpt.GroundingGPTForConditionalGeneration",
}


def add_remote_code(folder: str | Path) -> None:
    """
    Copies the model's source files into `folder` and adds an `auto_map` to its `config.json`, so that
    `AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)` works without this package.
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: save the model there first.")
    package_dir = Path(__file__).parent
    for name in _MODEL_SOURCES:
        shutil.copyfile(package_dir / name, folder / name)
    config = json.loads(config_file.read_text())
    config["auto_map"] = MODEL_AUTO_MAP
    staging = config_file.with_suffix(".json.tmp")
    staging.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(staging, config_file)
