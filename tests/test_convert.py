"""The converter: key rules against the real 7B layout, output folder contents, and its failure modes."""

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from modeling_groundinggpt import GroundingGPTConfig, GroundingGPTForConditionalGeneration
from modeling_groundinggpt.convert.convert_groundinggpt_to_hf import convert_checkpoint
from modeling_groundinggpt.convert.key_mapping import map_clip_key, map_original_key

REPO = Path(__file__).resolve().parents[1]


def test_every_key_of_the_released_7b_model_lands_on_a_default_config_parameter(fixtures_dir):
    """`full_key_shapes.json` is the real GroundingGPT-7B state dict; the default config is the real model."""
    full_shapes = json.loads((fixtures_dir / "full_key_shapes.json").read_text())
    with torch.device("meta"):
        model = GroundingGPTForConditionalGeneration(GroundingGPTConfig())
    expected = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}

    covered, dropped = set(), []
    for key, shape in full_shapes.items():
        mapped = map_original_key(key)
        if mapped.target is None:
            dropped.append(key)
            continue
        assert mapped.target in expected, f"{key} -> {mapped.target} is not a parameter of the default model"
        if mapped.fused_part is None:
            assert expected[mapped.target] == tuple(shape), key
        else:  # EVA q_bias / v_bias are thirds of the fused qkv bias
            assert expected[mapped.target] == (3 * shape[0],), key
        covered.add(mapped.target)

    not_from_original = set(expected) - covered
    assert not_from_original and all(key.startswith("model.vision_tower.") for key in not_from_original)
    assert all("audio_encoder.modality_" in key or "position_ids" in key for key in dropped)
    # The CLIP ViT-L/14-336 tower comes from the CLIP checkpoint, whose keys carry a `vision_model.` prefix.
    for key in not_from_original:
        clip_key = "vision_model." + key.removeprefix("model.vision_tower.")
        assert map_clip_key(clip_key).target == key
    n_params = sum(p.numel() for p in model.parameters())
    assert 7.5e9 < n_params < 8.5e9, n_params  # LLaMA-7B + EVA-g + CLIP-L + ImageBind audio + Q-Formers


def test_unknown_key_is_refused():
    with pytest.raises(KeyError, match="model.mystery_adapter.weight"):
        map_original_key("model.mystery_adapter.weight")


def test_cli_writes_a_complete_folder(tmp_path, fixtures_dir):
    output = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "convert" / "convert_groundinggpt_to_hf.py"),
            "--original", str(fixtures_dir / "original_checkpoint"),
            "--clip", str(fixtures_dir / "clip_vision"),
            "--output", str(output),
            "--encoder-dims", str(fixtures_dir / "encoder_dims.json"),
            "--dtype", "bfloat16",
        ],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = {path.name for path in output.iterdir()}
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any(name.endswith(".bin") for name in names)
    weight_files = sorted(output.glob("*.safetensors"))
    assert weight_files
    for weight_file in weight_files:
        with safe_open(str(weight_file), framework="pt") as reader:
            assert {reader.get_tensor(key).dtype for key in reader.keys()} == {torch.bfloat16}
    generation = json.loads((output / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [2] or generation["eos_token_id"][0] == 2
    assert generation["pad_token_id"] == 0 and generation["do_sample"] is False
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def test_converted_folder_loads_with_no_missing_or_unexpected_keys(converted_dir):
    model, info = GroundingGPTForConditionalGeneration.from_pretrained(converted_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.config.image_token_id == 800 and model.config.audio_end_token_id == 808
    assert model.config.video_frame_config.image_size == 56


def _copy_original(fixtures_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "original"
    shutil.copytree(fixtures_dir / "original_checkpoint", copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def _assert_nothing_written(parent: Path, output: Path) -> None:
    assert not output.exists()
    assert not [path for path in parent.iterdir() if path.name.startswith(f".{output.name}")]


def test_corrupt_shard_is_named_and_leaves_nothing(tmp_path, fixtures_dir, encoder_dims):
    original = _copy_original(fixtures_dir, tmp_path)
    shard = original / "pytorch_model-00002-of-00004.bin"
    shard.write_bytes(shard.read_bytes()[:1000])
    output = tmp_path / "converted"
    with pytest.raises(ValueError, match="pytorch_model-00002-of-00004.bin"):
        convert_checkpoint(original, fixtures_dir / "clip_vision", output, encoder_dims=encoder_dims)
    _assert_nothing_written(tmp_path, output)


def test_missing_shard_is_named(tmp_path, fixtures_dir, encoder_dims):
    original = _copy_original(fixtures_dir, tmp_path)
    (original / "pytorch_model-00003-of-00004.bin").unlink()
    output = tmp_path / "converted"
    with pytest.raises(FileNotFoundError, match="pytorch_model-00003-of-00004.bin"):
        convert_checkpoint(original, fixtures_dir / "clip_vision", output, encoder_dims=encoder_dims)
    _assert_nothing_written(tmp_path, output)


def test_unknown_key_in_checkpoint_stops_conversion(tmp_path, fixtures_dir, encoder_dims):
    original = _copy_original(fixtures_dir, tmp_path)
    shard = original / "pytorch_model-00004-of-00004.bin"
    tensors = torch.load(shard, weights_only=True)
    tensors["model.extra_head.weight"] = torch.zeros(2, 2)
    torch.save(tensors, shard)
    output = tmp_path / "converted"
    with pytest.raises(KeyError, match="model.extra_head.weight"):
        convert_checkpoint(original, fixtures_dir / "clip_vision", output, encoder_dims=encoder_dims)
    _assert_nothing_written(tmp_path, output)


def test_shape_mismatch_names_the_key(tmp_path, fixtures_dir, encoder_dims):
    output = tmp_path / "converted"
    wrong_dims = {**encoder_dims, "imagebind.out_embed_dim": 20}
    with pytest.raises(ValueError, match=r"Shape mismatch for original key '.*audio.*'"):
        convert_checkpoint(fixtures_dir / "original_checkpoint", fixtures_dir / "clip_vision", output, encoder_dims=wrong_dims)
    _assert_nothing_written(tmp_path, output)


class _Exploit:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_in_a_bin_file_is_not_executed(tmp_path, fixtures_dir, encoder_dims, capsys):
    original = _copy_original(fixtures_dir, tmp_path)
    shard = original / "pytorch_model-00001-of-00004.bin"
    with open(shard, "wb") as handle:
        pickle.dump({"model.embed_tokens.weight": _Exploit()}, handle)
    with pytest.raises(ValueError, match="pytorch_model-00001-of-00004.bin"):
        convert_checkpoint(original, fixtures_dir / "clip_vision", tmp_path / "converted", encoder_dims=encoder_dims)
    assert "pickled code ran" not in capsys.readouterr().out


def test_refuses_existing_output_and_non_original_config(tmp_path, fixtures_dir, encoder_dims, converted_dir):
    with pytest.raises(FileExistsError):
        convert_checkpoint(fixtures_dir / "original_checkpoint", fixtures_dir / "clip_vision", converted_dir)
    with pytest.raises(ValueError, match="model_type 'LEGO'"):
        convert_checkpoint(converted_dir, fixtures_dir / "clip_vision", tmp_path / "again", encoder_dims=encoder_dims)


def test_safetensors_writer_writes_what_safetensors_reads(tmp_path):
    from safetensors.torch import load_file

    from modeling_groundinggpt.convert.safetensors_writer import SafetensorsWriter

    tensors = {
        "b": torch.randn(3, 5).to(torch.bfloat16), "a": torch.arange(7), "flag": torch.tensor(True),
        "empty": torch.zeros(0, 4), "half": torch.randn(2, 3).half(), "strided": torch.randn(4, 6).t(),
    }
    path = tmp_path / "w.safetensors"
    with SafetensorsWriter(path, {k: (v.dtype, v.shape) for k, v in tensors.items()}, {"format": "pt"}) as writer:
        for name, tensor in tensors.items():
            writer.write(name, tensor)
    loaded = load_file(path)
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], v) for k, v in tensors.items())
    with safe_open(str(path), framework="pt") as reader:
        assert reader.metadata() == {"format": "pt"}

    with pytest.raises(ValueError, match=r"Got b torch.float32 \(3, 5\), the layout's next tensor is b torch.bfloat16"):
        with SafetensorsWriter(tmp_path / "x.safetensors", {"b": (torch.bfloat16, (3, 5))}, {}) as writer:
            writer.write("b", torch.randn(3, 5))
    with pytest.raises(ValueError, match="1 tensors of the layout were not written: b"):
        with SafetensorsWriter(tmp_path / "y.safetensors", {"b": (torch.bfloat16, (3, 5))}, {}):
            pass


def test_dropped_pages_of_a_mapped_tensor_read_back_from_the_file(tmp_path):
    from modeling_groundinggpt.convert.convert_groundinggpt_to_hf import _drop_mapped_pages

    expected = {"w": torch.randn(512, 1024), "v": torch.randn(3)}
    torch.save(expected, tmp_path / "shard.bin")
    mapped = torch.load(tmp_path / "shard.bin", weights_only=True, mmap=True)
    assert torch.equal(mapped["w"], expected["w"])  # pages now resident
    _drop_mapped_pages(mapped["w"])
    _drop_mapped_pages(mapped["v"])  # smaller than a page: left alone
    assert torch.equal(mapped["w"], expected["w"]) and torch.equal(mapped["v"], expected["v"])
