"""Checkpoint loading as the package's own loaders do it (inference API, command line, training).

Two checks that transformers leaves out: a path that looks local is reported as a missing folder at once instead
of being tried as a Hub repo id, and weights that do not cover the model of the config (missing or unexpected keys)
are refused instead of running the uncovered layers with random initial weights.
"""

import os
from pathlib import Path
from typing import Any


# Paths that cannot be Hub repo ids (`org/name`).
LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def check_local_folder(path: str | os.PathLike, kind: str = "model", hub: bool = True) -> str:
    """`path` itself, or expanded when it looks like a local path (absolute, `./`, `../`, `~`, or existing); a local
    path must be a folder with a `config.json`. With `hub=False` every path is a local one.

    Raises:
        FileNotFoundError: a local-looking path that is no folder, or a folder without `config.json`.
    """
    text = os.fspath(path)
    looks_local = not hub or isinstance(path, os.PathLike) or text in (".", "..") or text.startswith(LOCAL_PREFIXES)
    if not (looks_local or Path(text).exists()):
        return text
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{kind[0].upper()}{kind[1:]} folder not found: {text!r}")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{text} is not a {kind} folder: it has no config.json.")
    return str(folder)


def _listed(keys: Any) -> list[str]:
    # Mismatched keys come as (key, checkpoint shape, model shape).
    return sorted(str(key[0] if isinstance(key, tuple) else key) for key in keys or ())


def from_pretrained_checked(model_class: Any, path: str | os.PathLike, **kwargs: Any) -> Any:
    """`model_class.from_pretrained(path, **kwargs)` that refuses weights not matching the model of the config.

    Raises:
        FileNotFoundError: see `check_local_folder`. ValueError: the checkpoint lacks weights of the model, holds
            weights the model does not have, or holds weights of other shapes (the first keys are named).
    """
    path = check_local_folder(path)
    model, info = model_class.from_pretrained(path, output_loading_info=True, **kwargs)
    problems = []
    for name, meaning in (("missing_keys", "missing from the checkpoint"),
                          ("unexpected_keys", "in the checkpoint but not in the model"),
                          ("mismatched_keys", "of another shape than the model's")):
        keys = _listed(info.get(name))
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            problems.append(f"{len(keys)} weights {meaning} ({shown})")
    if problems:
        raise ValueError(
            f"The checkpoint {path} does not match its config: {'; '.join(problems)}. Loaded anyway, the model "
            "would not be the checkpoint's (missing weights start random); convert or save the checkpoint again."
        )
    return model


__all__ = ["LOCAL_PREFIXES", "check_local_folder", "from_pretrained_checked"]
