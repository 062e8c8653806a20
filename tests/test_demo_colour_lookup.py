"""The demo model's hand-set colour look-up head: before any training, the asked colour word attends to the image
tokens of the rectangle of that colour, and only colour words and image patches write the look-up directions."""

import json

import pytest
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from demo_model.colour_lookup import PATCH_SIZE, WORD_SIZE, colour_directions, colour_word_ids
from demo_model.configuration import build_demo_processor, demo_config
from demo_model.initialisation import init_demo_model
from demo_model.tokenizer import train_demo_tokenizer
from modeling_groundinggpt.processing import format_box
from modeling_groundinggpt.synthetic import generate_dataset, record_messages


@pytest.fixture(scope="module")
def demo():
    tokenizer = train_demo_tokenizer()
    config = demo_config(tokenizer)
    model = init_demo_model(config, tokenizer, seed=0).eval()
    model.set_attn_implementation("eager")
    return tokenizer, config, build_demo_processor(tokenizer, config), model


def _patches_touching(box: list[float], grid: int) -> torch.Tensor:
    """`[grid * grid]` row-major mask of the patches that a normalised box overlaps."""
    x1, y1, x2, y2 = (value * grid for value in box)
    centres = torch.arange(grid) + 0.5
    rows = (centres + 0.5 > y1) & (centres - 0.5 < y2)
    cols = (centres + 0.5 > x1) & (centres - 0.5 < x2)
    return (rows[:, None] & cols[None, :]).flatten()


def test_asked_colour_word_attends_to_its_rectangle_before_training(demo, tmp_path):
    tokenizer, config, processor, model = demo
    records = generate_dataset("image", 24, seed=11, root=tmp_path)
    records = [record for record in records if len(record["ground_truth"]["objects"]) > 1]
    assert len(records) >= 8
    word_ids = torch.tensor(colour_word_ids(tokenizer))
    grid = config.vision_config.image_size // config.vision_config.patch_size
    on_target, on_others = [], []
    for record in records:
        inputs = processor.apply_chat_template(
            record_messages(record, tmp_path), add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            attention = model(**inputs, output_attentions=True).attentions[0][0, 0]  # layer 0, head 0: [query, key]
        input_ids = inputs["input_ids"][0]
        image_positions = (input_ids == config.image_token_id).nonzero()[:, 0]
        (question_word,) = torch.isin(input_ids, word_ids).nonzero()[:, 0].tolist()
        truth = record["ground_truth"]
        touching = {
            rectangle["color"]: _patches_touching(json.loads(format_box(rectangle["box"], truth["image_size"])), grid)
            for rectangle in truth["objects"]
        }
        weights = attention[question_word, image_positions]
        target = float(weights[touching[truth["color"]]].sum())
        others = [
            float(weights[patches & ~touching[truth["color"]]].sum())
            for colour, patches in touching.items()
            if colour != truth["color"]
        ]
        assert target > max(others), record["id"]
        on_target.append(target)
        on_others += others
    # small rectangles cover little of their patches and draw less; the rest of the attention is spread evenly
    assert sum(on_target) / len(on_target) > 0.6 and sum(on_others) / len(on_others) < 0.06


def test_only_colour_words_and_image_colour_fractions_write_the_lookup_directions(demo):
    tokenizer, config, _, model = demo
    query_directions, key_directions = colour_directions(config.text_config.hidden_size)
    basis = torch.cat([query_directions, key_directions])
    num_colours = len(query_directions)
    embeddings = model.get_input_embeddings().weight.detach()
    word_ids = colour_word_ids(tokenizer)
    components = embeddings @ basis.T
    others = torch.ones(len(embeddings), dtype=torch.bool)
    others[word_ids] = False
    assert float(components[others].abs().max()) < 1e-4
    expected = torch.cat([WORD_SIZE * torch.eye(num_colours), torch.zeros(num_colours, num_colours)], dim=1)
    assert torch.allclose(components[word_ids], expected, atol=1e-4)

    inner = model.model
    for projector in (inner.video_projector, inner.audio_projector):
        assert float((basis @ projector.weight).abs().max()) < 1e-5
        assert float((basis @ projector.bias).abs().max()) < 1e-5
    image_output = inner.image_projector.linear_2
    written = basis @ image_output.weight.detach()  # [directions, hidden units]
    assert float(written[:, num_colours:].abs().max()) < 1e-5
    expected = torch.cat([torch.zeros(num_colours, num_colours), PATCH_SIZE * torch.eye(num_colours)])
    assert torch.allclose(written[:, :num_colours], expected, atol=1e-5)


def test_a_tokenizer_that_splits_colour_words_is_refused():
    vocabulary = {character: index for index, character in enumerate(" abcdefghijklmnopqrstuvwxyz")}
    vocabulary["[UNK]"] = len(vocabulary)
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    with pytest.raises(ValueError, match="'red' to be one token"):
        colour_word_ids(PreTrainedTokenizerFast(tokenizer_object=backend))
