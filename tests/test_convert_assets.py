"""Point clouds, FLAME tracking and SVFR images in the cube (converted from the shared sample)."""

import re
import shutil

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

import nersemble_cube
from nersemble_cube import convert
from nersemble_cube.cube import schema
from nersemble_cube.source import layout
from nersemble_cube.source.converters.flame import SHAPES, read_flame_tracking
from nersemble_cube.source.converters.pcd import colors_as_float, read_pcd
from nersemble_cube.errors import SelectionError, SourceError
from nersemble_cube.source.sample import pointcloud, write_sample
from nersemble_cube.source.converters.pcd import write_pcd

from conftest import N_FRAMES, POINTCLOUD_FRAMES, decode_pyav
from test_access import CountingStore

GLASSES = "nvs/388/sequences/GLASSES"


# ---- point clouds -----------------------------------------------------------------------------------------------

def test_pointclouds_equal_the_pcd_files(sample_dir, cube):
    tree = nersemble_cube.open(cube)
    node = tree[f"{GLASSES}/pointclouds"].to_dataset(inherit=False)
    assert node.timestep.values.tolist() == list(POINTCLOUD_FRAMES)
    assert node.positions.dtype == np.float32 and node.colors.dtype == np.uint8
    for t in POINTCLOUD_FRAMES:
        ref = read_pcd(sample_dir / GLASSES / f"pointclouds/frame_{t:05d}.pcd")
        points, colors, normals = nersemble_cube.load_pointcloud(tree[GLASSES], t)
        # the toolkit's load_pointcloud: open3d's arrays as float32, colours / 255 (reader proven on open3d files)
        np.testing.assert_array_equal(points, ref.positions)
        np.testing.assert_array_equal(normals, ref.normals)
        np.testing.assert_array_equal(colors, colors_as_float(ref.colors))
        assert points.dtype == colors.dtype == normals.dtype == np.float32
    with pytest.raises(SelectionError, match=r"timesteps \[0, 3\]"):
        nersemble_cube.load_pointcloud(tree[GLASSES], 1)


def test_one_timestep_reads_only_its_chunks(sample_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "POINT_CHUNK", 1000)  # 5000 points per cloud -> 5 chunks per timestep
    target = tmp_path / "c.zarr"
    convert(sample_dir, target, benchmarks=["nvs"])
    counting = CountingStore(LocalStore(str(target), read_only=True))
    import xarray as xr
    tree = xr.open_datatree(counting, engine="zarr", chunks={}, consolidated=True, zarr_format=3)
    node = tree[f"{GLASSES}/pointclouds"]
    node["count"].values, node["offset"].values  # the index: read once
    counting.keys.clear()
    points, _, _ = nersemble_cube.load_pointcloud(node, 3)
    point_reads = sorted(k for k in counting.keys if "/positions/" in k)
    assert point_reads == [f"{GLASSES}/pointclouds/positions/c/{i}/0" for i in range(5, 10)]
    assert len(points) == 5000


def test_new_timesteps_are_appended_without_rewriting(sample_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "POINT_CHUNK", 3000)
    src = tmp_path / "bench"
    shutil.copytree(sample_dir / "nvs", src / "nvs")
    shutil.rmtree(src / GLASSES / "pointclouds")
    write_pcd(src / GLASSES / "pointclouds/frame_00000.pcd", pointcloud(0, 73.0, 4000, seed=1))
    target = tmp_path / "c.zarr"
    convert(src, target)
    chunks = sorted((target / GLASSES / "pointclouds/positions/c").rglob("*"))
    before = {p: p.stat().st_mtime_ns for p in chunks if p.is_file()}
    # the user downloads two more timesteps
    write_pcd(src / GLASSES / "pointclouds/frame_00002.pcd", pointcloud(2, 73.0, 2500, seed=2))
    write_pcd(src / GLASSES / "pointclouds/frame_00001.pcd", pointcloud(1, 73.0, 1000, seed=3))
    report = convert(src, target)
    assert report.written == [f"{GLASSES}/pointclouds"] and report.items == 2
    assert {p: p.stat().st_mtime_ns for p in before} == before  # not one existing chunk rewritten
    node = zarr.open_group(str(target), path=f"{GLASSES}/pointclouds", mode="r")
    assert node["timestep"][:].tolist() == [0, 1, 2]  # storage order, listed by the index
    assert node["offset"][:].tolist() == [0, 6000, 7000]  # new points start at the next chunk boundary
    assert node["count"][:].tolist() == [4000, 1000, 2500]
    tree = nersemble_cube.open(target)
    for t in (0, 1, 2):
        ref = read_pcd(src / GLASSES / f"pointclouds/frame_{t:05d}.pcd")
        np.testing.assert_array_equal(nersemble_cube.load_pointcloud(tree[GLASSES], t)[0], ref.positions)
    assert convert(src, target).written == []


# ---- FLAME tracking ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sequence", ["EXP-1-head", "FREE"])
def test_tracking_is_bit_equal_and_toolkit_shaped(sample_dir, cube, sequence):
    tree = nersemble_cube.open(cube)
    seq = tree[f"mono_flame_avatar/393/sequences/{sequence}"]
    source = read_flame_tracking(sample_dir / seq.path.lstrip("/") / "tracking/flame2023_tracking_v2.npz")
    view = nersemble_cube.flame_tracking(seq)
    for key in SHAPES:
        got, want = getattr(view, key), getattr(source, key)
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want)
    node = seq["flame2023_tracking_v2"].to_dataset()
    assert node.attrs["valid_for_submission"] is True
    assert node.expression.dims == ("time", "expression_coeff")
    assert node.time.values.tolist() == source.frames.tolist()


def test_tracking_lines_up_with_the_images(cube, sample_dir):
    """Row i of the npz (numpy's own reading) is the tracking of source frame ``frames[i]``: the cube has it at
    that ``time``, the same coordinate the images of that frame have."""
    seq_path = "mono_flame_avatar/393/sequences/EXP-2-eyes"
    seq = nersemble_cube.open(cube)[seq_path]
    tracking = seq["flame2023_tracking_v2"].to_dataset()
    npz = np.load(sample_dir / seq_path / "tracking/flame2023_tracking_v2.npz")
    frames = npz["frames"].tolist()
    assert frames == tracking.time.values.tolist() and set(frames) <= set(seq.time.values.tolist())
    for i, t in enumerate(frames):
        for key in ("expression", "rotation", "translation", "jaw", "neck", "eyes"):
            np.testing.assert_array_equal(tracking[key].sel(time=t).values, npz[key][i])
        assert seq.images.sel(camera="222200037", time=t).shape == (512, 512, 3)


def test_v1_is_kept_under_its_own_name(sample_dir, cube):
    tree = nersemble_cube.open(cube)
    seq = tree["mono_flame_avatar/393/sequences/EXP-1-head"]
    assert sorted(seq.children) == ["flame2023_tracking_v1", "flame2023_tracking_v2"]
    assert seq["flame2023_tracking_v1"].attrs["valid_for_submission"] is False
    v1 = nersemble_cube.flame_tracking(seq, version=1)
    ref = read_flame_tracking(sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head/tracking/flame2023_tracking.npz")
    np.testing.assert_array_equal(v1.expression, ref.expression)
    assert not np.array_equal(v1.expression, nersemble_cube.flame_tracking(seq).expression)


def test_hold_out_sequences_expose_their_length(cube):
    tree = nersemble_cube.open(cube)
    for seq in layout.MONO_SEQUENCES_TEST:
        node = tree[f"mono_flame_avatar/393/sequences/{seq}"]
        assert node.attrs["has_video"] is False and "images" not in node
        assert node.attrs["n_frames"] == N_FRAMES + 3 == node["flame2023_tracking_v2"].sizes["time"]


# ---- SVFR -------------------------------------------------------------------------------------------------------

def test_svfr_images_are_pixel_equal_and_labeled(sample_dir, cube):
    ds = nersemble_cube.open(cube)["svfr"].to_dataset()
    keys = layout.SVFR_IMAGE_KEYS[17][:3]
    assert ds.image.values.tolist() == [f"017/{s}_{t:03d}_{c}" for s, t, c in keys]
    assert ds.key.values.tolist() == [f"{s}_{t:03d}_{c}" for s, t, c in keys]
    assert ds.timestep.values.tolist() == [t for _, t, _ in keys]
    assert ds.serial.values.tolist() == [c for _, _, c in keys]
    assert ds.participant_id.values.tolist() == [17, 17, 17]
    for s, t, c in keys:
        png = sample_dir / f"svfr/017/{s}_{t}_{c}/rgb.png"
        np.testing.assert_array_equal(ds.images.sel(image=f"017/{s}_{t:03d}_{c}").values, decode_pyav(png)[0])


def test_svfr_rerun_skips_and_new_images_rewrite(sample_dir, tmp_path):
    src = tmp_path / "bench"
    shutil.copytree(sample_dir / "svfr", src / "svfr")
    target = tmp_path / "c.zarr"
    assert convert(src, target).written == ["svfr"]
    assert convert(src, target).skipped == ["svfr"]
    write_sample(src, benchmarks=("svfr",), svfr_participants=(60,), svfr_images=1)
    assert convert(src, target).written == ["svfr"]
    ds = nersemble_cube.open(target)["svfr"].to_dataset()
    assert ds.sizes["image"] == 4 and ds.participant_id.values.tolist() == [17, 17, 17, 60]


# ---- bad input: clear error naming the file, nothing written ----------------------------------------------------

@pytest.fixture
def full_copy(sample_dir, tmp_path):
    root = tmp_path / "bench"
    shutil.copytree(sample_dir, root)
    return root


def _refused(src, tmp_path, match):
    with pytest.raises(SourceError, match=match):
        convert(src, tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()


def test_pcd_with_unknown_fields(full_copy, tmp_path):
    path = full_copy / GLASSES / "pointclouds/frame_00003.pcd"
    path.write_bytes(path.read_bytes().replace(b"FIELDS x y z normal_x", b"FIELDS x y z curvatu_x"))
    _refused(full_copy, tmp_path, r"frame_00003.pcd: PCD fields")


def test_truncated_pcd(full_copy, tmp_path):
    path = full_copy / GLASSES / "pointclouds/frame_00000.pcd"
    path.write_bytes(path.read_bytes()[:-1000])
    _refused(full_copy, tmp_path, r"frame_00000.pcd: truncated PCD")


def test_npz_with_nan(full_copy, tmp_path):
    path = full_copy / "mono_flame_avatar/393/sequences/FREE/tracking/flame2023_tracking_v2.npz"
    arrays = dict(np.load(path))
    arrays["jaw"][1, 1] = np.nan
    np.savez(path, **arrays)
    _refused(full_copy, tmp_path, r"FREE/tracking/flame2023_tracking_v2.npz: FLAME tracking 'jaw' contains NaN")


def test_tracking_with_other_frame_count_than_the_video(full_copy, tmp_path):
    from nersemble_cube.source.converters.flame import write_flame_tracking
    from nersemble_cube.source.sample import flame_tracking
    path = full_copy / "mono_flame_avatar/393/sequences/EXP-1-head/tracking/flame2023_tracking_v2.npz"
    write_flame_tracking(path, flame_tracking(N_FRAMES + 1, seed=0))
    _refused(full_copy, tmp_path, rf"has {N_FRAMES + 1} frames but the videos of .*EXP-1-head have {N_FRAMES}")


def test_png_of_the_wrong_size(full_copy, tmp_path):
    from nersemble_cube.source.converters.image import write_png
    path = next((full_copy / "svfr").rglob("rgb.png"))
    write_png(path, np.zeros((256, 256, 3), np.uint8))
    _refused(full_copy, tmp_path, re.escape(f"{path.parent.name}/rgb.png: image is 256x256, expected 512x512"))
