"""The demo model's hand-set image and frame encoders: palette detectors with the widest margin, and on generated
images and video frames a token per patch holding each sub-cell's palette-colour responses (and its position)."""

import itertools

import pytest
import torch
from PIL import Image
from transformers import Blip2VisionConfig, CLIPVisionConfig, CLIPVisionModel

from demo_model.configuration import build_demo_processor, demo_config
from demo_model.initialisation import init_demo_model
from demo_model.palette_encoder import (
    BACKGROUND_MARGIN,
    RESPONSE_SCALE,
    SUBCELLS,
    init_palette_encoder,
    init_palette_frame_encoder,
    nearest_point_in_hull,
    palette_detectors,
)
from demo_model.tokenizer import train_demo_tokenizer
from modeling_groundinggpt.modeling_groundinggpt import GroundingGPTFrameEncoder
from modeling_groundinggpt.synthetic import PALETTE, generate_dataset
from modeling_groundinggpt.synthetic.world import BACKGROUND_CHANNEL_RANGE


def test_nearest_point_of_a_box_is_the_clamped_point():
    corners = torch.tensor(list(itertools.product((0.0, 2.0), (0.0, 1.0), (-1.0, 3.0))))
    for point in ([5.0, 0.5, 0.0], [-1.0, 4.0, 7.0], [1.0, -2.0, 2.0]):
        point = torch.tensor(point)
        expected = torch.maximum(torch.minimum(point, corners.max(0).values), corners.min(0).values)
        assert torch.allclose(nearest_point_in_hull(corners, point).float(), expected, atol=1e-4)


def test_detectors_answer_one_on_their_colour_and_at_most_zero_on_backgrounds_and_other_colours():
    weights, biases = palette_detectors()
    palette = torch.tensor(list(PALETTE.values()), dtype=torch.float64)
    responses = palette @ weights.T + biases
    assert torch.allclose(responses.diagonal(), torch.ones(len(PALETTE), dtype=torch.float64))
    assert (responses[~torch.eye(len(PALETTE), dtype=torch.bool)] <= 1e-6).all()

    low, high = BACKGROUND_CHANNEL_RANGE
    backgrounds = torch.rand(20000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    backgrounds = low - BACKGROUND_MARGIN + backgrounds * (high - low + 2 * BACKGROUND_MARGIN)
    assert (backgrounds @ weights.T + biases <= 1e-6).all()
    # a colour that far from its palette colour still answers more than half: the pixel noise is sigma 8
    assert float((1 / weights.norm(dim=1)).min()) > 8


@pytest.fixture(scope="module")
def tokenizer():
    return train_demo_tokenizer()


def _covered_and_empty(pixel_values: torch.Tensor, processor, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`[n, patches, subcells * colours]` masks, in the order of the encoder's responses: the sub-cells whose pixels
    are all exactly that palette colour (rectangle interiors), and the sub-cells without any pixel near any palette
    colour (the edges of rectangles are blended with the background by resizing)."""
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    rgb = ((pixel_values * std + mean) * 255).permute(0, 2, 3, 1)
    palette = torch.tensor(list(PALETTE.values()), dtype=torch.float32)
    distances = torch.cdist(rgb.reshape(-1, 3), palette).reshape(*rgb.shape[:3], len(palette))
    grid = pixel_values.shape[-1] // patch_size

    def subcell_fractions(is_colour: torch.Tensor) -> torch.Tensor:
        fractions = torch.nn.functional.avg_pool2d(is_colour.float().permute(0, 3, 1, 2), patch_size // SUBCELLS)
        fractions = fractions.reshape(len(pixel_values), len(palette), grid, SUBCELLS, grid, SUBCELLS)
        return fractions.permute(0, 2, 4, 3, 5, 1).reshape(len(pixel_values), grid * grid, SUBCELLS**2, len(palette))

    covered = (subcell_fractions(distances < 5) == 1).flatten(2)
    empty = (subcell_fractions(distances < 45).sum(-1, keepdim=True) == 0).expand(-1, -1, -1, len(palette))
    return covered, empty.flatten(2)


@pytest.fixture(scope="module")
def demo(tokenizer):
    config = demo_config(tokenizer)
    return config, build_demo_processor(tokenizer, config), init_demo_model(config, tokenizer, seed=0).eval()


def test_image_tower_gives_subcell_palette_responses_and_patch_positions(demo, tmp_path):
    config, processor, model = demo
    records = generate_dataset("image", 40, seed=5, root=tmp_path)
    images = [Image.open(tmp_path / record["image"]) for record in records]
    pixel_values = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        tokens = model.model.vision_tower(pixel_values=pixel_values, output_hidden_states=True).hidden_states[-1][:, 1:]
    covered, empty = _covered_and_empty(pixel_values, processor.image_processor, config.vision_config.patch_size)

    num_responses = SUBCELLS**2 * len(PALETTE)
    responses = tokens[..., :num_responses] / RESPONSE_SCALE
    assert covered.sum() > 500 and empty.sum() > 5000
    assert float(responses[covered].min()) > 0.9 and float(responses[empty].abs().max()) < 0.02
    assert float(tokens[..., num_responses : 6 * SUBCELLS**2].abs().max()) < 1e-4

    positions = tokens[..., 6 * SUBCELLS**2 :]
    assert torch.allclose(positions, positions[0].expand_as(positions), atol=0.02 * float(positions.abs().max()))
    gaps = torch.cdist(positions[0], positions[0])
    grid = config.vision_config.image_size // config.vision_config.patch_size
    assert float(gaps[~torch.eye(grid * grid, dtype=torch.bool)].min()) > 0.5


def test_frame_encoder_gives_subcell_palette_responses(demo, tmp_path):
    """The EVA frame encoder's closing LayerNorm subtracts each token's mean, which shifts the responses a little."""
    config, processor, model = demo
    records = generate_dataset("video", 4, seed=5, root=tmp_path)
    frames = torch.cat([
        processor.video_processor(videos=[str(tmp_path / record["video"])], return_tensors="pt")["pixel_values_videos"][0]
        for record in records
    ])
    with torch.no_grad():
        tokens = model.model.video_tower.frame_encoder(pixel_values=frames).last_hidden_state[:, 1:]
    covered, empty = _covered_and_empty(frames, processor.video_processor, config.video_frame_config.patch_size)
    responses = tokens[..., : SUBCELLS**2 * len(PALETTE)] / RESPONSE_SCALE
    assert covered.sum() > 100 and empty.sum() > 5000
    assert float(responses[covered].min()) > 0.75 and float(responses[empty].abs().max()) < 0.25


def test_towers_of_another_layout_are_refused():
    sizes = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "image_size": 96, "patch_size": 24}
    with torch.no_grad(), pytest.raises(ValueError, match="2 layers"):
        init_palette_encoder(CLIPVisionModel(CLIPVisionConfig(num_hidden_layers=2, **sizes)), [0.5] * 3, [0.25] * 3)
    frame_config = Blip2VisionConfig(num_hidden_layers=1, **{**sizes, "intermediate_size": 512})
    with torch.no_grad(), pytest.raises(ValueError, match="intermediate_size 256; got .* intermediate_size 512"):
        init_palette_frame_encoder(GroundingGPTFrameEncoder(frame_config, 1e-5), [0.5] * 3, [0.25] * 3)
