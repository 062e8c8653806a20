"""The recipe that built the embedded demo model (`modeling_groundinggpt.DEMO_MODEL`); not in the installed package.

- `train_demo_model.py`: the script that generates the data, builds the starting checkpoint, trains it with
  `examples/train_sft.py`, evaluates it and writes the shipped checkpoint, its model card and the demo media;
- `tokenizer.py`: the demo tokenizer, a byte-level BPE trained on the synthetic world's texts;
- `configuration.py`: the tiny config and the matching processor;
- `initialisation.py`: the starting weights, with the hand-set parts below;
- `palette_encoder.py`: the CLIP tower and EVA frame encoder set by hand to palette-colour encoders (kept frozen);
- `video_qformer.py`: the video Q-Former started as a per-frame read-out;
- `colour_lookup.py`: the attention head started as a look-up of the asked colour among the image tokens.

Why the recipe is built this way: `docs/demo-model.md`. Importable as `demo_model` with `examples/` on `sys.path`
(the tests' `conftest.py` and the training script put it there).
"""
