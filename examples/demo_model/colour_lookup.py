"""The demo model's colour look-up: one attention head of its language model's first layer, set by hand so that a
palette-colour word attends to the image tokens whose patch shows that colour.

The chat template puts the image before the question, so the image tokens cannot see which colour is asked for;
the language model has to look the colour up from the text side. Trained from a random start it did not learn to:
it boxed a rectangle of any colour (asked for one of 2-3 rectangles, it picked the asked one at chance, after 5500
steps of the full demo training as after 1600 steps on images only). With the colour before the image (in the
system prompt, a layout the template never produces) it learned to in about 1000 steps; with this head in place
it does with the real layout. GroundingGPT-7B's language model comes pretrained and can already do such look-ups.

The head works in directions of the language model's width that nothing else writes:
- 2 x (palette size) orthonormal directions, drawn with a fixed seed: a query direction `u_c` and a key direction
  `v_c` per palette colour. Every token embedding and every output of the image, video and audio projectors has
  its component along them removed;
- the embedding of each colour word (`" red"`, ...) gets `WORD_SIZE * u_c`;
- hidden unit c of the image projector (one per palette colour) becomes the fraction of the patch covered by
  colour c (the mean of the palette encoder's sub-cell responses, `palette_encoder.py`), and the projector's output
  layer writes `PATCH_SIZE * v_c` from it;
- head 0 of layer 0 reads only `u_c` into its query and only `v_c` into its key, in the head's lowest-frequency
  rotary dimensions, which turn by at most 0.5 rad over the demo's 512 positions, so the match hardly depends on
  how far the word is from the image. Its attention logit is about `MATCH_LOGIT` times the patch's normalised
  `v_c` component (about 1.5 for a patch mostly covered). Its values and output projection stay random.

Everything stays trainable.
"""

import torch
from transformers import PreTrainedTokenizerBase

from modeling_groundinggpt.modeling_groundinggpt import GroundingGPTForConditionalGeneration
from modeling_groundinggpt.synthetic.world import PALETTE

from .palette_encoder import RESPONSE_SCALE, SUBCELLS


WORD_SIZE = 3.0
"""Size of a colour word's query direction in its embedding (the other entries are about N(0, 1))."""
PATCH_SIZE = 3.0
"""How much of the key direction the image projector writes per unit of its colour-fraction unit."""
MATCH_LOGIT = 4.0
"""Attention logit per unit of an image token's normalised key component."""


def colour_word_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The token id of each palette colour word as it follows a word (`" red"`), in palette order.

    Raises:
        ValueError: if the tokenizer splits a colour word into several tokens.
    """
    ids = []
    for colour in PALETTE:
        pieces = tokenizer(f" {colour}", add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ValueError(f"The colour look-up needs {colour!r} to be one token after a space; got {len(pieces)}.")
        ids.append(pieces[0])
    return ids


def colour_directions(width: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """`(u, v)`: `[palette size, width]` query and key directions, all orthonormal to each other."""
    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(width, 2 * len(PALETTE), generator=generator))[0].T
    return basis[: len(PALETTE)], basis[len(PALETTE) :]


def _remove_components(matrix: torch.Tensor, basis: torch.Tensor) -> None:
    """Remove from every row of `matrix` (`[n, width]`) its component along the orthonormal rows of `basis`."""
    matrix -= (matrix @ basis.T) @ basis


@torch.no_grad()
def init_colour_lookup(model: GroundingGPTForConditionalGeneration, word_ids: list[int]) -> None:
    """Set the colour look-up described in this module in a demo model (`configuration.demo_config` layout: palette
    encoder, colour words `word_ids` in palette order, from `colour_word_ids`); head 0 of the first decoder layer
    becomes the look-up head."""
    num_colours = len(PALETTE)
    embeddings = model.get_input_embeddings()
    image_projector = model.model.image_projector
    first_layer = model.model.language_model.layers[0]
    attention = first_layer.self_attn
    query_directions, key_directions = colour_directions(embeddings.embedding_dim)
    basis = torch.cat([query_directions, key_directions])

    _remove_components(embeddings.weight, basis)
    # video and audio tokens must not write them either: at random they would give keys as large as a full patch's
    for output_layer in (image_projector.linear_2, model.model.video_projector, model.model.audio_projector):
        _remove_components(output_layer.weight.T, basis)
        _remove_components(output_layer.bias[None], basis)
    embeddings.weight[word_ids] += WORD_SIZE * query_directions

    # hidden unit c of the image projector: the mean of colour c's sub-cell responses
    num_subcells = SUBCELLS**2
    image_projector.linear_1.weight[:num_colours] = 0.0
    image_projector.linear_1.bias[:num_colours] = 0.0
    for colour in range(num_colours):
        responses = torch.arange(num_subcells) * num_colours + colour
        image_projector.linear_1.weight[colour, responses] = 1.0 / (num_subcells * RESPONSE_SCALE)
    image_projector.linear_2.weight[:, :num_colours] = PATCH_SIZE * key_directions.T

    head_dim = attention.head_dim
    word_components = (first_layer.input_layernorm(embeddings.weight[word_ids]) * query_directions).sum(-1)
    attention.q_proj.weight[:head_dim] = 0.0
    attention.k_proj.weight[:head_dim] = 0.0
    # rotary dimension i turns at base**(-2i / head_dim) rad per position: the last ones of the first half are slowest
    slow = torch.arange(head_dim // 2 - num_colours, head_dim // 2)
    # the logit scale is split evenly between query and key, so that Adam's steps move neither much
    scale = (MATCH_LOGIT * head_dim**0.5) ** 0.5
    attention.q_proj.weight[slow] = scale * query_directions / word_components[:, None]
    attention.k_proj.weight[slow] = scale * key_directions
