import subprocess

import av
import numpy as np
import pytest

from nersemble_cube.source.converters.video import ffmpeg_exe, iter_frames, probe
from nersemble_cube.errors import SourceError

from conftest import N_FRAMES, decode_pyav


def test_probe_reads_the_container(sample_dir):
    info = probe(sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200042.mp4")
    assert (info.n_frames, info.height, info.width, info.fps, info.codec, info.pix_fmt) == \
        (N_FRAMES, 1604, 1100, 73.0, "h264", "yuv420p")
    mono = probe(sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head/images/cam_222200037.mp4")
    assert (mono.n_frames, mono.height, mono.width, mono.fps) == (N_FRAMES, 512, 512, 24.3)


@pytest.mark.parametrize("batch, threads", [(1, None), (2, 1), (N_FRAMES + 3, 3)])
def test_frames_are_bit_equal_to_an_independent_decode(sample_dir, batch, threads):
    path = sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200044.mp4"
    batches = list(iter_frames(probe(path), batch=batch, threads=threads))
    assert [len(b) for b in batches][:-1] == [batch] * (len(batches) - 1)
    frames = np.concatenate(batches)
    assert frames.dtype == np.uint8 and frames.shape == (N_FRAMES, 1604, 1100, 3)
    np.testing.assert_array_equal(frames, decode_pyav(path))


def test_garbage_is_not_a_video(tmp_path):
    bad = tmp_path / "cam_222200042.mp4"
    bad.write_bytes(b"this is not an mp4" * 100)
    with pytest.raises(SourceError, match=r"cam_222200042.mp4: not a readable video"):
        probe(bad)


def test_truncated_video_is_reported(sample_dir, tmp_path):
    data = (sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200042.mp4").read_bytes()
    cut = tmp_path / "cam_222200042.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="cam_222200042.mp4"):
        info = probe(cut)
        list(iter_frames(info))


def test_frame_count_mismatch_after_probe_is_reported(sample_dir):
    path = sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200042.mp4"
    info = probe(path)
    lying = type(info)(**{**info.__dict__, "n_frames": info.n_frames + 2})
    with pytest.raises(SourceError, match=rf"decoding stopped after {N_FRAMES} of {N_FRAMES + 2} frames"):
        list(iter_frames(lying))


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", *args], check=True)


def test_a_stream_copied_cut_counts_and_decodes_the_frames_a_reader_sees(tmp_path):
    """A cut with ``-c copy`` starting between keyframes keeps the packets from the keyframe before and
    an edit list that hides them: PyAV (the toolkit's ``load_all_images``) and OpenCV show only the
    frames after the cut point, and so must the probe and the decoder (ffmpeg's default CFR output
    would duplicate frames to fill the timestamp gap)."""
    src, cut = tmp_path / "src.mp4", tmp_path / "cam_222200042.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-t", "4", "-c:v", "libx264", "-g", "24",
            "-pix_fmt", "yuv420p", str(src))
    _ffmpeg("-ss", "1.5", "-i", str(src), "-t", "2", "-c", "copy", str(cut))
    with av.open(str(cut)) as c:
        packets = sum(1 for p in c.demux(video=0) if p.size)
    reference = decode_pyav(cut)
    info = probe(cut)
    assert packets - len(reference) == 12  # the lead-in from the keyframe at 1 s to the cut at 1.5 s
    assert info.n_frames == len(reference)
    assert (info.height, info.width, info.fps) == (48, 64, 24.0)
    np.testing.assert_array_equal(np.concatenate(list(iter_frames(info, batch=7))), reference)


def test_a_file_without_a_video_stream_is_named(tmp_path):
    audio = tmp_path / "cam_222200042.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.2", "-c:a", "aac", str(audio))
    with pytest.raises(SourceError, match=r"cam_222200042.mp4: no video stream found"):
        probe(audio)


def test_an_mp4_with_two_video_streams_is_refused(tmp_path):
    from imageio_ffmpeg import get_ffmpeg_exe

    path = tmp_path / "cam_222200042.mp4"
    subprocess.run([get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5",
                    "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=0.5", "-map", "0", "-map", "1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    with pytest.raises(SourceError, match="cam_222200042.mp4: 2 video streams, where a NeRSemble video has one"):
        probe(path)


def _flip_ffmpeg_calls_concealed(video, tmp_path):
    """A copy of ``video`` with 8 bytes flipped where ffmpeg itself (the oracle, run at -v warning) reports
    ``corrupt decoded frame`` and no error: damage it conceals and would otherwise decode quietly."""
    data = video.read_bytes()
    for offset in range(data.find(b"mdat") + 2000, len(data) - 1000, 499):
        damaged = bytearray(data)
        damaged[offset:offset + 8] = bytes(b ^ 0xFF for b in damaged[offset:offset + 8])
        path = tmp_path / video.name
        path.write_bytes(damaged)
        log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "warning", "-i", str(path), "-f", "null",
                              "-"], capture_output=True, text=True)
        if log.returncode == 0 and "corrupt decoded frame" in log.stderr and "rror" not in log.stderr:
            return path
    raise AssertionError("no flip that ffmpeg reports only as a warning")


def test_a_frame_ffmpeg_calls_corrupt_is_a_source_error(sample_dir, tmp_path):
    path = _flip_ffmpeg_calls_concealed(sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200040.mp4", tmp_path)
    info = probe(path)
    with pytest.raises(SourceError, match=r"cam_222200040.mp4: the decoder reported damage .*corrupt decoded frame"):
        list(iter_frames(info))
    # as the benchmark frames go: the sound video itself decodes without a report
    assert len(list(iter_frames(probe(sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200040.mp4")))) == N_FRAMES
