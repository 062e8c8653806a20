"""The demo model's video Q-Former starts as a per-frame read-out: video token `t` is what frame `t` shows."""

import pytest
import torch

from demo_model.configuration import build_demo_processor, demo_config
from demo_model.initialisation import init_demo_model
from demo_model.tokenizer import train_demo_tokenizer
from demo_model.video_qformer import fourier_code, init_frame_selective_video_qformer
from modeling_groundinggpt.modeling_groundinggpt import GroundingGPTVideoTower
from modeling_groundinggpt.synthetic import PALETTE, generate_dataset, record_messages


def test_fourier_code_is_most_similar_to_itself():
    code = fourier_code(16, 64)
    similarity = code @ code.T
    assert torch.equal(similarity.argmax(dim=1), torch.arange(16))
    off_diagonal = similarity[~torch.eye(16, dtype=torch.bool)]
    assert float(similarity.diagonal().min()) > 2 * float(off_diagonal.max())


@pytest.fixture(scope="module")
def tokenizer():
    return train_demo_tokenizer()


def test_a_square_appearing_in_frame_t_changes_video_token_t_most(tokenizer, tmp_path):
    config = demo_config(tokenizer)
    processor = build_demo_processor(tokenizer, config)
    model = init_demo_model(config, tokenizer, seed=0).eval()
    records = generate_dataset("video", 1, seed=4, root=tmp_path)
    inputs = processor.apply_chat_template(
        [record_messages(record, tmp_path) for record in records], add_generation_prompt=True, tokenize=True,
        return_dict=True, return_tensors="pt",
    )
    videos, mask = inputs["pixel_values_videos"], inputs["video_frame_mask"]
    assert videos.shape[1] == config.num_video_query_tokens == config.max_frames and bool(mask.all())
    # a yellow square painted into one frame (the frame encoder sees palette colours only)
    mean = torch.tensor(processor.video_processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.video_processor.image_std).view(3, 1, 1)
    yellow = (torch.tensor(PALETTE["yellow"]).view(3, 1, 1) / 255 - mean) / std
    with torch.no_grad():
        tokens = model.model.video_tower(videos[:1], mask[:1])[0]
        for frame in (0, 5, 11, 15):
            changed = videos[:1].clone()
            changed[0, frame, :, 16:40, 16:40] = yellow
            change = (model.model.video_tower(changed, mask[:1])[0] - tokens).norm(dim=-1)
            others = torch.cat([change[:frame], change[frame + 1 :]])
            assert int(change.argmax()) == frame and float(change[frame]) > 1.5 * float(others.max()), change


def test_more_queries_than_frames_is_refused(tokenizer):
    config = demo_config(tokenizer)
    config.num_video_query_tokens = config.max_frames + 1
    with torch.no_grad(), pytest.raises(ValueError, match="17 queries, 16 frames"):
        init_frame_selective_video_qformer(GroundingGPTVideoTower(config))
