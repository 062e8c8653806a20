"""Audio feature extraction speed: the vectorised kaldi fbank of `GroundingGPTFeatureExtractor` against
`transformers.audio_utils.spectrogram` (a Python loop over frames) with the same options, side by side.

    python -m benchmarks.bench_audio_features [--repeats 20]

Prints the time per 2 s clip (198 frames padded to 204, 128 mel bins) of each and their ratio, and checks the outputs are equal.
"""

import argparse
import time

import numpy as np
from transformers.audio_utils import spectrogram

from modeling_groundinggpt.processing import GroundingGPTFeatureExtractor


def reference_fbank(extractor: GroundingGPTFeatureExtractor, clip: np.ndarray) -> np.ndarray:
    features = spectrogram(
        clip, extractor.window, frame_length=extractor.frame_length, hop_length=extractor.hop_length,
        fft_length=extractor.fft_length, power=2.0, center=False, preemphasis=0.97, mel_filters=extractor.mel_filters,
        mel_floor=float(np.finfo(np.float32).eps), log_mel="log", remove_dc_offset=True,
    )
    features = np.pad(features, ((0, 0), (0, max(0, extractor.target_length - features.shape[1]))))
    return features[:, : extractor.target_length]


def per_call(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    extractor = GroundingGPTFeatureExtractor()
    clip = np.random.default_rng(0).normal(scale=0.3, size=2 * extractor.sampling_rate).astype(np.float32)
    np.testing.assert_array_equal(extractor._fbank(clip), reference_fbank(extractor, clip))
    loop = per_call(lambda: reference_fbank(extractor, clip), args.repeats)
    vectorised = per_call(lambda: extractor._fbank(clip), args.repeats)
    print(f"transformers spectrogram loop: {loop * 1e3:.2f} ms per 2 s clip")
    print(f"vectorised fbank:              {vectorised * 1e3:.2f} ms per 2 s clip")
    print(f"speed-up: {loop / vectorised:.1f}x (identical outputs)")


if __name__ == "__main__":
    main()
