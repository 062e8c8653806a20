"""Sound localisation samples: "Which object makes this sound?" over an image with 2-3 rectangles and a tone."""

from pathlib import Path

import numpy as np
import soundfile

from .image_task import random_image_scene, save_image
from .templates import IMAGE_MARKER, SOUND_MARKER, SOUND_QUESTION, box_answer, conversation
from .world import TONE_FREQUENCIES_HZ


SAMPLING_RATE = 16000
SOUND_DURATION_RANGE_S = (2, 5)
"""Inclusive range of a tone's duration; the sample count is uniform in [2 * 16000, 5 * 16000]."""

TONE_AMPLITUDE = 0.3
TONE_NOISE_STD = 0.01
SOUND_DIR = "sounds"


def tone(rng: np.random.Generator, frequency_hz: float, num_samples: int) -> np.ndarray:
    """A float32 sine of amplitude 0.3 and random phase at 16 kHz, plus Gaussian noise (sigma 0.01)."""
    time_s = np.arange(num_samples) / SAMPLING_RATE
    phase = rng.uniform(0.0, 2.0 * np.pi)
    waveform = TONE_AMPLITUDE * np.sin(2.0 * np.pi * frequency_hz * time_s + phase)
    waveform += rng.normal(0.0, TONE_NOISE_STD, size=num_samples)
    return np.clip(waveform, -1.0, 1.0).astype(np.float32)


def make_sound_sample(rng: np.random.Generator, sample_id: str, root: Path) -> dict:
    """Draw one sound localisation sample, write its PNG image and 16-bit mono WAV under `root`, return its record.

    A sample with an image and a sound has both keys: `{"id", "image", "sound", "conversations",
    "ground_truth"}`, and its human turn is `"<sound>\\n<image>\\nWhich object makes this sound?"` (markers in
    the chat template's order). `ground_truth` holds `task` ("sound"), the sounding `color`, its pixel `box`, the
    `image_size`, every drawn object, the `frequency_hz`, the `audio_duration` (s) and the `sampling_rate`.
    """
    pixels, rectangles = random_image_scene(rng, 2, 3)
    target = rectangles[int(rng.integers(len(rectangles)))]
    image_size = [pixels.shape[1], pixels.shape[0]]
    low_samples, high_samples = (seconds * SAMPLING_RATE for seconds in SOUND_DURATION_RANGE_S)
    num_samples = int(rng.integers(low_samples, high_samples + 1))
    frequency = TONE_FREQUENCIES_HZ[target.color]

    sound_path = f"{SOUND_DIR}/{sample_id}.wav"
    (root / SOUND_DIR).mkdir(parents=True, exist_ok=True)
    soundfile.write(root / sound_path, tone(rng, frequency, num_samples), SAMPLING_RATE, subtype="PCM_16")
    return {
        "id": sample_id,
        "image": save_image(pixels, root, sample_id),
        "sound": sound_path,
        "conversations": conversation(
            SOUND_QUESTION, [SOUND_MARKER, IMAGE_MARKER], box_answer(target.color, target.box, image_size)
        ),
        "ground_truth": {
            "task": "sound",
            "color": target.color,
            "box": list(target.box),
            "image_size": image_size,
            "objects": [rectangle.to_dict() for rectangle in rectangles],
            "frequency_hz": frequency,
            "audio_duration": num_samples / SAMPLING_RATE,
            "sampling_rate": SAMPLING_RATE,
        },
    }


__all__ = ["SAMPLING_RATE", "make_sound_sample", "tone"]
