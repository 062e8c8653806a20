"""The installed package holds the runtime only: it never imports the demo model's recipe (`examples/demo_model/`),
and its imports go down the layers (command line and inference on top of model and processing, never the other way)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# source folder -> installed package name (setup.cfg's package_dir)
SOURCE_PACKAGES = {
    "modeling_groundinggpt": "modeling_groundinggpt",
    "processing": "modeling_groundinggpt.processing",
    "convert": "modeling_groundinggpt.convert",
}
# the command line: a top-level module beside the package (setup.cfg's py_modules)
COMMAND_LINE = "groundinggpt_cli"
RECIPE_MODULES = {path.stem for path in (REPO / "examples" / "demo_model").glob("*.py")} - {"__init__"}
# modules of the bottom layers and the upper-layer modules they must not import
MODEL_AND_PROCESSING = (
    "modeling_groundinggpt.configuration_groundinggpt",
    "modeling_groundinggpt.modeling_groundinggpt",
    "modeling_groundinggpt.modeling_imagebind_audio",
    "modeling_groundinggpt.processing",
)
APPLICATIONS = (
    COMMAND_LINE,
    "modeling_groundinggpt.demo",
    "modeling_groundinggpt.evaluation",
    "modeling_groundinggpt.inference",
    "modeling_groundinggpt.model_card",
    "modeling_groundinggpt.training",
    "modeling_groundinggpt.visualization",
    "modeling_groundinggpt.web",
)


def _runtime_modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the package."""
    modules = {}
    for folder, package in SOURCE_PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    modules[COMMAND_LINE] = REPO / f"{COMMAND_LINE}.py"
    return modules


def _imported_modules(name: str, path: Path) -> set[str]:
    """Absolute names of the modules that `path` (module `name`) imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            imported.add(module)
            imported.update(f"{module}.{alias.name}" for alias in node.names)
    return imported


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def test_the_recipe_is_not_in_the_package():
    assert RECIPE_MODULES >= {"configuration", "initialisation", "palette_encoder", "train_demo_model"}
    assert not list((REPO / "modeling_groundinggpt").glob("demo_*.py")), "recipe code belongs in examples/demo_model/"


@pytest.mark.parametrize("name", sorted(_runtime_modules()))
def test_no_runtime_module_imports_the_recipe(name):
    imported = _imported_modules(name, _runtime_modules()[name])
    recipe = {module for module in imported if module.split(".")[0] in {"demo_model", "examples", "train_sft"}}
    assert not recipe, f"{name} imports the demo recipe: {sorted(recipe)}"


@pytest.mark.parametrize("name", [name for name in sorted(_runtime_modules()) if _within(name, MODEL_AND_PROCESSING)])
def test_model_and_processing_do_not_import_upward(name):
    upward = {module for module in _imported_modules(name, _runtime_modules()[name]) if _within(module, APPLICATIONS)}
    assert not upward, f"{name} imports the layers above it: {sorted(upward)}"


def test_only_the_command_line_imports_the_command_line():
    for name, path in _runtime_modules().items():
        if name != COMMAND_LINE:
            assert COMMAND_LINE not in _imported_modules(name, path), name


def test_importing_the_runtime_loads_no_recipe_module():
    """Every module the package's commands use, imported in a fresh interpreter that could import the recipe."""
    modules = [
        name for name in _runtime_modules()
        if not _within(name, ("modeling_groundinggpt.vllm", "modeling_groundinggpt.web.app"))  # optional extras
    ]
    code = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(REPO / 'examples')!r})\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert COMMAND_LINE in loaded and "modeling_groundinggpt.synthetic" in loaded
    recipe = [name for name in loaded if name.split(".")[0] in {"demo_model", "train_sft"}]
    assert not recipe, recipe
