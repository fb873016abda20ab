import json

import av
import numpy as np
import pytest

from nersemble_cube import write_sample
from nersemble_cube.source import layout
from nersemble_cube.source.sample import HEAD_RADIUS, head_centre

from conftest import N_FRAMES, decode_pyav
from wheels import TOOLKIT, no_deps


def _stream(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.name, s.codec_context.pix_fmt, s.height, s.width, float(s.average_rate), s.frames


def test_full_nvs_layout_matches_the_downloader(tmp_path):
    """Default camera set: exactly the files the downloader writes for nvs participant 388 (13 train cameras)."""
    root = write_sample(tmp_path, benchmarks=("nvs",), n_frames=1)
    constants = no_deps(TOOLKIT, "nersemble_benchmark.constants")
    assets = constants.ASSETS["nvs"]
    expected = {assets["per_person"]["calibration"].format(p_id=388)}
    for serial in constants.BENCHMARK_NVS_TRAIN_SERIALS:
        for key in ("images", "alpha_maps"):
            expected.add(assets["per_cam"][key].format(p_id=388, seq_name="GLASSES", serial=serial))
    # the downloader's default --pointcloud_frames [0]
    expected.add(assets["per_timestep"]["pointclouds"].format(p_id=388, seq_name="GLASSES", timestep=0))
    written = {p.relative_to(root / "nvs").as_posix() for p in (root / "nvs").rglob("*") if p.is_file()}
    assert written == expected


def test_videos_have_the_real_codec_resolution_and_rate(sample_dir):
    nvs = sample_dir / "nvs/388/sequences/GLASSES"
    mono = sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head"
    for sub in ("images", "alpha_maps"):
        assert _stream(nvs / sub / "cam_222200042.mp4") == ("h264", "yuv420p", 1604, 1100, 73.0, N_FRAMES)
        assert _stream(mono / sub / "cam_222200037.mp4") == ("h264", "yuv420p", 512, 512, 24.3, N_FRAMES)


def test_alpha_is_grey_in_rgb_and_images_are_textured_on_black(sample_dir):
    seq = sample_dir / "nvs/388/sequences/GLASSES"
    alpha = decode_pyav(seq / "alpha_maps/cam_222200042.mp4").astype(int)
    rgb = decode_pyav(seq / "images/cam_222200042.mp4").astype(int)
    assert np.abs(alpha[..., 0] - alpha[..., 1]).max() <= 2 and np.abs(alpha[..., 0] - alpha[..., 2]).max() <= 2
    inside, outside = alpha[..., 0] > 250, alpha[..., 0] < 5
    assert inside.mean() > 0.05 and outside.mean() > 0.5
    assert rgb[outside].max() < 40  # black background (up to H.264 ringing at the edge)
    assert rgb[inside].std() > 10  # a texture, not a constant colour


def test_calibration_covers_all_16_serials_and_matches_the_pixels(sample_dir):
    params = json.loads((sample_dir / "nvs/388/calibration/camera_params.json").read_text())
    assert sorted(params["world_2_cam"]) == sorted(layout.SERIALS) == sorted(params["intrinsics"])
    alpha = decode_pyav(sample_dir / "nvs/388/sequences/GLASSES/alpha_maps/cam_222200042.mp4")[..., 0]
    w2c = np.array(params["world_2_cam"]["222200042"])
    k = np.array(params["intrinsics"]["222200042"])
    assert w2c.shape == (4, 4) and k.shape == (3, 3)
    np.testing.assert_allclose(w2c[:3, :3] @ w2c[:3, :3].T, np.eye(3), atol=1e-12)
    for t in range(N_FRAMES):
        c = w2c[:3, :3] @ head_centre(t, layout.NVS_FPS) + w2c[:3, 3]
        u, v = (k @ c)[:2] / c[2]
        assert alpha[t, int(v), int(u)] > 250  # the head centre projects inside the matte
        # a point 1.5 radii right of the centre (in the camera plane) is background
        edge = k @ (c + np.array([1.5 * HEAD_RADIUS, 0, 0]))
        assert alpha[t, int(edge[1] / edge[2]), int(edge[0] / edge[2])] < 5


def test_sample_is_deterministic(tmp_path):
    a = write_sample(tmp_path / "a", benchmarks=("mono_flame_avatar",), mono_sequences=("EXP-1-head",), n_frames=2)
    b = write_sample(tmp_path / "b", benchmarks=("mono_flame_avatar",), mono_sequences=("EXP-1-head",), n_frames=2)
    rel = "mono_flame_avatar/393/sequences/EXP-1-head/images/cam_222200037.mp4"
    np.testing.assert_array_equal(decode_pyav(a / rel), decode_pyav(b / rel))


def test_sample_refuses_unknown_participants(tmp_path):
    with pytest.raises(ValueError, match="not benchmark participants"):
        write_sample(tmp_path, nvs_participants=(123,))


def test_mono_layout_matches_the_downloader(tmp_path):
    """Train sequences: video, matte and v2 tracking; hold-out sequences: v2 tracking only."""
    root = write_sample(tmp_path, benchmarks=("mono_flame_avatar",), mono_sequences=("EXP-1-head",), n_frames=1)
    constants = no_deps(TOOLKIT, "nersemble_benchmark.constants")
    assets = constants.ASSETS["mono_flame_avatar"]
    expected = {assets["per_person"]["calibration"].format(p_id=393)}
    for key in ("images", "alpha_maps"):
        expected.add(assets["per_cam"][key].format(p_id=393, seq_name="EXP-1-head", serial="222200037"))
    for seq in ["EXP-1-head"] + constants.BENCHMARK_MONO_FLAME_AVATAR_SEQUENCES_TEST:
        expected.add(assets["per_sequence"]["flame2023_tracking_v2"].format(p_id=393, seq_name=seq))
    written = {p.relative_to(root / "mono_flame_avatar").as_posix()
               for p in (root / "mono_flame_avatar").rglob("*") if p.is_file()}
    assert written == expected


def test_svfr_layout_matches_the_downloader(tmp_path):
    root = write_sample(tmp_path, benchmarks=("svfr",), svfr_participants=(17, 372), svfr_images=2)
    constants = no_deps(TOOLKIT, "nersemble_benchmark.constants")
    template = constants.ASSETS["svfr"]["per_image"]["images"]
    expected = {template.format(p_id=p, seq_name=s, timestep=t, serial=c)
                for p in (17, 372) for s, t, c in constants.BENCHMARK_SVFR_IMAGE_KEYS[p][:2]}
    written = {p.relative_to(root / "svfr").as_posix() for p in (root / "svfr").rglob("*") if p.is_file()}
    assert written == expected


def test_pointclouds_speak_open3d_dialect_and_lie_on_the_head(sample_dir):
    from pathlib import Path
    from nersemble_cube.source.converters.pcd import read_pcd
    path = sample_dir / "nvs/388/sequences/GLASSES/pointclouds/frame_00003.pcd"
    fixture = Path(__file__).parent / "fixtures/open3d_binary.pcd"
    header = lambda p: [ln for ln in p.read_bytes().split(b"DATA")[0].split(b"\n") if not ln.startswith((b"WIDTH", b"POINTS"))]
    assert header(path) == header(fixture)  # same header lines as open3d writes, but the point counts
    cloud = read_pcd(path)
    dist = np.linalg.norm(cloud.positions - head_centre(3, layout.NVS_FPS), axis=1)
    np.testing.assert_allclose(dist, HEAD_RADIUS, rtol=1e-5)


def test_tracking_npz_has_the_toolkit_keys_shapes_and_dtypes(sample_dir):
    npz = np.load(sample_dir / "mono_flame_avatar/393/sequences/FREE/tracking/flame2023_tracking_v2.npz")
    t = N_FRAMES + 3
    assert {k: npz[k].shape for k in npz.files} == {
        "shape": (1, 300), "expression": (t, 100), "rotation": (t, 3), "rotation_matrices": (t, 3, 3),
        "translation": (t, 3), "jaw": (t, 3), "frames": (t,), "scale": (1, 1), "neck": (t, 3), "eyes": (t, 6)}
    assert npz["expression"].dtype == np.float32 and npz["frames"].tolist() == list(range(t))
    # rotation_matrices are the rotations of the axis-angle vectors
    r = npz["rotation_matrices"].astype(np.float64)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-6)
    angle = np.arccos(np.clip((np.trace(r, axis1=1, axis2=2) - 1) / 2, -1, 1))
    np.testing.assert_allclose(angle, np.linalg.norm(npz["rotation"], axis=1), atol=1e-5)


def test_participants_are_sorted_into_their_benchmarks():
    from nersemble_cube.source.sample import benchmarks_of, participants_by_benchmark

    assert participants_by_benchmark([393, 17, 422, 404]) == {
        "nvs_participants": (422,), "mono_participants": (393, 404), "svfr_participants": (17,)}
    assert participants_by_benchmark() == {"nvs_participants": (388,), "mono_participants": (393,),
                                           "svfr_participants": (17,)}
    with pytest.raises(ValueError, match=r"not benchmark participants: \[5, 999\]"):
        participants_by_benchmark([999, 388, 5])
    # `sample -p 393` writes only the benchmark 393 is in (it wrote nvs/388 and svfr/017 too)
    assert benchmarks_of([393]) == ("mono_flame_avatar",) and benchmarks_of([17, 422]) == ("nvs", "svfr")
    assert benchmarks_of([]) == layout.BENCHMARKS
