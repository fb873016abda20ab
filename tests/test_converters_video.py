import numpy as np
import pytest

from nersemble_cube.source.converters.video import iter_frames, probe
from nersemble_cube.errors import SourceError

from conftest import N_FRAMES, decode_pyav


def test_probe_reads_the_container(sample_dir):
    info = probe(sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200042.mp4")
    assert (info.n_frames, info.height, info.width, info.fps, info.codec, info.pix_fmt) == \
        (N_FRAMES, 1604, 1100, 73.0, "h264", "yuv420p")
    mono = probe(sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head/images/cam_222200037.mp4")
    assert (mono.n_frames, mono.height, mono.width, mono.fps) == (N_FRAMES, 512, 512, 24.3)


@pytest.mark.parametrize("batch", [1, 2, N_FRAMES + 3])
def test_frames_are_bit_equal_to_an_independent_decode(sample_dir, batch):
    path = sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200044.mp4"
    batches = list(iter_frames(probe(path), batch=batch))
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
