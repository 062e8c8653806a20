"""Decoding the uniformly sampled frames of a video file with PyAV (FFmpeg's libraries), without decoding the frames
nobody asked for where the file allows it.

The packets are read first (demuxing only: no decoding): they give the real frame count, the timestamps of every
frame and where the keyframes are. Each sampled frame is then reached either by seeking to the keyframe before it
(when that skips more frames than a seek costs: dense keyframes) or by decoding on from the previous one (sparse
keyframes). Frames are recognised by their timestamps, so a seek that lands late is noticed; the file is then
decoded from the start instead. Sampled frames are scaled and converted by FFmpeg's `scale` filter (bilinear) and
`format=rgb24`, which is what the original GroundingGPT's decord reader does: the frames are the original's.

A video is a local file's path or the bytes of a whole file (what a server receives).
"""

import io
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


# A seek (decoder flush and restart with its threads) costs about as much as decoding this many frames in sequence
# (measured: seeking to a keyframe and decoding it takes 4-5 frames' time on the 640x480 MPEG-4 benchmark clip):
# seeking only pays when it skips more frames than that.
SEEK_COST_IN_FRAMES = 4
# Decoding with frame threads is used when the frames decoded outnumber the seeks by this much (measured on the
# benchmark clips: with a seek every ~7 frames, single-frame threading decoded the sampled frames 1.6x faster).
FRAMES_PER_SEEK_FOR_FRAME_THREADS = 30
# Relative disagreement tolerated between a stream's declared frame rate and its packet durations.
RATE_TOLERANCE = 0.01

VideoSource = str | bytes
"""A local file's path, or the bytes of a whole video file."""


def _describe(source: VideoSource) -> str:
    """How messages name a video: "file 'clip.mp4'", or "(12345 bytes)" for one given as bytes."""
    return f"file {source!r}" if isinstance(source, str) else f"({len(source)} bytes)"


def uniform_frame_indices(total_num_frames: int, max_frames: int) -> np.ndarray:
    """The original sampler `np.arange(0, n, n / min(max_frames, n)).astype(int)`, capped at `max_frames` indices.

    When `n / min(max_frames, n)` is not exact the original can return one index too many (n=17, max 7 -> 8
    indices); the extra last index is dropped so the model never sees more frames than its position table holds.
    """
    if total_num_frames <= 0:
        raise ValueError("A video needs at least one frame.")
    num_frames = min(max_frames, total_num_frames)
    return np.arange(0, total_num_frames, total_num_frames / num_frames).astype(int)[:num_frames]


@dataclass(frozen=True)
class StreamIndex:
    """A file's video stream as its packets describe it.

    Attributes:
        num_frames: frames in the stream (packets with data), whatever the headers say.
        frame_pts: presentation timestamps of the frames in presentation order (stream time base), or None when the
            packets carry no usable timestamps (then frames are only known by their decoding order).
        keyframes: positions, in presentation order, of the frames a decoder can start from (with `frame_pts`).
        duration: seconds the frames cover (from their timestamps), or None when the file does not tell.
        width, height: coded frame size.
        time_base: seconds per timestamp unit.
    """

    num_frames: int
    frame_pts: np.ndarray | None
    keyframes: np.ndarray
    duration: float | None
    width: int
    height: int
    time_base: Fraction | None

    @property
    def fps(self) -> float | None:
        """The mean frame rate over the whole stream."""
        return self.num_frames / self.duration if self.duration else None


def _timed_duration(pts: np.ndarray, last_duration: int, time_base: Fraction) -> float:
    """Seconds from the first frame's start to the last frame's end."""
    if last_duration <= 0 and len(pts) > 1:
        last_duration = int(np.median(np.diff(pts)))
    return float((int(pts[-1]) - int(pts[0]) + last_duration) * time_base)


def _untimed_duration(source: VideoSource, num_frames: int, durations: list[int], stream) -> float | None:
    """Seconds covered by frames without timestamps: packet durations and the declared frame rate must agree."""
    declared_rate = float(stream.average_rate) if stream.average_rate else None
    packet_rate = None
    if stream.time_base and durations and all(duration > 0 for duration in durations):
        packet_rate = num_frames / float(sum(durations) * stream.time_base)
    if declared_rate and packet_rate and abs(packet_rate - declared_rate) > RATE_TOLERANCE * declared_rate:
        file_name = os.path.basename(source) if isinstance(source, str) else "video"
        raise ValueError(
            f"The video {_describe(source)} has no frame timestamps and its timing headers disagree: the stream "
            f"declares {declared_rate:g} fps, its packets last {1 / packet_rate:g} s each ({packet_rate:g} fps), so "
            "its duration is unknown. Put it in a container with timestamps at its real frame rate, e.g. "
            f"`ffmpeg -r {packet_rate:g} -i {file_name} -c copy clip.mp4`."
        )
    rate = packet_rate or declared_rate
    return num_frames / rate if rate else None


def index_stream(container, stream, source: VideoSource) -> StreamIndex:
    """Read the packets of `stream` (no decoding) and what they say about its frames and timing.

    Raises:
        ValueError: no frames, or no timestamps and headers that disagree about the frame rate.
    """
    pts, keyframe_pts, durations = [], [], []
    last = (None, 0)
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        pts.append(packet.pts)
        durations.append(packet.duration or 0)
        if packet.is_keyframe:
            keyframe_pts.append(packet.pts)
        if packet.pts is not None and (last[0] is None or packet.pts > last[0]):
            last = (packet.pts, packet.duration or 0)
    num_frames = len(pts)
    if num_frames == 0:
        raise ValueError(f"The video {_describe(source)} contains no video frames.")
    size = (stream.codec_context.width, stream.codec_context.height)
    timed = stream.time_base is not None and None not in pts and len(set(pts)) == num_frames
    if not timed:
        duration = _untimed_duration(source, num_frames, durations, stream)
        return StreamIndex(num_frames, None, np.zeros(0, dtype=np.int64), duration, *size, stream.time_base)
    frame_pts = np.sort(np.asarray(pts, dtype=np.int64))
    keyframes = np.searchsorted(frame_pts, np.sort(np.asarray(keyframe_pts, dtype=np.int64)))
    duration = _timed_duration(frame_pts, last[1], stream.time_base)
    return StreamIndex(num_frames, frame_pts, keyframes, duration if duration > 0 else None, *size, stream.time_base)


class _SampledFrames:
    """The sampled frames, converted by FFmpeg's `scale` (bilinear, to `size` x `size`; none when None) and
    `format=rgb24` filters as decord converts them, into one preallocated (count, H, W, 3) array. The filter graph
    is built for the first frame's format."""

    def __init__(self, count: int, size: int | None):
        self.count, self.size = count, size
        self.graph, self.array, self.rows = None, None, set()

    def _build(self, frame) -> None:
        import av

        self.graph = av.filter.Graph()
        last = self.graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                     time_base=frame.time_base)
        filters = [("scale", f"{self.size}:{self.size}:flags=bilinear")] if self.size is not None else []
        for name, argument in [*filters, ("format", "rgb24"), ("buffersink", None)]:
            node = self.graph.add(name, argument)
            last.link_to(node)
            last = node
        self.graph.configure()

    def put(self, row: int, frame) -> None:
        if self.graph is None:
            self._build(frame)
        self.graph.push(frame)
        rgb = self.graph.pull().to_ndarray()
        if self.array is None:
            self.array = np.empty((self.count, *rgb.shape), dtype=np.uint8)
        self.array[row] = rgb
        self.rows.add(row)

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.count


class _SeekFailed(Exception):
    """A seek landed after the frame it was meant to reach, or frames came without timestamps."""


def _open(source: VideoSource, thread_type: str = "AUTO"):
    """The container of `source` and its first video stream. `thread_type` "AUTO" decodes with frame and slice
    threads (one per core): the most frames per second in sequence, but every seek empties and refills the frame
    threads' pipeline; "SLICE" threads only within a frame."""
    import av

    try:
        container = av.open(source if isinstance(source, str) else io.BytesIO(source))
    except av.FFmpegError as error:
        raise ValueError(
            f"Could not open the video {_describe(source)} (empty, corrupt or unsupported format): {error}"
        ) from error
    if not container.streams.video:
        container.close()
        raise ValueError(f"The video {_describe(source)} has no video stream.")
    stream = container.streams.video[0]
    stream.thread_type = thread_type
    return container, stream


def _decoded_frames(container, stream):
    """The frames from the current position on; packets the decoder rejects (corrupt data) are skipped, as FFmpeg's
    tools skip them."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def _seek_plan(index: StreamIndex, positions: np.ndarray) -> list[int | None]:
    """For each sampled position (sorted), the keyframe to seek to before decoding up to it, or None to decode on
    from the previous sampled frame: a seek when it skips more than `SEEK_COST_IN_FRAMES` frames."""
    plan, decoded_position = [], -1  # presentation position of the last frame decoded
    for position in positions.tolist():
        keyframe = int(index.keyframes[np.searchsorted(index.keyframes, position, side="right") - 1])
        skips = keyframe > decoded_position and position - keyframe + SEEK_COST_IN_FRAMES < position - decoded_position
        plan.append(keyframe if decoded_position < 0 or skips else None)
        decoded_position = position
    return plan


def _decode_seeking(source: VideoSource, index: StreamIndex, positions: np.ndarray, size: int | None) -> _SampledFrames:
    """The frames at `positions` (sorted) of a stream with timestamps, following `_seek_plan`."""
    frames = _SampledFrames(len(positions), size)
    plan = _seek_plan(index, positions)
    seeks, to_decode, previous = 0, 0, -1
    for position, keyframe in zip(positions.tolist(), plan):
        seeks += keyframe is not None
        to_decode += position - (previous if keyframe is None else keyframe - 1)
        previous = position
    # Frame threads pay for long runs of frames decoded in sequence, not for a seek every few frames.
    container, stream = _open(source, "AUTO" if to_decode >= FRAMES_PER_SEEK_FOR_FRAME_THREADS * seeks else "SLICE")
    with container:
        decoder = None
        for row, (position, keyframe) in enumerate(zip(positions.tolist(), plan)):
            target = int(index.frame_pts[position])
            seeked = keyframe is not None
            if seeked:
                container.seek(int(index.frame_pts[keyframe]), stream=stream, backward=True, any_frame=False)
                decoder = _decoded_frames(container, stream)
            for frame in decoder:
                if frame.pts is None or (seeked and frame.pts > target):
                    raise _SeekFailed
                seeked = False
                if frame.pts == target:
                    frames.put(row, frame)
                    break
                if frame.pts > target:  # the frame never came out of the decoder
                    raise _SeekFailed
            else:
                break  # fewer frames decode than there are packets
    return frames


def _decode_in_order(
    source: VideoSource, index: StreamIndex, positions: np.ndarray, size: int | None
) -> tuple[_SampledFrames, list]:
    """The frames at `positions` (sorted), decoding from the start; frames are recognised by timestamp when the
    stream has them, else by their order. Also returns the timestamps (None without) of the frames decoded."""
    frames = _SampledFrames(len(positions), size)
    container, stream = _open(source)
    with container:
        lookup = None if index.frame_pts is None else {int(pts): i for i, pts in enumerate(index.frame_pts)}
        rows = {position: row for row, position in enumerate(positions.tolist())}
        decoded = []
        for frame in _decoded_frames(container, stream):
            row = rows.get(len(decoded) if lookup is None else lookup.get(frame.pts, -1))
            decoded.append(frame.pts)
            if row is not None and row not in frames.rows:
                frames.put(row, frame)
                if frames.complete:
                    break
    return frames, decoded


def _decoded_index(decoded_pts: list, index: StreamIndex) -> StreamIndex:
    """The `StreamIndex` of the frames that did decode (with their timestamps, when all have one)."""
    count, no_keyframes = len(decoded_pts), np.zeros(0, dtype=np.int64)
    if index.frame_pts is None or None in decoded_pts or len(set(decoded_pts)) < count:
        duration = index.duration * count / index.num_frames if index.duration else None
        return StreamIndex(count, None, no_keyframes, duration, index.width, index.height, index.time_base)
    frame_pts = np.sort(np.asarray(decoded_pts, dtype=np.int64))
    duration = _timed_duration(frame_pts, 0, index.time_base) if count > 1 else index.duration
    return StreamIndex(count, frame_pts, no_keyframes, duration, index.width, index.height, index.time_base)


def decode_sampled_frames(
    source: VideoSource, max_frames: int, frame_size: int | None
) -> tuple[np.ndarray, StreamIndex, np.ndarray]:
    """Decode the uniformly sampled frames of a local video file or a video file's bytes (see the module docstring).

    Returns:
        frames: uint8 array of shape (T, frame_size, frame_size, 3), RGB (original size when `frame_size` is None).
        index: the file's `StreamIndex` (of the frames that decode); positions: the sampled frame positions.

    Raises:
        ValueError: the file cannot be opened, holds no video stream or no decodable frames, or its timing cannot
            be told (see `index_stream`).
    """
    import av

    try:
        container, stream = _open(source)
        with container:
            index = index_stream(container, stream, source)
        positions = uniform_frame_indices(index.num_frames, max_frames)
        frames = None
        if index.frame_pts is not None and len(index.keyframes):
            try:
                frames = _decode_seeking(source, index, positions, frame_size)
            except _SeekFailed:
                pass
        if frames is None or not frames.complete:
            frames, decoded = _decode_in_order(source, index, positions, frame_size)
            if not frames.complete:
                if not decoded:
                    raise ValueError(f"The video {_describe(source)} contains no decodable frames.")
                # Fewer frames decode than the packets promise: sample the frames that exist.
                index = _decoded_index(decoded, index)
                positions = uniform_frame_indices(index.num_frames, max_frames)
                frames, _ = _decode_in_order(source, index, positions, frame_size)
    except av.FFmpegError as error:
        raise ValueError(f"Could not decode the video {_describe(source)}: {error}") from error
    return frames.array, index, positions


__all__ = [
    "SEEK_COST_IN_FRAMES",
    "StreamIndex",
    "VideoSource",
    "decode_sampled_frames",
    "index_stream",
    "uniform_frame_indices",
]
