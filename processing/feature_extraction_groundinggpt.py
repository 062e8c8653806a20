"""Audio feature extractor for GroundingGPT: ImageBind's 3 x 2 s kaldi log-mel clips, without torchaudio."""

import math
import numbers
import os
import warnings
from fractions import Fraction
from typing import Any

import librosa
import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank, window_function
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import AudioKwargs, Unpack
from transformers.utils import logging

from .image_processing_groundinggpt import _local_path


logger = logging.get_logger(__name__)

AudioLike = str | os.PathLike | np.ndarray | torch.Tensor | list[float]

# float32 machine epsilon: kaldi's floor for the mel energies before the log.
_KALDI_EPSILON = float(np.finfo(np.float32).eps)
_PREEMPHASIS = 0.97


def resample_sinc_hann(
    waveform: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> torch.Tensor:
    """Band-limited resampling with a Hann-windowed sinc kernel, the method of torchaudio's `resample` default.

    The original code resampled with `torchaudio.functional.resample`; this computes the same polyphase kernel in
    float32 (matching it to ~1e-7 on the reference file, where librosa's resamplers differ by up to 8e-4).

    Args:
        waveform: (channels, samples) float32.

    Returns:
        (channels, ceil(samples * new_freq / orig_freq)) float32.
    """
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    cutoff = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    # Kernel row i holds the weights of input samples around output phase i (time in units of input samples).
    offsets = torch.arange(-width, width + orig, dtype=torch.float32)[None, None] / orig
    times = torch.arange(0, -new, -1, dtype=torch.float32)[:, None, None] / new + offsets
    times = (times * cutoff).clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(times * math.pi / lowpass_filter_width / 2) ** 2
    times = times * math.pi
    kernel = torch.where(times == 0, torch.tensor(1.0), times.sin() / times) * window * (cutoff / orig)

    num_samples = waveform.shape[-1]
    padded = torch.nn.functional.pad(waveform[:, None], (width, width + orig))
    resampled = torch.nn.functional.conv1d(padded, kernel, stride=orig).transpose(1, 2).reshape(waveform.shape[0], -1)
    return resampled[..., : math.ceil(new * num_samples / orig)]


def clip_boundaries(duration_s: float, clip_duration_s: float, clips_per_audio: int) -> list[tuple[Fraction, Fraction]]:
    """ImageBind's `ConstantClipsPerVideoSampler` (pytorchvideo 0.1.5), in exact fractions as it computes them.

    Clip k starts at k * max(duration - clip_duration, 0) / clips_per_audio: the step divides by the number of
    clips (not clips - 1), so the last clip stops short of the end; audio shorter than one clip gives identical
    [0, clip_duration] windows.
    """
    step = Fraction(max(duration_s - clip_duration_s, 0)) / clips_per_audio
    clip_duration = Fraction(clip_duration_s)
    return [(step * index, step * index + clip_duration) for index in range(clips_per_audio)]


def is_single_audio(audio: Any) -> bool:
    if isinstance(audio, (str, os.PathLike, np.ndarray, torch.Tensor)):
        return True
    return isinstance(audio, (list, tuple)) and len(audio) > 0 and isinstance(audio[0], (int, float))


def flatten_audio(audio: Any) -> list[AudioLike]:
    """Flatten (nested) lists of audio inputs into a flat list of single inputs."""
    if is_single_audio(audio):
        return [audio]
    if isinstance(audio, (list, tuple)):
        return [item for element in audio for item in flatten_audio(element)]
    raise ValueError(f"Unsupported audio input of type {type(audio).__name__}: expected a path or a waveform array.")


class GroundingGPTFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Audio feature extractor of GroundingGPT: ImageBind's `load_and_transform_audio_data` without torchaudio.

    Every audio (a file librosa can read, or a waveform) is resampled to 16 kHz, cut into `clips_per_audio` clips
    of `clip_duration` seconds (ImageBind's clip sampler), and each clip becomes a kaldi-compatible log-mel filter
    bank (`num_mel_bins` bins, 25 ms Hann windows every 10 ms, pre-emphasis 0.97, DC removal, no dither) padded
    with zeros or cut to `target_length` frames, then normalised with `(fbank - mean) / std`.

    As in the original, each clip's mean is subtracted *in place* in the shared resampled buffer, so overlapping
    clips see samples already centred by the previous ones; the per-frame DC removal makes this matter only at
    float32 rounding level, but it is reproduced. Multi-channel audio: the mean is taken over all channels and the
    filter bank uses the first channel, as kaldi's `fbank` does.

    Returns a `BatchFeature` with `input_features` of shape `(num_audios, clips_per_audio, 1, num_mel_bins,
    target_length)`.
    """

    model_input_names = ["input_features"]

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        target_length: int = 204,
        clip_duration: float = 2.0,
        clips_per_audio: int = 3,
        mean: float = -4.268,
        std: float = 9.138,
        padding_value: float = 0.0,
        padding_side: str = "left",
        **kwargs,
    ):
        kwargs.pop("feature_size", None)  # always num_mel_bins
        # The clips are never padded; the side is the tokenizer's, which batch collation (e.g. pipelines) pads with.
        super().__init__(
            feature_size=num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            padding_side=padding_side,
            **kwargs,
        )
        self.num_mel_bins = num_mel_bins
        self.target_length = target_length
        self.clip_duration = clip_duration
        self.clips_per_audio = clips_per_audio
        self.mean = mean
        self.std = std
        # Kaldi framing: 25 ms windows every 10 ms, FFT size rounded up to a power of two (512 at 16 kHz).
        self.frame_length = sampling_rate * 25 // 1000
        self.hop_length = sampling_rate * 10 // 1000
        self.fft_length = 1 << (self.frame_length - 1).bit_length()
        self.window = window_function(self.frame_length, "hann", periodic=False)
        with warnings.catch_warnings():
            # 128 kaldi mel bins over 257 FFT bins leave the lowest filters empty, in kaldi too: not a mistake here.
            warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
            self.mel_filters = mel_filter_bank(
                num_frequency_bins=self.fft_length // 2 + 1,
                num_mel_filters=num_mel_bins,
                min_frequency=20.0,
                max_frequency=sampling_rate / 2,
                sampling_rate=sampling_rate,
                norm=None,
                mel_scale="kaldi",
                triangularize_in_mel_space=True,
            )

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        for derived in ("frame_length", "hop_length", "fft_length", "window", "mel_filters"):
            output.pop(derived, None)
        return output

    def load_waveform(self, audio: AudioLike, sampling_rate: int | None = None) -> torch.Tensor:
        """Load one audio as a (channels, samples) float32 tensor at `self.sampling_rate`.

        Files are read by librosa at their native rate (int16 scaled by 1/32768, like torchaudio). Arrays are
        (samples,) or (channels, samples) at `sampling_rate` (defaults to `self.sampling_rate`).
        """
        if isinstance(audio, (str, os.PathLike)):
            path = _local_path(audio, "audio")
            if os.path.getsize(path) == 0:
                raise ValueError(f"The audio file {path!r} is empty (0 bytes).")
            try:
                samples, sampling_rate = librosa.load(path, sr=None, mono=False)
            except Exception as error:  # soundfile and audioread raise many unrelated types on bad files
                raise ValueError(f"Could not decode the audio file {path!r}: {type(error).__name__}: {error}") from error
            source = f"the audio file {path!r}"
        else:
            if sampling_rate is None:
                logger.warning_once(
                    f"No `sampling_rate` given for a waveform: assuming {self.sampling_rate} Hz. Pass it to avoid "
                    "silent errors."
                )
                sampling_rate = self.sampling_rate
            whole = isinstance(sampling_rate, numbers.Real) and math.isfinite(sampling_rate) and sampling_rate % 1 == 0
            if not (whole and sampling_rate > 0):
                raise ValueError(f"`sampling_rate` must be a positive whole number of Hz, got {sampling_rate!r}.")
            samples = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
            source = "the waveform"
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None]
        if samples.ndim != 2:
            raise ValueError(f"Audio must have shape (samples,) or (channels, samples); {source} has {samples.shape}.")
        if samples.shape[-1] == 0:
            raise ValueError(f"{source} decodes to no samples.")
        not_finite = int(np.count_nonzero(~np.isfinite(samples)))
        if not_finite:
            raise ValueError(f"{source} has {not_finite} NaN or infinite samples (of {samples.size}).")
        return resample_sinc_hann(torch.from_numpy(samples), int(sampling_rate), self.sampling_rate)

    def _fbank(self, clip: np.ndarray) -> np.ndarray:
        """Log-mel filter bank of one mono clip, (num_mel_bins, target_length) float32.

        The same computation as `transformers.audio_utils.spectrogram` with kaldi's options (float64 frames, DC
        removal and pre-emphasis per frame, complex64 spectrum), on all frames at once instead of a Python loop over
        frames (about 4x faster on a 2 s clip, `benchmarks/bench_audio_features.py`).
        """
        samples = np.asarray(clip, dtype=np.float64)
        num_frames = 1 + (samples.size - self.frame_length) // self.hop_length
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.frame_length)[:: self.hop_length][:num_frames]
        frames = frames - frames.mean(axis=1, keepdims=True)
        emphasized = np.empty_like(frames)
        emphasized[:, 1:] = frames[:, 1:] - _PREEMPHASIS * frames[:, :-1]
        emphasized[:, 0] = frames[:, 0] * (1 - _PREEMPHASIS)
        spectrum = np.fft.rfft(emphasized * self.window, n=self.fft_length, axis=1).astype(np.complex64)
        power = np.abs(spectrum, dtype=np.float64) ** 2
        features = np.log(np.maximum(_KALDI_EPSILON, self.mel_filters.T @ power.T)).astype(np.float32)
        num_frames = features.shape[1]
        if num_frames < self.target_length:
            features = np.pad(features, ((0, 0), (0, self.target_length - num_frames)))
        return features[:, : self.target_length]

    def extract(self, waveform: torch.Tensor) -> np.ndarray:
        """Features of one resampled (channels, samples) waveform: (clips_per_audio, 1, num_mel_bins, target_length).

        The waveform is modified in place (see the class docstring).
        """
        if waveform.shape[-1] < self.frame_length:
            raise ValueError(
                f"it has {waveform.shape[-1]} samples at {self.sampling_rate} Hz, fewer than one "
                f"{self.frame_length}-sample (25 ms) analysis frame."
            )
        duration = waveform.shape[-1] / self.sampling_rate
        clips = []
        for start, end in clip_boundaries(duration, self.clip_duration, self.clips_per_audio):
            clip = waveform[:, int(start * self.sampling_rate) : int(end * self.sampling_rate)]
            clip -= clip.mean()
            clips.append(self._fbank(clip[0].numpy()))
        features = (np.stack(clips)[:, None] - self.mean) / self.std
        return features.astype(np.float32)

    def __call__(
        self,
        audio: Any,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Unpack[AudioKwargs],
    ) -> BatchFeature:
        """Featurize one audio or a (nested) list of audios (paths or waveforms at `sampling_rate`)."""
        items = flatten_audio(audio)
        if not items:
            raise ValueError("No audio was given.")
        features = []
        for index, item in enumerate(items):
            try:
                features.append(self.extract(self.load_waveform(item, sampling_rate)))
            except (ValueError, FileNotFoundError) as error:
                name = repr(os.fspath(item)) if isinstance(item, (str, os.PathLike)) else "waveform"
                raise type(error)(f"Audio {index} ({name}): {error}") from error
        return BatchFeature({"input_features": np.stack(features)}, tensor_type=return_tensors)


__all__ = ["GroundingGPTFeatureExtractor", "clip_boundaries", "resample_sinc_hann"]
