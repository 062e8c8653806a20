"""Video files: frames reached by keyframe seeking are the frames decoded in order; timing comes from the frames,
not from headers that disagree; files that decode to nothing are named."""

import struct

import av
import cv2
import numpy as np
import pytest

from modeling_groundinggpt.processing import GroundingGPTVideoProcessor, video_decoding
from modeling_groundinggpt.processing.video_decoding import decode_sampled_frames, index_stream


def frame_image(index: int, width: int = 96, height: int = 64) -> np.ndarray:
    """A moving gradient with a little noise: every frame differs, as in real footage."""
    rows, columns = np.mgrid[0:height, 0:width]
    base = (columns * 2 + rows + 3 * index) % 256
    noise = np.random.default_rng(index).integers(0, 24, (height, width, 3))
    return np.clip(np.stack([base, (base * 3) % 256, 255 - base], axis=-1) + noise, 0, 255).astype(np.uint8)


def write_clip(path, num_frames: int, keyframe_interval: int = 12, fps: int = 30, b_frames: int = 0,
               container_format: str | None = None, codec: str = "mpeg4", options: dict | None = None) -> str:
    with av.open(str(path), "w", format=container_format, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.gop_size = keyframe_interval
        stream.codec_context.max_b_frames = b_frames
        for index in range(num_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame_image(index), format="rgb24")))
        container.mux(stream.encode())
    return str(path)


def stream_index(path: str):
    with av.open(path) as container:
        return index_stream(container, container.streams.video[0], path)


class CountingContainer:
    """Forwards to a PyAV container, counting seeks."""

    seeks = 0

    def __init__(self, container):
        self._container = container

    def seek(self, *args, **kwargs):
        CountingContainer.seeks += 1
        return self._container.seek(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()


@pytest.fixture
def count_seeks_and_frames(monkeypatch):
    """Counts the seeks and the decoded frames of `video_decoding`."""
    counts = {"frames": 0}
    open_container, decoded_frames = video_decoding._open, video_decoding._decoded_frames

    def counting_open(path, *args):
        container, stream = open_container(path, *args)
        return CountingContainer(container), stream

    def counting_frames(container, stream):
        for frame in decoded_frames(container, stream):
            counts["frames"] += 1
            yield frame

    CountingContainer.seeks = 0
    monkeypatch.setattr(video_decoding, "_open", counting_open)
    monkeypatch.setattr(video_decoding, "_decoded_frames", counting_frames)
    counts["seeks"] = lambda: CountingContainer.seeks
    return counts


@pytest.mark.parametrize(("keyframe_interval", "b_frames"), [(12, 0), (300, 0), (12, 2)])
def test_seeking_gives_the_frames_of_decoding_in_order(tmp_path, keyframe_interval, b_frames, count_seeks_and_frames):
    path = write_clip(tmp_path / "clip.mp4", 240, keyframe_interval, b_frames=b_frames)
    index = stream_index(path)
    assert index.num_frames == 240 and set(range(0, 240, keyframe_interval)) <= set(index.keyframes.tolist())
    rng = np.random.default_rng(keyframe_interval + b_frames)
    for positions in (np.arange(0, 240, 15), np.sort(rng.choice(240, 20, replace=False)), np.array([239])):
        count_seeks_and_frames["frames"] = 0
        seeking = video_decoding._decode_seeking(path, index, positions, 32)
        seeking_frames = count_seeks_and_frames["frames"]
        in_order, _ = video_decoding._decode_in_order(path, index, positions, 32)
        assert seeking.complete and in_order.complete
        np.testing.assert_array_equal(seeking.array, in_order.array)
    # Every 15th of 240 frames: with a keyframe every 12 frames most of them are skipped, with a keyframe every 300
    # frames they all have to be decoded.
    count_seeks_and_frames["frames"] = 0
    video_decoding._decode_seeking(path, index, np.arange(0, 240, 15), 32)
    if keyframe_interval == 12:
        assert count_seeks_and_frames["frames"] < 240 / 2
    else:
        assert count_seeks_and_frames["seeks"]() > 0 and count_seeks_and_frames["frames"] >= 226


def test_frames_are_the_decoded_pictures_scaled(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", 48, keyframe_interval=12)
    frames, index, positions = decode_sampled_frames(path, 8, None)
    assert frames.shape == (8, 64, 96, 3) and positions.tolist() == list(range(0, 48, 6))
    for frame, position in zip(frames, positions):  # MPEG-4 is lossy: nearest to its own picture, not equal
        distances = {i: np.abs(frame.astype(int) - frame_image(i).astype(int)).mean() for i in range(48)}
        assert min(distances, key=distances.get) == position


def test_a_seek_that_lands_late_falls_back_to_decoding_in_order(tmp_path, monkeypatch):
    path = write_clip(tmp_path / "clip.mp4", 240, keyframe_interval=12)
    expected, _, _ = decode_sampled_frames(path, 16, 32)
    open_container = video_decoding._open
    late_seeks = []

    class LateSeeking(CountingContainer):
        def seek(self, offset, **kwargs):  # lands on the keyframe after the one asked for, as inexact demuxers do
            late_seeks.append(offset)
            return self._container.seek(offset + 1, **{**kwargs, "backward": False})

    def late_open(path, *args):
        container, stream = open_container(path, *args)
        return LateSeeking(container), stream

    monkeypatch.setattr(video_decoding, "_open", late_open)
    frames, _, _ = decode_sampled_frames(path, 16, 32)
    assert late_seeks  # the seeking path was tried
    np.testing.assert_array_equal(frames, expected)


def test_raw_mpeg4_stream_duration_comes_from_its_timestamps_not_its_rate_header(tmp_path):
    """A raw MPEG-4 stream declares FFmpeg's default 25 fps; its frames are 0.1 s apart (10 fps)."""
    path = write_clip(tmp_path / "clip.m4v", 20, fps=10, container_format="m4v")
    with av.open(path) as container:
        assert container.streams.video[0].average_rate == 25
    assert cv2.VideoCapture(path).get(cv2.CAP_PROP_FPS) == 25  # what an OpenCV reader takes for the rate
    metadata = GroundingGPTVideoProcessor(size=32, num_frames=8)(path, return_metadata=True)["video_metadata"][0]
    assert metadata.total_num_frames == 20
    assert metadata.duration == pytest.approx(2.0) and metadata.fps == pytest.approx(10.0)


def test_frame_count_and_duration_headers_that_disagree_with_the_frames_are_ignored(tmp_path):
    """An AVI whose main and stream headers claim three times the frames it has (and so a 6 s duration)."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for index in range(20):
        writer.write(frame_image(index))
    writer.release()
    data = bytearray(path.read_bytes())
    total_frames = data.index(b"avih") + 8 + 16  # dwTotalFrames
    length = data.index(b"strh") + 8 + 32  # dwLength
    for offset in (total_frames, length):
        data[offset : offset + 4] = struct.pack("<I", 60)
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 60 and container.duration == 6_000_000

    metadata = GroundingGPTVideoProcessor(size=32, num_frames=8)(str(path), return_metadata=True)["video_metadata"][0]
    assert metadata.total_num_frames == 20 and metadata.frames_indices == [0, 2, 5, 7, 10, 12, 15, 17]
    assert metadata.duration == pytest.approx(2.0) and metadata.fps == pytest.approx(10.0)


@pytest.mark.parametrize("keyframe_interval", [12, 300])
def test_a_files_bytes_decode_as_the_file(tmp_path, keyframe_interval):
    """What a server receives (the whole file as bytes) gives the frames and timing of the file on disk."""
    from modeling_groundinggpt.processing.video_processing_groundinggpt import read_video_frames

    path = write_clip(tmp_path / "clip.mp4", 90, keyframe_interval)
    from_file, file_metadata = read_video_frames(path, 16, 32)
    from_bytes, bytes_metadata = read_video_frames((tmp_path / "clip.mp4").read_bytes(), 16, 32)
    np.testing.assert_array_equal(from_bytes, from_file)
    assert bytes_metadata == file_metadata and bytes_metadata.duration == 3.0
    with pytest.raises(ValueError, match=r"Could not open the video \(5 bytes\) \(empty, corrupt"):
        read_video_frames(b"\x00\x01abc", 16, 32)


def test_no_timestamps_and_rates_that_disagree_is_refused(tmp_path):
    """A raw H.264 stream: no timestamps, 25 fps declared, packets of 0.1 s: its duration cannot be told."""
    path = write_clip(tmp_path / "clip.h264", 20, fps=10, container_format="h264", codec="libx264")
    processor = GroundingGPTVideoProcessor(size=32, num_frames=8)
    with pytest.raises(ValueError, match=r"Video 0: The video file '.*clip\.h264' has no frame timestamps and its "
                                         r"timing headers disagree: the stream declares 25 fps, .*\(10 fps\)"):
        processor(path)


@pytest.mark.parametrize("damage", ["no frame data", "zeroed frame data"])
def test_video_that_decodes_to_nothing_names_the_file(tmp_path, damage):
    path = tmp_path / "clip.mp4"
    write_clip(path, 20, options={"movflags": "faststart"})  # the index first, then the frame data
    data = path.read_bytes()
    start = data.index(b"mdat") + 4
    path.write_bytes(data[:start] if damage == "no frame data" else data[:start] + bytes(len(data) - start))
    with pytest.raises(ValueError, match=r"Video 0: The video file '.*clip\.mp4' contains no (video|decodable) frames"):
        GroundingGPTVideoProcessor(size=32, num_frames=8)(str(path))


@pytest.mark.parametrize("fps", [0, -5, float("nan"), float("inf"), "30", True])
def test_in_memory_frames_need_a_positive_fps(fps):
    frames = [frame_image(index) for index in range(4)]
    with pytest.raises(ValueError, match=r"Video 0: fps must be a positive number of frames per second, got "):
        GroundingGPTVideoProcessor(size=32, num_frames=8)(frames, fps=fps)
    processor = GroundingGPTVideoProcessor(size=32, num_frames=8)
    assert processor(frames, fps=np.float32(2), return_metadata=True)["video_metadata"][0].duration == 2.0


def test_seek_plan_seeks_where_keyframes_are_dense_and_decodes_on_where_sparse():
    def plan(keyframe_interval: int) -> list:
        frame_pts = np.arange(1800, dtype=np.int64) * 512
        index = video_decoding.StreamIndex(1800, frame_pts, np.arange(0, 1800, keyframe_interval), 60.0, 640, 480,
                                           None)
        return video_decoding._seek_plan(index, np.arange(0, 1800, 1800 / 64).astype(int))

    dense, sparse, single = plan(12), plan(300), plan(1800)
    assert all(keyframe is not None for keyframe in dense)  # 28 frames apart, a keyframe at most 11 frames back
    assert [keyframe for keyframe in sparse if keyframe is not None] == [0, 300, 600, 900, 1200, 1500]
    assert [keyframe for keyframe in single if keyframe is not None] == [0]
